"""``recheck diff``: review a change of the signatures by replaying it over the history.

Each side is a directory of signature files or a git revision and path of a queries
repository (``main:queries``), read with ``git archive`` (arguments passed as a list,
never through a shell; a revision may not start with ``-``). The replay itself is
``recheck.store.replay``'s.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_store_option,
    line_printer,
    on_store,
    plural,
    positive_float,
    print_json,
    usage_error,
)
from recheck.config.files import Config
from recheck.query.signatures import MAX_FILE_BYTES, Signature, load_signatures

if TYPE_CHECKING:
    from recheck.store import Store, StoredBuild
    from recheck.store.replay import Replay

__all__ = ["add_parser", "read_signatures", "run"]

GIT_TIMEOUT_S = 120.0
"""How long ``git archive`` may take for one side."""
MAX_FILES = 100_000
"""Signature files read from one git revision at most."""


def add_parser(commands: Commands) -> None:
    """Register ``recheck diff``."""
    diff = commands.add_parser(
        "diff",
        help="replay a change of the signatures over the stored history",
        description=(
            "Run the OLD and the NEW signatures that differ (added, removed, or a changed "
            "query or matching flag) over the stored events of the last DAYS days, and "
            "list per signature the builds it gains and loses, the failed builds newly "
            "categorized (no old signature hit them, a new one does) or uncategorized, and "
            "the passing builds newly hit. OLD and NEW are directories, or a git revision "
            "and a path of a queries repository (main:queries, HEAD:queries, "
            "origin/main:queries) read with git archive from --repo. Exit status 1 when "
            "the change adds hits on passing builds, 2 when a side or the store cannot be "
            'read. --format json prints {"since", "builds_replayed", "signatures": [{"bug", '
            '"change", "gained", "lost", "passing_gained"}], "failures_newly_categorized", '
            '"failures_newly_uncategorized", "passing_builds_newly_hit"}, each build as '
            '{"build_uuid", "build_name", "build_status", "project", "time", "log_url"}.'
        ),
    )
    diff.add_argument("old", metavar="OLD_QUERIES", help="a directory, or REV:PATH in --repo")
    diff.add_argument("new", metavar="NEW_QUERIES", help="a directory, or REV:PATH in --repo")
    diff.add_argument(
        "--days",
        type=positive_float,
        default=10.0,
        help="replay over the builds of the last DAYS days whose events are kept (default: 10)",
    )
    diff.add_argument(
        "--repo",
        metavar="DIR",
        type=Path,
        default=Path("."),
        help="the git repository REV:PATH sides are read from (default: .)",
    )
    diff.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_store_option(diff)
    add_config_option(diff)
    diff.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recheck.store.replay import replay

    with tempfile.TemporaryDirectory(prefix="recheck-diff-") as scratch:
        sides = []
        for name, spec in (("old", args.old), ("new", args.new)):
            loaded = read_signatures(spec, args.repo, Path(scratch) / name)
            if isinstance(loaded, str):
                return usage_error("diff", loaded)
            sides.append(loaded)
    old, new = sides
    progress = sys.stderr.isatty() and args.format == "text"

    def searched(bug: str) -> None:
        if progress:
            print(f"\rreplaying {bug} ...\x1b[K", end="", file=sys.stderr, flush=True)

    def work(store: Store, config: Config) -> Replay:
        return replay(store, old, new, days=args.days, on_search=searched)

    found = on_store(args, "diff", work)
    if progress:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
    if found is None:
        return 2
    if args.format == "json":
        print_json(found.to_json())
    else:
        _print_text(found, args.old, args.new, args.days)
    return 1 if found.passing_newly_hit else 0


def read_signatures(spec: str, repo: Path, scratch: Path) -> list[Signature] | str:
    """The signatures of ``spec`` (a directory, or ``REV:PATH`` in ``repo``), warning on
    stderr about the files that do not load; a message when the side cannot be read."""
    if Path(spec).is_dir():
        directory, shown = Path(spec), None
    else:
        problem = _git_archive(spec, repo, scratch)
        if problem is not None:
            return problem
        directory, shown = scratch, spec.rstrip("/")
    signatures, errors = load_signatures(directory)
    for error in errors:
        where = (
            str(error)
            if shown is None
            else f"{shown}/{error.path.name}:{error.line}:{error.column}: {error.message}"
        )
        print(f"recheck diff: warning: skipped {where}", file=sys.stderr)
    if not signatures and not errors:
        print(f"recheck diff: warning: {spec}: no *.yaml signature files", file=sys.stderr)
    return signatures


def _git_archive(spec: str, repo: Path, scratch: Path) -> str | None:
    """Write the ``*.yaml`` files of the tree ``REV:PATH`` into ``scratch``; a message
    saying what is wrong, or None."""
    revision, colon, _ = spec.partition(":")
    if not colon or not revision or revision.startswith("-") or "\0" in spec:
        return f"{spec}: neither a directory nor a git revision and path such as main:queries"
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", spec],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return f"{spec}: reading a git revision needs git, which is not installed"
    except subprocess.TimeoutExpired:
        return f"{spec}: git archive took more than {GIT_TIMEOUT_S:.0f} s"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = reason[-1] if reason else f"exit status {done.returncode}"
        return f"{spec}: git cannot read it in {repo} ({why}); give REV:PATH of a directory"
    scratch.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        for member in archive:
            # Only plain files at the tree's top: no links, no paths out of scratch.
            name = member.name
            if not member.isfile() or "/" in name or not name.endswith(".yaml"):
                continue
            count += 1
            if count > MAX_FILES:
                return f"{spec}: more than {MAX_FILES:,} signature files"
            handle = archive.extractfile(member)
            assert handle is not None
            # A file over the limit is kept that long: loading it reports it as too big.
            (scratch / name).write_bytes(handle.read(MAX_FILE_BYTES + 1))
    return None


def _print_text(found: Replay, old: str, new: str, days: float) -> None:
    print_line = line_printer(sys.stdout)
    print_line(
        f"{old} -> {new}: {plural(len(found.changes), 'signature')} changed, replayed over "
        f"{plural(found.builds, 'stored build')} of the last {days:g} days",
        "bold",
    )
    for change in found.changes:
        passing = len(change.passing_gained)
        extra = f", {plural(passing, 'passing build')} newly hit" if passing else ""
        print_line(
            f"{change.bug} ({change.change}): gains {plural(len(change.gained), 'build')}, "
            f"loses {len(change.lost):,}{extra}",
            "yellow" if passing else "",
        )
        for sign, builds in (("+", change.gained), ("-", change.lost)):
            for stored in builds:
                print_line(f"  {sign} {_build_line(stored)}", "")
    for title, listed, style in (
        ("failures newly categorized", found.newly_categorized, "green"),
        ("failures newly uncategorized", found.newly_uncategorized, "yellow"),
        ("passing builds newly hit", found.passing_newly_hit, "red"),
    ):
        print_line(f"{title}: {len(listed):,}", style if listed else "bold")
        for stored in listed:
            print_line(f"  {_build_line(stored)}", "")


def _build_line(stored: StoredBuild) -> str:
    build = stored.build
    parts = [
        build.build_status or "UNKNOWN",
        build.build_name or "(unknown job)",
        f"{stored.time:%Y-%m-%d %H:%M}",
        stored.uuid,
    ]
    if build.log_url:
        parts.append(build.log_url)
    return " ".join(parts)
