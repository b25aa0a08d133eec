"""A local stand-in for Launchpad's web service, for launchpadlib to talk to over HTTP.

It serves what launchpadlib asks for when it logs in anonymously and reads a bug:

- ``GET /<version>/`` with ``Accept: application/vnd.sun.wadl+xml``: the WADL document
  describing the service (Launchpad's real one, as shipped in launchpadlib's
  ``testing/launchpad-wadl.xml``), its base URL rewritten to this server, as the real
  service names its own host;
- ``GET /<version>/`` as JSON: the service root, one link per top-level collection the
  WADL lists;
- ``GET /<version>/bugs/<id>`` and ``/bugs/<id>/bug_tasks``: the recorded responses in
  ``tests/fixtures/launchpad/`` (see tests/fixtures/README.md), links rewritten to this
  server; 401 for bugs marked private, 404 for unknown ones.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "launchpad"
RECORDED_ROOT = "https://api.launchpad.net/devel/"
WADL_ROOT = "https://api.launchpad.test/1.0/"


def _wadl() -> str:
    return (importlib.resources.files("launchpadlib.testing") / "launchpad-wadl.xml").read_text(
        encoding="utf-8"
    )


class FakeLaunchpad:
    """Launchpad's web service on a free localhost port; ``stop`` it to simulate an outage."""

    def __init__(self, version: str = "devel") -> None:
        self.version = version
        self.private: set[str] = set()
        self.requests: list[str] = []
        self.release = threading.Event()
        """Cleared: bug requests wait for it (a Launchpad that hangs)."""
        self.release.set()
        self.status_override: int | None = None
        """Answer every request with this status (e.g. 503) when set."""
        self._wadl_template = _wadl()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def service_root(self) -> str:
        """What launchpadlib is given: the root without the version."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_root(self) -> str:
        return f"{self.service_root}{self.version}/"

    def bug_requests(self) -> list[str]:
        """The paths of bug requests received so far (not the WADL or the root)."""
        return [path for path in self.requests if "/bugs/" in path]

    def start(self) -> None:
        """Listen (on the same port again after a ``stop``)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _rewrite(self, text: str) -> str:
        return text.replace(RECORDED_ROOT, self.api_root).replace(WADL_ROOT, self.api_root)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        self.requests.append(path)
        if self.status_override is not None:
            self._send(request, self.status_override, "text/plain", "unavailable")
            return
        prefix = f"/{self.version}/"
        if not path.startswith(prefix):
            self._send(request, 404, "text/plain", "no such version")
            return
        rest = path[len(prefix) :]
        if rest == "":
            if "wadl" in request.headers.get("Accept", ""):
                body = self._rewrite(self._wadl_template)
                self._send(request, 200, "application/vnd.sun.wadl+xml", body)
            else:
                self._send(request, 200, "application/json", json.dumps(self._root()))
            return
        match = re.fullmatch(r"bugs/(\d+)(/bug_tasks)?", rest)
        if match is None:
            self._send(request, 404, "text/plain", f"Object: {path}")
            return
        self.release.wait()
        bug, tasks = match.group(1), bool(match.group(2))
        if bug in self.private:
            self._send(request, 401, "text/plain", "(<Bug>, 'title', 'launchpad.View')")
            return
        name = f"bug-{bug}-tasks.json" if tasks else f"bug-{bug}.json"
        if not (FIXTURES / name).is_file():
            self._send(
                request, 404, "text/plain", f"Object: <lp.bugs.model.bug.BugSet>, name: {bug!r}"
            )
            return
        body = self._rewrite((FIXTURES / name).read_text(encoding="utf-8"))
        self._send(request, 200, "application/json", body)

    def _root(self) -> dict[str, str]:
        names = re.findall(
            r'<wadl:param style="plain" name="([a-z_]+_collection_link)"',
            self._wadl_template.split('id="service-root-json"', 1)[1].split(
                "</wadl:representation>"
            )[0],
        )
        root = {name: self.api_root + name.removesuffix("_collection_link") for name in names}
        root["resource_type_link"] = f"{self.api_root}#service-root"
        return root

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, kind: str, body: str) -> None:
        data = body.encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
