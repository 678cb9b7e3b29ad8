"""Sanity bounds on spec values, importable without pydantic (the CLI checks options with them).

They keep every sum of token counts inside int64 across millions of sessions, the Zipf
table in memory, one session's hash ids in memory and the time spent retrying bounded.
They are far beyond any real workload, and are not the reference's caps (200 blocks per
group, 1000 groups, 4000 blocks per session), which tracedsl does not have.
"""

MAX_TOKENS = 10**12
MAX_VALUE = 1e12  # real-space lognormal parameters: tokens, or milliseconds (31 years)
MAX_GROUPS = 10**7
MAX_TURNS = 10**9  # turn counts and turn indices (a restart's turn range)

# The most KV-cache blocks one session's prompt can reach, max_prompt_tokens / block_size: a
# session's rows carry that many hash ids in all. 2**24 is a 16M-token context at block 1, a
# 10M one at block 16 needs 625k.
MAX_SESSION_BLOCKS = 2**24

# The most turns a session can be expected to last (its context over the mean growth of a
# turn, or one over the reset probability): a session's rows are held in memory together.
MAX_SESSION_TURNS = 2**22

# Turn-count mode: the most whole-session attempts a spec may ask for, and how many attempts
# (retries included) the fast engine draws for a chunk of sessions, on average a session,
# before it gives up on the spec.
MAX_SESSION_ATTEMPTS = 10**4
RETRY_BUDGET = 200

# Agent structure (issue #13): how deep subagents may nest (a subagent's body may spawn
# subagents only when it says so, and never deeper than this), and how many a call may spawn.
MAX_SUBAGENT_DEPTH = 3
MAX_FANOUT = 64
