"""Logs over HTTP (recheck.logs.http, .listing, .zuul, .sources) against a real local logs server.

The server (``LogServer``) runs on 127.0.0.1 in a thread and serves the real build
directories of tests/fixtures/builds/ the ways real logs servers do: with a Zuul
manifest (files as stored, ``.gz`` raw), as Apache autoindex pages (``.gz`` sent with
Content-Encoding: gzip, as Apache's AddEncoding does), as nginx autoindex pages, and as
Zuul's swift upload stores them (``index.html`` listings, text gzip-encoded in transit).
It also replays a real recorded Zuul API build record, and misbehaves on request: 503s,
stalls, dropped connections, redirects elsewhere, a hostile manifest.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import mimetypes
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from recheck.cli.main import main
from recheck.config.files import Config, FetchConfig
from recheck.logs.build import Build
from recheck.logs.http import USER_AGENT, Fetcher, FetchError, host_allowed, redact
from recheck.logs.listing import HttpLogSource, listing_links, manifest_paths
from recheck.logs.localdir import DirSource
from recheck.logs.source import FileProblem, SourceError
from recheck.logs.sources import open_source
from recheck.logs.zuul import build_from_zuul, zuul_api_url
from recheck.pipeline import Classification, classify_build
from recheck.query.signatures import Signature, load_signatures

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
BUILDS = FIXTURES / "builds"
JENKINS = "gate-tempest-devstack-vm-neutron"
ZUUL = "devstack-zuulv3"
ZUUL_BUILDS = json.loads((FIXTURES / "zuul-api" / "builds.json").read_text())
RECORD = ZUUL_BUILDS[0]  # a real /api/builds entry (OpenStack's Zuul, Feb 2021)


# --- the server ---------------------------------------------------------------------------


class LogServer:
    """Serves ``/<mode>/<build>/<path>`` from tests/fixtures/builds in the mode's style."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.user_agents: set[str] = set()
        self.release = threading.Event()  # ends every stall when the test is over
        self.failures: dict[str, int] = {}  # path -> 503 answers still to give
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LogServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients here hang up on purpose (timeouts, closed pools): not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(site: LogServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

        def do_GET(self) -> None:
            site.requests.append(self.path)
            site.user_agents.add(self.headers.get("User-Agent", ""))
            path = unquote(urlsplit(self.path).path)
            mode, _, rest = path.lstrip("/").partition("/")
            route = _ROUTES.get(mode)
            if route is None:
                self.send(404, b"no such route")
            else:
                route(self, site, rest)

        def send(self, status: int, body: bytes, **headers: str) -> None:
            self.send_response(status)
            headers.setdefault("Content-Type", "text/plain")
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


_Route = Callable[[Any, LogServer, str], None]


def _build_file(rest: str) -> tuple[Path, str, str] | None:
    """(build dir, path in build, URL prefix) for ``<build>/<path>``, or None."""
    build, _, inner = rest.partition("/")
    directory = BUILDS / build
    if not build or not directory.is_dir() or ".." in inner.split("/"):
        return None
    return directory, inner, f"{build}/"


def _serve_file(handler: Any, directory: Path, inner: str, *, encode: str) -> None:
    """One file: 'raw' as stored, 'gz' with .gz sent as Content-Encoding: gzip,
    'swift' with text files compressed in transit (Content-Encoding: gzip)."""
    target = directory / inner
    if not inner or not target.is_file():
        handler.send(404, b"Not Found")
        return
    body = target.read_bytes()
    headers = {"Last_Modified": formatdate(target.stat().st_mtime, usegmt=True)}
    if inner.endswith(".gz"):
        if encode == "gz":
            headers.update(Content_Type="text/plain", Content_Encoding="gzip")
        else:
            headers["Content_Type"] = "application/gzip"
    elif encode == "swift":
        body = gzip.compress(body)
        headers.update(Content_Type="text/plain", Content_Encoding="gzip")
    handler.send(200, body, **headers)


def _manifest(directory: Path) -> dict[str, Any]:
    """What zuul-jobs' generate-zuul-manifest writes for ``directory``."""

    def walk(folder: Path) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            entries.append(
                {"name": sub.name, "mimetype": "application/directory", "encoding": None,
                 "children": walk(sub)}
            )  # fmt: skip
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            mimetype, encoding = mimetypes.guess_type(file.name)
            entries.append(
                {"name": file.name, "mimetype": mimetype or "text/plain", "encoding": encoding,
                 "last_modified": int(file.stat().st_mtime), "size": file.stat().st_size}
            )  # fmt: skip
        return entries

    return {"tree": walk(directory), "index_links": False}


def route_manifest(handler: Any, site: LogServer, rest: str) -> None:
    found = _build_file(rest)
    if found is None:
        handler.send(404, b"Not Found")
    elif found[1] == "zuul-manifest.json":
        body = json.dumps(_manifest(found[0])).encode()
        handler.send(200, body, Content_Type="application/json")
    else:
        _serve_file(handler, found[0], found[1], encode="raw")


def _listing_entries(folder: Path) -> list[tuple[str, bool, int]]:
    return [(p.name, p.is_dir(), p.stat().st_size) for p in sorted(folder.iterdir())]


def apache_listing(url_path: str, folder: Path) -> str:
    """A page like Apache 2.4's mod_autoindex (FancyIndexing, HTMLTable) writes."""
    title = html.escape(url_path.rstrip("/"))
    parent = url_path.rstrip("/").rpartition("/")[0] + "/"
    rows = [
        '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
        f'<td><a href="{quote(parent)}">Parent Directory</a></td><td>&nbsp;</td>'
        '<td align="right">  - </td><td>&nbsp;</td></tr>'
    ]
    for name, is_dir, size in _listing_entries(folder):
        icon, alt = ("folder.gif", "[DIR]") if is_dir else ("text.gif", "[TXT]")
        label = name + "/" if is_dir else name
        rows.append(
            f'<tr><td valign="top"><img src="/icons/{icon}" alt="{alt}"></td>'
            f'<td><a href="{quote(label)}">{html.escape(label)}</a></td>'
            '<td align="right">2013-09-05 17:26  </td>'
            f'<td align="right">{"  - " if is_dir else f"{size // 1024 or 1}K"}</td>'
            "<td>&nbsp;</td></tr>"
        )
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {title}</title>\n </head>\n <body>\n<h1>Index of {title}</h1>\n"
        '  <table>\n   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
        '   <tr><th colspan="5"><hr></th></tr>\n'
        + "\n".join(rows)
        + '\n   <tr><th colspan="5"><hr></th></tr>\n</table>\n'
        "<address>Apache/2.4.7 (Ubuntu) Server at logs.openstack.org Port 80</address>\n"
        "</body></html>\n"
    )


