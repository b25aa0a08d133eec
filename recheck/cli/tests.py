"""``recheck tests``: which tests fail, how often, since when, and which are flaky.

The test-level history OpenStack-Health gave the gate, from the test results ``recheck
ingest`` and the bot store with every build (``recheck.store.testhistory`` says what
flaky means and how rows sort).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_store_option,
    on_store,
    positive_float,
    positive_int,
    print_json,
)
from recheck.config.files import Config

if TYPE_CHECKING:
    from recheck.store import Store
    from recheck.store.testhistory import TestSummary

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck tests``."""
    tests = commands.add_parser(
        "tests",
        help="per-test failure rates and flaky tests from the stored test results",
        description=(
            "List the tests that failed in the stored builds of the last DAYS days (whole "
            "UTC days), worst first (most failures, then the highest failure rate), with "
            "their runs, failures, failure rate, whether they are flaky and their last "
            "failure. Flaky: failed and passed on the same change and patchset in the same "
            "job (a recheck that passed), or failed at least twice, passing more often "
            "than failing, without a clear start (a test that broke on a day and mostly "
            "fails since is a regression, not a flake). --format json prints "
            '[{"test", "runs", "failures", "failure_rate", "flaky", "last_failure"}]. '
            "Test results are stored by `recheck ingest` and the bot, from each build's "
            "testrepository.subunit. Exit status 2 for an unusable store."
        ),
    )
    tests.add_argument(
        "--days",
        type=positive_float,
        default=10.0,
        help="builds of the last DAYS days (default: 10)",
    )
    tests.add_argument("--job", metavar="J", help="only builds of this job (build_name)")
    tests.add_argument(
        "--test",
        metavar="PATTERN",
        help=(
            "only test ids containing PATTERN ('*' matches any text); lists them even when "
            "they never failed"
        ),
    )
    tests.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="show the first N tests (default: all)",
    )
    tests.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_store_option(tests)
    add_config_option(tests)
    tests.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def summarize(store: Store, config: Config) -> tuple[list[TestSummary], int]:
        found = store.test_summaries(args.days, job=args.job, pattern=args.test)
        return found, len(found)

    answer = on_store(args, "tests", summarize)
    if answer is None:
        return 2
    found, total = answer
    shown = found if args.limit is None else found[: args.limit]
    if args.format == "json":
        print_json([summary.as_json() for summary in shown])
        return 0
    if not found:
        print(_nothing(args), file=sys.stderr)
        return 0
    _print_table(shown, total)
    return 0


def _nothing(args: argparse.Namespace) -> str:
    what = f"tests matching {args.test!r}" if args.test else "test failures"
    where = f" of job {args.job}" if args.job else ""
    return (
        f"no {what} in the stored builds{where} of the last {args.days:g} days "
        "(test results are stored by `recheck ingest` and the bot from each build's "
        "testrepository.subunit)"
    )


def _print_table(rows: list[TestSummary], total: int) -> None:
    from rich.console import Console
    from rich.table import Table

    # On a terminal, long ids fold to its width; in a pipe each row stays one line.
    width = None if sys.stdout.isatty() else 1000
    console = Console(file=sys.stdout, highlight=False, width=width)
    table = Table(box=None, show_edge=False, pad_edge=False)
    table.add_column("failures", justify="right")
    table.add_column("runs", justify="right")
    table.add_column("rate", justify="right")
    table.add_column("flaky")
    table.add_column("last failure")
    table.add_column("test", overflow="fold")
    for row in rows:
        table.add_row(
            f"{row.failures:,}",
            f"{row.runs:,}",
            f"{row.failure_rate:.2%}",
            "flaky" if row.flaky else "",
            "" if row.last_failure is None else row.last_failure.strftime("%Y-%m-%d %H:%M"),
            row.test,
            style="yellow" if row.flaky else None,
        )
    if console.is_terminal:
        console.print(table, markup=False)
    else:  # plain lines for scripts: no padding after the last column
        with console.capture() as captured:
            console.print(table, markup=False)
        sys.stdout.writelines(line.rstrip() + "\n" for line in captured.get().splitlines())
    if len(rows) < total:
        console.print(f"({len(rows)} of {total} tests shown; --limit)", markup=False)
