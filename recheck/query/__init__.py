"""Lucene query_string queries, as Elasticsearch runs them: analysis, lexing, parsing into
a query tree (``nodes``), evaluation against events, prefilters and the signature files.

The public names below are what other stages need; the modules hold the rest.
"""

from recheck.query.nodes import Doc
from recheck.query.parser import Query, QuerySyntaxError, compile_query, lint_query

__all__ = ["Doc", "Query", "QuerySyntaxError", "compile_query", "lint_query"]
