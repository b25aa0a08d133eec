"""Reading a secret (a password, an API key) from the variable or file bot.yaml names.

bot.yaml never holds a secret: ``<key>_env`` names an environment variable and
``<key>_file`` a file holding it. Gerrit's HTTP password, the IRC password and the
cluster store's credentials are all read here, once, when their settings are built;
messages name the variable or file, never the secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from recheck.lib.errors import RecheckError

__all__ = ["SecretError", "read_secret"]


class SecretError(RecheckError):
    """The named variable is unset or empty, or the file cannot be read or is empty."""


def read_secret(
    key: str,
    variable: str | None = None,
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The secret in $``variable``, else in the file ``path`` (trimmed); None if neither
    is named. ``key`` (``gerrit.http_password``) names the setting in messages."""
    environ = os.environ if environ is None else environ
    if variable is not None:
        value = environ.get(variable, "")
        if not value:
            raise SecretError(
                f"{key}_env names ${variable}, which is not set or empty; export it, or "
                f"name a file with {key.rpartition('.')[2]}_file"
            )
        return value
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(
                f"{key}_file {path}: cannot read it ({exc.strerror or exc})"
            ) from None
        if not text:
            raise SecretError(f"{key}_file {path} is empty; write the secret in it")
        return text
    return None