def nginx_listing(url_path: str, folder: Path) -> str:
    """A page like nginx's autoindex module writes."""
    lines = ['<a href="../">../</a>']
    for name, is_dir, size in _listing_entries(folder):
        label = name + "/" if is_dir else name
        lines.append(
            f'<a href="{quote(label)}">{html.escape(label)}</a>'
            f"{' ' * max(1, 51 - len(label))}05-Sep-2013 17:26 {'-' if is_dir else size:>19}"
        )
    title = html.escape(url_path)
    return (
        f"<html>\n<head><title>Index of {title}</title></head>\n<body>\n"
        f"<h1>Index of {title}</h1><hr><pre>" + "\n".join(lines) + "\n</pre><hr></body>\n</html>\n"
    )


def swift_listing(relative: str, folder: Path, *, top: bool) -> str:
    """An index.html like zuul-jobs' upload-logs-swift writes (directories link to
    ``<dir>/index.html``; the parent link is ``../index.html``)."""
    rows = [] if top else [("../index.html", "../", "application/directory")]
    for name, is_dir, _ in _listing_entries(folder):
        if is_dir:
            rows.append((quote(name) + "/index.html", name + "/", "application/directory"))
        else:
            rows.append((quote(name), name, mimetypes.guess_type(name)[0] or "text/plain"))
    output = f"<html><head><title>Index of {relative}</title></head><body>\n"
    output += f"<h1>Index of {relative}</h1>\n"
    output += "<table><tr><th></th><th>Name</th><th>Last Modified</th><th>Size</th></tr>"
    for href, label, mimetype in rows:
        output += (
            f'<tr><td><img alt="[ ]" title="{mimetype}" src="data:image/png;base64,iVBO">'
            f'</img></td><td><a href="{href}">{label}</a></td>'
            "<td>Thu Sep  5 17:26:00 2013</td>"
            '<td style="text-align: right">1.0K</td></tr>\n'
        )
    return output + "</table></body></html>\n"


def _route_listing(style: str) -> _Route:
    def route(handler: Any, site: LogServer, rest: str) -> None:
        found = _build_file(rest)
        if found is None:
            handler.send(404, b"Not Found")
            return
        directory, inner, _ = found
        url_path = urlsplit(handler.path).path
        if style == "swift" and (inner == "index.html" or inner.endswith("/index.html")):
            inner = inner.removesuffix("index.html")
            url_path = url_path.removesuffix("index.html")
        folder = directory / inner
        if inner == "zuul-manifest.json":
            handler.send(404, b"Not Found")
        elif (inner == "" or inner.endswith("/")) and folder.is_dir():
            if style == "apache":
                page = apache_listing(url_path, folder)
            elif style == "nginx":
                page = nginx_listing(url_path, folder)
            else:
                page = swift_listing(inner, folder, top=inner == "")
            handler.send(200, page.encode(), Content_Type="text/html;charset=UTF-8")
        else:
            _serve_file(handler, directory, inner, encode={"apache": "gz"}.get(style, style))

    return route


