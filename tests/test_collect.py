"""collect(): real run folders (harness + trainer wrote them) -> one tidy row per cell."""
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.collect import COLUMNS, ENV_FIELDS, Skipped, collect, read_train_logs, write_table
from harness.runfolder import read_run_folder
from tests.helpers.runfolders import (copy_run, real_run_folder, rewrite_train_log, set_status, train_lines,
                                     write_run)

AX = ["stack", "impl", "clip", "seed", "clip_threshold"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    return real_run_folder(tmp_path_factory)


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


def _row(results):
    got = collect(results)
    df, skipped = got.table, got.skipped
    assert len(df) == 1 and skipped == ()
    return df.iloc[0]


def test_a_real_run_folder_fills_every_column_from_what_the_trainer_wrote(results, real_run):
    run = copy_run(real_run, results)
    got = collect(results)
    df, skipped = got.table, got.skipped
    assert skipped == () and list(df.columns) == list(COLUMNS)
    row = df.iloc[0]
    env = json.loads((run / "env.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    lines = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    assert row.cell_id == run.name and row["name"] == "cpu/ours/clip=none/seed=0"
    assert tuple(row[AX]) == ("cpu", "ours", "none", 0, 5.0)
    assert row.state == "done" and pd.isna(row.problems)
    # every env column is the key model/env.py writes, as text
    for column, key in ENV_FIELDS.items():
        expected = None if env[key] is None else str(env[key])
        assert row["env." + column] == expected, column
    assert row["env.torch"] == env["torch"] and row["env.device"] == "cpu"
    assert bool(row.perceptual) is False and row.perceptual_reason == env["perceptual_reason"]
    assert row.side_mean == ev["side_mean"] and row.mad_mean == ev["mad_mean"] and row.n_images == ev["n_images"]
    assert row.flat_side_mean == ev["flat_side_mean"]
    assert row.train_lines == len(lines) and row.last_iter == lines[-1]["iter"]
    assert row.final_loss == lines[-1]["loss_total"] and row.train_s == lines[-1]["time"]
    assert row.max_grad_norm == max(line["grad_norm"] for line in lines)
    assert pd.isna(row.diverged_iter) and pd.isna(row.diverged_net)  # a done result.json also names an iteration
    assert row.wall_s >= 0 and row.samples_grid.endswith("test.png")


def test_loss_spikes_grad_norm_and_clipped_fraction(results, real_run):
    run = copy_run(real_run, results)
    spikes = (60, 150)
    losses = [1 - 0.3 * i / 200 if i not in spikes else 10.0 for i in range(200)]
    grads = [40.0 if i in spikes else 2.0 for i in range(200)]
    rewrite_train_log(run, losses, grads=grads, clipped=[i in spikes for i in range(200)])
    row = _row(results)
    assert row.n_spikes == 2 and row.first_spike_iter == 60
    assert row.max_grad_norm == 40.0 and row.clipped_frac == pytest.approx(2 / 200)


def test_torn_last_line_keeps_the_good_lines(results, real_run):
    run = copy_run(real_run, results)
    good = len((run / "train.jsonl").read_text().splitlines())
    with open(run / "train.jsonl", "a") as f:
        f.write('{"epoch": 0, "iter": 99, "loss_to')
    row = _row(results)
    assert row.train_lines == good and row.train_torn
    assert row.problems == "train.jsonl torn last line skipped"


@pytest.mark.parametrize("damage, problem", [("missing", "train.jsonl missing"), ("empty", "train.jsonl empty")])
def test_missing_or_empty_train_log_is_a_problem_not_a_crash(results, real_run, damage, problem):
    log = copy_run(real_run, results) / "train.jsonl"
    log.unlink() if damage == "missing" else log.write_text("")
    row = _row(results)
    assert row.problems == problem and row.train_lines == 0 and math.isnan(row.final_loss)


def test_bad_middle_line_falls_back_without_losing_other_logs(tmp_path, real_run):
    good, bad = real_run / "train.jsonl", tmp_path / "bad.jsonl"
    bad.write_text('{"iter": 0, "loss_total": 1}\nnot json\n{"iter": 1, "loss_total": NaN}\n')
    n_good = len(good.read_text().splitlines())
    logs = read_train_logs([good, bad, None, tmp_path / "missing.jsonl"])
    assert logs[0].lines == n_good and logs[0].columns["clipped"].tolist() == [0.0] * n_good
    assert logs[1].lines == 2 and logs[1].bad == 1 and math.isnan(logs[1].columns["loss_total"][1])
    assert logs[2] is None and logs[3].error


@pytest.mark.parametrize("content, problem", [(None, "eval.json missing"), ("", "eval.json empty"),
                                              ('{"side_mean": 0.', "eval.json not valid JSON")])
def test_missing_or_broken_eval_is_a_problem_not_a_crash(results, real_run, content, problem):
    ev = copy_run(real_run, results) / "eval.json"
    ev.unlink() if content is None else ev.write_text(content)
    row = _row(results)
    assert math.isnan(row.side_mean) and row.problems.startswith(problem)


def test_stray_and_hidden_folders_are_skipped_with_why(results, real_run):
    copy_run(real_run, results, "real")
    (results / "stray").mkdir()
    (results / ".data").mkdir()
    (results / "brokencell").mkdir()
    (results / "brokencell" / "cell.json").write_text('{"cell_id": ')
    (results / "runs.csv").write_text("old table, a file: ignored")
    got = collect(results)
    df, skipped = got.table, got.skipped
    assert list(df.cell_id) == [real_run.name]
    reasons = {s.folder: s.reason for s in skipped}
    assert reasons[".data"].startswith("hidden folder")
    assert reasons["stray"] == "cell.json missing: not a run folder"
    assert reasons["brokencell"].startswith("cell.json not valid JSON")
    assert str(Skipped("x", "why")) == "x: why"


def test_states_without_outputs_and_divergence(results, real_run):
    skipped = copy_run(real_run, results, "skip")
    for name in ("env.json", "train.jsonl", "eval.json", "result.json"):
        (skipped / name).unlink()
    set_status(skipped, state="skipped", reason="needs a GPU", started=None)
    diverged = copy_run(real_run, results, "div")
    (diverged / "eval.json").unlink()
    (diverged / "result.json").write_text(json.dumps(
        {"state": "diverged", "iteration": 3, "network": "netD", "reason": "non-finite gradient in netD"}))
    set_status(diverged, state="diverged", reason="iteration 3, network netD")
    (copy_run(real_run, results, "nostatus") / "status.json").unlink()
    df = collect(results).table
    df.index = [Path(p).name for p in df.run_dir]  # the copies share one cell_id; folders tell them apart
    assert df.loc["skip", "state"] == "skipped" and pd.isna(df.loc["skip", "problems"])
    assert pd.isna(df.loc["skip", "wall_s"])
    assert df.loc["div", "diverged_iter"] == 3 and df.loc["div", "diverged_net"] == "netD"
    assert pd.isna(df.loc["div", "problems"])  # a diverged cell owes no eval.json
    assert df.loc["nostatus", "state"] == "unknown"
    assert "status.json missing" in df.loc["nostatus", "problems"]


def test_empty_or_missing_results_dir(tmp_path):
    got = collect(tmp_path / "nothing")
    df, skipped = got.table, got.skipped
    assert df.empty and list(df.columns) == list(COLUMNS) and skipped == ()


def test_write_table_parquet_and_csv_round_trip(results, real_run):
    copy_run(real_run, results, "aaa")
    skipped = copy_run(real_run, results, "bbb")
    set_status(skipped, state="skipped", reason="needs a GPU")
    df = collect(results).table
    paths = write_table(df, results)
    assert [p.name for p in paths] == ["runs.parquet", "runs.csv"]
    back = pd.read_parquet(paths[0])
    assert sorted(back.state) == ["done", "skipped"] and back.side_mean.notna().all()
    assert len(pd.read_csv(paths[1])) == 2
    assert not list(results.glob(".*.tmp"))


def test_a_factor_added_after_a_run_reads_as_the_value_it_ran_with(results, real_run):
    """config.json written before perturb_init and tf32_matmul existed: the run had them off
    (model/factors.py `before`), so the columns say False, not a missing value that would
    split Table 3's rows."""
    run = copy_run(real_run, results)
    config = json.loads((run / "config.json").read_text())
    for key in ("perturb_init", "tf32_matmul"):
        config.pop(key)
    (run / "config.json").write_text(json.dumps(config))
    cell = json.loads((run / "cell.json").read_text())
    for key in ("perturb_init", "tf32_matmul"):
        cell["config"].pop(key, None)
    (run / "cell.json").write_text(json.dumps(cell))
    row = _row(results)
    assert row.perturb_init == False and row.tf32_matmul == False  # noqa: E712 (numpy bools)
    assert row["in_force.renderer"] == "torch" and row.mad_published_mean > row.mad_mean > 0


@pytest.mark.parametrize("lines, torn", [(5, False), (5, True), (400, True), (0, False)])
def test_a_folder_read_whole_for_collect_reads_as_one_read_from_its_tail(tmp_path, lines, torn):
    """collect asks read_run_folder for the whole train.jsonl (one read, not a tail read and then
    another): the record is the same as the tail-only one, missing files are missing without an open."""
    run = write_run(tmp_path, "cell", lines=train_lines(lines) if lines else [], torn=torn)
    tail, whole = read_run_folder(run), read_run_folder(run, whole_log=True)
    assert (whole.train, whole.whys, whole.incomplete) == (tail.train, tail.whys, tail.incomplete)
    assert whole.log == ((run / "train.jsonl").read_bytes() if lines else None) and tail.log is None
    assert whole.whys["config.json"] == "missing" and "config.json" not in whole.files
    assert ("train.jsonl" in whole.files) == bool(lines)
    if lines:
        assert whole.train.last["iter"] == lines - 1 and whole.train.torn == torn


def _settle(folder: Path) -> None:
    """Date a folder and its files back a minute (runfolder.folder_signature trusts only settled folders)."""
    stamp = time.time() - 60
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (stamp, stamp))


def test_a_collect_that_reuses_the_last_one_equals_one_from_scratch(results, tmp_path):
    """The report's next collect takes unchanged folders' rows from the last table (harness.report.state
    keeps it): the table equals a collect from scratch, column types included, after a cell changed
    what its columns hold (a diverged iteration where every kept row has none), one was added and one left."""
    from harness.report.state import load_state, save_reads
    for seed in range(4):
        write_run(results, f"c{seed}", seed=seed)
    write_run(results, "gpu", stack="cuda11.3", state="skipped", reason="needs a GPU")
    _settle(results)
    save_reads(tmp_path / "reports", collect(results))
    shutil.rmtree(results / "c2")
    write_run(results, "c2", seed=2, state="diverged", result={"state": "diverged", "iteration": 40, "network": "netD"})
    write_run(results, "c9", seed=9, clip="norm")
    shutil.rmtree(results / "c0")
    _settle(results / "c2")
    _settle(results / "c9")
    warm = collect(results, previous=load_state(tmp_path / "reports").results)
    cold = collect(results)
    assert warm.reread == 2 and cold.reread == 5
    assert warm.table["diverged_iter"].dtype == float and list(warm.table["cell_id"]) == ["c1", "c2", "c3", "c9", "gpu"]
    pd.testing.assert_frame_equal(warm.table, cold.table)
    assert list(warm.series) == list(cold.series) and "c0" not in warm.series   # the kept ones built when asked for
    for cell, series in cold.series.items():
        assert all(np.array_equal(warm.series[cell][k], series[k], equal_nan=True) for k in ("iter", "loss_total"))
        assert np.array_equal(warm.series[cell].loss_spikes, series.loss_spikes)
