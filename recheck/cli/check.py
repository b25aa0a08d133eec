"""``recheck check``: validate signature files, as a pre-commit hook or CI job would.

Prints each file's errors and lint warnings together, then a count; the exit status says
whether the signatures are fit to merge.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recheck.cli.common import Commands, line_printer, plural, usage_error
from recheck.models import EVENT_FIELDS
from recheck.query import lint_query
from recheck.query.examples import failures
from recheck.query.signatures import load_signatures

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck check``."""
    check = commands.add_parser(
        "check",
        help="validate signature files",
        description=(
            "Load and compile every *.yaml signature in DIR. Errors (bad YAML, unknown keys, "
            "wrong types, queries Lucene would reject) print as 'file:line:col: error: ...' "
            "and make the exit status 1. Warnings about queries that are valid but probably "
            "not what the author meant (unquoted multi-token terms, leading wildcards, "
            "unknown fields, regexes, no positive clause, broad clauses that match every "
            "event of a file or build: a clause of only field filters, negations or *) "
            "print as 'file:line: warning: ...' and only fail with --strict. A signature's "
            "examples: (events its query must match) and counter-examples: (events it must "
            "not match) are evaluated; each one that fails is an error naming the example "
            "and the clauses of the query its event did and did not satisfy."
        ),
    )
    check.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default="queries",
        type=Path,
        help="directory of signature files (default: ./queries)",
    )
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.add_argument(
        "--known-fields",
        metavar="A,B,C",
        type=_field_list,
        default=EVENT_FIELDS,
        help=(
            "comma-separated field names a query may use without a warning "
            f"(default: the logstash event fields: {', '.join(EVENT_FIELDS)})"
        ),
    )
    check.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        signatures, errors = load_signatures(args.directory)
    except OSError as exc:
        return usage_error("check", f"{exc}; pass the directory holding the *.yaml files")
    # (path, text, style) so that errors and warnings of one file print together.
    findings: list[tuple[str, str, str]] = []
    for error in errors:
        where = f"{error.path}:{error.line}:{error.column}"
        findings.append((str(error.path), f"{where}: error: {error.message}", "red"))
    failed = 0
    for signature in signatures:
        for warning in lint_query(signature.query, known_fields=args.known_fields):
            text = f"{signature.path}:{signature.line}: warning: {warning}"
            findings.append((str(signature.path), text, "yellow"))
        for failure in failures(signature):
            text = f"{signature.path}:{failure.example.line}: error: {failure}"
            findings.append((str(signature.path), text, "red"))
            failed += 1
    total = len(signatures) + len(errors)
    if total == 0:
        text = f"{args.directory}: warning: no *.yaml signature files found"
        findings.append((str(args.directory), text, "yellow"))
    findings.sort(key=lambda finding: finding[0])  # stable: a file's errors stay in order
    warnings = len(findings) - len(errors) - failed
    examples = sum(len(signature.examples) for signature in signatures)

    print_line = line_printer(sys.stdout)
    for _, text, style in findings:
        print_line(text, style)
    tested = f", {plural(examples, 'example')} ({failed} failed)" if examples else ""
    print_line(
        f"{plural(total, 'signature')}, {plural(len(errors) + failed, 'error')}, "
        f"{plural(warnings, 'warning')}{tested}",
        "bold",
    )
    return 1 if errors or failed or (args.strict and warnings) else 0


def _field_list(text: str) -> tuple[str, ...]:
    fields = tuple(name.strip() for name in text.split(",") if name.strip())
    if not fields:
        raise argparse.ArgumentTypeError("give at least one field name, e.g. message,tags")
    return fields
