"""recheck: match known-bug signatures against CI build logs, as Elasticsearch would."""

__version__ = "0.1.0"
