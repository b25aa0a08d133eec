"""Build metadata: the fields logstash put on every event of a build's logs.

A **build** here is what a signature can ask about besides the log line itself:
``build_name:"tempest-full" AND build_queue:gate AND voting:1``. The fields come from
the build's ``zuul-info/inventory.yaml`` (written by Zuul into every build's logs)
and/or from command-line options, options winning. The inventory is written before the
job runs, so it never knows the result: ``build_status`` comes from options (or, for a
build fetched from Zuul's API, from its ``result``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from recheck.lib.errors import RecheckError

__all__ = ["BUILD_FIELDS", "Build", "BuildInfoError", "load_inventory", "parse_inventory"]

INVENTORY_PATH = "zuul-info/inventory.yaml"


class BuildInfoError(RecheckError, ValueError):
    """Build metadata that cannot be read: a broken or unexpected inventory.yaml."""


@dataclass(frozen=True)
class Build:
    """Metadata of one build; None means unknown, and the field is left off events."""

    build_uuid: str | None = None
    build_short_uuid: str | None = None
    build_name: str | None = None
    build_status: str | None = None
    build_queue: str | None = None
    build_change: str | None = None
    build_patchset: str | None = None
    build_branch: str | None = None
    project: str | None = None
    voting: str | None = None
    """``"1"`` or ``"0"``, as logstash indexed it (signatures write ``voting:1``)."""
    log_url: str | None = None
    tenant: str | None = None

    def event_fields(self) -> dict[str, str]:
        """The known fields, ready to put on every event."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def updated(self, values: Mapping[str, str | None]) -> Build:
        """A copy with the non-None ``values`` replacing this build's fields."""
        known = {name: value for name, value in values.items() if value is not None}
        if "build_uuid" in known and "build_short_uuid" not in known:
            known["build_short_uuid"] = known["build_uuid"][:7]
        return replace(self, **known)

    @property
    def is_voting(self) -> bool:
        """False only when the build is known to be non-voting."""
        return self.voting != "0"


BUILD_FIELDS: tuple[str, ...] = tuple(item.name for item in fields(Build))


def load_inventory(path: Path) -> Build:
    """Read the build fields from a Zuul ``inventory.yaml`` (``all.vars.zuul``)."""
    return parse_inventory(path.read_text(encoding="utf-8", errors="replace"), str(path))


def parse_inventory(text: str, where: str) -> Build:
    """The build fields of a Zuul inventory's text; ``where`` names it in errors."""
    path = where
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BuildInfoError(
            f"{path}: not valid YAML ({_first_line(exc)}); "
            "fix or remove it and pass the build fields as options"
        ) from None
    zuul = _dig(data, "all", "vars", "zuul")
    if not isinstance(zuul, dict):
        raise BuildInfoError(
            f"{path}: no all.vars.zuul mapping, so this is not a Zuul inventory; "
            "pass the build fields as options instead"
        )
    uuid = _text(zuul.get("build"))
    voting = zuul.get("voting")
    return Build().updated(
        {
            "build_uuid": uuid,
            "build_name": _text(_dig(zuul, "job")),
            "build_queue": _text(zuul.get("pipeline")),
            "build_change": _text(zuul.get("change")),
            "build_patchset": _text(zuul.get("patchset")),
            "build_branch": _text(zuul.get("branch")),
            "project": _text(_dig(zuul, "project", "name")),
            "voting": None if voting is None else ("1" if _truthy(voting) else "0"),
            "tenant": _text(zuul.get("tenant")),
        }
    )


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
