"""Command-line options more than one `repro` command takes, each checked in one place."""
import logging
import sys
from pathlib import Path

import click

from harness.exitcodes import ExitCode

__all__ = ["existing_results_option"]


def _must_exist(_ctx, _param, results: Path) -> Path:
    if not results.is_dir():
        logging.getLogger("repro").error("%s: no such results folder (run `repro run` first or pass --results)",
                                         results)
        sys.exit(ExitCode.CONFIG_ERROR)
    return results


# for the commands that read a study's results (status, report, compare, export); `repro run` makes them
existing_results_option = click.option("--results", type=click.Path(path_type=Path), default=Path("results"),
                                       show_default=True, callback=_must_exist,
                                       help="Folder holding one run folder per cell.")
