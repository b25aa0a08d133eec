"""IRC notices against a real IRC server (ngircd started per test on a free port)."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ircd import WAIT, IrcClient, Ngircd, TcpGate
from ircd import ircd as ircd  # the fixture
from launchpad_fake import FakeLaunchpad

from recheck.bot.irc.notifier import IrcNotifier, notifiers_from_config
from recheck.bot.irc.text import payload_budget, split_message
from recheck.bot.launchpad import LaunchpadSettings, LaunchpadTracker
from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.config.files import parse_config
from recheck.config.irc import ChannelRule, IrcSettings
from recheck.models import BugInfo

URL = "https://review.opendev.org/c/openstack/nova/+/98765"


class Tracker:
    """A BugTracker answering from a dict; None for bugs it does not know."""

    def __init__(self, bugs: dict[str, BugInfo]) -> None:
        self.bugs = bugs

    def url(self, bug: str) -> str:
        return f"https://bugs.launchpad.net/bugs/{bug}"

    def lookup(self, bug: str) -> BugInfo | None:
        return self.bugs.get(bug)


TRACKER = Tracker(
    {
        "1458945": BugInfo(
            "1458945", "Use graduated oslo.policy", "Fix Released", ("sahara", "neutron")
        ),
    }
)

CHANNELS = (
    ChannelRule("#nova", frozenset({"nova"}), frozenset({"positive", "negative"})),
    ChannelRule("#neutron", frozenset({"neutron"}), frozenset({"positive"})),
    ChannelRule("#qa", frozenset({"all"}), frozenset({"positive"})),
)


def settings(port: int, **changes: object) -> IrcSettings:
    base = IrcSettings(
        server="127.0.0.1",
        port=port,
        tls=False,
        channels=CHANNELS,
        nick="recheck",
        username="recheck",
        account="recheck",
        rate=20.0,
        burst=5,
        reconnect_min=0.05,
        reconnect_max=0.5,
        nick_reclaim=0.2,
        keepalive=30.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def report(
    change: str = "98765",
    queue: str = "gate",
    jobs: tuple[JobOutcome, ...] = (),
    project: str = "openstack/nova",
) -> FailureReport:
    return FailureReport(
        event_id=f"event-{change}",
        change=change,
        patchset="3",
        project=project,
        branch="master",
        queue=queue,
        url=URL if change == "98765" else f"https://review.opendev.org/{change}",
        jobs=jobs
        or (
            JobOutcome("tempest-full", "https://logs.example.org/1", "FAILURE", bugs=("1458945",)),
        ),
    )


@pytest.fixture
def start_bot() -> Iterator[object]:
    started: list[IrcNotifier] = []

    def start(irc: IrcSettings, tracker: object = TRACKER) -> IrcNotifier:
        notifier = IrcNotifier(irc, tracker)  # type: ignore[arg-type]
        notifier.start()
        started.append(notifier)
        return notifier

    yield start
    for notifier in started:
        notifier.close()


def listener(port: int, *channels: str, nick: str = "watcher") -> IrcClient:
    client = IrcClient(port, nick)
    client.join(*channels)
    return client


def wait_bot_joined(client: IrcClient, channel: str, nick: str = "recheck") -> None:
    client.wait_line(lambda p: p[1] == "JOIN" and p[0].split("!")[0] == nick and p[2] == channel)


def texts(client: IrcClient, channel: str, count: int) -> list[str]:
    return [message.text for message in client.wait_messages(channel, count)]


def test_messages_are_routed_by_project_and_event(ircd: Ngircd, start_bot) -> None:
    client = listener(ircd.port, "#nova", "#neutron", "#qa")
    bot = start_bot(settings(ircd.port))
    wait_bot_joined(client, "#qa")
    jobs = (
        JobOutcome("tempest-full", "https://logs.example.org/1", "FAILURE", bugs=("1458945",)),
        JobOutcome("grenade", "https://logs.example.org/2", "FAILURE"),
        JobOutcome("nova-next", "https://logs.example.org/3", "FAILURE", voting=False),
        JobOutcome("nova-ceph", "https://logs.example.org/4", "FAILURE", logs_missing=True),
    )
    bot.notify(report(jobs=jobs))
    positive = (
        f"nova change {URL} failed tempest-full because of bug 1458945 "
        "(Use graduated oslo.policy) https://bugs.launchpad.net/bugs/1458945"
    )
    assert texts(client, "#nova", 3) == [
        positive,
        f"nova change {URL} failed grenade in the gate queue with an unrecognized error",
        f"nova change {URL}: logs never appeared for nova-ceph, so recheck could not classify them",
    ]
    # neutron hears of the bug because Launchpad says it affects neutron; no negatives.
    assert texts(client, "#neutron", 1) == [positive]
    assert texts(client, "#qa", 1) == [positive]
    # A last message to every channel proves nothing else was on its way.
    bot.notify(report(change="5"))
    client.wait_messages("#qa", 2)
    assert len(client.messages("#nova")) == 4
    assert len(client.messages("#neutron")) == 2
    assert {message.nick for message in client.messages()} == {"recheck"}


def test_unknown_bug_goes_to_all_and_the_change_project_without_title(
    ircd: Ngircd, start_bot
) -> None:
    client = listener(ircd.port, "#nova", "#neutron", "#qa")
    bot = start_bot(settings(ircd.port))
    wait_bot_joined(client, "#qa")
    jobs = (JobOutcome("tempest-full", "u", "FAILURE", bugs=("1999999",)),)
    bot.notify(report(jobs=jobs))
    expected = (
        f"nova change {URL} failed tempest-full because of bug 1999999 "
        "https://bugs.launchpad.net/bugs/1999999"
    )
    assert texts(client, "#qa", 1) == [expected]
    assert texts(client, "#nova", 1) == [expected]
    bot.notify(report(change="5"))  # sentinel: reaches #neutron through the known bug
    client.wait_messages("#neutron", 1)
    assert "1999999" not in client.messages("#neutron")[0].text


def test_only_the_gate_queue_is_announced_by_default(ircd: Ngircd, start_bot) -> None:
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(ircd.port))
    wait_bot_joined(client, "#qa")
    bot.notify(report(change="111", queue="check"))
    bot.notify(report(change="222", queue="gate"))
    [message] = client.wait_messages("#qa", 1)
    assert "/222 " in message.text
    client.wait_messages("#qa", 1)
    assert len(client.messages("#qa")) == 1


def test_other_queues_when_configured(ircd: Ngircd, start_bot) -> None:
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(ircd.port, queues=frozenset({"gate", "check"})))
    wait_bot_joined(client, "#qa")
    bot.notify(report(change="111", queue="check"))
    bot.notify(report(change="222", queue="post"))
    bot.notify(report(change="333", queue="gate"))
    got = texts(client, "#qa", 2)
    assert ["/111 " in got[0], "/333 " in got[1]] == [True, True]


def test_hostile_text_cannot_inject_a_command(ircd: Ngircd, start_bot) -> None:
    client = listener(ircd.port, "#qa", "#other")
    hostile = Tracker(
        {
            "1": BugInfo(
                "1",
                "boom\r\nPRIVMSG #other :injected\nJOIN #evil\x01ACTION dances\x01 \x02bold\x03",
                projects=("nova",),
            )
        }
    )
    bot = start_bot(settings(ircd.port), hostile)
    wait_bot_joined(client, "#qa")
    job = JobOutcome("job\r\nQUIT :gone", "u", "FAILURE", bugs=("1",))
    bot.notify(report(jobs=(job,)))
    bot.notify(report(change="5"))  # sentinel after the hostile one
    first, sentinel = client.wait_messages("#qa", 2)
    assert first.text == (
        f"nova change {URL} failed job QUIT :gone because of bug 1 (boom PRIVMSG #other "
        ":injected JOIN #evil ACTION dances bold) https://bugs.launchpad.net/bugs/1"
    )
    assert first.raw.count(b"\r\n") == 1 and b"\x01" not in first.raw
    assert "/5 " in sentinel.text
    # The server relayed nothing else: no message in #other, no join of #evil, bot alive.
    assert client.messages("#other") == []
    commands = [line.split(b" ")[1] for line in client.lines if line.startswith(b":recheck!")]
    assert commands == [b"JOIN", b"PRIVMSG", b"PRIVMSG"]  # JOIN #qa, the two messages


def test_long_messages_are_split_on_utf8_boundaries(ircd: Ngircd, start_bot) -> None:
    # Reports are cut to a line or two (tests/bot/test_hostile_bot.py); the connection
    # still splits whatever it is handed on UTF-8 boundaries, checked here with a text
    # sent straight through it.
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(ircd.port))
    wait_bot_joined(client, "#qa")
    whole = "é日本🙂x" * 120  # 1,440 characters, 1,320 of them multibyte, no spaces
    bot.connection.send("#qa", whole)
    expected = split_message(whole, payload_budget("PRIVMSG #qa :", "recheck"))
    got = client.wait_messages("#qa", len(expected))
    assert len(expected) >= 4
    assert [message.text for message in got] == expected  # decoded strictly by the client
    assert all(len(message.raw) <= 512 for message in got)
    assert "".join(message.text for message in got) == whole


def test_flood_control_sends_everything_in_order(ircd: Ngircd, start_bot) -> None:
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(ircd.port, rate=20.0, burst=2, channels=(CHANNELS[2],)))
    wait_bot_joined(client, "#qa")
    for number in range(30):
        bot.notify(report(change=str(1000 + number)))
    got = texts(client, "#qa", 30)
    assert [text.split()[2] for text in got] == [
        f"https://review.opendev.org/{1000 + n}" for n in range(30)
    ]
    assert bot.connection.connections == 1  # never kicked for flooding


def test_reconnects_after_the_server_restarts(ircd: Ngircd, start_bot) -> None:
    gate = TcpGate(ircd.port)
    gate.open()
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(gate.port))
    wait_bot_joined(client, "#qa")
    bot.notify(report(change="1"))
    client.wait_messages("#qa", 1)

    ircd.stop()
    gate.close()  # the bot's reconnect attempts are refused until the gate opens
    bot.notify(report(change="2"))  # queued while the server is down
    assert bot.wait_composed(WAIT)
    ircd.start()
    client = listener(ircd.port, "#qa")
    gate.open()
    wait_bot_joined(client, "#qa")
    bot.notify(report(change="3"))
    got = texts(client, "#qa", 2)
    assert ["/2 " in got[0], "/3 " in got[1]] == [True, True]
    assert bot.connection.connections == 2
    gate.close()


def test_nick_in_use_then_reclaimed(ircd: Ngircd, start_bot) -> None:
    holder = IrcClient(ircd.port, "recheck")
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(ircd.port))
    wait_bot_joined(client, "#qa", nick="recheck_")
    bot.notify(report(change="1"))
    [first] = client.wait_messages("#qa", 1)
    assert first.nick == "recheck_"
    holder.quit()
    client.wait_line(lambda p: p[1] == "NICK" and p[0].startswith("recheck_!"))
    bot.notify(report(change="2"))
    got = client.wait_messages("#qa", 2)
    assert got[1].nick == "recheck"


def test_identifies_to_nickserv_when_sasl_is_not_offered(
    ircd: Ngircd, start_bot, caplog: pytest.LogCaptureFixture
) -> None:
    # ngircd offers no SASL: the bot must still register, then identify to NickServ
    # (played here by a test client holding that nick), and never log the password.
    caplog.set_level(logging.DEBUG)
    nickserv = IrcClient(ircd.port, "NickServ")
    client = listener(ircd.port, "#qa")
    bot = start_bot(settings(ircd.port, password="s3cret-pass", sasl=True, account="recheck-bot"))
    wait_bot_joined(client, "#qa")
    [identify] = nickserv.wait_messages("NickServ", 1)
    assert (identify.nick, identify.text) == ("recheck", "IDENTIFY recheck-bot s3cret-pass")
    bot.notify(report())
    client.wait_messages("#qa", 1)
    assert "s3cret-pass" not in caplog.text


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.ircd  # starts its own TLS ngircd, not through the `ircd` fixture
def test_tls_connection_verified_against_a_ca_file(tmp_path: Path, start_bot) -> None:
    cert, key = make_cert(tmp_path)
    server = Ngircd(tmp_path / "tls", tls_cert=cert, tls_key=key)
    server.start()
    try:
        client = listener(server.port, "#qa")
        assert server.tls_port is not None
        bot = start_bot(
            settings(server.tls_port, server="localhost", tls=True, tls_verify=True, ca_file=cert)
        )
        wait_bot_joined(client, "#qa")
        bot.notify(report())
        client.wait_messages("#qa", 1)
    finally:
        server.stop()


def test_bug_data_from_launchpad_routes_and_titles(ircd: Ngircd, start_bot, tmp_path) -> None:
    fake = FakeLaunchpad()
    fake.start()
    try:
        tracker = LaunchpadTracker(
            LaunchpadSettings(cache_dir=tmp_path / "lp", service_root=fake.service_root)
        )
        sahara = ChannelRule("#sahara", frozenset({"sahara"}), frozenset({"positive"}))
        client = listener(ircd.port, "#sahara", "#qa")
        bot = start_bot(settings(ircd.port, channels=(sahara, CHANNELS[2])), tracker)
        wait_bot_joined(client, "#qa")
        bot.notify(report())
        expected = (
            f"nova change {URL} failed tempest-full because of bug 1458945 "
            "(Use graduated oslo.policy) https://bugs.launchpad.net/bugs/1458945"
        )
        assert texts(client, "#sahara", 1) == [expected]  # sahara: a Launchpad target
        assert texts(client, "#qa", 1) == [expected]
        # Launchpad down and nothing cached: no title, and only the 'all' channel.
        fake.stop()
        jobs = (JobOutcome("tempest-full", "u", "FAILURE", bugs=("1458946",)),)
        bot.notify(report(jobs=jobs))
        assert texts(client, "#qa", 2)[1] == (
            f"nova change {URL} failed tempest-full because of bug 1458946 "
            "https://bugs.launchpad.net/bugs/1458946"
        )
        bot.notify(report(change="5"))  # cached: reaches #sahara, after anything else
        client.wait_messages("#sahara", 2)
        assert "1458946" not in client.messages("#sahara")[1].text
    finally:
        fake.stop()


def test_notifiers_from_config(ircd: Ngircd, tmp_path: Path) -> None:
    text = f"""
irc:
  server: 127.0.0.1
  port: {ircd.port}
  tls: false
  nick: recheck
  rate: 20
channels:
  openstack-nova:
    projects: [nova]
    events: [positive, negative]
  "#openstack-qa":
    projects: [all]
    events: [positive]
"""
    config = parse_config(text, tmp_path / "bot.yaml")
    client = listener(ircd.port, "#openstack-nova")
    [notifier] = notifiers_from_config(config, TRACKER)
    try:
        assert isinstance(notifier, IrcNotifier)
        assert [rule.name for rule in notifier.settings.channels] == [
            "#openstack-nova",
            "#openstack-qa",
        ]
        wait_bot_joined(client, "#openstack-nova")
        notifier.notify(report())
        [message] = client.wait_messages("#openstack-nova", 1)
        assert "because of bug 1458945" in message.text
    finally:
        notifier.close()


def test_no_irc_section_means_no_notifier(tmp_path: Path) -> None:
    assert (
        notifiers_from_config(parse_config("keep_debug: false\n", tmp_path / "b.yaml"), TRACKER)
        == []
    )
    only_server = parse_config("irc: {server: irc.example.org}\n", tmp_path / "b.yaml")
    assert notifiers_from_config(only_server, TRACKER) == []
