"""The only code that knows the order of stages: ingest batching, analysis runs, scheduling."""
