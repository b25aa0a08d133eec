"""From what the user typed to a log source: a path, a log URL, or a Zuul build.

- ``http://`` or ``https://``: a Zuul build page (``https://ZUUL/t/TENANT/build/UUID``,
  or ``https://ZUUL/build/UUID``) is looked up in Zuul's API; any other URL is a build's
  log root (``recheck.logs.fetch``). Other schemes (``file://``, ``ftp://``...) are refused.
- a local ``*.json`` file holding a build's record from Zuul's API: that build's logs.
- any other local path: a build's log directory or a single log file (``recheck.logs.localdir``).
"""

from __future__ import annotations

import re
from pathlib import Path

from recheck.config.files import Config
from recheck.logs.localdir import local_source
from recheck.logs.source import LogSource

__all__ = ["open_source"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def open_source(text: str, config: Config | None = None) -> LogSource:
    """The log source ``text`` names; raises SourceError saying why it is unusable.

    ``config`` decides which hosts may be fetched from and how (default: the built-in
    settings, see ``recheck.config.files``).
    """
    # recheck.logs.fetch (httpx) is imported only for what needs fetching: a local build
    # starts a fifth faster without it.
    config = config or Config()
    if _URL.match(text):
        from recheck.logs.fetch import Fetcher, url_source

        return url_source(text, Fetcher(config.fetch, config_file=config.path))
    path = Path(text)
    if path.suffix.lower() == ".json" and path.is_file():
        from recheck.logs.fetch import Fetcher, zuul_build_file_source

        source = zuul_build_file_source(path, Fetcher(config.fetch, config_file=config.path))
        if source is not None:
            return source
    return local_source(path)
