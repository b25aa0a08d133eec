"""Hostile-input generators and the checks each input must pass, for the fuzzing suite.

Shared by ``tests/fuzz/test_fuzz.py`` (hypothesis picks the seeds: a few hundred inputs
a target in CI) and ``benchmarks/fuzz.py`` (a seeded loop: a million inputs). Each
generator turns a ``random.Random`` into one input: mostly valid-looking text with
hostile fragments spliced in (lone surrogates, deep nesting, huge repetitions, NULs,
invalid UTF-8), so that inputs get past the first check and reach the code behind it.
Each ``check_*`` feeds one input to recheck as a command would and raises
AssertionError (``Failure``) for anything but the errors recheck reports on purpose.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recheck.bot.gerrit.events import (
    FailureEvent,
    MalformedEvent,
    decode_event,
    failure_from_gerrit,
    failure_from_zuul,
)
from recheck.logs.build import Build
from recheck.logs.eventfile import EventFileError, iter_events
from recheck.logs.localdir import DirSource
from recheck.logs.logfiles import FileRule
from recheck.models import EVENT_FIELDS, Event
from recheck.pipeline import classify_build
from recheck.query import cache as querycache
from recheck.query.matcher import match_events
from recheck.query.nodes import Doc
from recheck.query.parser import QuerySyntaxError, compile_query, lint_query
from recheck.query.prefilter import Prefilter
from recheck.query.regexp import RegexpError, compile_regexp
from recheck.query.signatures import Signature, SignatureError, load_signature

ROOT = Path(__file__).resolve().parents[2]
REAL_QUERIES = ROOT / "tests" / "fixtures" / "queries" / "elastic-recheck-2020"


class Failure(AssertionError):
    """recheck crashed or broke a promise on this input."""


# ------------------------------------------------------------------------ vocabulary

WORDS = ["nova", "error", "failed", "vol.txt", "3f2a", "don't", "Über", "ÉTÉ", "中文", "a",
         "b", "x1", "timeout", "10.0.0.1", "foo_bar", "req-3f2a", "😀", "ß", "İ"]  # fmt: skip
FIELDS = ["message", "tags", "build_name", "filename", "module", "loglevel", "nosuch"]
HOSTILE = [
    "\udfff", "\ud800", "\ud83d\ude00", "\x00", "\ufffd", "\u2028", "\r", "\n", "\t", "\\",
    "\\u", "\\uD800", "\\udfff", "\\u0000", '"', "'", "\u3000", "\u00a0", "\u200d", "\ufeff",
    "\U0010ffff", "\x1c", "\x7f", "\u0301", "%s", "{}", "${x}", "../", "*" * 3, "~" * 3,
]  # fmt: skip
QUERY_FRAGMENTS = [
    *WORDS, *FIELDS, " ", " ", " ", " AND ", " OR ", " NOT ", "&&", "||", "!", "-", "+", "(",
    ")", '"', ":", "*", "?", "~", "~1", "~0.5", "^2", "^", "[", "]", "{", "}", " TO ", "/",
    "/a.*b/", "/(a|b)+/", "/[a-z]{2,5}/", "/~(a)&b/", "/<1-100>/", "/@/", "/.{0,1000}/",
    "_exists_:", "*:*", "\\", "\\:", "\\u0061", "\\u00", "a*", "*a", "?a", "a?b*c", "1",
    "message:", "tags:", '"a b"~3', '"a b c"', "[a TO b]", "{* TO z}", "NOT", "AND", "OR",
]  # fmt: skip


def _pick(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def _hostile_text(rng: random.Random, size: int) -> str:
    """Words, separators and hostile characters: the stuff of event values."""
    parts: list[str] = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.6:
            parts.append(_pick(rng, WORDS))
        elif roll < 0.85:
            parts.append(rng.choice([" ", " ", ". ", "-", ": ", "/", ", ", "\n"]))
        elif roll < 0.95:
            parts.append(_pick(rng, HOSTILE))
        else:
            parts.append(chr(rng.randrange(0x110000)))
    return "".join(parts)


# Known, not yet fixed (recheck/query/analysis.py): tokenizing text that is not all
# ASCII matches its words with the ``regex`` module's POSIX (leftmost-longest) mode, whose
# cost grows about as the cube of a word's length: a 200-letter word takes a second. Until
# it is fixed, repetitions in such text stay short enough not to stall every run on it.
NON_ASCII_REPEAT = 64


def _blow_up(rng: random.Random, text: str, limit: int) -> str:
    """Now and then, repeat a piece of ``text`` many times (up to ``limit`` characters)."""
    if not text or rng.random() > 0.05:
        return text
    if not text.isascii():
        limit = NON_ASCII_REPEAT
    start = rng.randrange(len(text))
    piece = text[start : start + rng.randint(1, 8)]
    copies = rng.randint(2, max(2, limit // max(1, len(piece))))
    return text[:start] + piece * copies + text[start:]


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """A few byte flips, cuts and splices: invalid UTF-8, truncations, stray bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if not out or roll < 0.3:
            out[rng.randint(0, len(out)) : rng.randint(0, len(out))] = rng.randbytes(
                rng.randint(1, 4)
            )
        elif roll < 0.6:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif roll < 0.8:
            del out[rng.randrange(len(out)) :]
        else:
            i = rng.randrange(len(out))
            out[i:i] = out[rng.randrange(len(out)) :][: rng.randint(1, 64)]
    return bytes(out)


