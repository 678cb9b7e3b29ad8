"""tracedsl: a small language and a fast seeded generator for synthetic coding-agent traces."""

__version__ = "0.1.0"