def route_api(handler: Any, site: LogServer, rest: str) -> None:
    """Zuul's API: a real recorded build record, its log_url pointing at this server."""
    uuid = rest.rstrip("/").rpartition("/")[2]
    if rest.startswith(("tenant/openstack/build/", "build/")) and uuid == RECORD["uuid"]:
        record = dict(RECORD, log_url=f"{site.url}/manifest/{JENKINS}/")
        handler.send(200, json.dumps(record).encode(), Content_Type="application/json")
    else:
        handler.send(404, json.dumps({"description": "Build not found"}).encode())


def route_flaky(handler: Any, site: LogServer, rest: str) -> None:
    """Answers 503 (Retry-After: 3) to the first request of each path, then serves it."""
    with site.lock:
        first = rest not in site.failures
        site.failures[rest] = 1
    if first:
        handler.send(503, b"Service Unavailable", Retry_After="3")
    else:
        route_manifest(handler, site, rest)


def route_ratelimit(handler: Any, site: LogServer, rest: str) -> None:
    """Always 429 with a Retry-After far beyond any sensible cap."""
    handler.send(429, b"Too Many Requests", Retry_After="3600")


def route_stall(handler: Any, site: LogServer, rest: str) -> None:
    """Says nothing until the test ends (longer than any client timeout here)."""
    site.release.wait(30)
    handler.close_connection = True


def _broken_job_output(*, stall: bool) -> _Route:
    """Serves the manifest build, but job-output.txt breaks off: after its first 100
    bytes the server goes silent (``stall``), or else the connection drops after the
    whole file while 100,000 more bytes were announced."""

    def route(handler: Any, site: LogServer, rest: str) -> None:
        found = _build_file(rest)
        if found is None or found[1] != "job-output.txt":
            route_manifest(handler, site, rest)
            return
        body = (found[0] / "job-output.txt").read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body) + (0 if stall else 100_000)))
        handler.end_headers()
        handler.wfile.write(body[:100] if stall else body)
        handler.wfile.flush()
        if stall:
            site.release.wait(30)
        handler.close_connection = True

    return route


def route_missing(handler: Any, site: LogServer, rest: str) -> None:
    """The manifest lists a service log the server does not have (404)."""
    found = _build_file(rest)
    if found is not None and found[1] == "zuul-manifest.json":
        manifest = _manifest(found[0])
        controller = next(e for e in manifest["tree"] if e["name"] == "controller")
        logs = next(e for e in controller["children"] if e["name"] == "logs")
        logs["children"].append({"name": "screen-n-cpu.txt", "mimetype": "text/plain"})
        handler.send(200, json.dumps(manifest).encode(), Content_Type="application/json")
    else:
        route_manifest(handler, site, rest)


def route_evil(handler: Any, site: LogServer, rest: str) -> None:
    """A manifest whose entry climbs out of the log root."""
    manifest = {"tree": [{"name": "logs", "mimetype": "application/directory",
                          "children": [{"name": "..", "mimetype": "application/directory",
                                        "children": [{"name": "secret.txt"}]}]}]}  # fmt: skip
    handler.send(200, json.dumps(manifest).encode(), Content_Type="application/json")


def route_away(handler: Any, site: LogServer, rest: str) -> None:
    """Redirects to the same server under another host name (not allowed)."""
    handler.send(302, b"", Location=f"http://localhost:{site.port}/manifest/{rest}")


def route_to_file(handler: Any, site: LogServer, rest: str) -> None:
    handler.send(302, b"", Location="file:///etc/passwd")


def route_moved(handler: Any, site: LogServer, rest: str) -> None:
    """A permanent redirect within the same (allowed) host."""
    handler.send(301, b"", Location=f"/manifest/{rest}")


BIG_BYTES = 32 << 20