# ------------------------------------------------------------------------ query strings


def gen_query(rng: random.Random) -> str:
    """A query string: a grammar-shaped one, a soup of syntax fragments, or a blow-up."""
    roll = rng.random()
    if roll < 0.45:
        text = _structured_query(rng, depth=0)
    elif roll < 0.9:
        text = "".join(_pick(rng, QUERY_FRAGMENTS) for _ in range(rng.randint(1, 16)))
    elif roll < 0.95:
        opener = rng.choice(["(", "a:(", "NOT (", "+(", "-("])
        depth = rng.choice([50, 99, 100, 101, 150, 5000])
        text = opener * depth + "a" + ")" * rng.choice([depth, depth - 1, 0])
    else:
        sep = rng.choice([" OR ", " ", " AND ", " a:"])
        count = rng.choice([4095, 4096, 4097, 6000])
        text = sep.join(f"w{i}" for i in range(count))
        if rng.random() < 0.3:
            text = f'"{text}"'
    if rng.random() < 0.2:
        i = rng.randint(0, len(text))
        text = text[:i] + _pick(rng, HOSTILE) + text[i:]
    return _blow_up(rng, text, 40_000)


def _structured_query(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return _leaf(rng)
    if roll < 0.55:
        return rng.choice(["NOT ", "-", "!", "+"]) + _structured_query(rng, depth + 1)
    if roll < 0.7:
        prefix = rng.choice(["", "", f"{_pick(rng, FIELDS)}:"])
        return f"{prefix}({_structured_query(rng, depth + 1)})"
    parts = [_structured_query(rng, depth + 1) for _ in range(rng.randint(2, 4))]
    out = parts[0]
    for part in parts[1:]:
        out += rng.choice([" OR ", " AND ", " ", " AND NOT ", " || ", " && ", " -"]) + part
    return out


def _leaf(rng: random.Random) -> str:
    word = _pick(rng, WORDS)
    kind = rng.randrange(9)
    if kind == 0:
        body = '"' + " ".join(_pick(rng, WORDS) for _ in range(rng.randint(1, 6))) + '"'
        leaf = body + rng.choice(["", "", "~1", "~5", "~100"])
    elif kind == 1:
        leaf = word[: rng.randint(1, len(word))] + "*"
    elif kind == 2:
        leaf = rng.choice(["*", "?", "*?*"]) + word + rng.choice(["", "*"])
    elif kind == 3:
        leaf = "/" + rng.choice(["a.*", "(a|b)*c", "[0-9]+", "~(a)", "a{1,9}", "@&x"]) + "/"
    elif kind == 4:
        leaf = word + rng.choice(["~", "~1", "~2", "~0.5"])
    elif kind == 5:
        leaf = f"{rng.choice('[{')}{word} TO {rng.choice(['*', 'z'])}{rng.choice(']}')}"
    elif kind == 6:
        leaf = f"_exists_:{_pick(rng, FIELDS)}"
    else:
        leaf = word.replace("'", "\\'")
    if rng.random() < 0.5:
        leaf = f"{_pick(rng, FIELDS)}:{leaf}"
    return leaf


def _events_for(rng: random.Random, text: str, count: int) -> list[Event]:
    """Events whose words come partly from the query, so that some match."""
    pool = [w for w in text.replace('"', " ").replace(":", " ").split() if len(w) < 40]
    events: list[Event] = []
    for _ in range(count):
        event: Event = {}
        for fld in FIELDS:
            if fld != "message" and rng.random() < 0.3:
                continue
            words = [
                rng.choice(pool) if pool and rng.random() < 0.5 else _hostile_text(rng, 1)
                for _ in range(rng.randint(0, 12))
            ]
            # As every event source gives them: a lone surrogate read as U+FFFD.
            words = [_SURROGATE.sub("\ufffd", word) for word in words]
            event[fld] = " ".join(words) if rng.random() < 0.7 else words
        events.append(event)
    return events


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_query(text: str, seed: int = 0) -> str:
    """Compile, lint and evaluate one query; QuerySyntaxError is the only error allowed."""
    try:
        query = compile_query(text)
    except QuerySyntaxError as exc:
        _printable(str(exc))
        try:
            lint_query(text)
        except QuerySyntaxError:
            return "rejected"
        raise Failure("compile_query rejected a query lint_query accepted") from exc
    for warning in lint_query(text, known_fields=EVENT_FIELDS):
        _printable(warning)
    rng = random.Random(seed)
    docs = [Doc(event) for event in _events_for(rng, text, 4)]
    verdicts = [query.matches(doc) for doc in docs]
    candidates = Prefilter([query])
    for doc, verdict in zip(docs, verdicts, strict=True):
        if verdict and 0 not in candidates.candidates(doc):
            raise Failure("the prefilter dropped a matching event")
    query.required_literals()
    special = query.root.specialize(docs[:2], lambda name: name != "message")
    for doc in docs[:2]:
        if special.matches(doc) != query.matches(doc):
            raise Failure("specialize changed a verdict on the docs it was given")
    tree = querycache._encode(query.root)
    if (
        tree is not None
        and querycache._cacheable(text, tree)
        and querycache._decode(json.loads(json.dumps(tree))) != query.root
    ):
        raise Failure("the cache reads back another tree than it wrote")
    return "matched" if any(verdicts) else "compiled"


# ------------------------------------------------------------------------ regexps


def gen_regexp(rng: random.Random) -> str:
    pieces = ["a", "b", ".", "*", "+", "?", "|", "(", ")", "[a-z]", "[^x]", "{2,5}", "{1000}",
              "~", "&", "@", "#", "<1-99>", "\\", "\\d", '"', "(a|aa)*", ".*.*",
              "x{0,999}"]  # fmt: skip
    text = "".join(_pick(rng, pieces) for _ in range(rng.randint(1, 30)))
    return _blow_up(rng, text, 700)


def check_regexp(pattern: str, seed: int = 0) -> str:
    try:
        matcher = compile_regexp(pattern)
    except RegexpError as exc:
        _printable(str(exc))
        return "rejected"
    rng = random.Random(seed)
    for _ in range(4):
        matcher.fullmatch(_hostile_text(rng, rng.randint(0, 8))[:255].lower())
    return "compiled"


# ------------------------------------------------------------------------ signature YAML

_KEYS = ["query", "suppress-graph", "suppress-notification", "allow-nonvoting", "test_ids",
         "resolved_at", "querry", "? [a]", "<<", "!!python/object:os.system"]  # fmt: skip


def gen_signature(rng: random.Random) -> bytes:
    """A signature file: a real one, a generated one, or YAML syntax abuse; then mangled."""
    roll = rng.random()
    if roll < 0.3:
        files = sorted(REAL_QUERIES.glob("*.yaml"))
        text = files[rng.randrange(len(files))].read_text()
    elif roll < 0.75:
        lines = []
        for _ in range(rng.randint(1, 5)):
            key = _pick(rng, _KEYS)
            value = rng.choice([
                "", "true", "no", "2020-01-31", "[a, b]", "{a: b}", "&x [*x]", "*x", "|", ">-",
                "!!binary aGk=", "!!str 1", "'quoted ''q'''", '"dq \\udfff \\x41"', "~", "1e309",
            ])  # fmt: skip
            if key == "query" or rng.random() < 0.3:
                query = gen_query(rng).replace("\n", " ")
                value = rng.choice(
                    [f">-\n  {query}", f"|\n  {query}", json.dumps(query), f"'{query}'", query]
                )
            if key == "test_ids" and rng.random() < 0.7:
                value = "\n" + "".join(f"  - {_pick(rng, WORDS)}\n" for _ in range(3))
            lines.append(f"{key}: {value}")
        text = "\n".join(lines) + "\n"
    else:
        nest = rng.choice(["[", "{a: ", "- ", "? ", "&a [*a, "])
        depth = rng.choice([10, 19, 20, 21, 100, 999, 1001, 20_000])
        text = "query: a\n" + rng.choice(["test_ids: ", "x: ", "? ", ""]) + nest * depth
        if rng.random() < 0.5:
            text += "]" * depth
        if rng.random() < 0.3:  # billion laughs: each level aliases the last one nine times
            text = 'a0: &a0 ["lol"]\n' + "".join(
                f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 12)
            )
    raw = _blow_up(rng, text, 200_000).encode("utf-8", "surrogatepass")
    if rng.random() < 0.4:
        raw = _mutate_bytes(rng, raw)
    return raw


