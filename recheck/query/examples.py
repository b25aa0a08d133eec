"""A signature's examples, tested like code: events its query must and must not match.

A signature file may carry ``examples:`` (events the query must match) and
``counter-examples:`` (events it must not). ``failures`` evaluates them; ``explain``
walks the query tree to say which of its clauses an event satisfies and which it does
not, so that a failing example points at the clause to fix. (The signature files are
parsed in ``signatures``; elastic-recheck's loader ignores these keys.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recheck.models import Event
from recheck.query.lint import render
from recheck.query.nodes import Bool, Doc, MatchAll, Node
from recheck.query.parser import sources

if TYPE_CHECKING:
    from recheck.query.signatures import Signature

__all__ = ["EXAMPLE_KEYS", "Example", "ExampleFailure", "Verdict", "explain", "failures"]

EXAMPLE_KEYS = ("examples", "counter-examples")
"""The signature file keys holding events that must match, and events that must not."""


@dataclass(frozen=True)
class Example:
    """One event of a signature file's ``examples:`` or ``counter-examples:``."""

    index: int
    """Its 0-based position in its list, as messages name it (``examples[0]``)."""
    line: int
    """Its line in the signature file."""
    event: Event
    must_match: bool
    """True for ``examples:``, False for ``counter-examples:``."""

    @property
    def name(self) -> str:
        """``examples[2]`` or ``counter-examples[0]``."""
        return f"{EXAMPLE_KEYS[0] if self.must_match else EXAMPLE_KEYS[1]}[{self.index}]"


@dataclass(frozen=True)
class Verdict:
    """A clause of the query and whether the event satisfies it."""

    clause: str
    """The clause as query text (``message:"delete failed"``, ``NOT tags:console``)."""
    satisfied: bool


@dataclass(frozen=True)
class ExampleFailure:
    """An example the query does not match, or a counter-example it matches."""

    example: Example
    verdicts: tuple[Verdict, ...]

    def __str__(self) -> str:
        example = self.example
        if example.must_match:
            what = f"{example.name} is not matched by the query"
        else:
            what = f"{example.name} is matched by the query, but is a counter-example"
        met = [v.clause for v in self.verdicts if v.satisfied]
        unmet = [v.clause for v in self.verdicts if not v.satisfied]
        parts = [what]
        if met:
            parts.append("it satisfies " + ", ".join(met))
        if unmet:
            parts.append("it does not satisfy " + ", ".join(unmet))
        return "; ".join(parts)


def failures(signature: Signature) -> list[ExampleFailure]:
    """The examples of ``signature`` its query does not match and the counter-examples it
    matches, in file order, each with the clauses its event did and did not satisfy.

    Only the query decides (as in ``recheck match``): flags such as ``test_ids`` or
    ``allow-nonvoting``, which depend on the build, are not part of an example."""
    found: list[ExampleFailure] = []
    written: tuple[Node, dict[int, str]] | None = None
    for example in signature.examples:
        doc = Doc(example.event)
        if signature.compiled.matches(doc) != example.must_match:
            # The same tree, parsed again to know how each clause was written.
            written = written or sources(signature.query)
            found.append(ExampleFailure(example, tuple(explain(*written, doc=doc))))
    return found


def explain(node: Node, texts: dict[int, str] | None = None, *, doc: Doc) -> list[Verdict]:
    """The clauses that decide whether ``node`` matches ``doc``, each with its verdict.

    Required clauses (AND, ``+``) and prohibited ones (NOT, ``-``) are explained one by
    one, descending into nested groups; an OR group is one clause when none of its
    alternatives holds, else its alternatives that hold. Optional clauses beside a
    required one decide nothing (Lucene's rule) and are left out. ``texts`` (from
    ``parser.sources``) gives clauses as written; others are written from the tree.
    """
    verdicts: list[Verdict] = []
    _Explainer(texts or {}, doc, verdicts).walk(node)
    return verdicts


@dataclass
class _Explainer:
    texts: dict[int, str]
    doc: Doc
    out: list[Verdict]

    def walk(self, node: Node) -> None:
        doc, out = self.doc, self.out
        if not isinstance(node, Bool):
            if not isinstance(node, MatchAll):
                out.append(Verdict(self.text(node), node.matches(doc)))
            return
        for child in node.must:
            self.walk(child)
        for child in node.must_not:
            out.append(Verdict(f"NOT {self.text(child)}", not child.matches(doc)))
        if node.must or not node.should:
            return
        holding = [child for child in node.should if child.matches(doc)]
        if not holding:
            out.append(Verdict(self.text(node), False))
        elif len(node.should) == 1:
            self.walk(holding[0])
        else:
            out.extend(Verdict(self.text(child), True) for child in holding)

    def text(self, node: Node) -> str:
        written = self.texts.get(id(node))
        if written is not None:
            return " ".join(written.split())  # a folded query's line breaks
        text = render(node)
        return f"({text})" if isinstance(node, Bool) and " " in text else text
