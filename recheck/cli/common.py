"""Types shared by cli.py and the command modules of the bot and the pages."""

from __future__ import annotations

import argparse
from typing import TypeAlias

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers()`` returns: command modules register their parsers on it."""
