"""Real Lucene as a test oracle: a persistent Java process that evaluates queries.

`LuceneOracle.evaluate(query, docs)` answers with one verdict per document, or an
`OracleError` when Lucene rejects the query. The Java side (`tests/oracle/LuceneOracle.java`)
is compiled on demand into `tests/.oracle-build/` against the Lucene jars Debian's
liblucene8-java installs in /usr/share/java.

The `lucene` pytest fixture skips the tests that use it when Java or the jars are missing,
unless RECHECK_REQUIRE_LUCENE=1 is set (CI), in which case it fails.
"""

from __future__ import annotations

import glob
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SOURCE = TESTS_DIR / "oracle" / "LuceneOracle.java"
BUILD_DIR = TESTS_DIR / ".oracle-build"
JAR_DIR = Path("/usr/share/java")
JAR_MODULES = ("core", "queryparser", "analyzers-common", "memory")
RESPONSE_TIMEOUT_S = 120.0

Doc = Mapping[str, Sequence[str]]


class OracleUnavailable(RuntimeError):
    """Java, javac or the Lucene jars are missing, or the oracle process died."""


@dataclass(frozen=True)
class OracleError:
    """Lucene refused the query; `kind` is the Java exception class name."""

    kind: str
    message: str


def find_jars(jar_dir: Path = JAR_DIR) -> list[Path]:
    """Return the Lucene jars the oracle needs, newest version of each, or raise."""
    jars = []
    for module in JAR_MODULES:
        # Globbed, not pinned: the distribution decides the Lucene version.
        found = sorted(glob.glob(str(jar_dir / f"lucene-{module}-[0-9]*.jar")))
        if not found:
            raise OracleUnavailable(
                f"no lucene-{module}-*.jar in {jar_dir} (apt-get install liblucene8-java)"
            )
        jars.append(Path(found[-1]))
    return jars


def build(classpath: str) -> Path:
    """Compile LuceneOracle.java unless the class file is newer; return the build dir."""
    target = BUILD_DIR / "LuceneOracle.class"
    if target.exists() and target.stat().st_mtime >= SOURCE.stat().st_mtime:
        return BUILD_DIR
    javac = shutil.which("javac")
    if javac is None:
        raise OracleUnavailable("javac not on PATH (apt-get install default-jdk-headless)")
    BUILD_DIR.mkdir(exist_ok=True)
    # Compile aside and move into place, the main class last: a concurrent test run never
    # loads a half-written build, and a failed compile leaves the old one usable.
    with tempfile.TemporaryDirectory(dir=BUILD_DIR) as scratch:
        proc = subprocess.run(
            [javac, "-d", scratch, "-cp", classpath, str(SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise OracleUnavailable(f"javac failed on {SOURCE}:\n{proc.stderr}")
        classes = sorted(Path(scratch).glob("*.class"), key=lambda p: p.name == target.name)
        for compiled in classes:
            os.replace(compiled, BUILD_DIR / compiled.name)
    return BUILD_DIR


class LuceneOracle:
    """One long-running `java LuceneOracle` process speaking JSON lines."""

    def __init__(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise OracleUnavailable("java not on PATH (apt-get install default-jre-headless)")
        classpath = os.pathsep.join(str(j) for j in find_jars())
        build_dir = build(classpath)
        classpath = f"{build_dir}{os.pathsep}{classpath}"
        command = [java, "-XX:+UseSerialGC", "-Xss16m", "-cp", classpath, "LuceneOracle"]
        # stderr goes to a file, not a pipe: nobody drains a pipe while waiting for answers,
        # so a chatty JVM could fill it and stall.
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
        )
        # The tests may run threads (hypothesis does not, but be safe): one request at a time.
        self._lock = threading.Lock()

    def _request(self, payload: dict[str, object]) -> dict[str, object]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        # ensure_ascii keeps the wire pure ASCII; lone surrogates survive as \udXXX escapes.
        line = json.dumps(payload, ensure_ascii=True) + "\n"
        with self._lock:
            try:
                self._proc.stdin.write(line.encode("ascii"))
                self._proc.stdin.flush()
            except BrokenPipeError as exc:
                raise OracleUnavailable(f"oracle process died: {self._stderr()}") from exc
            ready, _, _ = select.select([self._proc.stdout], [], [], RESPONSE_TIMEOUT_S)
            if not ready:
                self.close()
                asked = payload.get("query", payload.get("queries"))
                raise OracleUnavailable(
                    f"no answer from Lucene within {RESPONSE_TIMEOUT_S}s for {asked!r}"
                )
            answer = self._proc.stdout.readline()
        if not answer:
            raise OracleUnavailable(f"oracle process died: {self._stderr()}")
        result: dict[str, object] = json.loads(answer)
        return result

    def _stderr(self) -> str:
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode("utf-8", "replace")[-4000:]

    def evaluate(self, query: str, docs: Sequence[Doc]) -> list[bool] | OracleError:
        """Return Lucene's verdict for each doc, or the error Lucene raised on the query."""
        answer = self._request({"query": query, "docs": [_plain(d) for d in docs]})
        return _result(answer, len(docs))

    def evaluate_many(
        self, queries: Sequence[str], docs: Sequence[Doc]
    ) -> list[list[bool] | OracleError]:
        """Like `evaluate` for several queries; Lucene indexes each doc only once."""
        answer = self._request({"queries": list(queries), "docs": [_plain(d) for d in docs]})
        _raise_for_request_error(answer)
        results = answer["results"]
        assert isinstance(results, list) and len(results) == len(queries)
        return [_result(r, len(docs)) for r in results]

    def parse(self, query: str) -> str | OracleError:
        """Return Lucene's rendering of the parsed query (handy when debugging)."""
        answer = self._request({"query": query, "docs": []})
        if not answer["ok"]:
            return OracleError(str(answer["kind"]), str(answer["error"]))
        return str(answer["parsed"])

    def close(self) -> None:
        """Stop the Java process and close its pipes (unclosed, each is a ResourceWarning)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()  # end of requests: the oracle exits
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._stderr_file.close()


def _raise_for_request_error(answer: Mapping[str, object]) -> None:
    if not answer["ok"] and answer["kind"] in ("BadRequest", "InternalError"):
        # A bug in the oracle or its caller, not a verdict about the query.
        raise OracleUnavailable(f"{answer['kind']}: {answer['error']}")


def _result(answer: Mapping[str, object], n_docs: int) -> list[bool] | OracleError:
    _raise_for_request_error(answer)
    if not answer["ok"]:
        return OracleError(str(answer["kind"]), str(answer["error"]))
    matches = answer["matches"]
    assert isinstance(matches, list) and len(matches) == n_docs
    return [bool(m) for m in matches]


def _plain(doc: Doc) -> dict[str, list[str]]:
    """Turn an event (field -> str | list[str]) into the oracle's field -> list[str]."""
    return {f: [v] if isinstance(v, str) else list(v) for f, v in doc.items()}


@pytest.fixture(scope="session")
def lucene() -> Iterator[LuceneOracle]:
    """A session-wide Lucene oracle; skips (or fails under RECHECK_REQUIRE_LUCENE=1)."""
    try:
        oracle = LuceneOracle()
    except OracleUnavailable as exc:
        if os.environ.get("RECHECK_REQUIRE_LUCENE") == "1":
            pytest.fail(f"Lucene oracle required but unavailable: {exc}", pytrace=False)
        pytest.skip(f"Lucene oracle unavailable: {exc}")
    try:
        yield oracle
    finally:
        oracle.close()
