"""Reading subunit streams (real ones, damaged ones, garbage) and matching signatures'
test_ids against the failed tests, as a signature with test_ids is filtered in a build."""

from __future__ import annotations

import gzip
import io
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
import subunit  # type: ignore[import-untyped]

from recheck.logs import testresults as tr
from recheck.logs.testresults import (
    NO_STREAM,
    NONE_FAILED,
    SubunitResults,
    build_test_results,
    failed_tests,
    find_subunit,
    matching_failures,
    skip_reason,
)
from recheck.query.signatures import load_signatures

SUBUNIT = Path(__file__).parents[1] / "fixtures" / "subunit"
PLUGIN = "neutron_tempest_plugin.scenario.test_dns_integration."
# The failed tests of tempest-failures.subunit: the rows `subunit2csv` prints as "failure".
FIXTURE_FAILED = {
    f"setUpClass ({PLUGIN}DNSIntegrationDomainPerProjectTests)",
    f"{PLUGIN}DNSIntegrationTests.test_fip[id-a8f2fade-8d5c-40f9-80f0-3de4b8d91985]",
}
SERVER_WITH_FIP = (
    f"{PLUGIN}DNSIntegrationTests.test_server_with_fip[id-850ee378-4b5a-4f71-960e-0e7b12e03a34]"
)


def read(data: bytes) -> SubunitResults:
    return failed_tests(io.BytesIO(data))


def fixture(name: str) -> bytes:
    return (SUBUNIT / name).read_bytes()


# --- real streams ---------------------------------------------------------------------

# Expected numbers from python-subunit 1.4.6's own tools, run once on each file:
# `subunit-stats < FILE` (Total / Failed / Skipped tests) and `subunit2csv < FILE` (the
# status column); for the v1 file `subunit-1to2 < FILE | subunit-stats`. subunit-stats
# counts xfail and uxsuccess as passed and subunit2csv prints uxsuccess as "success";
# the one uxsuccess of tempest-failures is known from derive.py, which made it.
REAL_STREAMS = [
    # file, subunit-stats total, failed, skipped, our counts by final status
    ("all_skips.subunit", 7, 0, 7, {"skip": 7}),
    ("successful.subunit", 21, 0, 1, {"skip": 1, "success": 20}),
    ("tempest-testrepository.subunit", 6, 0, 1, {"skip": 1, "success": 5}),
    ("tempest.subunit", 1, 0, 0, {"success": 1}),
    ("tempest-failures.subunit", 6, 2, 0, {"fail": 2, "success": 2, "uxsuccess": 1, "xfail": 1}),
    ("tempest-failures.subunit.gz", 6, 2, 0, {"fail": 2, "success": 2, "uxsuccess": 1, "xfail": 1}),
    ("tempest-failures.v1.subunit", 6, 2, 0, {"fail": 2, "success": 2, "uxsuccess": 1, "xfail": 1}),
]


@pytest.mark.parametrize(("name", "total", "failed", "skipped", "counts"), REAL_STREAMS)
def test_real_streams_count_as_python_subunit_tools_do(
    name: str, total: int, failed: int, skipped: int, counts: dict[str, int]
) -> None:
    with open(SUBUNIT / name, "rb") as stream:
        results = failed_tests(stream)

    assert results.problems == ()
    assert results.format == ("v1" if ".v1." in name else "v2")
    assert results.counts == counts
    assert sum(results.counts.values()) == total
    assert len(results.failed) == failed
    assert results.counts.get("skip", 0) == skipped
    assert results.incomplete == frozenset()


def test_failed_means_status_fail_only() -> None:
    results = read(fixture("tempest-failures.subunit"))

    assert results.failed == FIXTURE_FAILED
    # The uxsuccess and xfail tests of the fixture are not failures.
    assert not any("test_port_on_special_network" in t for t in results.failed)
    assert not any("test_port_with_publishing_subnet" in t for t in results.failed)


def test_a_test_run_twice_keeps_its_last_status() -> None:
    stream = v2_stream(("a.T.test_x", "fail"), ("a.T.test_y", "success"), ("a.T.test_x", "success"))

    assert read(stream).failed == frozenset()
    assert read(v2_stream(("a.T.test_x", "success"), ("a.T.test_x", "fail"))).failed == {
        "a.T.test_x"
    }


def v2_stream(*tests: tuple[str, str]) -> bytes:
    """A subunit v2 stream written by python-subunit: each test started then ended."""
    out = io.BytesIO()
    writer = subunit.StreamResultToBytes(out)
    for test_id, status in tests:
        writer.status(test_id=test_id, test_status="inprogress")
        writer.status(test_id=test_id, test_status=status)
    return out.getvalue()


