#!/usr/bin/env python3
"""Build examples/sample-events.jsonl from real gate logs.

Usage: python3 scripts/make_sample_events.py DATA_DIR > examples/sample-events.jsonl

DATA_DIR is a copy of the project's shared real-data folder (the one holding
``logs/os-loganalyze/`` and ``events/zuul-api-2021/``). Lines become events roughly the
way OpenStack's logstash pipeline made them (reference/openstack-logstash-filters.conf):
console lines lose their timestamp prefix and absorb continuation lines; oslo-format
service lines are split into pid/loglevel/module/message, DEBUG and ``+ `` shell-trace
lines are dropped, and TRACE lines fold into the event before them. Every event gets the
build metadata of the job that wrote the log. The selection is deterministic: rerunning
the script on the same data gives the same file.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

# The 2013 Jenkins build that wrote console.html and the screen-* logs: read from its
# console ("Triggered by: .../44670 patchset 3", "Pipeline: gate", the merge of
# openstack/nova, the upload path .../gate-tempest-devstack-vm-neutron/02d68e3/,
# "Building remotely on devstack-precise-hpcloud-az3-408487", "Finished: FAILURE").
BUILD_2013 = {
    "build_name": "gate-tempest-devstack-vm-neutron",
    "build_status": "FAILURE",
    "build_queue": "gate",
    "build_change": "44670",
    "build_patchset": "3",
    "build_short_uuid": "02d68e3",
    "build_branch": "master",
    "build_node": "devstack-precise-hpcloud-az3-408487",
    "build_master": "jenkins02.openstack.org",
    "project": "openstack/nova",
    "voting": "1",
}
LOG_URL_2013 = "http://logs.openstack.org/70/44670/3/gate/gate-tempest-devstack-vm-neutron/02d68e3/"

CONSOLE_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \| ?(.*)$")
OSLO_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ ")
OSLO_LINE = re.compile(
    r"^(?P<date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s+(?P<pid>\d+)?\s?"
    r"(?P<loglevel>AUDIT|CRITICAL|DEBUG|INFO|TRACE|WARNING|ERROR) "
    r"\[?\b(?P<module>\S+)\b\]?\s?(?P<message>.*)$",
    re.DOTALL,
)
# Lines worth showing a triager: what signatures are written against.
INTERESTING = re.compile(r"(?i)error|fail|traceback|exception|timeout|timed out|refused|denied")


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


def console_events(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(first line number, message) per console event; continuations join with newlines."""
    start, parts = 0, []
    for number, line in enumerate(lines, start=1):
        if line in ("<pre>", "</pre>"):
            continue
        match = CONSOLE_LINE.match(line)
        if match:
            if parts:
                yield start, "\n".join(parts)
            start, parts = number, [match.group(2)]
        elif parts:
            parts.append(line)
    if parts:
        yield start, "\n".join(parts)


def oslo_events(lines: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line number, fields) per oslo-format event, DEBUG and shell traces dropped."""
    start, parts = 0, []

    def flush() -> Iterator[tuple[int, dict[str, str]]]:
        match = OSLO_LINE.match("\n".join(parts)) if parts else None
        if match and match.group("loglevel") != "DEBUG":
            fields = {k: v for k, v in match.groupdict().items() if v is not None and k != "date"}
            yield start, fields

    for number, line in enumerate(lines, start=1):
        if line.startswith("+ "):
            continue
        starts_event = OSLO_START.match(line) and " TRACE " not in line[:40]
        if starts_event or not parts:
            yield from flush()
            start, parts = number, [line]
        else:
            parts.append(line)
    yield from flush()


def pick(items: list[tuple[int, str, dict[str, str]]], interesting: int, plain: int) -> list:
    """Keep up to ``interesting`` error-looking events and ``plain`` others, evenly spread."""
    hits = [item for item in items if INTERESTING.search(item[1])]
    rest = [item for item in items if not INTERESTING.search(item[1])]
    chosen = spread(hits, interesting) + spread(rest, plain)
    return sorted(chosen, key=lambda item: item[0])


def spread(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def main(data_dir: Path) -> None:
    logs = data_dir / "logs" / "os-loganalyze"
    out = sys.stdout

    def emit(event_id: str, fields: dict[str, object]) -> None:
        out.write(json.dumps({"id": event_id, **fields}, ensure_ascii=False) + "\n")

    console = [(n, text, {}) for n, text in console_events(read_lines(logs / "console.html.gz"))]
    for number, text, _ in pick(console, interesting=110, plain=50):
        emit(
            f"02d68e3/console.html:{number}",
            {
                "message": text,
                "tags": ["console.html", "console"],
                "filename": "console.html",
                **BUILD_2013,
                "log_url": LOG_URL_2013 + "console.html",
            },
        )

    for name in ("screen-c-api.txt", "screen-q-svc.txt.gz"):
        base = name.removesuffix(".gz")
        events = [(n, f["message"], f) for n, f in oslo_events(read_lines(logs / name))]
        for number, _, fields in pick(events, interesting=50, plain=30):
            emit(
                f"02d68e3/logs/{base}:{number}",
                {
                    **fields,
                    "tags": [base, "screen", "oslofmt"],
                    "filename": f"logs/{base}",
                    **BUILD_2013,
                    "log_url": LOG_URL_2013 + f"logs/{base}.gz",
                },
            )

    # A 2021 Zuul job-output.txt excerpt; which build wrote it is not recorded, so it
    # carries no build fields (queries on them must not match it).
    excerpt = data_dir / "events" / "zuul-api-2021" / "job-output-excerpt.txt"
    for number, text in console_events(read_lines(excerpt)):
        emit(
            f"zuul-2021/job-output.txt:{number}",
            {
                "message": text,
                "tags": ["job-output.txt", "console", "console.html"],
                "filename": "job-output.txt",
            },
        )


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1], "logs").is_dir():
        sys.exit(f"usage: {sys.argv[0]} DATA_DIR  (the folder holding logs/ and events/)")
    main(Path(sys.argv[1]))