def route_big(handler: Any, site: LogServer, rest: str) -> None:
    """32 MiB of log lines, written as it goes (never held whole, here or there)."""
    line = b"2013-09-05 17:26:00.000 | a line of a big console log, repeated\n"
    handler.send_response(200)
    handler.send_header("Content-Length", str(BIG_BYTES))
    handler.end_headers()
    block = line * (65536 // len(line))
    sent = 0
    while sent < BIG_BYTES:
        piece = block[: BIG_BYTES - sent]
        handler.wfile.write(piece)
        sent += len(piece)


_ROUTES: dict[str, _Route] = {
    "manifest": route_manifest,
    "apache": _route_listing("apache"),
    "nginx": _route_listing("nginx"),
    "swift": _route_listing("swift"),
    "api": route_api,
    "zuul": lambda handler, site, rest: route_api(handler, site, rest.partition("api/")[2]),
    "flaky": route_flaky,
    "ratelimit": route_ratelimit,
    "stall": route_stall,
    "stall-midfile": _broken_job_output(stall=True),
    "drop": _broken_job_output(stall=False),
    "missing": route_missing,
    "evil": route_evil,
    "away": route_away,
    "to-file": route_to_file,
    "moved": route_moved,
    "big": route_big,
}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not stand between the tests and 127.0.0.1."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def server() -> Iterator[LogServer]:
    with LogServer() as running:
        yield running


@pytest.fixture(scope="module")
def signatures() -> list[Signature]:
    loaded, errors = load_signatures(ROOT / "queries")
    assert errors == []
    return loaded


def local_config(**fetch: Any) -> Config:
    settings: dict[str, Any] = {"allowed_hosts": ("127.0.0.1",), "retries": 2, "backoff": 0.0}
    settings.update(fetch)
    return Config(fetch=FetchConfig(**settings))


def classify_local(build: str, signatures: list[Signature]) -> Classification:
    return classify_build(DirSource(BUILDS / build), signatures)


# --- a build over HTTP classifies as it does on disk --------------------------------------


@pytest.mark.parametrize("mode", ["manifest", "apache", "nginx", "swift"])
@pytest.mark.parametrize("build", [JENKINS, ZUUL])
def test_a_build_over_http_classifies_as_on_disk(
    server: LogServer, signatures: list[Signature], mode: str, build: str
) -> None:
    url = f"{server.url}/{mode}/{build}/"
    with open_source(url, local_config()) as source:
        assert source.paths() == DirSource(BUILDS / build).paths()
        remote = classify_build(source, signatures)
        local = classify_local(build, signatures)
        assert remote.matches == local.matches
        assert remote.matches, "the fixture builds are chosen to match demo signatures"
        assert remote.problems == []
        assert remote.build.log_url == url
        assert remote.build == local.build.updated({"log_url": url})
        assert server.user_agents == {USER_AGENT}


def test_listings_are_used_only_without_a_manifest(server: LogServer) -> None:
    with open_source(f"{server.url}/manifest/{ZUUL}/", local_config()) as source:
        source.paths()
    assert server.requests == [f"/manifest/{ZUUL}/zuul-manifest.json"]

    server.requests.clear()
    with open_source(f"{server.url}/nginx/{ZUUL}", local_config()) as source:
        source.paths()
    assert server.requests == [
        f"/nginx/{ZUUL}/zuul-manifest.json",
        f"/nginx/{ZUUL}/",
        f"/nginx/{ZUUL}/controller/",
        f"/nginx/{ZUUL}/zuul-info/",
        f"/nginx/{ZUUL}/controller/logs/",
    ]


def test_a_zuul_build_url_gives_the_logs_and_the_build_fields(
    server: LogServer, signatures: list[Signature]
) -> None:
    url = f"{server.url}/zuul/t/openstack/build/{RECORD['uuid']}"
    with open_source(url, local_config()) as source:
        log_url = f"{server.url}/manifest/{JENKINS}/"
        expected = Build(
            build_uuid="0d5ccc1403b04bed90d7c238e089b3b2",
            build_short_uuid="0d5ccc1",
            build_name="publish-openstack-releasenotes-python3",
            build_status="SUCCESS",
            build_queue="check",
            build_change="758776",
            build_patchset=None,  # the record says "None"
            build_branch="stable/ussuri",
            project="openstack/puppet-tripleo",
            voting="1",
            log_url=log_url,
            tenant="openstack",
        )
        assert source.build_info() == expected
        assert source.location == log_url.removesuffix("/")
        result = classify_build(source, signatures)
        assert result.build == expected
        local = classify_build(DirSource(BUILDS / JENKINS), signatures, expected)
        assert result.matches == local.matches and result.matches
        assert f"/zuul/api/tenant/openstack/build/{RECORD['uuid']}" in server.requests


def test_a_white_label_zuul_build_url(server: LogServer) -> None:
    with open_source(f"{server.url}/zuul/build/{RECORD['uuid']}/logs", local_config()) as source:
        assert source.build_info().build_name == "publish-openstack-releasenotes-python3"
        assert source.build_info().tenant is None
        assert f"/zuul/api/build/{RECORD['uuid']}" in server.requests


def test_an_unknown_zuul_build_is_a_clear_error(server: LogServer) -> None:
    url = f"{server.url}/zuul/t/openstack/build/{'f' * 32}"
    with pytest.raises(SourceError) as caught:
        open_source(url, local_config())
    assert str(caught.value) == (
        f"{url}: Zuul knows no such build ({server.url}/zuul/api/tenant/openstack/build/"
        f"{'f' * 32} answered HTTP 404); check the tenant and the build UUID"
    )


def test_a_saved_zuul_build_json_file_is_a_source(server: LogServer, tmp_path: Path) -> None:
    saved = tmp_path / "build.json"
    saved.write_text(json.dumps([dict(RECORD, log_url=f"{server.url}/apache/{ZUUL}/")]))
    with open_source(str(saved), local_config()) as source:
        assert isinstance(source, HttpLogSource)
        assert source.build_info().build_name == "publish-openstack-releasenotes-python3"
        assert source.paths() == DirSource(BUILDS / ZUUL).paths()

    several = tmp_path / "builds.json"
    several.write_text(json.dumps(ZUUL_BUILDS))
    with pytest.raises(SourceError, match=r"builds.json: holds 3 Zuul builds; save one build"):
        open_source(str(several), local_config())

    other = tmp_path / "events.json"
    other.write_text('{"message": "not a build"}\n')
    with open_source(str(other), local_config()) as source:
        assert source.paths() == ["events.json"]


# --- what is refused ----------------------------------------------------------------------


def test_a_host_not_allowed_is_refused_naming_the_setting(server: LogServer) -> None:
    with pytest.raises(SourceError) as caught:
        open_source(f"{server.url}/manifest/{ZUUL}/", Config())
    assert str(caught.value) == (
        f"{server.url}/manifest/{ZUUL}/: host 127.0.0.1 is not allowed; if its logs may "
        "be fetched, add it to fetch.allowed_hosts in bot.yaml"
    )
    assert server.requests == []


def test_the_refusal_names_the_config_file_in_use(server: LogServer) -> None:
    config = Config(fetch=FetchConfig(allowed_hosts=("logs.example.org",)), path=Path("my.yaml"))
    with pytest.raises(SourceError, match=r"add it to fetch.allowed_hosts in my.yaml"):
        open_source(f"https://zuul.example.org/t/x/build/{'a' * 32}", config)
    with pytest.raises(SourceError, match=r"in my.yaml \(or '\*.example.org' for all hosts"):
        open_source("https://logs2.example.org/logs/1/", config)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/logs/", "FILE://localhost/etc/hosts"]
)
def test_schemes_other_than_http_are_refused(url: str) -> None:
    with pytest.raises(SourceError, match=r"only http:// and https:// URLs are fetched"):
        open_source(url, local_config())


