"""``recheck report``: every page as static files, with the JSON each is built from.

Each file is written whole and renamed into place, so a web server never sends a
half-written page; bug pages of signatures that no longer exist are removed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recheck.web.render import STATIC_DIR, Links, Renderer, page_json
from recheck.web.site import BUGS, Snapshot
from recheck.web.testpages import RUNS

__all__ = ["Written", "write_report"]


@dataclass(frozen=True)
class Written:
    """What a report wrote."""

    pages: int
    removed: int
    """Stale bug and run pages (and their JSON) removed."""


def write_report(snapshot: Snapshot, output: Path, renderer: Renderer | None = None) -> Written:
    """Write every page of ``snapshot`` into ``output`` (created if needed)."""
    renderer = renderer or Renderer()
    output.mkdir(parents=True, exist_ok=True)
    (output / "static").mkdir(exist_ok=True)
    for asset in sorted(STATIC_DIR.iterdir()):
        if asset.is_file():
            _write(output / "static" / asset.name, asset.read_bytes())
    written: set[Path] = set()
    for name in snapshot.names():
        page = snapshot.page(name)
        assert page is not None, name
        base = _inside(output, name)
        base.parent.mkdir(parents=True, exist_ok=True)
        html = renderer.html(page, Links(name, live=False))
        for suffix, text in ((".html", html), (".json", page_json(page))):
            path = base.with_name(base.name + suffix)
            _write(path, text.encode("utf-8"))
            written.add(path)
    removed = 0
    for folder in (output / BUGS, output / RUNS):
        if not folder.is_dir():
            continue
        for stale in folder.iterdir():
            if stale.suffix in (".html", ".json") and stale not in written and stale.is_file():
                stale.unlink()
                removed += 1
    return Written(len(written) // 2, removed // 2)


def _inside(output: Path, name: str) -> Path:
    """The path of page ``name`` under ``output``, without its extension."""
    path = output.joinpath(*name.split("/"))
    # Bug ids are file names, so they hold no '/', but a queue name from the config could.
    if output.resolve() not in path.resolve().parents:
        raise ValueError(f"page name {name!r} leads outside {output}")
    return path


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".recheck-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