# --- damaged streams ------------------------------------------------------------------


def test_truncated_stream_keeps_the_tests_read_so_far() -> None:
    # Cut at byte 40000: inside the 46 KB log attachment of the last test. python-subunit
    # agrees on what was read: `head -c 40000 tempest-failures.subunit | subunit-stats`
    # says Total 7, Failed 4 = our 2 failed + the unfinished test + its parser's own
    # "subunit.parser" pseudo-test (neither of which is a test that failed).
    results = read(fixture("tempest-failures.subunit")[:40000])

    assert results.failed == FIXTURE_FAILED
    assert results.incomplete == {SERVER_WITH_FIP}
    assert results.counts == {"fail": 2, "success": 1, "uxsuccess": 1, "xfail": 1}
    assert results.readable
    assert results.problems == (
        "the stream ends in the middle of a packet at byte 40000: truncated",
        "1 test(s) started but never finished (the stream ends first: a killed or timed-out run?)",
    )


def test_a_stream_cut_anywhere_never_raises_and_never_invents_a_failure() -> None:
    data = fixture("tempest-failures.subunit")
    for cut in range(0, len(data), 499):
        results = read(data[:cut])
        assert results.failed <= FIXTURE_FAILED
        assert results.problems, cut


def test_truncated_v1_stream_leaves_the_running_test_incomplete_not_failed() -> None:
    # python-subunit reports "lost connection during test" as an error; a v2 stream cut
    # at the same place reads as the test never finishing, and so does this.
    data = fixture("tempest-failures.v1.subunit")
    cut = data.index(b"test: " + SERVER_WITH_FIP.encode()) + 200

    results = read(data[:cut])

    assert results.format == "v1"
    assert results.failed == FIXTURE_FAILED
    assert results.incomplete == {SERVER_WITH_FIP}


def test_a_corrupt_packet_is_reported_and_the_packets_after_it_are_read() -> None:
    data = bytearray(fixture("tempest-failures.subunit"))
    start = data.index(b"test_port_on_special_network")  # its first (inprogress) packet
    data[start] ^= 0xFF

    results = read(bytes(data))

    assert results.failed == FIXTURE_FAILED
    assert results.counts["uxsuccess"] == 1  # its later packets were read
    assert len(results.problems) == 1
    assert results.problems[0].startswith("corrupt packet at byte ")
    assert "Bad checksum" in results.problems[0]


def test_garbage_in_the_middle_is_skipped_and_reported() -> None:
    data = fixture("tempest-failures.subunit")
    # "₳" is e2 82 b3: its last byte is a packet's first, but inside a UTF-8 character.
    junk = "Traceback (most recent call last):\n  ó ₳ oops\n".encode() * 10
    boundary = data.index(b"\xb3", data.index(b"test_server_with_fip") + 1)
    while data[boundary + 1] >> 4 != 2:  # the next packet starts here
        boundary = data.index(b"\xb3", boundary + 1)

    results = read(data[:boundary] + junk + data[boundary:])

    assert results.failed == FIXTURE_FAILED
    assert sum(results.counts.values()) == 6
    assert results.problems == (
        f"skipped {len(junk)} bytes of non-subunit content (the first at byte {boundary})",
    )


def test_a_packet_length_shorter_than_its_header_does_not_read_the_rest_of_the_file() -> None:
    # python-subunit would read(negative): the whole rest of the file, in memory.
    bad = b"\xb3\x20\x00\x03\x00\x00"
    results = read(bad + fixture("tempest-failures.subunit"))

    assert results.failed == FIXTURE_FAILED
    assert results.problems[0] == (
        "corrupt packet at byte 6: its length is smaller than its header"
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty stream"),
        (
            b"<html><head><title>404 Not Found</title></head></html>\n",
            "not a subunit stream: no test results in it; it starts with "
            "b'<html><head><title>404 Not Found</title></head></html>\\n'",
        ),
        (
            b"2020-01-13 10:21:04.113 | error: things went wrong\n",
            "not a subunit stream: no test results in it; it starts with "
            "b'2020-01-13 10:21:04.113 | error: things went wrong\\n'",
        ),
    ],
    ids=["empty", "html", "text-log"],
)
def test_non_subunit_content_is_reported_clearly(data: bytes, problem: str) -> None:
    results = read(data)

    assert results.problems[0] == problem
    assert results.failed == frozenset()
    assert not results.readable