def test_a_redirect_to_another_host_is_refused(server: LogServer) -> None:
    with open_source(f"{server.url}/away/{ZUUL}/", local_config()) as source:
        with pytest.raises(SourceError) as caught:
            source.paths()
        assert str(caught.value) == (
            f"{server.url}/away/{ZUUL}/zuul-manifest.json: redirected to "
            f"http://localhost:{server.port}/manifest/{ZUUL}/zuul-manifest.json: host localhost "
            "is not allowed; if its logs may be fetched, add it to fetch.allowed_hosts in bot.yaml"
        )
        assert all(not request.startswith("/manifest/") for request in server.requests)


def test_a_redirect_to_a_file_url_is_refused(server: LogServer) -> None:
    with (
        pytest.raises(SourceError, match=r"redirected to file:///etc/passwd: only http://"),
        open_source(f"{server.url}/to-file/{ZUUL}/", local_config()) as source,
    ):
        source.paths()


def test_a_redirect_within_allowed_hosts_is_followed(server: LogServer) -> None:
    with open_source(f"{server.url}/moved/{ZUUL}/", local_config()) as source:
        assert source.paths() == DirSource(BUILDS / ZUUL).paths()


def test_a_manifest_escaping_the_root_is_refused(server: LogServer) -> None:
    with open_source(f"{server.url}/evil/{ZUUL}/", local_config()) as source:
        with pytest.raises(SourceError) as caught:
            source.paths()
        assert str(caught.value).startswith(
            f"{server.url}/evil/{ZUUL}/zuul-manifest.json: entry logs/'..' is not a plain file "
            "name inside the log root"
        )
        assert server.requests == [f"/evil/{ZUUL}/zuul-manifest.json"]


@pytest.mark.parametrize(
    "name", ["..", ".", "", "../../etc/passwd", "/etc/passwd", "..\\..\\x", "\\etc\\passwd",
             "%2e%2e", "a%2Fb", "x%5c..", "%5Cx", "nul\0", "%00"]
)  # fmt: skip
def test_manifest_names_that_could_leave_the_root_are_refused(name: str) -> None:
    manifest = {"tree": [{"name": "logs", "children": [{"name": name, "mimetype": "text/plain"}]}]}
    with pytest.raises(SourceError, match=r"is not a plain file name inside the log root"):
        manifest_paths(manifest, "zuul-manifest.json")


