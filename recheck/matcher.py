"""Match signatures against events: which events does each signature's query hit?"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from recheck.models import Event, Signature

__all__ = ["match_events"]


def match_events(
    signatures: Sequence[Signature], events: Iterable[tuple[str, Event]]
) -> dict[str, list[str]]:
    """Map each signature's bug id to the ids of the events its query matches, in event order.

    Every signature gets an entry, an empty list when nothing matches. ``events`` is read
    once, so it may be a stream. This is the plain loop (every query on every event); a
    prefiltered version can replace it behind the same interface.
    """
    matches: dict[str, list[str]] = {signature.bug: [] for signature in signatures}
    for event_id, event in events:
        for signature in signatures:
            if signature.compiled.matches(event):
                matches[signature.bug].append(event_id)
    return matches
