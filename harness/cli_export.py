"""`repro export mlflow`: the results as MLflow runs (harness/export_mlflow.py; needs the `.[mlflow]` extra)."""
import logging
import sys

import click

from harness.cli_options import existing_results_option
from harness.exitcodes import ExitCode

__all__ = ["export"]


@click.group()
def export():
    """Export the results to the tools researchers already use (MLflow)."""


@export.command()
@existing_results_option
@click.option("--tracking-uri", default=None, metavar="URI",
              help="sqlite:///mlflow.db, a folder, or a server  [default: MLFLOW_TRACKING_URI, else MLflow's own]")
@click.option("--experiment", default=None, metavar="NAME",
              help="Experiment to write into  [default: 'repro-unsup3d <results folder>']")
def mlflow(results, tracking_uri, experiment):
    """One MLflow run per cell (params, env tags, curves, scores, grids); a rerun updates, never duplicates."""
    from harness.export_mlflow import MlflowMissing, export_mlflow
    log = logging.getLogger("repro")
    try:
        summary = export_mlflow(results, tracking_uri=tracking_uri, experiment=experiment)
    except MlflowMissing as err:
        log.error("export mlflow: %s", err)
        sys.exit(ExitCode.CONFIG_ERROR)
    click.echo(str(summary))
