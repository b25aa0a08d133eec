"""Which files of a build are split, and with which tags (recheck.logs.logfiles)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recheck.logs.logfiles import (
    DEFAULT_FILE_RULES,
    FileRule,
    file_tagger,
    file_tags,
    logical_name,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
OPENDEV_LIST = FIXTURES / "reference" / "opendev-download-list.yaml"

# Files OpenDev lists that are read for something else than events (see logfiles.py).
NOT_SPLIT = {
    "testrepository.subunit",
    "logs/testrepository.subunit",
    "zuul-info/inventory.yaml",
    "controller/logs/performance.json",
}


def _opendev_entries() -> list[tuple[str, list[str]]]:
    data = yaml.safe_load(OPENDEV_LIST.read_text())
    return [(entry["name"], entry["tags"]) for entry in data["files"]]


@pytest.mark.parametrize(
    ("name", "tags"), [entry for entry in _opendev_entries() if entry[0] not in NOT_SPLIT]
)
def test_every_opendev_file_gets_opendevs_tags_plus_its_base_name(
    name: str, tags: list[str]
) -> None:
    base = name.rsplit("/", 1)[-1]
    expected = tags if base in tags else [*tags, base]
    assert file_tags(name) == expected
    assert file_tags(name + ".gz") == expected  # logs servers store most files gzipped


@pytest.mark.parametrize("name", sorted(NOT_SPLIT))
def test_metadata_and_binary_files_of_opendevs_list_are_not_split(name: str) -> None:
    assert file_tags(name) is None


@pytest.mark.parametrize(
    ("path", "tags"),
    [
        # Jenkins era: console.html at the root, service logs under logs/.
        ("console.html", ["console", "console.html"]),
        ("console.html.gz", ["console", "console.html"]),
        ("logs/screen-n-cpu.txt.gz", ["screen", "oslofmt", "devstack", "screen-n-cpu.txt"]),
        ("logs/syslog.txt", ["syslog", "syslog.txt"]),
        ("logs/devstacklog.txt.gz", ["console", "console.html", "devstack", "devstacklog.txt"]),
        ("logs/libvirt/libvirtd.txt.gz", ["libvirt", "libvirtd.txt"]),
        (
            "logs/apache/keystone_access.txt",
            ["apachecombined", "keystone_access.txt"],
        ),
        ("logs/apache/horizon_error.txt.gz", ["apacheerror", "horizon_error.txt"]),
        # grenade: the old and the new side of the upgrade.
        ("logs/old/screen-n-cpu.txt", ["screen", "oslofmt", "devstack", "screen-n-cpu.txt"]),
        ("logs/new/screen-q-agt.txt", ["screen", "oslofmt", "devstack", "screen-q-agt.txt"]),
        ("logs/new/syslog.txt.gz", ["syslog", "syslog.txt"]),
        # Zuul v3 nodes other than controller/compute1, and devstack's systemd logs.
        (
            "compute2/logs/screen-n-cpu.txt",
            ["screen", "oslofmt", "devstack", "screen-n-cpu.txt"],
        ),
        (
            "logs/devstack@c-vol.service.log.txt",
            ["screen", "oslofmt", "devstack", "devstack@c-vol.service.log.txt"],
        ),
        # A specific OpenDev rule wins over the generic screen-* one.
        (
            "controller/logs/screen-n-cpu.txt",
            ["screen", "oslofmt", "devstack", "nova", "screen-n-cpu.txt"],
        ),
    ],
)
def test_older_layouts_are_indexed(path: str, tags: list[str]) -> None:
    assert file_tags(path) == tags


@pytest.mark.parametrize(
    "path",
    [
        "controller/logs/etc/nova/nova.conf.txt.gz",
        "logs/screen-n-cpu.txt/extra",  # `*` stays inside one directory
        "logs/deeper/screen-n-cpu.txt",
        "xjob-output.txt",
        "job-output.json",
        "zuul-info/zuul-info.controller.txt",
    ],
)
def test_files_no_rule_selects_are_not_indexed(path: str) -> None:
    assert file_tags(path) is None


def test_rules_are_a_plain_list_that_can_be_replaced() -> None:
    rules = [FileRule("**/*.log", ("oslofmt",))]
    assert file_tags("a/b/nova-compute.log.gz", rules) == ["oslofmt", "nova-compute.log"]
    assert file_tags("nova-compute.log", rules) == ["oslofmt", "nova-compute.log"]
    assert file_tags("job-output.txt", rules) is None
    assert isinstance(DEFAULT_FILE_RULES, tuple)


def test_the_first_rule_that_names_a_file_wins_named_or_wildcard() -> None:
    named, wild = FileRule("logs/a.txt", ("named",)), FileRule("logs/*.txt", ("wild",))
    later = FileRule("**/a.txt", ("later",))
    assert file_tags("logs/a.txt", [named, wild, later]) == ["named", "a.txt"]
    assert file_tags("logs/a.txt", [wild, named, later]) == ["wild", "a.txt"]
    assert file_tags("x/logs/a.txt", [wild, named, later]) == ["later", "a.txt"]
    # All at once, as a build is tagged, is the rules tried one by one.
    paths = ["job-output.txt", "controller/logs/screen-n-cpu.txt.gz", "logs/screen-x.txt",
             "n1/logs/syslog.txt", "logs/new/screen-n-api.txt", "logs/apache/a_error.txt",
             "logs/devstack@n-cpu.service.log.txt", "a/b/c.txt",
             "compute1/logs/syslog.txt"]  # fmt: skip
    tagger = file_tagger()
    for path in paths:
        name = logical_name(path)
        first = next((rule for rule in DEFAULT_FILE_RULES if rule.matches(name)), None)
        base = name.rsplit("/", 1)[-1]
        expected = None if first is None else list(dict.fromkeys([*first.tags, base]))
        assert tagger(path) == expected, path
    assert sum(tagger(path) is not None for path in paths) == 8


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("job-output.txt.gz", "job-output.txt"),
        ("/controller/logs/syslog.txt", "controller/logs/syslog.txt"),
        ("logs\\screen-n-api.txt", "logs/screen-n-api.txt"),
        ("archive.tar.gz.gz", "archive.tar.gz"),
    ],
)
def test_logical_name(path: str, name: str) -> None:
    assert logical_name(path) == name
