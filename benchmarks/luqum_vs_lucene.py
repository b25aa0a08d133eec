"""Why recheck parses queries itself: how often luqum disagrees with real Lucene 8.7.

Run: .venv/bin/pip install luqum && .venv/bin/python benchmarks/luqum_vs_lucene.py
(needs Java and Debian's liblucene8-java, like the differential tests).

Generates random runs of query syntax and counts, against Lucene's own QueryParser
(tests/oracle), the queries luqum accepts that Lucene rejects and the reverse. It does
not count the valid queries luqum gives another meaning (operator precedence, `!x`,
`&&`, `a - b`): those are listed in the README's query semantics.
"""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lucene_oracle import LuceneOracle, OracleError  # noqa: E402

FRAGMENTS = [
    *("a", "b", "AND", "OR", "NOT", "&&", "||", "!", "+", "-", "(", ")", ":", "^", "2"),
    *("~", "*", "?", '"', "\\", "/", "[", "]", "{", "}", "TO", " ", " ", " ", "f:", "x.y"),
    *("\t", "0.5", "1.5", "."),
]


def main(count: int = 3000, seed: int = 1) -> None:
    from luqum.parser import parser  # type: ignore[import-untyped]

    logging.disable(logging.CRITICAL)  # luqum logs every syntax error
    rng = random.Random(seed)
    oracle = LuceneOracle()
    tally = {
        "both accept": 0,
        "both reject": 0,
        "luqum rejects valid": 0,
        "luqum accepts invalid": 0,
    }
    for _ in range(count):
        query = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 10)))
        lucene_ok = not isinstance(oracle.evaluate(query, [{}]), OracleError)
        try:
            parser.parse(query)
            luqum_ok = True
        except Exception:
            luqum_ok = False
        if lucene_ok and luqum_ok:
            tally["both accept"] += 1
        elif not lucene_ok and not luqum_ok:
            tally["both reject"] += 1
        elif lucene_ok:
            tally["luqum rejects valid"] += 1
        else:
            tally["luqum accepts invalid"] += 1
    print(f"{count} random queries: " + ", ".join(f"{k} {v}" for k, v in tally.items()))


if __name__ == "__main__":
    main()
