"""``recheck query``: where a query or a signature hit in the stored history.

Summarizes the hits as elastic-recheck-query did (``recheck.store.stats``), from a
signature file or a query string.
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
    line_printer,
    on_store,
    positive_float,
    positive_int,
    print_json,
    usage_error,
)
from recheck.config.files import Config
from recheck.query import Query, QuerySyntaxError, compile_query
from recheck.query.signatures import SignatureError, load_signature

if TYPE_CHECKING:
    from recheck.store import Store
    from recheck.store.stats import QueryStats

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck query``."""
    query = commands.add_parser(
        "query",
        help="where a query or signature hit in the stored history",
        description=(
            "Search the stored events of the last DAYS days with a signature file's query "
            "or a query string, and summarize the hits as elastic-recheck-query did: total "
            "hits, distinct builds by build_status, and for each field its top values with "
            "their share. Hits are exactly the events `recheck match` would report: the "
            "index only finds candidates, the query engine decides. --format json prints "
            '{"hits": N, "builds": {"<build_status>": count}, "fields": {"<field>": '
            "[[value, share], ...]}}. Exit status 2 for a bad query or an unusable store."
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
        "--verbose",
        action="store_true",
        help="also list fields that differ on every build (uuids, refs, URLs)",
    )
    query.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_store_option(query)
    add_config_option(query)
    query.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recheck.store.stats import stats_from

    compiled = _read_query(args.query)
    if isinstance(compiled, str):
        return usage_error("query", compiled)

    def search(store: Store, config: Config) -> QueryStats:
        # A cluster store counts with aggregations; the embedded one summarizes hits.
        return stats_from(
            store, compiled, args.days, args.queue, quantity=args.quantity, verbose=args.verbose
        )

    stats = on_store(args, "query", search)
    if stats is None:
        return 2
    if args.format == "json":
        print_json(stats.to_json())
        return 0
    print_line = line_printer(sys.stdout)
    for index, text in enumerate(stats.lines()):
        print_line(text, "bold" if index < 2 or not text.startswith(" ") else "")
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
