"""Which files of a build are split into events, and with which tags.

A **file rule** pairs a path pattern (relative to the build's log root, ``.gz`` ignored)
with the tags its events get. The tags also choose how the file is split (see
``recheck.logs.split``): ``console``/``console.html`` files are console logs, ``oslofmt``
files are oslo.log service logs, and ``apachecombined``, ``apacheerror``, ``libvirt``
and ``syslog`` their own formats, in that order of precedence, as in OpenStack's
logstash pipeline.

``DEFAULT_FILE_RULES`` is OpenDev's indexing list (ci-log-processing's
``download-list.yaml``) plus the layouts older builds used (Jenkins ``console.html``,
``logs/screen-*.txt``, grenade's ``logs/old/`` and ``logs/new/``, devstack's systemd
``devstack@*.service`` logs), so that the real signatures' ``tags:`` conditions work on
old and new builds alike. It is a plain list so that ``bot.yaml`` can replace it.

A file the user names on its own is read whatever its name: when no rule names it, its
first lines decide its format (``content_tags``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from recheck.logs.split import PARSE_FAILURE_TAG, split_lines
from recheck.models import FileRule

__all__ = [
    "CONTENT_FORMATS",
    "DEFAULT_FILE_RULES",
    "FileRule",
    "content_tags",
    "file_tagger",
    "file_tags",
    "known_names",
    "logical_name",
    "rules_in_force",
]


_SCREEN = ("screen", "oslofmt", "devstack")
_CONSOLE = ("console", "console.html")


def _opendev_rules() -> list[FileRule]:
    # OpenDev's list, file by file (reference/opendev-download-list.yaml). Left out on
    # purpose: the testrepository.subunit files (binary; read for test results, not
    # split), zuul-info/inventory.yaml (build metadata, see recheck.logs.build) and
    # performance.json (one JSON document, not log lines).
    rules = [
        FileRule("job-output.txt", _CONSOLE),
        FileRule("controller/logs/grenade.sh_log.txt", (*_CONSOLE, "grenade")),
        FileRule("controller/logs/devstacklog.txt", (*_CONSOLE, "devstack")),
        FileRule("controller/logs/devstacklog.txt.summary", (*_CONSOLE, "devstack_summary")),
        FileRule("controller/logs/syslog.txt", ("syslog",)),
        FileRule("controller/logs/tempest_log.txt", ("screen", "oslofmt", "tempest", "devstack")),
    ]
    projects = {
        "nova": ["n-api", "n-api-meta", "n-cond-cell1", "n-cond-cell2", "n-novnc-cell1",
                 "n-novnc-cell2", "n-cpu", "n-sch", "n-super-cond"],
        "placement": ["placement-api"],
        "neutron": ["q-agt", "q-dhcp", "q-l3", "q-metering", "q-svc", "q-ovn-metadata-agent"],
        "keystone": ["keystone"],
        "cinder": ["c-api", "c-bak", "c-sch", "c-vol"],
        "glance": ["g-api"],
    }  # fmt: skip
    for project, services in projects.items():
        for service in services:
            rules.append(FileRule(f"controller/logs/screen-{service}.txt", (*_SCREEN, project)))
    rules += [
        FileRule("logs/undercloud/home/zuul/overcloud_deploy.log.txt", ("overcloud", "tripleo")),
        FileRule("logs/undercloud/var/log/extra/logstash.txt", ("console", "postci", "tripleo")),
        FileRule("logs/undercloud/var/log/extra/errors.txt", ("console", "errors", "tripleo")),
        FileRule("logs/undercloud/var/log/tempest/tempest_run.log", ("tempest", "tripleo")),
        FileRule("logs/undercloud/var/log/extra/journal.txt", ("tempest", "errors", "tripleo")),
        FileRule("compute1/logs/syslog.txt", (*_SCREEN, "syslog", "multinode")),
    ]
    multinode = [("n-cpu", "nova"), ("q-agt", "neutron"), ("q-l3", "neutron"),
                 ("q-dhcp", "neutron"), ("c-bak", "cinder"), ("c-vol", "cinder")]  # fmt: skip
    for service, project in multinode:
        rules.append(
            FileRule(f"compute1/logs/screen-{service}.txt", (*_SCREEN, project, "multinode"))
        )
    return rules


def _older_layout_rules() -> list[FileRule]:
    # Jenkins-era and early-Zuul-v3 builds kept everything under logs/ (grenade under
    # logs/old/ and logs/new/), with screen-<service>.txt names; devstack's systemd era
    # wrote devstack@<service>.service logs in journal format, still oslo.log records.
    rules: list[FileRule] = [FileRule("console.html", _CONSOLE)]
    for root in ("logs", "logs/old", "logs/new", "*/logs"):
        rules += [
            FileRule(f"{root}/devstacklog.txt", (*_CONSOLE, "devstack")),
            FileRule(f"{root}/devstacklog.txt.summary", (*_CONSOLE, "devstack_summary")),
            FileRule(f"{root}/grenade.sh.txt", (*_CONSOLE, "grenade")),
            FileRule(f"{root}/grenade.sh_log.txt", (*_CONSOLE, "grenade")),
            FileRule(f"{root}/syslog.txt", ("syslog",)),
            FileRule(f"{root}/libvirt/libvirtd.txt", ("libvirt",)),
            FileRule(f"{root}/apache/*access*.txt", ("apachecombined",)),
            FileRule(f"{root}/apache/*error*.txt", ("apacheerror",)),
            FileRule(f"{root}/tempest.txt", ("screen", "oslofmt", "tempest")),
            FileRule(f"{root}/tempest_log.txt", ("screen", "oslofmt", "tempest", "devstack")),
            FileRule(f"{root}/screen-*.txt", _SCREEN),
            FileRule(f"{root}/devstack@*.service.log.txt", _SCREEN),
        ]
    return rules


DEFAULT_FILE_RULES: tuple[FileRule, ...] = (*_opendev_rules(), *_older_layout_rules())
"""The default file list: first matching rule wins, so specific rules come first."""


def logical_name(path: str) -> str:
    """The path a rule is matched against: ``/``-separated, relative, ``.gz`` removed."""
    text = path.replace("\\", "/").lstrip("/")
    return text.removesuffix(".gz")


def file_tags(path: str, rules: Iterable[FileRule] = DEFAULT_FILE_RULES) -> list[str] | None:
    """Tags for the file at ``path`` (relative to the build root), or None if not indexed.

    The tags are the first matching rule's plus the file's base name without ``.gz``,
    as logstash added it (so ``tags:"screen-n-cpu.txt"`` selects that service's log).
    """
    return file_tagger(rules)(path)


def file_tagger(
    rules: Iterable[FileRule] = DEFAULT_FILE_RULES,
) -> Callable[[str], list[str] | None]:
    """``file_tags`` with ``rules``, for every file of a build: the rules are read once.

    A rule naming one file is looked up by name; the others are tried all at once, as
    one regular expression whose first matching alternative is the first rule (a loop
    over 150 rules for each of 20,000 files cost more than classifying them).
    """
    rules = tuple(rules)
    exact: dict[str, int] = {}
    globs: list[int] = []
    for index, rule in enumerate(rules):
        if rule.is_glob:
            globs.append(index)
        else:
            exact.setdefault(rule.pattern, index)
    # glob_regex makes no capturing group: group k is the k-th glob.
    combined = re.compile("|".join(f"({rules[i].regex.pattern})" for i in globs))

    def tags(path: str) -> list[str] | None:
        name = logical_name(path)
        first = exact.get(name)
        if globs:
            found = combined.fullmatch(name)
            if found is not None and found.lastindex is not None:
                glob = globs[found.lastindex - 1]
                first = glob if first is None else min(first, glob)
        return None if first is None else _with_base_name(rules[first].tags, name)

    return tags


def known_names(rules: Iterable[FileRule] = DEFAULT_FILE_RULES) -> list[str]:
    """The file names the rules read, without their directories, in rule order; a name
    that a wildcard name of the list covers is left out (``screen-*.txt`` covers
    ``screen-n-cpu.txt``). For messages about a build with nothing to read."""
    names = list(dict.fromkeys(PurePosixPath(rule.pattern).name for rule in rules))
    wild = [name for name in names if "*" in name or "?" in name]
    return [
        name
        for name in names
        if name in wild or not any(fnmatchcase(name, pattern) for pattern in wild)
    ]


CONTENT_FORMATS: tuple[tuple[str, ...], ...] = (("oslofmt",), ("console",), ("syslog",))
"""The tags a file no rule names may get from its content, tried in this order: oslo.log
first, since systemd journal lines of oslo services also parse as syslog."""


def content_tags(lines: Sequence[str]) -> tuple[str, ...]:
    """The tags of the first format of ``CONTENT_FORMATS`` that parses most events of a
    file's first ``lines``; none (one event per line) when no format does."""
    sample = [line for line in lines if line.strip()]
    for tags in CONTENT_FORMATS:
        events = [event for _, event in split_lines(sample, tags, keep_debug=True)]
        parsed = sum(PARSE_FAILURE_TAG not in event["tags"] for event in events)
        if events and parsed * 2 > len(events):
            return tags
    return ()


def _with_base_name(tags: Sequence[str], name: str) -> list[str]:
    base = name.rsplit("/", 1)[-1]
    return [*tags, base] if base not in tags else list(tags)


def rules_in_force(files: tuple[FileRule, ...] | None) -> tuple[FileRule, ...]:
    """The file rules in force: bot.yaml's ``files`` when it has them, else the default list."""
    return files if files is not None else DEFAULT_FILE_RULES