def check_signature(raw: bytes, directory: Path) -> str:
    """Load one signature file as ``check`` does: a Signature or a SignatureError, and
    the lint of a loaded query; every message must be printable."""
    path = directory / "1000001.yaml"
    path.write_bytes(raw)
    loaded = load_signature(path)
    if isinstance(loaded, SignatureError):
        _printable(str(loaded))
        return "error"
    if not isinstance(loaded, Signature):
        raise Failure(f"load_signature returned {type(loaded).__name__}")
    for warning in lint_query(loaded.query, known_fields=EVENT_FIELDS):
        _printable(f"{loaded.path}:{loaded.line}: warning: {warning}")
    return "loaded"


# ------------------------------------------------------------------------ events JSON


def gen_events(rng: random.Random) -> bytes:
    """JSON lines of events: valid, odd-typed, deeply nested, with escapes; then mangled."""
    lines: list[str] = []
    for number in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.9:
            event: dict[str, Any] = {"id": f"e{number}"}
            for fld in rng.sample(FIELDS, rng.randint(0, 4)):
                event[fld] = _hostile_text(rng, rng.randint(0, 12))
                if rng.random() < 0.2:
                    event[fld] = rng.choice([
                        [_hostile_text(rng, 3), None, True],
                        None, 1, 1.5, True, [], [[]], {"a": "b"}, 10**30,
                    ])  # fmt: skip
            if rng.random() < 0.05:
                event["id"] = rng.choice([None, 1, "", "\udfff", ["x"], {"a": 1}, True])
            line = json.dumps(event, ensure_ascii=rng.random() < 0.5)
        elif roll < 0.95:
            depth = rng.choice([10, 999, 1000, 5000, 100_000])
            opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
            line = '{"id": "d", "message": ' + opener * depth + "1" + closer * depth + "}"
        else:
            line = rng.choice([
                '{"id": "s", "message": "a \\udfff b"}', '{"id": "\\ud800"}', "[]", "null",
                '{"id": "n", "message": NaN}', '{"id": "n", "message": 1e999}', "\ufeff{}",
                '{"id": "k", "\\udfff": "v"}', '{"id": "x", "message": "\\u0000"}', "{", '"',
            ])  # fmt: skip
        lines.append(line)
    raw = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n"
    if rng.random() < 0.1:
        raw = _mutate_bytes(rng, raw)
    return raw


