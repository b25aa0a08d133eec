"""ConfigError, in a module of its own so that naming it does not load the schema."""

from __future__ import annotations

from recheck.lib.errors import RecheckError

__all__ = ["ConfigError"]


class ConfigError(RecheckError):
    """The config file is unusable; the message says where, what, and what to do."""
