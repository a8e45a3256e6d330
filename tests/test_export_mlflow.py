"""`repro export mlflow` into a real MLflow tracking store (SQLite), read back through MLflow's own client."""
import json
import os
import time

import pytest

from tests.helpers.recast import recast
from tests.helpers.runfolders import copy_run, real_run_folder, repro

if os.environ.get("CI"):
    import mlflow  # CI installs the extra (scripts/setup.sh): a missing mlflow fails there
else:
    mlflow = pytest.importorskip("mlflow", reason="the `.[mlflow]` extra is not installed (CI installs it)")
from mlflow.tracking import MlflowClient  # noqa: E402

A, B = "aaaa00001111", "bbbb22223333"
EXPERIMENT = "repro test study"
pytestmark = pytest.mark.slow   # trains the shared tiny cell once; mlflow's import alone takes seconds


def _settle(run):
    """Date a folder's files back, as if written minutes ago (runfolder.folder_signature trusts settled folders)."""
    stamp = time.time() - 120
    for path in [run, *run.rglob("*")]:
        os.utime(path, (stamp, stamp))


def _two_cells(tmp_path_factory, tmp_path):
    """A results folder of two real cells (A: clip none, B: clip norm) and an empty SQLite store's URI."""
    results = tmp_path / "results"
    real = real_run_folder(tmp_path_factory)
    for cell_id, clip in ((A, "none"), (B, "norm")):
        _settle(recast(copy_run(real, results, cell_id), cell_id, axes={"clip": clip}))
    return results, f"sqlite:///{tmp_path / 'mlflow.db'}"


def _export(results, uri):
    res = repro("export", "mlflow", "--results", results, "--tracking-uri", uri, "--experiment", EXPERIMENT)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _runs(uri):
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client, {r.data.tags["repro.cell_id"]: r for r in client.search_runs([experiment.experiment_id])}


def test_one_run_per_cell_with_params_tags_curves_scores_and_grids(tmp_path_factory, tmp_path):
    results, uri = _two_cells(tmp_path_factory, tmp_path)
    assert "2 runs created, 0 replaced, 0 unchanged" in _export(results, uri)

    client, runs = _runs(uri)
    assert set(runs) == {A, B}
    run = runs[B]
    config = json.loads((results / B / "config.json").read_text())
    assert run.data.params["clip"] == "norm" and run.data.params["lr"] == str(config["lr"])
    env = json.loads((results / B / "env.json").read_text())
    assert run.data.tags["env.torch"] == env["torch"] and run.info.status == "FINISHED"
    lines = [json.loads(line) for line in (results / B / "train.jsonl").read_text().splitlines()]
    history = client.get_metric_history(run.info.run_id, "loss_total")
    assert [m.step for m in history] == [line["iter"] for line in lines]
    assert history[-1].value == pytest.approx(lines[-1]["loss_total"], rel=1e-6)   # float32 curves
    scores = json.loads((results / B / "eval.json").read_text())
    assert run.data.metrics["side_x100"] == pytest.approx(scores["side_mean"] * 100)
    assert run.data.metrics["mad"] == pytest.approx(scores["mad_mean"])
    assert "n_spikes" in run.data.metrics and "max_grad_norm" in run.data.metrics
    grids = {f.path for f in client.list_artifacts(run.info.run_id, "samples")}
    assert grids and grids == {f"samples/{p.name}" for p in (results / B / "samples").iterdir()}


def test_a_rerun_keeps_unchanged_runs_and_replaces_a_changed_one(tmp_path_factory, tmp_path):
    results, uri = _two_cells(tmp_path_factory, tmp_path)
    _export(results, uri)
    _, before = _runs(uri)
    assert "0 runs created, 0 replaced, 2 unchanged" in _export(results, uri)

    log = results / A / "train.jsonl"
    last = json.loads(log.read_text().splitlines()[-1])
    with open(log, "a") as fh:   # the cell trained on: ten more lines
        fh.write("".join(json.dumps(dict(last, iter=last["iter"] + k)) + "\n" for k in range(1, 11)))
    _settle(results / A)
    assert "0 runs created, 1 replaced, 1 unchanged" in _export(results, uri)
    client, after = _runs(uri)
    assert set(after) == {A, B}   # still one active run per cell
    assert after[B].info.run_id == before[B].info.run_id and after[A].info.run_id != before[A].info.run_id
    assert len(client.get_metric_history(after[A].info.run_id, "loss_total")) == \
        len(client.get_metric_history(before[A].info.run_id, "loss_total")) + 10


def test_a_missing_results_folder_is_one_line(tmp_path):
    res = repro("export", "mlflow", "--results", tmp_path / "nowhere", "--tracking-uri", f"sqlite:///{tmp_path}/m.db")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "no such results folder" in res.stderr
