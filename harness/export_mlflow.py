"""`repro export mlflow`: the study's cells as MLflow runs, where researchers already look.

    summary = export_mlflow("results", tracking_uri="sqlite:///mlflow.db", experiment="seed Table 3")

One run per cell in one experiment named after the study: params from the cell's
resolved config (config.json), env.json as `env.*` tags, the loss, gradient-norm and
clipped curves as metrics by step, SIDE/MAD and the spike statistics as final metrics,
the decomposition grids (samples/) as artifacts. The cell id is the run's key (tag
`repro.cell_id`): a cell whose folder has not changed since its export is left alone,
a changed one replaces its run (the old one is deleted, so the experiment holds one
run per cell), a new one is added. Reads results/ through harness.collect, like the report.
mlflow is an optional extra (`pip install -e ".[mlflow]"`); without it the command says so.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness.collect import Results, collect, configs_of

__all__ = ["CELL_TAG", "FINAL_METRICS", "ExportSummary", "MlflowMissing", "export_mlflow"]

CELL_TAG = "repro.cell_id"             # the run's key
SIGNATURE_TAG = "repro.signature"      # the folder's signature when exported (runfolder.folder_signature)
# table column -> final metric name (SIDE x1e-2 as in the tables)
FINAL_METRICS = {"side_mean": "side_x100", "side_std": "side_std_x100", "mad_mean": "mad", "mad_std": "mad_std",
                 "flat_side_mean": "flat_side_x100", "flat_mad_mean": "flat_mad", "n_images": "n_images",
                 "final_loss": "final_loss", "last_iter": "last_iter", "n_spikes": "n_spikes",
                 "n_loss_spikes": "n_loss_spikes", "n_grad_spikes": "n_grad_spikes", "max_grad_norm": "max_grad_norm",
                 "clipped_frac": "clipped_frac", "wall_s": "wall_s"}
_STATUS = {"done": "FINISHED", "failed": "FAILED", "diverged": "FAILED", "running": "RUNNING"}
_BATCH = 1000          # MLflow's limits per log_batch call: metrics
_PARAMS_BATCH = 100    # and params
_VALUE_CHARS = 5000    # params and tags are capped (6000 / 8000 chars by the stores); cut long JSON


class MlflowMissing(RuntimeError):
    """mlflow is not installed; the message says how to install it."""


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    experiment: str
    tracking_uri: str
    created: int       # cells exported for the first time
    replaced: int      # cells whose folder changed since their export
    unchanged: int     # cells left as they were

    def __str__(self) -> str:
        return (f"export mlflow: {self.created} runs created, {self.replaced} replaced, {self.unchanged} unchanged "
                f"in experiment {self.experiment!r} at {self.tracking_uri}")


def _client(tracking_uri: str | None):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise MlflowMissing("mlflow is not installed: pip install -e '.[mlflow]' (an optional extra)") from err
    return MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_root(client.tracking_uri, name))


def _artifact_root(tracking_uri: str, name: str) -> str | None:
    """Beside an SQLite store, not in the working directory (MLflow's default for a bare client)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None   # a folder store or a server knows where artifacts go
    folder = Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts"
    return (folder / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)).as_uri()


def _text(value) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text[:_VALUE_CHARS]


def _flat(config: dict, prefix: str = "") -> dict[str, str]:
    """Nested config keys as dotted params."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _text(value)
    return out


def _tags(row: pd.Series, signature: str | None) -> dict[str, str]:
    env = json.loads(row["env_json"]) if isinstance(row["env_json"], str) else {}
    tags = {f"env.{k}": _text(v) for k, v in env.items()}
    tags.update({CELL_TAG: row["cell_id"], SIGNATURE_TAG: signature or "", "repro.state": str(row["state"]),
                 "repro.run_dir": str(row["run_dir"]),
                 "repro.name": str(row["name"]), "mlflow.runName": str(row["name"] or row["cell_id"])})
    if isinstance(row["reason"], str) and row["reason"]:
        tags["repro.reason"] = _text(row["reason"])
    if isinstance(row.get("stale_reason"), str):
        tags["repro.stale"] = _text(row["stale_reason"])
    return tags


def _metrics(row: pd.Series, series, now_ms: int) -> list:
    from mlflow.entities import Metric
    metrics = []
    if series is not None:
        steps = np.nan_to_num(series["iter"], nan=-1).astype(np.int64)
        for key, values in (("loss_total", series["loss_total"]), ("grad_norm", series["grad_norm"]),
                            ("clipped", series["clipped"].astype(np.float32))):
            metrics += [Metric(key, float(v), now_ms, int(s)) for s, v in zip(steps, values) if s >= 0 and np.isfinite(v)]
    for column, name in FINAL_METRICS.items():
        value = pd.to_numeric(row.get(column), errors="coerce")
        if pd.notna(value) and np.isfinite(value):
            metrics.append(Metric(name, float(value) * (100 if name.endswith("_x100") else 1), now_ms, 0))
    return metrics


def _export_cell(client, experiment_id: str, row: pd.Series, config: dict, series, signature) -> None:
    from mlflow.entities import Param
    run = client.create_run(experiment_id, tags=_tags(row, signature), run_name=str(row["name"] or row["cell_id"]))
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in sorted(_flat(config).items())]
    for start in range(0, len(params), _PARAMS_BATCH):
        client.log_batch(run_id, params=params[start:start + _PARAMS_BATCH])
    metrics = _metrics(row, series, int(time.time() * 1000))
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + _BATCH])
    samples = Path(row["run_dir"]) / "samples"
    if samples.is_dir():
        client.log_artifacts(run_id, str(samples), "samples")
    client.set_terminated(run_id, _STATUS.get(str(row["state"]), "KILLED"))


def export_mlflow(results_dir: str | os.PathLike, tracking_uri: str | None = None, experiment: str | None = None,
                  results: Results | None = None) -> ExportSummary:
    """Write (or bring up to date) one MLflow run per cell of results_dir.

    Args:
        results_dir: the study's results/ folder.
        tracking_uri: where MLflow keeps runs (sqlite:///mlflow.db, a folder, a server);
            None: MLflow's default (MLFLOW_TRACKING_URI, else its own).
        experiment: the experiment's name (default: repro-unsup3d <results folder>).
        results: an earlier collect of results_dir to use instead of reading it again.

    Raises:
        MlflowMissing: mlflow is not installed.
    """
    client = _client(tracking_uri)
    results = results or collect(results_dir)
    name = experiment or f"repro-unsup3d {Path(results_dir).resolve()}"
    experiment_id = _experiment_id(client, name)
    existing = {}
    for run in client.search_runs([experiment_id], max_results=50000):
        existing.setdefault(run.data.tags.get(CELL_TAG), []).append(run)
    signatures = {read.row["cell_id"]: read.signature for read in results.reads.values() if isinstance(read.row, dict)}
    counts = {"created": 0, "replaced": 0, "unchanged": 0}
    table = results.table
    for (_, row), config in zip(table.iterrows(), configs_of(table)):
        signature, runs = signatures.get(row["cell_id"]), existing.get(row["cell_id"], [])
        if signature and len(runs) == 1 and runs[0].data.tags.get(SIGNATURE_TAG) == signature:
            counts["unchanged"] += 1
            continue
        for run in runs:   # the cell changed (or was exported twice by hand): one run per cell
            client.delete_run(run.info.run_id)
        _export_cell(client, experiment_id, row, config, results.series.get(row["cell_id"]), signature)
        counts["replaced" if runs else "created"] += 1
    return ExportSummary(experiment=name, tracking_uri=client.tracking_uri, **counts)
