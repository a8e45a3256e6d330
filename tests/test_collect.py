"""collect(): run folders written per docs/run-folder.md -> one tidy row per cell."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.collect import COLUMNS, Skipped, collect, read_train_logs, write_table

__all__ = ["write_run", "train_lines", "png_bytes"]

AX = ["stack", "impl", "clip", "seed", "clip_threshold"]
STACK_CUDA = {"cpu": None, "cuda9.2": "9.2", "cuda10.0": "10.0", "cuda11.3": "11.3"}


def png_bytes(color=(200, 100, 50), size=(24, 16)) -> bytes:
    """A small valid PNG (a decomposition grid stand-in)."""
    from PIL import Image
    import io
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def train_lines(n=120, spikes=(), base=1.0, clipped=False, grad=2.0):
    """n logged iterations of a slowly falling loss, with spikes (x10) at given iters."""
    lines = []
    for i in range(n):
        loss = base * (1 - 0.3 * i / n) * (10 if i in spikes else 1)
        lines.append({"epoch": 0, "iter": i, "loss_total": loss, "loss_l1": loss / 2,
                      "grad_norm": grad * (20 if i in spikes else 1), "grad_norm_netD": grad / 2,
                      "clipped": bool(clipped and i in spikes), "lr": 1e-4, "seconds": 0.5,
                      "time": 0.5 * (i + 1)})
    return lines


def write_run(results, cell_id, *, stack="cpu", impl="ours", clip="none", seed=0,
              state="done", reason="", side=0.01, mad=15.0, lines=None, env=True,
              eval_json=True, grid=True, result=None, perceptual="off", torn=False):
    """Write one run folder like the harness + trainer would; return its path."""
    run = Path(results) / cell_id
    run.mkdir(parents=True)
    axes = {"stack": stack, "impl": impl, "clip": clip, "clip_threshold": 5.0, "seed": seed,
            "dataset": "builtin", "preset": "tiny"}
    config = {**axes, "perceptual": "auto", "vgg_weights": None}
    config.pop("stack")
    (run / "cell.json").write_text(json.dumps({
        "cell_id": cell_id, "name": f"{stack},{impl},clip={clip},seed={seed}", "axes": axes,
        "stack": {"name": stack, "cuda": STACK_CUDA.get(stack), "torch": "2.1"}, "config": config}))
    (run / "status.json").write_text(json.dumps({
        "state": state, "reason": reason, "started": "2024-01-01T00:00:00", "ended":
        "2024-01-01T00:01:40", "attempt": 1}))
    if env:
        (run / "env.json").write_text(json.dumps({
            "python": "3.11.7", "torch": "2.1.0", "cuda": STACK_CUDA.get(stack), "cudnn": None,
            "gpu": {"name": "NVIDIA H100", "capability": [9, 0]}, "tf32": False,
            "deterministic": True, "image_digest": "sha256:abc", "git_sha": "1234abc",
            "host": "box", "perceptual": perceptual, "perceptual_reason": "no VGG weights"}))
    if lines is None:
        lines = train_lines() if state in ("done", "diverged", "running") else []
    if lines:
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (run / "train.jsonl").write_text(text + ('{"epoch": 0, "iter": 99' if torn else ""))
    if eval_json is True and state == "done":
        (run / "eval.json").write_text(json.dumps({
            "side_mean": side, "side_std": side / 5, "mad_mean": mad, "mad_std": mad / 10,
            "flat_side_mean": 0.02, "flat_mad_mean": 45.0,
            "n_images": 8, "scores_file": "eval_scores.csv"}))
    elif isinstance(eval_json, str):
        (run / "eval.json").write_text(eval_json)
    if result is not None:
        (run / "result.json").write_text(json.dumps(result))
    if grid and lines:
        (run / "samples").mkdir()
        (run / "samples" / "grid_2.png").write_bytes(png_bytes((0, 0, 0)))
        (run / "samples" / "grid_10.png").write_bytes(png_bytes())
    return run


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


def test_one_row_per_cell_with_every_column(results):
    write_run(results, "aaa", seed=0)
    write_run(results, "bbb", seed=1, clip="norm", side=0.02)
    df, skipped = collect(results)
    assert skipped == []
    assert list(df.columns) == list(COLUMNS)
    assert list(df["cell_id"]) == ["aaa", "bbb"]
    row = df.iloc[0]
    assert tuple(row[AX]) == ("cpu", "ours", "none", 0, 5.0)
    assert row.state == "done" and row.side_mean == 0.01 and row.mad_mean == 15.0
    assert row["env.gpu"] == "NVIDIA H100" and row["env.capability"] == "9.0"
    assert row["env.python"] == "3.11.7" and row["env.git_sha"] == "1234abc"
    assert bool(row.perceptual) is False and row.perceptual_reason == "no VGG weights"
    assert row.wall_s == 100.0 and row.train_lines == 120 and row.last_iter == 119
    assert row.final_loss == pytest.approx(1 - 0.3 * 119 / 120)
    assert row.samples_grid.endswith("grid_10.png")  # natural order: 10 is the last grid
    assert pd.isna(row.problems)


def test_loss_spikes_grad_norm_and_clipped_fraction(results):
    write_run(results, "spiky", lines=train_lines(200, spikes=(60, 150), clipped=True))
    row = collect(results)[0].iloc[0]
    assert row.n_spikes == 2 and row.first_spike_iter == 60
    assert row.max_grad_norm == 40.0
    assert row.clipped_frac == pytest.approx(2 / 200)


def test_torn_last_line_keeps_the_good_lines(results):
    write_run(results, "torn", lines=train_lines(50), torn=True)
    row = collect(results)[0].iloc[0]
    assert row.train_lines == 50 and row.train_torn
    assert row.problems == "train.jsonl torn last line dropped"


def test_bad_middle_line_falls_back_without_losing_other_logs(tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text("".join(json.dumps(x) + "\n" for x in train_lines(10)))
    bad.write_text('{"iter": 0, "loss_total": 1}\nnot json\n{"iter": 1, "loss_total": NaN}\n')
    logs = read_train_logs([good, bad, None, tmp_path / "missing.jsonl"])
    assert logs[0].lines == 10 and logs[0].columns["clipped"].tolist() == [0.0] * 10
    assert logs[1].lines == 2 and logs[1].bad == 1 and math.isnan(logs[1].columns["loss_total"][1])
    assert logs[2] is None and logs[3].error


@pytest.mark.parametrize("content, problem", [(None, "eval.json missing"), ("", "eval.json empty"),
                                              ('{"side_mean": 0.', "eval.json not valid JSON")])
def test_missing_or_broken_eval_is_a_problem_not_a_crash(results, content, problem):
    write_run(results, "noeval", eval_json=content if content is not None else False)
    row = collect(results)[0].iloc[0]
    assert math.isnan(row.side_mean) and row.problems.startswith(problem)


def test_stray_and_hidden_folders_are_skipped_with_why(results):
    write_run(results, "real")
    (results / "stray").mkdir()
    (results / ".data").mkdir()
    (results / "brokencell").mkdir()
    (results / "brokencell" / "cell.json").write_text('{"cell_id": ')
    (results / "runs.csv").write_text("old table, a file: ignored")
    df, skipped = collect(results)
    assert list(df.cell_id) == ["real"]
    reasons = {s.folder: s.reason for s in skipped}
    assert reasons[".data"].startswith("hidden folder")
    assert reasons["stray"] == "cell.json missing: not a run folder"
    assert reasons["brokencell"].startswith("cell.json not valid JSON")
    assert str(Skipped("x", "why")) == "x: why"


def test_states_without_outputs_and_divergence(results):
    write_run(results, "skip", stack="cuda11.3", state="skipped", reason="needs a GPU")
    write_run(results, "div", state="diverged", reason="NaN loss",
              result={"state": "diverged", "iteration": 1234, "network": "netD"})
    (write_run(results, "nostatus") / "status.json").unlink()
    df = collect(results)[0].set_index("cell_id")
    assert df.loc["skip", "state"] == "skipped" and pd.isna(df.loc["skip", "problems"])
    assert df.loc["div", "diverged_iter"] == 1234 and df.loc["div", "diverged_net"] == "netD"
    assert df.loc["nostatus", "state"] == "unknown"
    assert "status.json missing" in df.loc["nostatus", "problems"]


def test_empty_or_missing_results_dir(tmp_path):
    df, skipped = collect(tmp_path / "nothing")
    assert df.empty and list(df.columns) == list(COLUMNS) and skipped == []


def test_write_table_parquet_and_csv_round_trip(results):
    write_run(results, "aaa")
    write_run(results, "bbb", stack="cuda11.3", state="skipped", reason="needs a GPU")
    df, _ = collect(results)
    paths = write_table(df, results)
    assert [p.name for p in paths] == ["runs.parquet", "runs.csv"]
    back = pd.read_parquet(paths[0])
    assert list(back.cell_id) == ["aaa", "bbb"] and back.loc[0, "side_mean"] == 0.01
    assert len(pd.read_csv(paths[1])) == 2
    assert not list(results.glob(".*.tmp"))
