"""Sanity bounds on spec values, importable without pydantic (the CLI checks options with them).

They keep every sum of token counts inside int64 across millions of sessions and the Zipf
table in memory. They are far beyond any real workload, and are not the reference's caps
(200 blocks per group, 1000 groups, 4000 blocks per session), which tracedsl does not have.
"""

MAX_TOKENS = 10**12
MAX_VALUE = 1e12  # real-space lognormal parameters: tokens, or milliseconds (31 years)
MAX_GROUPS = 10**7
MAX_TURNS = 10**9
