"""``recheck query``: where a query or a signature hit in the stored history.

The evidence first: ``check``'s lint warnings, the hits per day as text bars, the newest
matching events with the query's words highlighted (``recheck.query.highlight``) and a
link to each line; then the counts and field breakdown as elastic-recheck-query printed
them (``recheck.store.stats``). From a signature file or a query string.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_store_option,
    on_store,
    positive_float,
    positive_int,
    print_json,
    usage_error,
)
from recheck.config.files import Config
from recheck.models import EVENT_FIELDS
from recheck.query import Query, QuerySyntaxError, compile_query, lint_query
from recheck.query.signatures import SignatureError, load_signature

if TYPE_CHECKING:
    from recheck.store import Store
    from recheck.store.evidence import Evidence

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck query``."""
    query = commands.add_parser(
        "query",
        help="where a query or signature hit in the stored history",
        description=(
            "Search the stored events of the last DAYS days with a signature file's query "
            "or a query string and show the evidence: `recheck check`'s warnings about the "
            "query (on stderr), the hits per day as bars, the newest matching events (build, "
            "job, status, file:line, the message with the matched words highlighted (bold "
            "on a terminal, **word** otherwise), a link to the line), then the hits summed "
            "up as elastic-recheck-query did: total hits, distinct builds by build_status, "
            "and for each field its top values with their share. Hits are exactly the "
            "events `recheck match` would report: the index only finds candidates, the "
            "query engine decides. --format json prints "
            '{"hits": N, "builds": {"<build_status>": count}, "fields": {"<field>": '
            '[[value, share], ...]}, "events": [{"build_uuid", "build_name", '
            '"build_status", "filename", "line", "message", "url"}, ...], "by_day": '
            '{"YYYY-MM-DD": hits}}. Exit status 2 for a bad query or an unusable store.'
        ),
    )
    query.add_argument(
        "query",
        metavar="QUERY_FILE_OR_QUERY_STRING",
        help="a signature file (queries/<bug>.yaml) or a Lucene query_string",
    )
    query.add_argument(
        "--days",
        type=positive_float,
        default=10.0,
        help="search builds of the last DAYS days (default: 10)",
    )
    query.add_argument("--queue", metavar="Q", help="only builds of this pipeline (build_queue)")
    query.add_argument(
        "--quantity", type=positive_int, default=5, help="top values shown per field (default: 5)"
    )
    query.add_argument(
        "--limit",
        type=positive_int,
        default=20,
        metavar="N",
        help="matching events listed, newest first (default: 20)",
    )
    query.add_argument(
        "--verbose",
        action="store_true",
        help="also list fields that differ on every build (uuids, refs, URLs)",
    )
    query.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_store_option(query)
    add_config_option(query)
    query.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recheck.cli.evidence import print_evidence
    from recheck.store.evidence import evidence_from

    compiled = _read_query(args.query)
    if isinstance(compiled, str):
        return usage_error("query", compiled)

    def search(store: Store, config: Config) -> Evidence:
        # A cluster store counts with aggregations; the embedded one summarizes hits.
        return evidence_from(
            store, compiled, args.days, args.queue,
            limit=args.limit, quantity=args.quantity, verbose=args.verbose,
        )  # fmt: skip

    found = on_store(args, "query", search)
    if found is None:
        return 2
    for warning in lint_query(compiled.text, known_fields=EVENT_FIELDS):
        print(f"recheck query: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        print_json(
            {
                **found.stats.to_json(),
                "events": [hit.to_json() for hit in found.events],
                "by_day": found.by_day,
            }
        )
        return 0
    print_evidence(sys.stdout, found, compiled, args.days)
    return 0


def _read_query(text: str) -> Query | str:
    """The query ``text`` names (a signature file) or is; a message saying what is wrong."""
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            return f"{text}: no such signature file"
        loaded = load_signature(path)
        return str(loaded) if isinstance(loaded, SignatureError) else loaded.compiled
    try:
        return compile_query(text)
    except QuerySyntaxError as exc:
        if exc.position is None:
            return f"bad query: {exc}"
        shown = text.replace("\n", " ").replace("\r", " ")
        return f"bad query: {exc}\n  {shown}\n  {' ' * exc.position}^"
