"""Every diagnostic code, defined once: its name, its number and the one thing it means.

Modules import their codes from here, so a number cannot mean two things (``W_CONSTANT``
was once W101 in the compiler and W202 in the loader). Numbers group by where the problem
is: E0xx the .trace syntax, E1xx what a spec says (in any of its forms), E2xx the form of a
spec or trace file and the command-line values, E4xx reaching a file, a trace or an executor
(the I/O exit code), E5xx what a run of a valid spec meets (an engine's limits, the run's own
checks, --strict); W1xx warnings about what a spec says, W2xx about its form. docs/errors.md
shows each one with an input that gives it (or the test that does), and
tests/test_errors_doc.py runs those inputs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """One diagnostic code: ``E106``, its constant's name and what it means."""

    code: str
    name: str
    meaning: str

    @property
    def is_warning(self) -> bool:
        return self.code.startswith("W")


REGISTRY: dict[str, Code] = {}

# Codes that once existed and were merged into another; never given a new meaning.
RETIRED = {
    "E208": "E106",  # the loader's "invalid value", now the same code as the compiler's
    "W202": "W101",  # the loader's "constant lognormal", now the same code as the compiler's
}


def _define(code: str, name: str, meaning: str) -> str:
    if code in REGISTRY or code in RETIRED:
        raise ValueError(f"diagnostic code {code} is defined twice")
    if any(entry.name == name for entry in REGISTRY.values()):
        raise ValueError(f"diagnostic name {name} is defined twice")
    REGISTRY[code] = Code(code, name, meaning)
    return code


# .trace syntax
E_SYNTAX = _define("E001", "E_SYNTAX", "the .trace text does not parse")

# What a spec says
E_DUPLICATE = _define(
    "E101", "E_DUPLICATE", "a statement, argument or mixture component is given twice"
)
E_UNKNOWN_DISTRIBUTION = _define(
    "E102", "E_UNKNOWN_DISTRIBUTION", "a distribution name that tracedsl does not know"
)
E_ARGUMENT = _define("E103", "E_ARGUMENT", "an argument that this distribution does not take here")
E_UNIT = _define("E104", "E_UNIT", "a number with a unit that its field does not take")
E_NUMBER = _define(
    "E105", "E_NUMBER", "a number that cannot be this field's value (too large, or not whole)"
)
E_INVALID = _define(
    "E106", "E_INVALID", "a value, or a combination of values, that a workload cannot have"
)
E_MIXTURE = _define("E107", "E_MIXTURE", "a mixture's fractions or an empirical table's weights do not add up to 100%")
E_UNPRINTABLE = _define(
    "E108", "E_UNPRINTABLE", "a spec value that cannot be written in a .trace file"
)
E_EMPIRICAL_FILE = _define(
    "E109", "E_EMPIRICAL_FILE", "an empirical file that cannot be read, holds no values, or has a line that is not one"
)
E_LET = _define(
    "E116", "E_LET", "a name no let defines, or a let's value where its kind (number or distribution) does not go"
)
E_INCLUDE = _define(
    "E117", "E_INCLUDE", "an include that cannot be read, or that includes itself through its chain"
)
E_CLASS_STATEMENT = _define(
    "E118", "E_CLASS_STATEMENT",
    "a statement a session class cannot give (block, arrivals, latency, workload, include, let, class)",
)
E_CLASS_FRACTIONS = _define(
    "E119", "E_CLASS_FRACTIONS", "the session classes' fractions do not add up to 100%"
)
E_SUBAGENT_STATEMENT = _define(
    "E120", "E_SUBAGENT_STATEMENT",
    "a statement a subagent's body cannot give (block, arrivals, latency, workload, include, let, class)",
)
E_AGENT_PLACE = _define(
    "E121", "E_AGENT_PLACE", "returns outside a subagent's body, or a subagent body without returns"
)

E_ARRIVALS_FILE = _define(
    "E110", "E_ARRIVALS_FILE", "an arrivals file that cannot be read, holds no times, or has a line that is not one"
)

