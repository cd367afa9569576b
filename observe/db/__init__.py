"""Database models, portable column types, engines and migrations."""
