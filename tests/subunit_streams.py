"""Tempest-like subunit v2 streams written with python-subunit's StreamResultToBytes.

The real streams in tests/fixtures/subunit hold a handful of tests; tests and
benchmarks (``benchmarks/tests_history.py``) need runs of thousands, shaped like a real
tempest run: ``stestr`` workers (``worker-N`` tags) each running tests one after the
other, an ``inprogress`` packet at each test's start, a ``pythonlogging:''`` attachment
with the test's log lines, the final status at its end, and for a failed test a
``traceback`` attachment, as tempest's runs record them.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import subunit  # type: ignore[import-untyped]

__all__ = ["TRACEBACK", "stream_bytes", "tempest_ids"]

_AREAS = (
    ("compute.servers", "ServersTestJSON", "ServerActionsTestJSON", "ServerRescueTestJSON"),
    ("compute.volumes", "AttachVolumeTestJSON", "VolumesGetTestJSON"),
    ("network", "PortsTestJSON", "NetworksTestJSON", "FloatingIPTestJSON"),
    ("image.v2", "ImagesTest", "BasicOperationsImagesTest"),
    ("volume", "VolumesActionsTest", "VolumesSnapshotTestJSON", "VolumesBackupsTest"),
    ("identity.admin.v3", "UsersV3TestJSON", "ProjectsTestJSON"),
)
_VERBS = ("create", "delete", "list", "update", "show", "attach", "detach", "rebuild", "resize")
_OBJECTS = ("server", "volume", "port", "image", "snapshot", "network", "user", "backup")

TRACEBACK = """Traceback (most recent call last):
  File "/opt/stack/tempest/tempest/common/waiters.py", line 96, in wait_for_server_status
    raise lib_exc.TimeoutException(message)
tempest.lib.exceptions.TimeoutException: Request timed out
Details: (ServersTestJSON:test_create_server) Server {server} failed to reach ACTIVE status
and task state "None" within the required time (196 s). Current status: BUILD.
"""


def tempest_ids(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct test ids shaped like tempest's (``...test_x[id-<uuid>,smoke]``)."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        area, *classes = rng.choice(_AREAS)
        cls = rng.choice(classes)
        name = f"test_{rng.choice(_VERBS)}_{rng.choice(_OBJECTS)}_{rng.randrange(10_000)}"
        tags = f"id-{uuid.UUID(int=rng.getrandbits(128))}" + (
            ",smoke" if rng.random() < 0.1 else ""
        )
        module = f"test_{cls.removesuffix('JSON').removesuffix('Test').lower()}"
        found[f"tempest.api.{area}.{module}.{cls}.{name}[{tags}]"] = None
    return list(found)


def stream_bytes(
    test_ids: Sequence[str],
    *,
    failed: Iterable[str] = (),
    skipped: Iterable[str] = (),
    workers: int = 4,
    start: datetime | None = None,
    seed: int = 0,
    log_bytes: int = 200,
    traceback: str = TRACEBACK,
) -> bytes:
    """A subunit v2 stream running ``test_ids`` on ``workers`` workers.

    Each worker runs its share one after the other (0.1 to 30 s each); ``failed`` tests
    end with ``fail`` and a traceback, ``skipped`` ones with ``skip`` and a reason, the
    others with ``success``. Every test that runs attaches ``log_bytes`` of log lines.
    ``traceback`` is a failed test's traceback (``{server}`` becomes a random uuid).
    """
    rng = random.Random(seed)
    failed, skipped = set(failed), set(skipped)
    clock = [start or datetime(2026, 1, 1, tzinfo=UTC)] * workers
    out = io.BytesIO()
    writer = subunit.StreamResultToBytes(out)
    log_line = b"2026-01-01 00:00:00,000 1234 INFO [tempest.lib.common.rest_client] Request\n"
    log = (log_line * (log_bytes // len(log_line) + 1))[:log_bytes]
    for test_id in test_ids:
        worker = rng.randrange(workers)
        began = clock[worker]
        ended = began + timedelta(seconds=0.0 if test_id in skipped else rng.uniform(0.1, 30))
        clock[worker] = ended + timedelta(milliseconds=rng.randrange(1, 50))
        writer.status(test_id=test_id, test_status="inprogress", timestamp=began)
        if test_id in skipped:
            writer.status(
                test_id=test_id,
                file_name="reason",
                file_bytes=b"Feature not enabled.",
                mime_type="text/plain;charset=utf8",
                eof=True,
                timestamp=ended,
            )
        elif log:
            writer.status(
                test_id=test_id,
                file_name="pythonlogging:''",
                file_bytes=log,
                mime_type="text/plain;charset=utf8",
                eof=True,
                timestamp=ended,
            )
        if test_id in failed:
            writer.status(
                test_id=test_id,
                file_name="traceback",
                file_bytes=traceback.replace(
                    "{server}", str(uuid.UUID(int=rng.getrandbits(128)))
                ).encode(),
                mime_type='text/x-traceback;charset="utf8";language="python"',
                eof=True,
                timestamp=ended,
            )
        status = "fail" if test_id in failed else "skip" if test_id in skipped else "success"
        writer.status(
            test_id=test_id, test_status=status, test_tags={f"worker-{worker}"}, timestamp=ended
        )
    return out.getvalue()
