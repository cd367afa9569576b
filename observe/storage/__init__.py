"""The only code that builds SQL. Functions take the caller's Session and never commit."""
