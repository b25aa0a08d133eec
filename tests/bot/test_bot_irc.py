"""``recheck bot`` as a process with both outputs: a fake Gerrit and a real IRC server.

A recorded gate failure of openstack/keystone goes in through the fake Gerrit's stream;
the Gerrit comment and the IRC messages come out, and ``--no-comment`` / ``--no-irc``
each switch off one of them and only that one.
"""

from __future__ import annotations

import json
import shutil
import signal

from bot_world import ROOT, World, wait_until
from bot_world import world as world  # the fixture
from ircd import IrcClient, Ngircd
from ircd import ircd as ircd  # the fixture

GATE_EVENT = 6
"""The recorded Jenkins event of change 64750 (openstack/keystone), gate pipeline."""
CHECK_EVENT = 2
"""Change 63078 (openstack/tempest), check pipeline: not announced by default."""
CHANGE = "keystone change https://review.opendev.org/64750"


def irc_config(world: World, ircd: Ngircd) -> None:
    """bot.yaml of the world plus IRC: #keystone and #qa (every project) hear both kinds."""
    path = world.config()
    data = json.loads(path.read_text())
    data["irc"] = {"server": "127.0.0.1", "port": ircd.port, "tls": False, "rate": 50}
    data["channels"] = {
        "keystone": {"projects": ["keystone"], "events": ["positive", "negative"]},
        "#qa": {"projects": ["all"], "events": ["positive", "negative"]},
    }
    data["bug_tracker"] = {"type": "url"}  # no Launchpad: links only
    path.write_text(json.dumps(data))


def listener(ircd: Ngircd) -> IrcClient:
    client = IrcClient(ircd.port, "watcher")
    client.join("#keystone", "#qa")
    return client


def bot_joined(client: IrcClient) -> bool:
    return any(
        line.startswith(b":recheck!") and b" JOIN " in line and line.rstrip().endswith(b"#qa")
        for line in list(client.lines)
    )


def test_a_gate_failure_is_commented_on_and_announced(world: World, ircd: Ngircd) -> None:
    world.serve_jenkins_logs()
    irc_config(world, ircd)
    queries = world.tmp / "queries"
    queries.mkdir()
    for bug in ("demo-1", "demo-2"):  # gate-keystone-python27 (bug demo-3) unrecognized
        shutil.copy(ROOT / "queries" / f"{bug}.yaml", queries)
    client = listener(ircd)
    bot = world.start(queries=queries)
    world.gerrit.wait_for_stream()
    wait_until(lambda: bot_joined(client), "the bot to join #qa")
    world.gerrit.emit(world.jenkins_event(CHECK_EVENT))  # known bugs, check queue: Gerrit only
    world.gerrit.emit(world.jenkins_event(GATE_EVENT))
    wait_until(lambda: len(world.gerrit.reviews) == 2, "two comments")
    bot.send_signal(signal.SIGTERM)  # says what is queued, then QUIT
    assert bot.wait(60) == 0
    client.wait_line(lambda parts: parts[1] == "QUIT" and parts[0].startswith("recheck!"))
    unrecognized = (
        f"{CHANGE} failed gate-keystone-python27 in the gate queue with an unrecognized error"
    )
    expected = [
        f"{CHANGE} failed gate-keystone-python26 because of bug {bug} "
        f"https://bugs.example.org/{bug}"
        for bug in ("demo-1", "demo-2")
    ] + [unrecognized]
    assert [message.text for message in client.messages("#keystone")] == expected
    assert [message.text for message in client.messages("#qa")] == expected
    assert sorted(review.change for review in world.gerrit.reviews) == ["63078", "64750"]


def test_no_comment_still_announces_and_no_irc_still_comments(world: World, ircd: Ngircd) -> None:
    world.serve_jenkins_logs()
    irc_config(world, ircd)
    client = listener(ircd)
    replay = world.tmp / "events.jsonl"
    replay.write_text(world.jenkins_event(GATE_EVENT) + "\n")
    quiet = world.start("--once", "--no-comment", "--replay", str(replay), "--state",
                        str(world.tmp / "quiet.sqlite"))  # fmt: skip
    assert quiet.wait(120) == 0
    assert world.gerrit.reviews == []
    assert client.wait_messages("#keystone", 1)

    heard = len(client.messages())
    silent = world.start("--once", "--no-irc", "--replay", str(replay), "--state",
                         str(world.tmp / "silent.sqlite"))  # fmt: skip
    assert silent.wait(120) == 0
    assert [review.change for review in world.gerrit.reviews] == ["64750"]
    # The --no-irc bot never connected: no join, nothing more said.
    joins = [line for line in client.lines if line.startswith(b":recheck!") and b" JOIN " in line]
    assert len(joins) == 2  # the first bot's, in #keystone and #qa
    assert len(client.messages()) == heard


def test_a_dry_run_prints_the_irc_messages_and_connects_to_nothing(
    world: World, ircd: Ngircd
) -> None:
    world.serve_jenkins_logs()
    irc_config(world, ircd)
    queries = world.tmp / "queries"
    queries.mkdir()
    for bug in ("demo-1", "demo-2"):
        shutil.copy(ROOT / "queries" / f"{bug}.yaml", queries)
    client = listener(ircd)
    replay = world.tmp / "events.jsonl"
    replay.write_text(world.jenkins_event(GATE_EVENT) + "\n")
    bot = world.start("--once", "--dry-run", "--replay", str(replay), queries=queries)
    out, _ = bot.communicate(timeout=120)
    assert bot.returncode == 0
    printed = [json.loads(line) for line in out.decode().splitlines()]
    said = [
        f"{CHANGE} failed gate-keystone-python26 because of bug {bug} "
        f"https://bugs.example.org/{bug}"
        for bug in ("demo-1", "demo-2")
    ] + [f"{CHANGE} failed gate-keystone-python27 in the gate queue with an unrecognized error"]
    irc = [line for line in printed if "channel" in line]
    assert irc == [{"channel": channel, "message": text} for text in said
                   for channel in ("#keystone", "#qa")]  # fmt: skip
    [comment] = [line for line in printed if "channel" not in line]
    assert (comment["change"], comment["patchset"]) == ("64750", "6")
    assert world.gerrit.reviews == []
    assert not bot_joined(client) and client.messages() == []