def test_v1_stream_with_stray_lines_reads_its_tests() -> None:
    stream = b"Running tests\ntest: a.b\nnot a directive\nerror: a.b\ntest: c\nfailure: c\n"

    results = read(stream)

    assert results.format == "v1"
    assert results.failed == {"a.b", "c"}  # v1 errors are failures too
    assert results.problems == ("skipped 30 bytes of non-subunit content",)


def test_random_bytes_are_not_subunit() -> None:
    noise = random.Random(7).randbytes(300_000)

    results = read(noise)

    assert not results.readable
    assert results.problems[0].startswith("not a subunit stream: no test results in it")


def test_a_stream_that_starts_like_subunit_but_stops_at_once_says_so() -> None:
    results = read(fixture("tempest-failures.subunit")[:5])

    assert results.problems == (
        "no test results: the stream's first packet is unreadable",
        "the stream ends in the middle of a packet at byte 5: truncated",
    )


def test_huge_non_subunit_input_is_given_up_on_quickly() -> None:
    start = time.monotonic()
    not_subunit = read(b"x" * 50_000_000)
    junk_tail = read(fixture("tempest-failures.subunit") + b"x" * 50_000_000)

    assert time.monotonic() - start < 30
    assert not not_subunit.readable
    assert junk_tail.failed == FIXTURE_FAILED
    assert "more than 4 MiB of non-subunit content" in junk_tail.problems[0]


