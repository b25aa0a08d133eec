"""The ready-made CI job of examples/ci/ (a Zuul job and its playbook, a GitHub Actions
workflow, the store settings they read): valid YAML whose recheck commands are ones the
command line accepts, with the options the README documents."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from recheck.cli import check, diff
from recheck.cli.main import _build_parser
from recheck.config.files import load_config

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
ZUUL_VARS = {
    "{{ ansible_user_dir }}/recheck-venv/bin/recheck": "recheck",
    "{{ recheck_days }}": "10",
    "{{ recheck_config }}": "ci/recheck-bot.yaml",
    "{{ zuul.branch }}": "main",
}


class ZuulLoader(yaml.SafeLoader):
    """Zuul's YAML: a safe loader that also reads its encrypted secrets' tag."""


ZuulLoader.add_constructor(
    "!encrypted/pkcs1-oaep", lambda loader, node: loader.construct_sequence(node)
)


def fill(word: str) -> str:
    for variable, value in ZUUL_VARS.items():
        word = word.replace(variable, value)
    return word


def parse(argv: list[str]) -> Any:
    return _build_parser().parse_args(argv[1:])


def test_the_zuul_job_runs_its_playbook_with_a_secret() -> None:
    documents = yaml.load((CI / "zuul.yaml").read_text(), Loader=ZuulLoader)
    job = next(d["job"] for d in documents if "job" in d)
    secret = next(d["secret"] for d in documents if "secret" in d)

    assert (CI / job["run"]).is_file()
    assert job["secrets"] == [{"name": "recheck_store", "secret": secret["name"]}]


def test_the_playbook_checks_then_diffs_against_the_target_branch() -> None:
    (play,) = yaml.safe_load((CI / "playbooks" / "recheck-signatures.yaml").read_text())
    commands = [task["command"]["argv"] for task in play["tasks"] if "command" in task]
    argvs = [[fill(word) for word in argv] for argv in commands]

    first, second = (parse(argv) for argv in argvs)
    assert (first.run, first.strict, first.directory) == (check.run, True, Path("queries"))
    assert (second.run, second.old, second.new) == (diff.run, "main:queries", "HEAD:queries")
    assert (second.days, second.config) == (10.0, "ci/recheck-bot.yaml")
    assert "{{" not in " ".join(" ".join(argv) for argv in argvs), "every variable is known"


def test_the_github_workflow_checks_then_diffs_against_the_base_branch() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yaml").read_text())
    steps = workflow["jobs"]["recheck"]["steps"]
    runs = [step["run"] for step in steps if "run" in step and "recheck " in step["run"]]

    check_args, diff_args = (
        parse(shlex.split(run.replace("$BASE", "origin/main"))) for run in runs
    )
    assert (check_args.run, check_args.strict) == (check.run, True)
    assert (diff_args.old, diff_args.new) == ("origin/main:queries", "HEAD:queries")
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the base branch must be fetched"


def test_the_store_settings_are_a_valid_bot_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECHECK_STORE_PASSWORD", "not-a-secret")
    config = load_config(str(CI / "recheck-bot.yaml"))

    assert config.sections["store"]["backend"] == "opensearch"
    assert "password" not in config.sections["store"]
