"""Per-family metadata extractors, and the collector and policy they share (see `extract`)."""