def test_manifest_paths_follow_the_tree() -> None:
    manifest = _manifest(BUILDS / ZUUL)
    assert sorted(manifest_paths(manifest, "m")) == DirSource(BUILDS / ZUUL).paths()
    odd = ["odd %41 name.txt", "dev-disk-by\\x2dlabel.swap", "..txt"]
    assert manifest_paths({"tree": [{"name": name} for name in odd]}, "m") == odd
    with pytest.raises(SourceError, match=r"m: not a Zuul manifest \(no \"tree\" list\)"):
        manifest_paths([], "m")


def test_listing_links_stay_inside_the_root() -> None:
    root = "https://logs.example.org/70/44670/3/gate/job/02d68e3/"
    page = root + "logs/"
    links = listing_links(
        '<a href="?C=N;O=D">Name</a> <a href="/70/44670/3/gate/job/">Parent Directory</a>'
        '<a href="../">../</a> <a href="https://other.example.org/x.txt">x</a>'
        '<a href="//other.example.org/y.txt">y</a> <a href="/icons/text.gif">icon</a>'
        '<a href="screen-n-cpu.txt.gz">screen-n-cpu.txt.gz</a> <a href="etc/">etc/</a>'
        '<a href="%2e%2e/%2e%2e/escape.txt">e</a> <a href="a%2Fb">slash</a>'
        '<a href="new/index.html">new/</a> <a href="docs/index.html">docs index</a>'
        '<a href="mailto:infra@example.org">mail</a> <a href="#top">top</a>'
        '<a href="sp%20ace.txt">sp ace.txt</a> <a href="sub/?C=M">sorted</a>'
        '<a href="http://logs.example.org:8080/70/44670/3/gate/job/02d68e3/logs/p.txt">p</a>',
        page,
        root,
    )
    assert links == [
        (page + "screen-n-cpu.txt.gz", "logs/screen-n-cpu.txt.gz", False),
        (page + "etc/", "logs/etc", True),
        (page + "new/index.html", "logs/new", True),
        (page + "docs/index.html", "logs/docs/index.html", False),
        (page + "sp%20ace.txt", "logs/sp ace.txt", False),
    ]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("zuul.opendev.org", True),
        ("ZUUL.OpenDev.org.", True),
        ("review.opendev.org", True),  # *.opendev.org
        ("opendev.org", False),  # the wildcard is for subdomains only
        ("evilopendev.org", False),
        ("opendev.org.evil.com", False),
        ("c09e60aa65a75ad38d43-4d035f70176c7859a5ae8b6bcdd7180a.ssl.cf2.rackcdn.com", True),
        ("storage.bhs.cloud.ovh.net", True),
        ("storage.sbg.cloud.ovh.net", False),
        ("127.0.0.1", False),
    ],
)
def test_allowed_hosts_match_exactly_or_by_wildcard(host: str, allowed: bool) -> None:
    assert host_allowed(host, FetchConfig().allowed_hosts) is allowed


def test_every_real_log_url_recorded_is_allowed_by_default() -> None:
    for record in ZUUL_BUILDS:
        host = urlsplit(record["log_url"]).hostname
        assert host is not None and host_allowed(host, FetchConfig().allowed_hosts)


def test_messages_never_show_passwords_or_query_secrets(server: LogServer) -> None:
    url = f"http://reader:s3cret@127.0.0.1:{server.port}/nowhere/x/?token=abc123"
    with pytest.raises(SourceError) as caught, open_source(url, local_config()) as source:
        source.paths()
    message = str(caught.value)
    assert "s3cret" not in message and "abc123" not in message and "reader" not in message
    assert message.startswith(f"{server.url}/nowhere/x/: HTTP 404 Not Found")
    assert redact("https://u:p@h.example.org/a/b?sig=1&x=2#f") == "https://h.example.org/a/b?..."


# --- retries, timeouts, broken transfers --------------------------------------------------


def test_a_503_is_retried_after_the_retry_after_the_server_asks(server: LogServer) -> None:
    waits: list[float] = []
    fetcher = Fetcher(local_config().fetch, sleep=waits.append)
    with HttpLogSource(f"{server.url}/flaky/{ZUUL}/", fetcher) as source:
        assert source.paths() == DirSource(BUILDS / ZUUL).paths()
        assert waits == [3.0]
        with source.open("job-output.txt") as stream:
            assert stream.read() == (BUILDS / ZUUL / "job-output.txt").read_bytes()
        assert waits == [3.0, 3.0]
        assert server.requests.count(f"/flaky/{ZUUL}/job-output.txt") == 2


