"""Record, finding and read types passed between stages: no SQL, no I/O."""
