"""bugs."""
