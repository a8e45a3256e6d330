"""The `repro` command line: thin Click wrappers over the task pipelines (no logic here).

    repro run     [--matrix F] [--only K=V ...] [--cell ID] [--jobs N] [--dry-run] [--rerun-stale] ...
    repro status  [--results DIR] [--json] [--why CELL]
    repro report  [--results DIR] [--reports DIR] [--side-by-side CELL_A CELL_B]
    repro data    synface|celeba [--dest DIR] [--from FILE] [--sha256 HEX]
    repro images  build|list
    repro compare GROUP_A GROUP_B [--where K=V ...]
    repro export  mlflow [--results DIR] [--tracking-uri URI] [--experiment NAME]
"""
import logging
import signal
import sys
from pathlib import Path

import click

from harness import executors
from harness.cli_options import existing_results_option
from harness.executors.settings import setting_options
from harness.exitcodes import ExitCode

__all__ = ["main"]


class _OneLine(logging.Formatter):
    """User-facing log lines: `repro: error: ...` for errors, the message alone otherwise."""

    def format(self, record):
        msg = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            msg += "\n" + self.formatException(record.exc_info)
        return "repro: error: " + msg if record.levelno >= logging.ERROR else msg


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    log = logging.getLogger("repro")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _sigterm_as_interrupt(signum, frame):
    # `kill PID` gets the same clean cancel as Ctrl-C: cells stay resumable
    raise KeyboardInterrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="More log lines.")
def main(verbose: bool) -> None:
    """repro: run the Unsup3D reproducibility study matrix, follow it, report it."""
    _setup_logging(verbose)


def _jobs(_ctx, _param, value):
    # 'auto' (or nothing): each executor's schedule decides (harness/executors/base.py)
    if value is None or value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter("%r is not a positive integer or 'auto'" % value)
    return int(value)


_SETTING = "setting__"   # prefix of the parameters the executors' settings add to `repro run`


def _executor_settings(command):
    """One option per executor setting (--ray-gpus ...), derived from each executor's settings model."""
    for name in reversed(executors.executor_names()):
        cls = executors.load(name)
        for option in reversed(setting_options(name, cls.settings_model) if cls and cls.settings_model else []):
            command = click.option(option.option, "%s%s__%s" % (_SETTING, name, option.field), default=None,
                                   metavar="VALUE", help=option.help)(command)
    return command


def _given_settings(params: dict) -> dict:
    """executor -> setting -> value for the settings options given on the command line."""
    given: dict = {}
    for key, value in params.items():
        if key.startswith(_SETTING) and value is not None:
            executor, _, field = key[len(_SETTING):].partition("__")
            given.setdefault(executor, {})[field] = value
    return given


@main.command()
@click.option("--matrix", type=click.Path(path_type=Path), default=Path("matrix.yml"), show_default=True,
              help="Study file: axes, stacks, exclude/include, overrides.")
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Folder holding one run folder per cell.")
@click.option("--executor", type=click.Choice(executors.executor_names()), default=None,
              help="Run every cell with this executor (default: each stack's own).")
@click.option("--only", multiple=True, metavar="KEY=VALUE",
              help="Select cells by axis value; repeat it, or list more KEY=VALUE after the options.")
@click.option("--cell", "cells", multiple=True, metavar="ID-PREFIX", help="Select cells by id prefix.")
@click.option("--jobs", "-j", default=None, callback=_jobs,
              help="Cells at once, or 'auto': the executor's schedule (here: CPU cells one per usable core, GPU "
                   "cells one at a time; ray: as many as the cluster's CPUs hold).  [default: auto]")
@click.option("--retry-failed", is_flag=True, help="Rerun cells recorded failed or diverged.")
@click.option("--rerun-stale", is_flag=True,
              help="Retrain, from scratch, done cells whose code changed since they ran (a selection does too).")
