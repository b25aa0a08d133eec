"""Match signatures against events: which events does each signature's query hit?"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from recheck.models import Event
from recheck.query.nodes import Doc
from recheck.query.prefilter import Prefilter
from recheck.query.signatures import Signature

__all__ = ["match_events"]


def match_events(
    signatures: Sequence[Signature], events: Iterable[tuple[str, Event]]
) -> dict[str, list[str]]:
    """Map each signature's bug id to the ids of the events its query matches, in event order.

    Every signature gets an entry, an empty list when nothing matches. ``events`` is read
    once, so it may be a stream. A prefilter skips the signatures an event cannot match;
    the others are evaluated in full, sharing one analysis of the event.
    """
    matches: dict[str, list[str]] = {signature.bug: [] for signature in signatures}
    prefilter = Prefilter([signature.compiled for signature in signatures])
    for event_id, event in events:
        doc = Doc(event)
        for index in prefilter.candidates(doc):
            signature = signatures[index]
            if signature.compiled.matches(doc):
                matches[signature.bug].append(event_id)
    return matches
