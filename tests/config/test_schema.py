"""bot.yaml's schema: every section refuses unknown keys (with the line and the closest
key), every mistake is reported, metrics: off works, and secrets are read in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from recheck.config.bot import bot_settings
from recheck.config.files import Config, ConfigError, FetchConfig, PagesConfig, parse_config
from recheck.config.irc import irc_settings
from recheck.lib.secrets import SecretError, read_secret

BOT_YAML = Path("bot.yaml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, BOT_YAML)
    return str(caught.value)


UNKNOWN_KEYS = [
    (
        "bot:\n  log_timout: 5\n",
        "bot.yaml:2:3",
        "unknown key 'bot.log_timout'; did you mean 'log_timeout'?",
    ),
    (
        "zuul:\n  polll_interval: 5\n",
        "bot.yaml:2:3",
        "unknown key 'zuul.polll_interval'; did you mean 'poll_interval'?",
    ),
    (
        "gerrit:\n  host: x\n  knwon_hosts: y\n",
        "bot.yaml:3:3",
        "unknown key 'gerrit.knwon_hosts'; did you mean 'known_hosts'?",
    ),
    (
        "messages:\n  foter: x\n",
        "bot.yaml:2:3",
        "unknown key 'messages.foter'; did you mean 'footer'?",
    ),
    (
        "irc:\n  server: x\n  nik: y\n",
        "bot.yaml:3:3",
        "unknown key 'irc.nik'; did you mean 'nick'?",
    ),
    (
        "channels:\n  nova:\n    event: [positive]\n",
        "bot.yaml:3:5",
        "unknown key 'channels.nova.event'; did you mean 'events'?",
    ),
    (
        "store:\n  event_day: 3\n",
        "bot.yaml:2:3",
        "unknown key 'store.event_day'; did you mean 'event_days'?",
    ),
    (
        "bug_tracker:\n  cache_tll: 5\n",
        "bot.yaml:2:3",
        "unknown key 'bug_tracker.cache_tll'; did you mean 'cache_ttl'?",
    ),
    ("pages:\n  titel: x\n", "bot.yaml:2:3", "unknown key 'pages.titel'; did you mean 'title'?"),
    (
        "fetch:\n  retrys: 1\n",
        "bot.yaml:2:3",
        "unknown key 'fetch.retrys'; did you mean 'retries'?",
    ),
    (
        "files:\n  - {pattern: a, tag: [b]}\n",
        "bot.yaml:2:18",
        "unknown key 'tag' in a files entry; did you mean 'tags'?",
    ),
    ("gerit:\n  host: x\n", "bot.yaml:1:1", "unknown key 'gerit'; did you mean 'gerrit'?"),
    (
        "bot:\n  colour: blue\n",
        "bot.yaml:2:3",
        "unknown key 'bot.colour'; known keys: source, projects, job_filter, "
        "comment_on_unrecognized, state, log_timeout, log_poll, retry, workers, metrics, "
        "success_sample",
    ),
]


@pytest.mark.parametrize(("text", "where", "expected"), UNKNOWN_KEYS)
def test_an_unknown_key_in_any_section_names_its_line_and_the_closest_key(
    text: str, where: str, expected: str
) -> None:
    assert error(text) == f"{where}: {expected}"


def test_every_mistake_is_reported_in_file_order() -> None:
    text = "bot:\n  workers: 0\n  log_timout: 5\nfetch:\n  retries: -1\nirc: {server: x, prot: 1}\n"
    assert error(text).splitlines() == [
        "bot.yaml:2:12: bot.workers must be a whole number above 0, found int 0",
        "bot.yaml:3:3: unknown key 'bot.log_timout'; did you mean 'log_timeout'?",
        "bot.yaml:5:12: fetch.retries must be a whole number from 0 to 20, found int -1",
        "bot.yaml:6:18: unknown key 'irc.prot'; did you mean 'port'?",
    ]


def test_values_of_the_bot_sections_name_their_line() -> None:
    assert error("bot:\n  metrics: 9108\n") == (
        "bot.yaml:2:12: bot.metrics must be host:port such as 127.0.0.1:9108, or off, "
        "found int 9108"
    )
    assert error("gerrit:\n  http_password: x\n") == (
        "bot.yaml:2:3: gerrit: never write a password in bot.yaml; name an environment variable "
        "with http_password_env or a file with http_password_file"
    )
    assert error("irc: {server: x, reconnect_min: 9, reconnect_max: 3}\n") == (
        "bot.yaml:1:51: irc.reconnect_max must not be below irc.reconnect_min"
    )
    assert error("channels:\n  nova: {events: [sometimes]}\n") == (
        "bot.yaml:2:18: channels.nova.events: unknown event 'sometimes'; use positive, negative"
    )


@pytest.mark.parametrize("off", ["off", "false", "no", "'off'", "''"])
def test_metrics_off_disables_them(off: str) -> None:
    settings = bot_settings(parse_config(f"bot:\n  metrics: {off}\n", BOT_YAML), {})
    assert settings.metrics in ("off", "")


def test_an_empty_section_or_key_keeps_the_defaults() -> None:
    config = parse_config("fetch:\ngerrit:\npages:\n  title: ~\n", BOT_YAML)
    assert config.fetch == FetchConfig() and config.pages == PagesConfig()
    assert bot_settings(config, {}).gerrit.port == 29418


def test_sections_given_without_a_file_are_checked_too() -> None:
    config = Config(sections={"bot": {"workrs": 3}})
    with pytest.raises(ConfigError, match=r"^bot.yaml: unknown key 'bot.workrs'; did you mean"):
        bot_settings(config, {})


def test_secrets_come_from_a_variable_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    assert read_secret("x.password", "PW", None, {"PW": "from-env"}) == "from-env"
    assert read_secret("x.password", None, tmp_path / "pw", {}) == "from-file"
    assert read_secret("x.password", None, None, {}) is None
    (tmp_path / "empty").write_text("\n")
    for variable, path, message in [
        ("PW", None, r"x.password_env names \$PW, which is not set or empty"),
        (None, tmp_path / "nope", r"x.password_file .*nope: cannot read it"),
        (None, tmp_path / "empty", r"x.password_file .*empty is empty"),
    ]:
        with pytest.raises(SecretError, match=message):
            read_secret("x.password", variable, path, {})


def test_secret_files_are_relative_to_bot_yaml(tmp_path: Path) -> None:
    (tmp_path / "gerrit-pw").write_text("g\n")
    (tmp_path / "irc-pw").write_text("i\n")
    text = (
        "gerrit: {http_password_file: gerrit-pw}\n"
        "irc: {server: irc.example.org, password_file: irc-pw}\n"
    )
    config = parse_config(text, tmp_path / "bot.yaml")
    assert bot_settings(config, {}).gerrit.http_password == "g"
    irc = irc_settings(config, {})
    assert irc is not None and irc.password == "i"
    with pytest.raises(ConfigError, match=r"irc.password_env names \$IRC_PW, which is not set"):
        irc_settings(parse_config("irc: {server: x, password_env: IRC_PW}\n", BOT_YAML), {})