def test_retry_after_is_capped_and_retries_end(server: LogServer) -> None:
    waits: list[float] = []
    config = local_config(retries=3, max_retry_after=5.0)
    with HttpLogSource(
        f"{server.url}/ratelimit/x/", Fetcher(config.fetch, sleep=waits.append)
    ) as source:
        with pytest.raises(SourceError) as caught:
            source.paths()
        assert waits == [5.0, 5.0, 5.0]
        assert str(caught.value) == (
            f"{server.url}/ratelimit/x/zuul-manifest.json: HTTP 429 Too Many Requests after 4 "
            "attempts; the server is overloaded or down: try again later"
        )


def test_connection_errors_are_retried_with_exponential_backoff() -> None:
    waits: list[float] = []
    config = local_config(retries=3, backoff=1.0, connect_timeout=1.0)
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed below: nothing listens there
    with (
        Fetcher(config.fetch, sleep=waits.append) as fetcher,
        pytest.raises(FetchError) as caught,
    ):
        fetcher.open(f"http://127.0.0.1:{port}/job-output.txt")
    assert str(caught.value).startswith(f"http://127.0.0.1:{port}/job-output.txt: cannot connect")
    assert str(caught.value).endswith(
        "4 attempts; check the URL and the network, or raise fetch.retries in bot.yaml"
    )
    assert len(waits) == 3
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0


def test_a_server_that_stalls_is_a_clear_error(server: LogServer) -> None:
    with open_source(f"{server.url}/stall/{ZUUL}/", local_config(read_timeout=0.2)) as source:
        with pytest.raises(SourceError) as caught:
            source.paths()
        assert str(caught.value) == (
            f"{server.url}/stall/{ZUUL}/zuul-manifest.json: no answer within 0.2 s "
            "(fetch.read_timeout in bot.yaml); the server is slow or down: try again later or "
            "raise the timeout"
        )
        assert server.requests == [f"/stall/{ZUUL}/zuul-manifest.json"]  # a stall is not retried


def test_a_file_that_stalls_midway_is_that_files_problem(
    server: LogServer, signatures: list[Signature]
) -> None:
    with open_source(
        f"{server.url}/stall-midfile/{ZUUL}/", local_config(read_timeout=0.2)
    ) as source:
        result = classify_build(source, signatures)
        assert result.problems == [
            FileProblem(
                "job-output.txt",
                f"read error while scanning it: {server.url}/stall-midfile/{ZUUL}/job-output.txt: "
                "the server sent nothing for 0.2 s after 100 bytes (fetch.read_timeout); the "
                "file is incomplete",
            )
        ]
        assert result.matches == classify_local(ZUUL, signatures).matches


def test_a_connection_dropped_mid_file_is_that_files_problem(
    server: LogServer, signatures: list[Signature]
) -> None:
    with open_source(f"{server.url}/drop/{ZUUL}/", local_config()) as source:
        result = classify_build(source, signatures)

        size = (BUILDS / ZUUL / "job-output.txt").stat().st_size
        assert [problem.path for problem in result.problems] == ["job-output.txt"]
        assert f"job-output.txt: connection lost after {size} bytes" in result.problems[0].message
        assert result.problems[0].message.endswith("the file is incomplete")
        # The other files were read as usual: the match in the cinder volume log is there.
        assert result.matches == classify_local(ZUUL, signatures).matches


def test_a_file_the_server_does_not_have_is_that_files_problem(
    server: LogServer, signatures: list[Signature]
) -> None:
    with open_source(f"{server.url}/missing/{ZUUL}/", local_config()) as source:
        result = classify_build(source, signatures)
        assert result.problems == [
            FileProblem(
                "controller/logs/screen-n-cpu.txt",
                f"cannot open: {server.url}/missing/{ZUUL}/controller/logs/screen-n-cpu.txt: "
                "HTTP 404 Not Found (not found: the URL is wrong or the logs have expired)",
            )
        ]
        assert result.matches == classify_local(ZUUL, signatures).matches


def test_open_refuses_paths_outside_the_root(server: LogServer) -> None:
    with open_source(f"{server.url}/manifest/{ZUUL}/", local_config()) as source:
        for path in ("../secret.txt", "/etc/passwd", "logs/%2e%2e/x", "a\\..\\b"):
            with pytest.raises(OSError, match=r"not a path inside the log root"):
                source.open(path)
        assert server.requests == []


def test_files_are_streamed_in_bounded_memory(server: LogServer) -> None:
    tracemalloc.start()
    try:
        total = 0
        with (
            Fetcher(local_config().fetch) as fetcher,
            fetcher.open(f"{server.url}/big/console.txt") as stream,
        ):
            while chunk := stream.read(1 << 16):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == BIG_BYTES
    assert peak < BIG_BYTES // 8  # a few chunks in flight, never the whole body


# --- Zuul API records ---------------------------------------------------------------------