_signatures: list[Signature] | None = None


def _fuzz_signatures() -> list[Signature]:
    """The real signatures and a few broad ones, so that fuzzed events match some."""
    global _signatures
    if _signatures is None:
        loaded = [load_signature(p) for p in sorted(REAL_QUERIES.glob("*.yaml"))]
        extra = ["message:a", 'message:"a \ufffd b"', "*:*", "message:/[a-z]+/", "tags:*",
                 "NOT message:nova", 'message:"error failed"~3', "message:ü*"]  # fmt: skip
        # A few real ones: the prefilter and the scanner's plans are built per input.
        _signatures = [s for s in loaded if isinstance(s, Signature)][::8] + [
            Signature(f"9{i:06}", text, REAL_QUERIES / f"9{i:06}.yaml", compile_query(text))
            for i, text in enumerate(extra)
        ]
    return _signatures


def check_events(raw: bytes) -> str:
    """``recheck match``: read the lines, match every signature, print JSON as UTF-8."""
    lines = raw.splitlines(keepends=True)
    try:
        matches = match_events(_fuzz_signatures(), iter_events(lines, "<fuzz>"))
    except EventFileError as exc:
        _printable(str(exc))
        return "error"
    _printable(json.dumps({"matches": matches}, ensure_ascii=False))
    return "matched" if any(matches.values()) else "read"