def test_a_read_error_ends_the_stream_with_a_problem() -> None:
    class Failing(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
            chunk = self._data.read(min(len(buffer), 1000))
            if not chunk:
                raise OSError(5, "Input/output error")
            buffer[: len(chunk)] = chunk
            return len(chunk)

    data = fixture("tempest-failures.subunit")[:30000]
    results = failed_tests(io.BufferedReader(Failing(data), 1000))

    assert results.failed == FIXTURE_FAILED
    assert any(p.startswith("read error after 30000 bytes") for p in results.problems)


# --- gzip -----------------------------------------------------------------------------


def test_gzip_is_recognised_by_its_magic_bytes_not_the_name() -> None:
    plain = fixture("tempest-failures.subunit")
    compressed = fixture("tempest-failures.subunit.gz")
    assert compressed[:2] == b"\x1f\x8b"
    files: dict[str, bytes | None] = {"testrepository.subunit.gz": plain}  # served decompressed

    assert read(compressed).failed == read(plain).failed == FIXTURE_FAILED
    results = build_test_results(files, opener(files))
    assert results is not None
    assert results.failed == FIXTURE_FAILED
    assert results.problems == ()


def test_truncated_gzip_keeps_what_was_decompressed() -> None:
    compressed = fixture("tempest-failures.subunit.gz")

    results = read(compressed[:5000])

    assert results.failed == FIXTURE_FAILED
    assert any(p.startswith("the compressed stream is truncated after") for p in results.problems)


def test_corrupt_gzip_is_a_problem_not_an_exception() -> None:
    compressed = fixture("tempest-failures.subunit.gz")
    corrupt = compressed[:6000] + bytes(200) + compressed[6200:]

    results = read(corrupt)

    assert results.failed == FIXTURE_FAILED
    assert any(p.startswith("the compressed stream is corrupt") for p in results.problems)
    assert not read(b"\x1f\x8b" + b"not really gzip").readable


def test_concatenated_gzip_members_are_read_as_one_stream() -> None:
    one = v2_stream(("a.T.test_x", "fail"))
    two = v2_stream(("b.T.test_y", "fail"))

    results = read(gzip.compress(one) + gzip.compress(two))

    assert results.failed == {"a.T.test_x", "b.T.test_y"}


# --- matching a signature's test ids ----------------------------------------------------

TEMPEST = "tempest.api.compute.servers.test_device_tagging.TaggedAttachmentsTest"
FULLSTACK = "neutron.tests.fullstack.test_l3_agent.TestHAL3Agent"
MATCH_TABLE = [
    # signature's test id, failed test id, matches?  (ids shaped like tempest's / neutron's)
    # the exact id
    (f"{TEMPEST}.test_tagged_attachment", f"{TEMPEST}.test_tagged_attachment", True),
    # the failed id without its [...] attributes (what elastic-recheck compared with)
    (
        f"{TEMPEST}.test_tagged_attachment",
        f"{TEMPEST}.test_tagged_attachment[id-3e41c782-2a89-4922-a9d2-9a188c4e7c7c,volume]",
        True,
    ),
    # a signature may also keep the attributes: then they must be the same
    (f"{TEMPEST}.test_tagged_attachment[id-1]", f"{TEMPEST}.test_tagged_attachment[id-1]", True),
    (f"{TEMPEST}.test_tagged_attachment[id-1]", f"{TEMPEST}.test_tagged_attachment[id-2]", False),
    # a class or a module names every test in it
    (TEMPEST, f"{TEMPEST}.test_tagged_attachment[id-3e41c782]", True),
    ("tempest.api.compute.servers", f"{TEMPEST}.test_tagged_attachment[id-3e41c782]", True),
    # ... but only at a "." boundary
    (f"{TEMPEST}.test_tagged_attach", f"{TEMPEST}.test_tagged_attachment", False),
    ("tempest.api.compute.serv", f"{TEMPEST}.test_tagged_attachment", False),
    # a more specific signature id does not match a less specific failure
    (f"{TEMPEST}.test_tagged_attachment", TEMPEST, False),
    (f"{TEMPEST}.test_tagged_attachment_2", f"{TEMPEST}.test_tagged_attachment", False),
    # testscenarios variants of a test (neutron), and attributes before the scenario
    (f"{FULLSTACK}.test_ha_router", f"{FULLSTACK}.test_ha_router(VXLAN and l2pop)", True),
    (f"{FULLSTACK}.test_ha_router(VLANs)", f"{FULLSTACK}.test_ha_router(VLANs)", True),
    (f"{FULLSTACK}.test_ha_router(VLANs)", f"{FULLSTACK}.test_ha_router(VXLAN)", False),
    (f"{FULLSTACK}.test_ha_router(VLANs)", f"{FULLSTACK}.test_ha_router[id-9](VLANs)", True),
    # a failed class fixture: the class and its module match, its test methods do not
    (TEMPEST, f"setUpClass ({TEMPEST})", True),
    ("tempest.api.compute", f"tearDownClass ({TEMPEST})", True),
    (f"setUpClass ({TEMPEST})", f"setUpClass ({TEMPEST})", True),
    (f"{TEMPEST}.test_tagged_attachment", f"setUpClass ({TEMPEST})", False),
    # case matters; surrounding spaces do not
    (f"{TEMPEST}.TEST_TAGGED_ATTACHMENT", f"{TEMPEST}.test_tagged_attachment", False),
    (f"  {TEMPEST}.test_tagged_attachment ", f"{TEMPEST}.test_tagged_attachment", True),
]


@pytest.mark.parametrize(("signature_id", "failed_id", "expected"), MATCH_TABLE)
def test_test_id_matching_rule(signature_id: str, failed_id: str, expected: bool) -> None:
    assert tr.test_matches([signature_id], [failed_id]) is expected


def test_any_signature_id_against_any_failed_test() -> None:
    failed = [f"{TEMPEST}.test_other[id-1]", f"{FULLSTACK}.test_ha_router(VXLAN)"]

    assert tr.test_matches(["x.y", f"{FULLSTACK}.test_ha_router"], failed)
    assert not tr.test_matches(["x.y", "x.z"], failed)
    assert not tr.test_matches([], failed)
    assert not tr.test_matches(["x.y"], [])
    assert matching_failures([TEMPEST, FULLSTACK], failed) == sorted(failed)


# --- finding a build's streams and deciding whether a signature is evaluated ----------


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["job-output.txt", "testrepository.subunit"], ["testrepository.subunit"]),
        (["logs/testrepository.subunit.gz", "logs/x.txt"], ["logs/testrepository.subunit.gz"]),
        (
            ["testrepository.subunit", "testrepository.subunit.gz"],
            ["testrepository.subunit"],  # the same stream twice: the plain one is read
        ),
        (
            [
                "compute1/logs/testrepository.subunit",
                "controller/logs/testrepository.subunit",
                "logs/testrepository.subunit",
                "testrepository.subunit.gz",
            ],
            [
                "testrepository.subunit.gz",
                "logs/testrepository.subunit",
                "controller/logs/testrepository.subunit",
                "compute1/logs/testrepository.subunit",
            ],
        ),
        (["testrepository.subunit.txt", "subunit", "tempest/x.subunit.log"], []),
        ([], []),
    ],
)
def test_find_subunit(paths: list[str], expected: list[str]) -> None:
    assert find_subunit(paths) == expected
    assert set(tr.SUBUNIT_PATHS) >= {"testrepository.subunit", "logs/testrepository.subunit"}


def opener(files: dict[str, bytes | None]) -> Callable[[str], BinaryIO]:
    def open_file(path: str) -> BinaryIO:
        data = files[path]
        if data is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        return io.BytesIO(data)

    return open_file


