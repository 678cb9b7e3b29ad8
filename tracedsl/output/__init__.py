"""Rows → files: the Mooncake JSONL writer and reader, the validator, the manifest and the run directory."""
