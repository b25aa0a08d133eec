"""The shape of recheck.cli: one module per command, assembled only by cli/main.py."""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import pytest

import recheck.cli
from recheck.cli.main import main

CLI_DIR = Path(recheck.cli.__file__).parent
COMMAND_MODULES = sorted(
    path.stem
    for path in CLI_DIR.glob("*.py")
    if path.stem not in ("__init__", "main", "common", "sources", "evidence")
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(CLI_DIR.glob("*.py")), ids=lambda path: path.name)
def test_no_cli_module_imports_main(path: Path) -> None:
    # main.py assembles the commands; a command importing it back makes an import cycle.
    assert "recheck.cli.main" not in imported_modules(path)


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_every_command_module_registers_its_commands(name: str) -> None:
    module = importlib.import_module(f"recheck.cli.{name}")
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    module.add_parser(commands)
    assert commands.choices, f"recheck.cli.{name}.add_parser registered no command"
    for command, subparser in commands.choices.items():
        assert callable(subparser.get_default("run")), f"{command} has no handler"


def test_every_command_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for command in (
        "check", "match", "events", "classify", "ingest", "query", "gc", "reclassify",
        "bot", "report", "serve",
    ):  # fmt: skip
        assert f"    {command} " in listed or f"    {command}\n" in listed
