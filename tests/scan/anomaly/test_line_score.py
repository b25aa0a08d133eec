"""``line_score``'s fast path (word guards before each pattern, lowercased words for an
ASCII line) scores every line exactly as the plain patterns did: the previous
implementation is kept here (with rank's own level patterns, which the fast path only
guards) and both are run over real log lines and generated ones."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from recheck.scan.anomaly import rank
from recheck.scan.anomaly.rank import line_score

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

_OLD_CANDIDATE = re.compile(
    r"(?i)err|fail|fatal|crit|exception|traceback|panic|warn|time|refused|denied|kill|"
    r"segmentation|core dumped|memory|oom|abort|cannot|can't|unable|not found|no such|"
    r"unreachable|invalid|exit|emerg|alert|oops|fault"
)
_OLD_VERDICT = re.compile(
    r"Finished: (?:FAILURE|UNSTABLE|ABORTED)|marked build as failure|"
    r"\bFAILED \((?:failures|errors)=|ERROR: InvocationError|: commands failed|"
    r"\bRESULT_(?:FAILURE|TIMED_OUT)\b|Build (?:failed|FAILED)\b|\bjob (?:failed|FAILED)\b|"
    r"^\S*\s*\S*\s*\|?\s*(?:[=*-]{3,}\s*)?(?:ERROR|FAILURE|FAILED)\s*(?:[=*-]{3,})?\s*$|"
    r"={3,} [^=]*\b(?:failed|errors?)\b[^=]* in [\d.]+m?s\b|"
    r"make(?:\[\d+\])?: \*\*\* .*Error \d+|FAILED - RETRYING|"
    r"\bfailed=[1-9]\d*|\bunreachable=[1-9]\d*"
)
_OLD_DEBUG = re.compile(r"\b(?:DEBUG|Debug|debug)\b")


def old_line_score(text: str) -> float:
    """The implementation before the fast path, verbatim."""
    head = text[:80]
    if _OLD_DEBUG.search(head) and not re.search(r"\b(?:ERROR|CRITICAL)\b", head):
        return 0.1
    text = text[:1000]
    if not _OLD_CANDIDATE.search(text):
        return 0.3
    if "Traceback (most recent call last)" in text:
        return 1.2
    if _OLD_VERDICT.search(text):
        return 1.0
    for pattern, weight in rank._LEVELS:  # the fast path guards them, unchanged
        if pattern.search(text):
            return weight * 0.5 if text.startswith('  File "') else weight
    return 0.3


def _fixture_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.suffix in (".subunit", ".json", ".yaml", ".py"):
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        lines.extend(data.decode("utf-8", errors="replace").splitlines())
    return lines


def test_real_log_lines_score_as_before() -> None:
    lines = _fixture_lines()
    assert len(lines) > 2000
    differ = [line for line in lines if line_score(line) != old_line_score(line)]
    assert differ == []
    # The fixtures hold lines of every kind, so the comparison covers each branch.
    assert {old_line_score(line) for line in lines} >= {0.1, 0.3, 1.0, 1.2, 1.5, 2.0, 2.4, 2.5, 3.0}


# Pieces the patterns look for, in several cases and near misses, characters whose
# case-insensitive match is not ASCII (the Kelvin sign matches k, long s matches s,
# dotted I), word boundaries, and the ``  File "`` indentation.
_PIECES = [
    "ERROR",
    "error",
    "Error:",
    "ERR",
    "errors",
    "Errors",
    "CRITICAL",
    "DEBUG",
    "debug",
    "Debug",
    "FATAL",
    "fatal: [",
    "Fatal",
    "panic: ",
    "Kernel panic",
    "kernel panic",
    "Oops",
    "EMERG",
    "ALERT",
    "PANIC",
    "Segmentation fault",
    "core dumped",
    "Exception",
    "Failure",
    "Fault",
    "FAIL",
    "FAILED",
    "FAILURE",
    "fails",
    "failed",
    "failing",
    "Failed",
    "Traceback",
    "Traceback (most recent call last)",
    "timed out",
    "Time-out",
    "TIMEOUT",
    "refused",
    "DENIED",
    "killed",
    "segfault",
    "Out Of Memory",
    "OOM",
    "aborted",
    "Aborting",
    "cannot",
    "Can't",
    "unable",
    "Not Found",
    "no such",
    "unreachable",
    "invalid",
    "exit",
    "Exited with code 3",
    "exit status 0",
    "exit 12",
    "WARN",
    "WARNING",
    "warning",
    "Warnings",
    "Finished: FAILURE",
    "marked build as failure",
    "FAILED (failures=",
    "ERROR: InvocationError",
    ": commands failed",
    "RESULT_FAILURE",
    "RESULT_TIMED_OUT",
    "Build failed",
    "job FAILED",
    "=== ",
    "===",
    "1 failed, 2 errors in 3.5s",
    " in 12ms",
    "make[2]: *** ",
    "Error 2",
    "FAILED - RETRYING",
    "failed=1",
    "failed=0",
    "unreachable=2",
    "---",
    "***",
    " | ",
    "|",
    '  File "',
    'File "x", line 3',
    " ",
    "  ",
    "\t",
    "\n",
    ":",
    "_",
    "x",
    "a1",
    "2000-01-01 00:00:00.000 | ",
    "\u212a",
    "\u017f",
    "\u0130",
    "\u0131",
    "Ki\u212aled",
    "\u017fegfault",
    "k\u0131lled",
    "é",
    "\ufffd",
    "\x00",
]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=12),
    st.integers(min_value=0, max_value=1100),  # long lines: the scored start only
)
def test_generated_lines_score_as_before(pieces: list[str], pad: int) -> None:
    line = "".join(pieces)
    # Blanks pad only a little: the verdict's anchored alternative backtracks cubically
    # over a long run of them (in both implementations).
    padded = (" " * (pad % 60) + line, "x" * pad + line, "x" * (pad % 90) + line)
    for text in (line, line.lower(), line.upper(), *padded):
        assert line_score(text) == old_line_score(text), text


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["ERROR", "FAILED", "FAILURE", "===", "*", "-", "|", "x", ":"])
        | st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003", min_size=1, max_size=6),
        max_size=10,
    )
)
def test_the_whole_line_verdict_reads_blank_runs_as_one_space(pieces: list[str]) -> None:
    # Its \s* backtrack cubically over a long run of blanks; it reads each as one space.
    line = "".join(pieces)
    collapsed = re.sub(r"\s+", " ", line)
    assert bool(rank._WHOLE_LINE_VERDICT.search(collapsed)) == bool(
        rank._WHOLE_LINE_VERDICT.search(line)
    )


def test_a_long_run_of_blanks_is_scored() -> None:
    assert line_score(" " * 990 + "ERROR") == 1.0  # the whole line is a verdict
    assert line_score(" " * 990 + "ERROR x") == old_line_score(" " * 40 + "ERROR x") == 2.5