def test_build_fields_of_real_recorded_zuul_builds() -> None:
    release = build_from_zuul(ZUUL_BUILDS[1], "openstack")
    assert release.event_fields() == {
        "build_uuid": "33e2a0cad11148788abe0bb1e562ad91",
        "build_short_uuid": "33e2a0c",
        "build_name": "announce-release",
        "build_status": "SUCCESS",
        "build_queue": "release",
        "project": "openstack/puppet-tripleo",
        "voting": "1",
        "log_url": ZUUL_BUILDS[1]["log_url"],
        "tenant": "openstack",
    }  # change "None" and branch "" are unknown, not values
    sparse = build_from_zuul(ZUUL_BUILDS[2])
    assert sparse.build_name == "release-openstack-puppet" and sparse.project is None


def test_build_fields_of_a_zuul_10_record() -> None:
    # Zuul 10 moved change, patchset, branch and project into "ref" (layout of its API).
    record = {
        "uuid": "e09e82136d714711a5d01051bc633e65", "job_name": "tempest-full",
        "result": "FAILURE", "voting": False, "log_url": "https://logs.example.org/1/",
        "pipeline": "gate", "ref": {"project": "openstack/nova", "branch": "master",
                                    "change": 908952, "patchset": "1",
                                    "ref": "refs/changes/52/908952/1"},
    }  # fmt: skip
    assert build_from_zuul(record) == Build(
        build_uuid="e09e82136d714711a5d01051bc633e65",
        build_short_uuid="e09e821",
        build_name="tempest-full",
        build_status="FAILURE",
        build_queue="gate",
        build_change="908952",
        build_patchset="1",
        build_branch="master",
        project="openstack/nova",
        voting="0",
        log_url="https://logs.example.org/1/",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://zuul.opendev.org/t/openstack/build/0d5ccc1403b04bed90d7c238e089b3b2",
            ("https://zuul.opendev.org/api/tenant/openstack/build/"
             "0d5ccc1403b04bed90d7c238e089b3b2", "openstack"),
        ),
        (
            "https://zuul.openstack.org/build/0d5ccc1403b04bed90d7c238e089b3b2/logs",
            ("https://zuul.openstack.org/api/build/0d5ccc1403b04bed90d7c238e089b3b2", None),
        ),
        (
            "https://sf.example.org/zuul/t/local/build/0d5ccc1403b04bed90d7c238e089b3b2/",
            ("https://sf.example.org/zuul/api/tenant/local/build/"
             "0d5ccc1403b04bed90d7c238e089b3b2", "local"),
        ),
        ("https://logs.openstack.org/70/44670/3/gate/job/02d68e3/", None),
        ("https://zuul.opendev.org/t/openstack/build/123", None),
    ],
)  # fmt: skip
def test_zuul_build_urls_map_to_the_api(url: str, expected: tuple[str, str | None] | None) -> None:
    assert zuul_api_url(url) == expected


# --- the command line ---------------------------------------------------------------------


def test_classify_a_log_url_from_the_command_line(
    server: LogServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("fetch:\n  allowed_hosts: [127.0.0.1]\n  retries: 0\n")
    url = f"{server.url}/swift/{JENKINS}/"
    code = main(["classify", url, "--config", str(config), "--format", "json",
                 "--queries", str(ROOT / "queries"), "--build-status", "FAILURE"])  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["bugs"] == ["demo-1", "demo-2"]
    assert report["build"] == {"build_status": "FAILURE", "log_url": url}
    assert report["matches"][1]["url"] == f"{url}console.html#110"


def test_events_from_a_log_url_on_the_command_line(
    server: LogServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("fetch: {allowed_hosts: [127.0.0.1]}\nkeep_debug: true\n")
    code = main(["events", f"{server.url}/apache/{ZUUL}/", "--config", str(config)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    events = [json.loads(line) for line in io.StringIO(out)]
    local = main(["events", str(BUILDS / ZUUL), "--keep-debug", "--config", str(config)])
    local_out, _ = capsys.readouterr()
    assert local == 0
    stripped = [{k: v for k, v in e.items() if k != "log_url"} for e in events]
    assert stripped == [json.loads(line) for line in io.StringIO(local_out)]


def test_the_command_line_names_the_setting_for_a_refused_host(
    server: LogServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("fetch: {allowed_hosts: [logs.example.org]}\n")
    code = main(["classify", f"{server.url}/manifest/{ZUUL}/", "--config", str(config)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == (
        f"recheck classify: error: {server.url}/manifest/{ZUUL}/: host 127.0.0.1 is not "
        f"allowed; if its logs may be fetched, add it to fetch.allowed_hosts in {config}\n"
    )


def test_a_broken_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("fetch:\n  retries: many\n")
    assert main(["events", str(BUILDS / ZUUL), "--config", str(config)]) == 2
    _, err = capsys.readouterr()
    assert err == (
        f"recheck events: error: {config}:2:12: fetch.retries must be a whole number from 0 "
        "to 20, found the text 'many'\n"
    )
