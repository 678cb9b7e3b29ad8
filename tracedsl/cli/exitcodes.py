"""Named exit codes, one per class of failure."""

OK = 0
FAILED = 1  # the command ran and found problems (validate, check, fmt --check)
USAGE = 2  # bad command-line arguments (click's own code for usage errors)
INPUT = 3  # a malformed or invalid spec, config, manifest or trace: syntax or semantics
IO = 4  # a file could not be read or written
LIMIT = 5  # the spec is valid but the chosen engine cannot run it (e.g. a reference cap)
INTERNAL = 70  # a bug in tracedsl: reported without a traceback unless TRACEDSL_DEBUG is set