# ------------------------------------------------------------------------ stream-events


def gen_stream_event(rng: random.Random) -> str:
    """A Gerrit stream-events line (or a queued Zuul record), valid-looking or not."""

    def valid_or(valid: Any, *odd: Any) -> Any:
        return valid if rng.random() < 0.8 else rng.choice(odd)

    jobs = "\n".join(
        f"- {_pick(rng, WORDS)}{rng.choice([' https://logs/1/x', '', ' ' + _pick(rng, WORDS)])}"
        f" : {rng.choice(['FAILURE', 'SUCCESS', 'TIMED_OUT', 'POST_FAILURE', 'X', 'failure'])}"
        f" in 1m{rng.choice(['', ' (non-voting)', _hostile_text(rng, 3)])}"
        for _ in range(rng.randint(0, 4))
    )
    comment = rng.choice(["Build failed (check pipeline).", "Build succeeded.", ""]) + "\n\n"
    change = {"number": 1, "project": "openstack/nova", "branch": "master", "url": "u",
              "owner": {"name": _hostile_text(rng, 2)}}  # fmt: skip
    event: dict[str, Any] = {
        "type": valid_or("comment-added", "patchset-created", None, 1, ["comment-added"]),
        "author": valid_or({"username": "zuul", "name": "Zuul"}, {"username": "x"}, "zuul"),
        "comment": valid_or(comment + jobs, None, 5, _hostile_text(rng, 8)),
        "change": valid_or(change, {"number": True, "project": ""}, {}, None, [],
                           {"number": "\udfff", "project": "p"}, {"number": 10**40}),
        "patchSet": valid_or({"number": 2, "revision": "abc"}, {"number": None}, "x", 1.5),
        "eventCreatedOn": valid_or(1, "x", None, 10**40, {"a": []}),
    }  # fmt: skip
    for key in rng.sample(list(event), rng.choice([0, 0, 0, 1, 2])):
        del event[key]
    if rng.random() < 0.05:
        depth = rng.choice([100, 1000, 100_000])
        return '{"type": "comment-added", "x": ' + "[" * depth + "]" * depth + "}"
    raw = json.dumps(event, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if rng.random() < 0.2:
        raw = _mutate_bytes(rng, raw)
    # The line as the stream's reader decodes its bytes: a surrogate can only be one that
    # stands for a bad byte (a JSON escape gives others, which json.loads makes).
    return raw.decode("utf-8", "surrogateescape")


def check_stream_event(line: str) -> str:
    """The bot's parse step: the errors it skips a line for, nothing else; a failure it
    keeps must survive its queue's JSON round trip."""
    try:
        data = decode_event(line)
        if isinstance(data, dict) and "build" in data:
            found = failure_from_zuul(data["build"], "https://zuul", "t")
        else:
            found = failure_from_gerrit(data, ("zuul",))
    except (ValueError, MalformedEvent, KeyError, TypeError):
        return "skipped"
    if found is None:
        return "ignored"
    text = found.to_json()
    text.encode("utf-8")
    if FailureEvent.from_json(text) != found:
        raise Failure("a failure does not survive to_json/from_json")
    return "failure"


# ------------------------------------------------------------------------ log bytes

LOG_RULES = [
    FileRule("console.txt", ("console",)),
    FileRule("screen-n-cpu.txt", ("screen", "oslofmt")),
    FileRule("syslog.txt", ("syslog",)),
    FileRule("other.txt", ()),
    FileRule("console.txt.gz", ("console",)),
]
_LOG_NAMES = [rule.pattern for rule in LOG_RULES]
_LOG_LINES = [
    "2021-06-23 05:14:53.561762 | {text}",
    "2021-06-23 05:14:53.561 12345 ERROR nova.compute.manager [req-1] {text}",
    "2021-06-23 05:14:53.561 12345 DEBUG oslo [-] {text}",
    "Jun 23 05:14:53 host nova-compute[123]: {text}",
    "+ {text}", "<pre>", "</pre>", "{text}", "  {text}",
]  # fmt: skip


def gen_log(rng: random.Random) -> tuple[str, bytes]:
    """A log file's name and bytes: formatted lines with hostile text, or plain bytes."""
    name = _pick(rng, _LOG_NAMES)
    if rng.random() < 0.15:
        data = rng.randbytes(rng.randint(0, 2000))
    else:
        lines = [
            _pick(rng, _LOG_LINES).format(text=_hostile_text(rng, rng.randint(0, 20)))
            for _ in range(rng.randint(0, 40))
        ]
        sep = rng.choice(["\n", "\n", "\r\n", "\r"])
        data = sep.join(lines).encode("utf-8", rng.choice(["surrogatepass", "replace"]))
        data = _blow_up(rng, data.decode("latin-1"), 300_000).encode("latin-1")
        if rng.random() < 0.3:
            data = _mutate_bytes(rng, data)
    if name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
        if rng.random() < 0.3:
            data = _mutate_bytes(rng, data)
    return name, data


def check_log(name: str, data: bytes, directory: Path) -> str:
    """``recheck classify`` on a build of one file: with and without hyperscan, the same
    matches; an unreadable file is a problem of that file, never an exception."""
    for old in directory.iterdir():
        old.unlink()
    (directory / name).write_bytes(data)
    results = []
    for fast in (True, False):
        result = classify_build(
            DirSource(directory), _fuzz_signatures(), Build(), rules=LOG_RULES,
            use_hyperscan=fast, examples=None,
        )  # fmt: skip
        for problem in result.problems:
            _printable(str(problem))
        results.append([(m.bug, m.filename, m.line) for m in result.matches])
        for match in result.matches:
            _printable(json.dumps(match.message, ensure_ascii=False))
    if results[0] != results[1]:
        raise Failure(f"hyperscan and plain scans differ: {results[0]} != {results[1]}")
    return "matched" if results[0] else "scanned"


# ------------------------------------------------------------------------ helpers


def _printable(text: str) -> None:
    """What recheck prints must be writable as UTF-8 (a lone surrogate is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Failure(f"unprintable output {text[:200]!r}: {exc}") from None


def make_targets(
    scratch: Path,
) -> dict[str, tuple[Callable[[random.Random], Any], Callable[..., str]]]:
    """Each target's name, its generator and its check (taking the generated input)."""
    signature_dir = scratch / "signatures"
    log_dir = scratch / "build"
    signature_dir.mkdir(exist_ok=True)
    log_dir.mkdir(exist_ok=True)
    return {
        "query": (gen_query, check_query),
        "regexp": (gen_regexp, check_regexp),
        "signature": (gen_signature, lambda raw: check_signature(raw, signature_dir)),
        "events": (gen_events, check_events),
        "stream-events": (gen_stream_event, check_stream_event),
        "log": (gen_log, lambda made: check_log(made[0], made[1], log_dir)),
    }


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="recheck-fuzz-"))
