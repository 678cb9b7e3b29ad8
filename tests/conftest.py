"""Shared test fixtures: paths to the project, its copied reference outputs and the replay tool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The shared folder beside the repository, when present (tests/test_fixtures.py compares the
# copies in tests/fixtures and tests/tools against it); optional.
SHARED = Path(os.environ.get("TRACEDSL_SHARED", ROOT.parent / "shared"))
# The replay tool (a copy of the project's, see tests/tools/README.md).
TOOLS = ROOT / "tests" / "tools"
# The fixtures are copied into tests/fixtures (see its README), so a clean clone has them.
FIXTURE_ROOT = Path(os.environ.get("TRACEDSL_FIXTURES", ROOT / "tests" / "fixtures"))
FIXTURES = FIXTURE_ROOT / "aiperf-0.13.0"
MOONCAKE = FIXTURE_ROOT / "mooncake-fast25"
FIXTURE_RUNS = ("default_s1_n300", "manifest1k_s3_n300", "turns_s5_n200")


def fixture_dir(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_dir():
        if os.environ.get("CI"):
            raise AssertionError(f"reference fixtures missing at {path}")
        pytest.skip(f"reference fixtures not found at {path}")
    return path
