"""From what the user typed to a log source: a path, a log URL, or a Zuul build.

An http(s) URL is a Zuul build page (``recheck.logs.zuul``) or else a build's log root
(``recheck.logs.listing``); other schemes are refused. A local ``*.json`` holding a Zuul
build record means that build's logs; any other path is local (``recheck.logs.localdir``).
"""

from __future__ import annotations

import re
from pathlib import Path

from recheck.config.files import Config
from recheck.logs.localdir import local_source
from recheck.logs.source import LogSource, SourceError

__all__ = ["open_source"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def open_source(text: str, config: Config | None = None) -> LogSource:
    """The log source ``text`` names; raises SourceError saying why it is unusable.

    ``config`` decides which hosts may be fetched from and how (default: the built-in
    settings, see ``recheck.config.files``). The caller closes the source (``with``).
    """
    # The HTTP modules (httpx) are imported only for what needs fetching: a local build
    # starts a fifth faster without it.
    config = config or Config()
    local = _local_copy(text, config)
    if local is not None:
        return local_source(local)
    if _URL.match(text):
        from recheck.logs.http import Fetcher
        from recheck.logs.zuul import url_source

        fetcher = Fetcher(config.fetch, config_file=config.path)
        try:
            return url_source(text, fetcher)
        except BaseException:
            fetcher.close()  # a Zuul API answer read before the error left a connection
            raise
    path = Path(text)
    if path.suffix.lower() == ".json" and path.is_file():
        from recheck.logs.http import Fetcher
        from recheck.logs.zuul import zuul_build_file_source

        fetcher = Fetcher(config.fetch, config_file=config.path)
        try:
            source = zuul_build_file_source(path, fetcher)
        except BaseException:
            fetcher.close()
            raise
        if source is not None:
            return source
        fetcher.close()
    return local_source(path)


def _local_copy(url: str, config: Config) -> Path | None:
    """The directory ``fetch.local_roots`` serves ``url`` from, if it names one; never a
    path outside that root."""
    for prefix, root in config.fetch.local_roots:
        stem = prefix.rstrip("/")
        if url == stem or url.startswith(stem + "/"):
            base = root.resolve()
            local = (base / url[len(stem) :].strip("/")).resolve()
            if local != base and base not in local.parents:
                raise SourceError(f"{url}: leaves the local root {root} of {prefix}")
            return local
    return None
