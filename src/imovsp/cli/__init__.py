"""``imovsp``: one command line for training, scoring, inspecting and serving.

Commands are thin wrappers over the core, one module per group of commands; what they share
(the group, settings, one-line errors, common options, training or loading a model) is in
:mod:`imovsp.cli.common`. A user's mistake ends with one line on stderr and exit code 2, never
a traceback. The CLI starts without the scientific stack: each command imports what it uses.
"""

from __future__ import annotations

import sys

from imovsp.cli import predict, score, serve, train  # each registers its commands
from imovsp.cli.common import CHUNK_ROWS, FORMATS, cli
from imovsp.cli.models import models
from imovsp.cli.monitoring import db, monitor
from imovsp.cli.predict import valuation_lines
from imovsp.cli.score import default_output

cli.add_command(models)
cli.add_command(db)
cli.add_command(monitor)

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "cli",
    "default_output",
    "main",
    "predict",
    "score",
    "serve",
    "train",
    "valuation_lines",
]


def main() -> None:
    """Entry point: runs the CLI, turning a broken pipe into a quiet exit."""
    try:
        cli(prog_name="imovsp")
    except BrokenPipeError:
        sys.exit(1)