# The form of a spec file
E_NOT_TEXT = _define("E201", "E_NOT_TEXT", "the file is not UTF-8 text")
E_EMPTY = _define("E202", "E_EMPTY", "a JSON or TOML file with nothing in it")
E_BAD_JSON = _define("E203", "E_BAD_JSON", "the file is not valid JSON")
E_BAD_TOML = _define("E204", "E_BAD_TOML", "the file is not valid TOML")
E_SCHEMA = _define("E205", "E_SCHEMA", "a JSON Schema was given where a spec was expected")
E_NOT_OBJECT = _define(
    "E206", "E_NOT_OBJECT", "not a spec: the wrong kind of file, or JSON that is not an object"
)
E_UNKNOWN_KEY = _define(
    "E207", "E_UNKNOWN_KEY", "a key that a spec file or the workload does not have"
)
E_LEGACY_CONFLICT = _define(
    "E209", "E_LEGACY_CONFLICT", "a legacy spelling and its current one are both given, and differ"
)
E_FORMAT_VERSION = _define(
    "E210", "E_FORMAT_VERSION", "a spec.json format version this tracedsl does not read"
)
E_OVERRIDE = _define("E211", "E_OVERRIDE", "a --set that is not PATH=VALUE or names no field")
E_OPTION = _define(
    "E212", "E_OPTION", "a command-line option whose value the run or the spec cannot take"
)
E_OPTIONS = _define(
    "E213", "E_OPTIONS",
    "a usage error: options that do not go together, or a value the command does not take",
)
E_EMPTY_TRACE = _define("E214", "E_EMPTY_TRACE", "a trace with no rows to report on or simulate")
E_BLOCK_SIZE = _define(
    "E215", "E_BLOCK_SIZE", "a trace whose rows agree on no one block size, and none was given"
)
E_TOLERANCE = _define(
    "E216", "E_TOLERANCE", "a compare tolerance that is not a finite number of 0 or more"
)
E_FIT_OPTION = _define(
    "E220", "E_FIT_OPTION", "a fit option the trace cannot take (--classes, --sessions)"
)

# TraceLab's public release rows (tracedsl.imports.tracelab)
E_TRACELAB_JSON = _define(
    "E225", "E_TRACELAB_JSON", "a TraceLab row that is not a JSON object (not JSON, or another value)"
)
E_TRACELAB_FIELD = _define(
    "E226", "E_TRACELAB_FIELD", "a TraceLab row without a field the import reads, or with one of the wrong type"
)
E_TRACELAB_COUNT = _define(
    "E227", "E_TRACELAB_COUNT",
    "a TraceLab row whose token counts cannot be (negative, or a prefix larger than the total)",
)
E_TRACELAB_TIME = _define(
    "E228", "E_TRACELAB_TIME", "a TraceLab timing event whose timestamp is not an ISO-8601 time"
)
E_NOT_TRACELAB = _define(
    "E229", "E_NOT_TRACELAB", "a file read as TraceLab release rows whose first row is not one"
)

# Reaching a file
E_MISSING = _define("E401", "E_MISSING", "no such file (and no bundled spec of that name)")
E_UNREADABLE = _define("E402", "E_UNREADABLE", "the file exists but cannot be read")
E_UNWRITABLE = _define("E403", "E_UNWRITABLE", "a file or directory cannot be written")
E_EXECUTOR = _define(
    "E404", "E_EXECUTOR", "the executor failed: a Dask scheduler out of reach, a worker lost"
)
E_NOT_A_RUN = _define(
    "E405", "E_NOT_A_RUN", "no trace or run at the path given (no file, or a directory without one)"
)

# What a run of a valid spec meets
E_ENGINE_LIMIT = _define(
    "E501", "E_ENGINE_LIMIT", "a valid spec that the chosen engine cannot run"
)
E_RUN_CHECK = _define(
    "E502", "E_RUN_CHECK", "the written dataset failed the run's own checks; nothing was published"
)
E_STRICT = _define(
    "E503", "E_STRICT", "a run wrote what --strict refuses (the aiperf engine's hash-id conflicts)"
)

# Warnings: valid, but probably not what was meant
W_CONSTANT = _define(
    "W101", "W_CONSTANT", "a lognormal whose mean equals its median: every draw is the same"
)
W_BOUNDS = _define("W102", "W_BOUNDS", "a distribution's bounds keep less than half of its mass")
W_DELAY_MAX = _define(
    "W103", "W_DELAY_MAX", "the inter-turn delay's max clips most delays (at 0ms, every one)"
)
W_UNFIT_TARGETS = _define(
    "W104", "W_UNFIT_TARGETS", "turn targets that some sessions draw and almost never fit the context"
)
W_NOT_AIPERF = _define(
    "W105", "W_NOT_AIPERF", "a construct AIPerf 0.13.0 cannot express: --engine aiperf refuses the spec"
)
W_ARRIVALS_SHORT = _define(
    "W106", "W_ARRIVALS_SHORT", "arrival stages or an arrivals file that hold fewer sessions than the run asks for"
)
W_TURN_ZERO = _define(
    "W107", "W_TURN_ZERO", "most sessions (of the workload or of a class) cannot fit turn 1 and end at turn 0"
)
W_LEGACY = _define("W201", "W_LEGACY", "a legacy spelling of a key, accepted and rewritten")
W_FIT_MISSED = _define(
    "W203", "W_FIT_MISSED", "a run of the fitted spec misses a must-hold figure of the input"
)


def meaning(code: str) -> str:
    """What a code means (a retired one: what it was merged into)."""
    if code in RETIRED:
        return f"retired: now {RETIRED[code]} ({REGISTRY[RETIRED[code]].meaning})"
    return REGISTRY[code].meaning


def is_io(code: str) -> bool:
    """A problem reaching a file (exit code IO), not one with its content."""
    return code.startswith("E4")
