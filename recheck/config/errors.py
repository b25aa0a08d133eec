"""ConfigError, in a module of its own so that naming it does not load the schema."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """The config file is unusable; the message says where, what, and what to do."""
