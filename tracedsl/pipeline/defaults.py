"""The defaults and bounds the front door and the command options share; pure Python, cheap to import."""

from __future__ import annotations

from tracedsl import __version__ as VERSION
from tracedsl.limits import MAX_TOKENS
from tracedsl.output.manifest import MAX_SEED, MAX_SESSIONS
from tracedsl.reports.simulation_config import LAYERS as SIMULATION_LAYERS
from tracedsl.reports.simulation_config import MAX_SESSIONS as SIMULATION_MAX_SESSIONS
from tracedsl.reports.simulation_config import SimulationConfig

DEFAULT_SPEC = "default"  # the bundled spec a run uses when given none
DEFAULT_SESSIONS = 1000
DEFAULT_SEED = 42
ENGINES = ("fast", "aiperf")
DEFAULT_MAX_ERRORS = 50  # findings validate lists (all are counted)
SIMULATION_DEFAULTS = SimulationConfig()

__all__ = ["DEFAULT_MAX_ERRORS", "DEFAULT_SEED", "DEFAULT_SESSIONS", "DEFAULT_SPEC", "ENGINES",
           "MAX_SEED", "MAX_SESSIONS", "MAX_TOKENS", "SIMULATION_DEFAULTS", "SIMULATION_LAYERS",
           "SIMULATION_MAX_SESSIONS", "VERSION", "SimulationConfig"]
