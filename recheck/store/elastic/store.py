"""The cluster store: recheck's history in an Elasticsearch 8 or OpenSearch cluster.

``ElasticStore`` is the ``Store`` interface on logstash-style daily indices, put together
from its writes, searches and classification (``writes``, ``searches``, ``classify``);
settings, client libraries and errors are ``cluster``'s. The README tells how it works.
"""

from __future__ import annotations

from collections.abc import Mapping

from recheck.store.base import Retention, StoredClassification
from recheck.store.elastic.classify import Classifies
from recheck.store.elastic.cluster import (
    BACKENDS,
    ClusterError,
    ElasticSettings,
    QueryRejected,
    RetryPolicy,
    parse_settings,
    wants_cluster,
)
from recheck.store.elastic.documents import ClusterHealth
from recheck.store.elastic.searches import Searches
from recheck.store.elastic.tests import TestResults
from recheck.store.elastic.writes import Writes

__all__ = [
    "BACKENDS",
    "ClusterClassification",
    "ClusterError",
    "ClusterHealth",
    "ElasticSettings",
    "ElasticStore",
    "QueryRejected",
    "RetryPolicy",
    "open_cluster_store",
    "parse_settings",
    "wants_cluster",
]

ClusterClassification = StoredClassification
"""The name this result had before every store could classify a stored build."""


class ElasticStore(TestResults, Writes, Searches, Classifies):
    """The ``Store`` interface on an Elasticsearch 8 or OpenSearch cluster."""

    def __enter__(self) -> ElasticStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cluster_store(
    section: object,
    *,
    where: str = "bot.yaml",
    retention: Retention | None = None,
    auto_gc: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ElasticStore:
    """The cluster store bot.yaml's ``store`` section describes (see ``parse_settings``)."""
    return ElasticStore(
        parse_settings(section, where, environ), retention=retention, auto_gc=auto_gc
    )