@click.option("--dry-run", "-n", is_flag=True, help="Print the cells, their ids and why any is skipped.")
@click.option("--stop-on-first-error", is_flag=True, help="Start no more cells after one fails.")
@click.argument("selectors", nargs=-1, metavar="[KEY=VALUE]...")
@_executor_settings
def run(matrix, results, executor, only, cells, jobs, retry_failed, rerun_stale, dry_run,
        stop_on_first_error, selectors, **settings):
    """Run the study's cells that are not done yet (resumes interrupted ones)."""
    from harness.runner import RunConfig, run as run_pipeline
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    config = RunConfig(matrix=matrix, results=results, executor=executor, only=tuple(only) + selectors,
                       cells=cells, jobs=jobs, retry_failed=retry_failed, rerun_stale=rerun_stale, dry_run=dry_run,
                       stop_on_first_error=stop_on_first_error, executor_settings=_given_settings(settings))
    sys.exit(run_pipeline(config))


@main.command()
@existing_results_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable rows.")
@click.option("--why", "why", metavar="CELL", default=None,
              help="Print what goes into CELL's id and code record (id, id prefix or name) and what differs from now.")
def status(results, as_json, why):
    """Show every cell folder: state (stale: made by other code), progress, last loss, elapsed, reason."""
    from harness.status import explain, find_folder, render_json, render_table, scan
    log = logging.getLogger("repro")
    if why is not None:
        folder = find_folder(results, why)
        if isinstance(folder, str):
            log.error(folder)
            sys.exit(ExitCode.CONFIG_ERROR)
        click.echo(explain(folder))
        sys.exit(ExitCode.OK)
    rows = scan(results)
    click.echo(render_json(rows) if as_json else render_table(rows))


@main.command()
@existing_results_option
@click.option("--reports", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--spike-factor", type=click.FloatRange(min=1.0, min_open=True), default=10.0, show_default=True,
              help="k: a step spikes when its loss or pre-clip gradient norm exceeds k x its running median.")
@click.option("--side-by-side", "side_by_side", nargs=2, metavar="CELL_A CELL_B", default=None,
              help="Also put two cells side by side in reports/compare-<a>-<b>.html (ids, unique id prefixes or "
                   "names). `repro compare` is the statistics over groups of cells.")
def report(results, reports, spike_factor, side_by_side):
    """Regenerate reports/ (Table 3, Fig. 7, Fig. 8, index.html) from results/ alone."""
    from harness.report import CellRefError, build_report
    log = logging.getLogger("repro")
    try:
        summary = build_report(results, reports, spike_factor=spike_factor, compare=side_by_side)
    except CellRefError as err:
        log.error("report --side-by-side: %s", err)
        sys.exit(ExitCode.CONFIG_ERROR)
    click.echo(str(summary))
    sys.exit(ExitCode.OK)


@main.command()
@click.argument("name", metavar="synface|celeba")
@click.option("--dest", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              help="Folder that receives DEST/NAME (train/ val/ test/), the cell's data_dir.")
@click.option("--from", "archive_file", type=click.Path(path_type=Path), default=None,
              help="An archive already on disk (zip or tar) instead of downloading it.")
@click.option("--sha256", default=None, help="The archive's expected sha256, where the project records none.")
def data(name, dest, archive_file, sha256):
    """Fetch (or take --from), verify and unpack one of the original's datasets."""
    from harness.datasets import DatasetError, install
    try:
        install(name, dest, archive_file=archive_file, sha256=sha256, log=click.echo)
    except DatasetError as err:
        logging.getLogger("repro").error("data: %s", err)
        sys.exit(ExitCode.CONFIG_ERROR)


def _add_commands() -> None:
    from harness.cli_compare import compare_command
    from harness.cli_export import export
    from harness.cli_images import images
    main.add_command(images, name="images")
    main.add_command(compare_command, name="compare")
    main.add_command(export, name="export")


_add_commands()


def _whole_first_sentences() -> None:
    # click cuts short help at 45 characters, mid-sentence ("Regenerate reports/ (Table 3, Fig.");
    # a docstring's first line is its first sentence, so show that line whole
    for command in main.commands.values():
        if not command.short_help and command.help:
            command.short_help = command.help.strip().splitlines()[0]


_whole_first_sentences()


if __name__ == "__main__":
    main()
