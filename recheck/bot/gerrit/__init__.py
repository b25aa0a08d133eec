"""gerrit."""
