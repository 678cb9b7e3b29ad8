"""Foreign trace formats read into TraceChunks: TraceLab's public release rows (tracelab.py)."""
