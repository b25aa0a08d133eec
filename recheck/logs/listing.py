"""A build's log root on a logs server as a log source: ``HttpLogSource``.

Its file list is Zuul's ``zuul-manifest.json`` when the root has one, else the server's
directory listings (Apache or nginx autoindex, Zuul's swift ``index.html`` pages),
followed into subdirectories of the root only, never upward nor to another host.
"""

from __future__ import annotations

import json
from collections import deque
from html.parser import HTMLParser
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from recheck.logs.build import Build
from recheck.logs.http import DownloadBudget, Fetcher, FetchError, redact
from recheck.logs.source import LogSource, SourceError

__all__ = ["MANIFEST_NAME", "HttpLogSource", "listing_links", "manifest_paths"]

MANIFEST_NAME = "zuul-manifest.json"
MAX_LISTING_PAGES = 1000
"""Directory listings followed for one build: a bound on a server whose links loop."""

_DIRECTORY_MIMETYPE = "application/directory"


class HttpLogSource(LogSource):
    """A build's log root on a logs server: listed from its manifest or its listings."""

    def __init__(self, url: str, fetcher: Fetcher, build: Build | None = None) -> None:
        self.root = _log_root(url)
        self.fetcher = fetcher
        try:
            fetcher.check(self.root)
        except FetchError as exc:
            raise SourceError(str(exc)) from None
        self._build = build if build is not None else Build(log_url=redact(self.root))
        self._paths: list[str] | None = None
        # Shared by the build's files: fetch.max_build_bytes bounds them all.
        self._budget = DownloadBudget(fetcher.config.max_build_bytes)

    @property
    def location(self) -> str:
        # Without the final '/', as the other sources: messages add '/<path in the build>'.
        return redact(self.root).removesuffix("/")

    def paths(self) -> list[str]:
        if self._paths is None:
            try:
                found = self._manifest_paths()
                if found is None:
                    found = self._listed_paths()
            except FetchError as exc:
                raise SourceError(str(exc)) from None
            if not found:
                raise SourceError(
                    f"{self.location}: no files found; give the build's log root URL "
                    "(the directory holding job-output.txt or console.html)"
                )
            self._paths = sorted(set(found))
        return list(self._paths)

    def open(self, path: str) -> BinaryIO:
        if path.startswith("/") or not all(_safe_segment(part) for part in path.split("/")):
            raise FetchError(f"{path}: not a path inside the log root; not fetched")
        return self.fetcher.open(self.root + quote(path), self._budget)

    def build_info(self) -> Build:
        return self._build

    def close(self) -> None:
        """Close the HTTP connections: the fetcher's (a caller that shares one fetcher between
        sources closes that fetcher instead)."""
        self.fetcher.close()

    def _manifest_paths(self) -> list[str] | None:
        """The files ``zuul-manifest.json`` lists, or None when the root has none."""
        url = self.root + MANIFEST_NAME
        try:
            body, _ = self.fetcher.read(url)
        except FetchError as exc:
            if exc.status in (401, 403, 404, 410):  # swift answers 401/403 for a missing object
                return None
            raise
        try:
            data = json.loads(body)
        except ValueError:
            raise SourceError(
                f"{redact(url)}: not valid JSON, so not a Zuul manifest; check the log URL"
            ) from None
        return manifest_paths(data, redact(url))

    def _listed_paths(self) -> list[str]:
        """The files the server's directory listings show, walking down from the root."""
        found: list[str] = []
        queue: deque[str] = deque([self.root])
        seen = {self.root}
        pages = 0
        while queue:
            pages += 1
            if pages > MAX_LISTING_PAGES:
                raise SourceError(
                    f"{self.location}: more than {MAX_LISTING_PAGES} directory listings; "
                    f"the server's links loop or the build is unusually large (a "
                    f"{MANIFEST_NAME} at the log root would list its files in one request)"
                )
            page = queue.popleft()
            body, content_type = self.fetcher.read(page)
            if not _looks_like_html(body, content_type):
                if page == self.root:
                    raise SourceError(
                        f"{self.location}: neither a {MANIFEST_NAME} nor a directory listing "
                        f"(the server sent {content_type or 'no content type'}); give the "
                        "build's log root URL, the directory holding its logs"
                    )
                continue
            for url, path, is_dir in listing_links(
                body.decode("utf-8", "replace"), page, self.root
            ):
                if not is_dir:
                    found.append(path)
                elif url not in seen:
                    seen.add(url)
                    queue.append(url)
        return found


