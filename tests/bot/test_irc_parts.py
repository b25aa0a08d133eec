"""The IRC notifier's pure parts: sanitizing, splitting, settings, backoff, flood control."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recheck.bot.irc.connection import RateLimiter, _alternate_nick
from recheck.bot.irc.text import payload_budget, sanitize, split_message
from recheck.config.files import ConfigError, parse_config
from recheck.config.irc import ChannelRule, irc_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("a\r\nPRIVMSG #x :b", "a PRIVMSG #x :b"),
        ("\x01ACTION waves\x01", "ACTION waves"),
        ("\x02bold\x02 \x0304red\x03 \x1funder\x1f\x0f", "bold 04red under"),
        ("nul\x00byte\x7fdel", "nul byte del"),
        ("line\u2028sep\u2029para\u0085nel", "line sep para nel"),
        ("rtl\u202eoverride", "rtl override"),
        ("lone \udce9 surrogate", "lone surrogate"),
        ("  many   spaces\t\tand tabs  ", "many spaces and tabs"),
        ("日本語 é 🙂", "日本語 é 🙂"),
    ],
)
def test_sanitize(text: str, expected: str) -> None:
    assert sanitize(text) == expected


@given(st.text())
def test_sanitized_text_has_no_control_characters(text: str) -> None:
    clean = sanitize(text)
    assert not any(ord(char) < 32 or 0x7F <= ord(char) < 0xA0 for char in clean)
    clean.encode("utf-8")  # always sendable


def _rejoins(pieces: list[str], text: str) -> bool:
    """Whether ``text`` is the pieces joined, each boundary either nothing or one space."""
    position = 0
    for index, piece in enumerate(pieces):
        if not text.startswith(piece, position):
            return False
        position += len(piece)
        last = index == len(pieces) - 1
        if not last and text.startswith(" ", position) and not pieces[index + 1].startswith(" "):
            position += 1  # the space the split dropped
    return position == len(text)


@given(st.text(alphabet=st.sampled_from("ab é日🙂"), max_size=400), st.integers(4, 60))
def test_split_fits_the_budget_and_loses_nothing(text: str, budget: int) -> None:
    text = sanitize(text)
    pieces = split_message(text, budget)
    assert all(len(piece.encode("utf-8")) <= budget for piece in pieces)
    assert _rejoins(pieces, text)


def test_split_prefers_spaces_and_cuts_characters_whole() -> None:
    assert split_message("alpha beta gamma", 11) == ["alpha beta", "gamma"]
    assert split_message("日本語日本語", 7) == ["日本", "語日", "本語"]  # 3 bytes each
    assert split_message("", 10) == [""]
    with pytest.raises(ValueError):
        split_message("x", 3)


def test_payload_budget_leaves_room_for_the_relay_prefix() -> None:
    budget = payload_budget("PRIVMSG #openstack-nova :", "recheck")
    assert budget == 512 - len("PRIVMSG #openstack-nova :") - 2 - 100


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.try_take() for _ in range(4)] == [True, True, True, False]
    assert limiter.wait_time() == 0.5
    now[0] = 0.5
    assert [limiter.try_take(), limiter.try_take()] == [True, False]
    now[0] = 100.0  # a long quiet spell refills only up to the burst
    assert sum(limiter.try_take() for _ in range(10)) == 3


def test_alternate_nicks() -> None:
    assert _alternate_nick("recheck", "recheck") == "recheck_"
    assert _alternate_nick("recheck", "recheck_") == "recheck2"
    assert _alternate_nick("recheck", "recheck2") == "recheck3"
    assert len(_alternate_nick("r" * 30, "r" * 30)) == 30


def test_channel_rules_route_by_project() -> None:
    rule = ChannelRule("#nova", frozenset({"nova"}), frozenset({"positive"}))
    assert rule.wants("positive", ("openstack/nova", "nova"))
    assert not rule.wants("negative", ("nova",))
    assert not rule.wants("positive", ("neutron",))
    everything = ChannelRule("#qa", frozenset({"all"}), frozenset({"negative"}))
    assert everything.wants("negative", ("anything",))


ELASTIC_RECHECK_CHANNELS = """
irc:
  server: irc.oftc.net
  nick: recheck-bot
  password_env: TEST_IRC_PASSWORD
  queues: [gate, check]
channels:
  openstack-neutron:
    projects:
      - neutron
    events:
      - positive
      - negative
  "#openstack-qa":
    projects:
      - all
    events:
      - negative
"""


def test_settings_in_elastic_recheck_shape(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEST_IRC_PASSWORD", "hunter2")
    settings = irc_settings(parse_config(ELASTIC_RECHECK_CHANNELS, tmp_path / "bot.yaml"))
    assert settings is not None
    assert (settings.server, settings.port, settings.tls) == ("irc.oftc.net", 6697, True)
    assert (settings.nick, settings.account, settings.password) == (
        "recheck-bot",
        "recheck-bot",
        "hunter2",
    )
    assert "hunter2" not in repr(settings)
    assert settings.queues == frozenset({"gate", "check"})
    assert settings.channels == (
        ChannelRule(
            "#openstack-neutron", frozenset({"neutron"}), frozenset({"positive", "negative"})
        ),
        ChannelRule("#openstack-qa", frozenset({"all"}), frozenset({"negative"})),
    )


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-a-file\n")
    config = parse_config(
        f"irc: {{server: irc.example.org, password_file: {tmp_path / 'secret'}}}\n",
        tmp_path / "bot.yaml",
    )
    settings = irc_settings(config)
    assert settings is not None and settings.password == "from-a-file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("irc: {server: x, prot: 6667}", "unknown key 'irc.prot'"),
        ("irc: {server: x, port: 0}", "irc.port must be a whole number from 1 to 65535"),
        ("irc: {server: x, nick: 'bad nick'}", "irc.nick 'bad nick' is not a valid IRC nick"),
        ("irc: {server: x, tls: maybe}", "irc.tls must be true or false"),
        ("irc: {server: x, rate: -1}", "irc.rate must be a number above 0"),
        ("irc: {server: x, password_env: UNSET_VARIABLE_XYZ}", r"\$UNSET_VARIABLE_XYZ"),
        ("irc: {server: x, password_file: /nonexistent/pw}", "cannot read it"),
        ("irc: {server: x}\nchannels: {'a b': {}}", "is not a valid channel name"),
        ("irc: {server: x}\nchannels: {nova: {events: [sometimes]}}", "unknown event"),
        ("irc: {server: x}\nchannels: {nova: {projets: [nova]}}", "channels.nova.projets"),
        ("irc: {server: x}\nchannels: [nova]", "channels must be a mapping"),
    ],
)
def test_bad_settings_are_errors_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        irc_settings(parse_config(text + "\n", tmp_path / "bot.yaml"))
    assert str(error.value).startswith(str(tmp_path / "bot.yaml"))


def test_without_a_server_there_are_no_settings(tmp_path: Path) -> None:
    assert irc_settings(parse_config("keep_debug: true\n", tmp_path / "b.yaml")) is None
    assert irc_settings(parse_config("irc: {nick: x}\n", tmp_path / "b.yaml")) is None
