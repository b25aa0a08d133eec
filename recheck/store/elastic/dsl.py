"""The query DSL of the configured cluster backend: ``elasticsearch.dsl`` or opensearch-py's
copy, which build the same bodies, so ``backend: opensearch`` needs only opensearch-py.

Only bodies are built here: requests go through ``cluster`` (the DSL's own ``execute``
would bypass the store's retries and errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recheck.store.base import StoreError

__all__ = ["Dsl", "dsl_for"]


@dataclass(frozen=True)
class Dsl:
    """One backend's DSL classes (typed loosely: the two libraries' types differ)."""

    Search: Any
    """``Search(index=...)``: ``.query()``, ``.sort()``, ``.extra()``, ``.aggs``, ``.to_dict()``."""
    MultiSearch: Any
    """``MultiSearch().add(search)``: ``.to_dict()`` is the ``_msearch`` body's lines."""
    Q: Callable[..., Any]
    """``Q("term", field=value)``: one query clause."""
    A: Callable[..., Any]
    """``A("terms", field=...)``: one aggregation."""


def dsl_for(backend: str, where: str = "bot.yaml") -> Dsl:
    """The DSL of ``backend`` (``elasticsearch`` or ``opensearch``).

    Raises StoreError naming the ``pip install`` that provides it when its client
    library is missing (or too old to carry the DSL). ``where`` names the store in it.
    """
    try:
        if backend == "elasticsearch":
            from elasticsearch.dsl import A, MultiSearch, Q, Search

            return Dsl(Search=Search, MultiSearch=MultiSearch, Q=Q, A=A)
        from opensearchpy.helpers.aggs import A as OsA
        from opensearchpy.helpers.query import Q as OsQ
        from opensearchpy.helpers.search import MultiSearch as OsMultiSearch
        from opensearchpy.helpers.search import Search as OsSearch

        return Dsl(Search=OsSearch, MultiSearch=OsMultiSearch, Q=OsQ, A=OsA)
    except ImportError:
        extra, library = (
            ("elastic", "elasticsearch 8.18 or newer")
            if backend == "elasticsearch"
            else ("opensearch", "opensearch-py 2.2 or newer")
        )
        raise StoreError(
            where,
            f"the {backend} store needs {library} (its query DSL): pip install 'recheck[{extra}]'",
        ) from None