def test_build_results_merge_every_stream_and_name_their_problems() -> None:
    files: dict[str, bytes | None] = {
        "testrepository.subunit": v2_stream(("a.T.test_x", "fail"), ("a.T.test_y", "success")),
        "logs/testrepository.subunit.gz": gzip.compress(
            fixture("tempest-failures.subunit")[:40000]
        ),
        "job-output.txt": b"not read",
    }

    results = build_test_results(files, opener(files))

    assert results is not None
    assert results.failed == FIXTURE_FAILED | {"a.T.test_x"}
    assert results.incomplete == {SERVER_WITH_FIP}
    assert results.counts == {"fail": 3, "success": 2, "uxsuccess": 1, "xfail": 1}
    assert results.problems[0].startswith("logs/testrepository.subunit.gz: the stream ends")
    assert build_test_results(["job-output.txt"], opener({})) is None


def test_a_stream_that_cannot_be_opened_is_a_problem() -> None:
    files: dict[str, bytes | None] = {"testrepository.subunit": None}

    results = build_test_results(files, opener(files))

    assert results is not None
    assert not results.readable
    assert results.problems[0].startswith("testrepository.subunit: cannot open:")


def test_skip_reasons_for_the_real_signatures_with_test_ids(real_queries_dir: Path) -> None:
    signatures = {s.bug: s for s in load_signatures(real_queries_dir)[0]}
    tagged = signatures["1775947"]  # tempest ... TaggedAttachmentsTest.test_tagged_attachment
    fullstack = signatures["1798475"]  # neutron fullstack TestHAL3Agent test
    plain = signatures["1260311"]  # no test_ids: always evaluated
    failed_here = SubunitResults(
        failed=frozenset({f"{TEMPEST}.test_tagged_attachment[id-3e41c782,volume]"}),
        format="v2",
    )
    garbage = read(b"<html>502 Bad Gateway</html>")

    assert skip_reason(tagged.test_ids, failed_here) is None
    assert skip_reason(fullstack.test_ids, failed_here) == NONE_FAILED
    assert skip_reason(fullstack.test_ids, None) == NO_STREAM
    assert skip_reason(plain.test_ids, None) is None
    assert skip_reason(tagged.test_ids, garbage) == (
        "no subunit stream in the build that could be read (not a subunit stream: no test "
        "results in it; it starts with b'<html>502 Bad Gateway</html>')"
    )


# --- every test's result, and the fast reader ---------------------------------------------


@pytest.mark.parametrize(
    "name", ["tempest-failures.subunit", "tempest-failures.subunit.gz", "successful.subunit"]
)
def test_the_fast_reader_reads_what_python_subunit_reads(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = read(fixture(name))
    # python-subunit's parser alone: the fast reader hands everything over at once.
    monkeypatch.setattr(tr, "read_packets", lambda read, sink: (0, b""))
    slow = read(fixture(name))
    assert fast == slow and len(fast.runs) == sum(fast.counts.values())


def test_every_test_has_its_status_timing_worker_and_a_failure_its_attachments() -> None:
    runs = {run.test_id: run for run in read(fixture("tempest-failures.subunit")).runs}
    fip = runs[f"{PLUGIN}DNSIntegrationTests.test_fip[id-a8f2fade-8d5c-40f9-80f0-3de4b8d91985]"]
    assert (fip.status, fip.worker) == ("fail", "worker-1")
    assert fip.duration is not None and 6.7 < fip.duration < 6.8  # 08:10:23.66 -> 08:10:30.40
    assert [name for name, _ in fip.details] == ["pythonlogging:''"]
    assert "DNSIntegrationTests:test_fip" in fip.details[0][1]
    assert runs[SERVER_WITH_FIP].details == () and runs[SERVER_WITH_FIP].worker == "worker-1"


def test_a_huge_attachment_keeps_its_end_and_a_damaged_packet_hands_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from subunit_streams import stream_bytes

    ids = [f"pkg.Test.test_{i}" for i in range(50)]
    huge = "x" * 100_000 + "the end"
    data = stream_bytes(ids, failed=ids[:1], traceback=huge)
    [first] = [r for r in read(data).runs if r.test_id == ids[0]]
    assert first.details[0][0] == "traceback" and first.details[0][1].endswith("the end")
    assert sum(len(text) for _, text in first.details) <= tr.DETAILS_MAX_CHARS + 100
    # A flipped byte in the middle: the fast reader stops there, python-subunit reports
    # the corrupt packet and reads on; the tests of the other packets are all there.
    middle = len(data) // 2
    damaged = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    results = read(damaged)
    assert any("corrupt packet" in p for p in results.problems)
    assert len(results.runs) >= 48
