"""bot.yaml: defaults, where it is found, and errors that name line, column and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from recheck.config.files import (
    CONFIG_ENV,
    DEFAULT_ALLOWED_HOSTS,
    Config,
    ConfigError,
    FetchConfig,
    find_config,
    load_config,
    parse_config,
)
from recheck.logs.logfiles import DEFAULT_FILE_RULES, FileRule, rules_in_force

ROOT = Path(__file__).parents[2]
BOT_YAML = Path("bot.yaml")


def parse(text: str) -> Config:
    return parse_config(text, BOT_YAML)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


def test_the_shipped_bot_yaml_spells_out_the_defaults() -> None:
    shipped = load_config(ROOT / "bot.yaml")
    assert shipped.fetch == FetchConfig()
    assert shipped.files is None and rules_in_force(shipped.files) == DEFAULT_FILE_RULES
    assert shipped.keep_debug is False
    assert shipped.warnings == ()
    assert "zuul.opendev.org" in shipped.fetch.allowed_hosts


def test_an_empty_file_means_every_default() -> None:
    config = parse("# nothing set\n")
    assert config.fetch == FetchConfig()
    assert config.fetch.allowed_hosts == DEFAULT_ALLOWED_HOSTS
    assert config.path == BOT_YAML


def test_settings_are_read() -> None:
    config = parse(
        "fetch:\n"
        "  allowed_hosts: [logs.example.org, '*.CDN.example.net']\n"
        "  connect_timeout: 2\n"
        "  read_timeout: 0.5\n"
        "  retries: 0\n"
        "  backoff: 0\n"
        "  max_retry_after: 5\n"
        "keep_debug: true\n"
        "files:\n"
        "  - {pattern: job-output.txt, tags: [console, console.html]}\n"
        "  - pattern: logs/*.log\n"
    )
    assert config.fetch == FetchConfig(
        allowed_hosts=("logs.example.org", "*.cdn.example.net"),
        connect_timeout=2.0,
        read_timeout=0.5,
        retries=0,
        backoff=0.0,
        max_retry_after=5.0,
    )
    assert config.keep_debug is True
    assert config.files == (
        FileRule("job-output.txt", ("console", "console.html")),
        FileRule("logs/*.log", ()),
    )
    assert rules_in_force(config.files) == config.files


def test_other_sections_are_kept_as_written_for_later() -> None:
    config = parse(
        "gerrit:\n  host: review.opendev.org\n  port: 29418\n"
        "irc:\n  queues: [gate]\n"
        "store: {path: /var/lib/recheck}\n"
    )
    assert config.sections == {
        "gerrit": {"host": "review.opendev.org", "port": 29418},
        "irc": {"queues": ["gate"]},
        "store": {"path": "/var/lib/recheck"},
    }
    assert config.warnings == ()


def test_an_unknown_top_level_key_is_an_error() -> None:
    assert (
        error("fecth:\n  retries: 1\n")
        == "bot.yaml:1:1: unknown key 'fecth'; did you mean 'fetch'?"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "fetch:\n  retries: 2\n  timeout: 5\n",
            "bot.yaml:3:3: unknown key 'fetch.timeout'; known keys: allowed_hosts, "
            "connect_timeout, read_timeout, retries, backoff, max_retry_after, max_file_bytes, "
            "max_build_bytes, download_deadline, local_roots",
        ),
        (
            "fetch:\n  read_timout: 5\n",
            "bot.yaml:2:3: unknown key 'fetch.read_timout'; did you mean 'read_timeout'?",
        ),
        (
            "fetch:\n  read_timeout: 0\n",
            "bot.yaml:2:17: fetch.read_timeout must be a number of seconds above 0, found int 0",
        ),
        (
            "fetch:\n  backoff: soon\n",
            "bot.yaml:2:12: fetch.backoff must be a number of seconds, 0 or more, "
            "found the text 'soon'",
        ),
        (
            "fetch:\n  retries: true\n",
            "bot.yaml:2:12: fetch.retries must be a whole number from 0 to 20, found bool True",
        ),
        (
            "fetch:\n  allowed_hosts: logs.example.org\n",
            "bot.yaml:2:18: fetch.allowed_hosts must be a list of host names "
            "('- logs.example.org' lines), found the text 'logs.example.org'",
        ),
        (
            "fetch:\n  allowed_hosts:\n    - https://logs.example.org/\n",
            "bot.yaml:3:7: each fetch.allowed_hosts entry must be a host name such as "
            "logs.example.org, or *.example.org for all its subdomains (no scheme, port or "
            "path), found the text 'https://logs.example.org/'",
        ),
        (
            "fetch: [a]\n",
            "bot.yaml:1:8: fetch must be a mapping of 'key: value' lines, found a list",
        ),
        (
            "keep_debug: yes please\n",
            "bot.yaml:1:13: keep_debug must be true or false, found the text 'yes please'",
        ),
        (
            "files: []\n",
            "bot.yaml:1:8: files must be a non-empty list of file rules ('- {pattern: "
            "job-output.txt, tags: [console, console.html]}'), found a list; leave 'files' "
            "out to use the default list",
        ),
        (
            "files:\n  - {tags: [console]}\n",
            "bot.yaml:2:5: a files entry needs a 'pattern' "
            "(- {pattern: job-output.txt, tags: [console, console.html]})",
        ),
        (
            "files:\n  - {pattern: a.txt, tags: console}\n",
            "bot.yaml:2:28: 'tags' must be a list of words such as [screen, oslofmt], "
            "found the text 'console'",
        ),
        (
            "files:\n  - {pattern: a.txt, tag: [console]}\n",
            "bot.yaml:2:22: unknown key 'tag' in a files entry; did you mean 'tags'?",
        ),
        (
            "fetch:\n  retries: 1\nfetch:\n  retries: 2\n",
            "bot.yaml:3:1: duplicate key 'fetch' (first given on line 1); keep only one",
        ),
        (
            "- fetch\n",
            "bot.yaml:1:1: the file must be a mapping of 'key: value' lines, found a list",
        ),
        (
            "fetch:\n  retries: [1\n",
            "bot.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence); check indentation and quoting",
        ),
        (
            "keep_debug: !!python/object:os.system echo\n",
            "bot.yaml:1:13: invalid YAML value: could not determine a constructor for the "
            "tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
    ],
)
def test_mistakes_name_line_column_and_the_fix(text: str, expected: str) -> None:
    assert error(text) == expected


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_bytes(b"fetch:\n  retries: 1\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"bot.yaml:3:1: not valid UTF-8; re-save"):
        load_config(path)


def test_the_config_is_found_by_option_then_environment_then_cwd(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("keep_debug: true\n")
    from_env = tmp_path / "env.yaml"
    from_env.write_text("keep_debug: true\n")
    workdir = tmp_path / "work"
    workdir.mkdir()

    env = {CONFIG_ENV: str(from_env)}
    assert find_config(explicit, env, workdir) == explicit
    assert find_config(None, env, workdir) == from_env
    assert find_config(None, {}, workdir) is None
    assert load_config(None, {}, workdir) == Config()
    (workdir / "bot.yaml").write_text("keep_debug: true\n")
    assert find_config(None, {}, workdir) == workdir / "bot.yaml"
    assert load_config(None, {}, workdir).keep_debug is True


def test_a_named_config_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope.yaml: no such config file \(named by --config\)"):
        find_config(missing, {}, tmp_path)
    with pytest.raises(ConfigError, match=r"named by \$RECHECK_CONFIG"):
        find_config(None, {CONFIG_ENV: str(missing)}, tmp_path)


def test_libyaml_and_pure_python_loaders_read_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    from recheck.lib import yamlload

    fast = load_config(ROOT / "bot.yaml")
    monkeypatch.setattr(yamlload, "FAST_LOADER", yaml.SafeLoader)
    assert load_config(ROOT / "bot.yaml") == fast