def _log_root(url: str) -> str:
    """The log root URL: no query or fragment, no ``index.html``, ending with ``/``."""
    parts = urlsplit(url.strip())
    path = (
        parts.path.removesuffix("index.html") if parts.path.endswith("/index.html") else parts.path
    )
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def manifest_paths(data: Any, where: str) -> list[str]:
    """The file paths a Zuul manifest lists (``{"tree": [{"name", "mimetype", "children"}]}``).

    A name that could leave the log root (``..``, ``/``, a climbing ``\\`` path, or an
    escaped form of them) refuses the whole manifest: Zuul writes plain directory entry
    names, so such a manifest was not written by Zuul.
    """
    tree = data.get("tree") if isinstance(data, dict) else None
    if not isinstance(tree, list):
        raise SourceError(f'{where}: not a Zuul manifest (no "tree" list); check the log URL')
    found: list[str] = []
    stack: list[tuple[str, list[Any]]] = [("", tree)]
    while stack:
        prefix, entries = stack.pop()
        for entry in entries:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not _safe_segment(name):
                raise SourceError(
                    f"{where}: entry {prefix}{name!r} is not a plain file name inside the log "
                    "root ('..', '/', a climbing '\\' path or an escaped form of them); "
                    "refusing this manifest: Zuul never writes one like it, so check where "
                    "the URL points"
                )
            children = entry.get("children")
            if entry.get("mimetype") == _DIRECTORY_MIMETYPE or isinstance(children, list):
                stack.append((f"{prefix}{name}/", children if isinstance(children, list) else []))
            else:
                found.append(prefix + name)
    return found


def _looks_like_html(body: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == b"<"


class _LinkParser(HTMLParser):
    """Collects ``(href, text)`` of every ``<a href>`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._finish()
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish()

    def _finish(self) -> None:
        if self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
        self._href = None

    def close(self) -> None:
        super().close()
        self._finish()


def listing_links(page_html: str, page_url: str, root: str) -> list[tuple[str, str, bool]]:
    """``(url, path in the build, is a directory)`` for each link of a listing into the root.

    Understands Apache and nginx autoindex pages (``logs/`` links to a directory) and
    the listings Zuul's swift upload writes (``logs/index.html`` shown as ``logs/``).
    Links that leave the root (the parent directory, icons, other hosts), links with a
    query (Apache's sort links) and names that could escape once decoded are skipped.
    """
    parser = _LinkParser()
    parser.feed(page_html)
    parser.close()
    base = urlsplit(root)
    found: list[tuple[str, str, bool]] = []
    for href, text in parser.links:
        if not href or href.startswith(("?", "#")):
            continue
        try:
            target = urlsplit(urljoin(page_url, href))
            same_place = (target.scheme, target.hostname, target.port) == (
                base.scheme,
                base.hostname,
                base.port,
            )
        except ValueError:
            continue
        if target.query or not same_place or not target.path.startswith(base.path):
            continue
        relative = target.path[len(base.path) :]
        is_dir = relative.endswith("/")
        if text.endswith("/") and (relative == "index.html" or relative.endswith("/index.html")):
            is_dir, relative = True, relative.removesuffix("index.html")
        segments = relative.removesuffix("/").split("/")
        if not relative or not all(_safe_segment(segment) for segment in segments):
            continue
        url = urlunsplit((target.scheme, target.netloc, target.path, "", ""))
        found.append((url, "/".join(unquote(segment) for segment in segments), is_dir))
    return found


def _safe_segment(segment: str) -> bool:
    """A path segment that stays inside its directory, however a server reads it.

    Refused: ``.`` and ``..``, ``/`` and NUL, backslash paths that climb or start at a
    root (``..\\x``, ``\\x``, for servers that take ``\\`` as a separator), and
    percent-encoded forms of all of these. A backslash inside a name (systemd's
    ``dev-disk-by\\x2dlabel``) is a plain character and is fetched as ``%5C``.
    """
    for text in (segment, unquote(segment)):
        if text in ("", ".", "..") or "/" in text or "\0" in text or text.startswith("\\"):
            return False
        if any(part in (".", "..") for part in text.split("\\")):
            return False
    return True
