"""The trainer end to end: real tiny training runs, real files, real kills."""
import json
import shutil
import signal
import subprocess
import time

import pytest
import torch

from model import train as trainer
from model.config import resolve
from model.runtime import Diverged
from model.step import clip_gradients, grad_diagnostics
from model.train import train_step, make_optimizer
from model.photogeo import PhotoGeoAutoencoder
from tests.helpers.trainer import RESUMABLE, ROOT, train, trained_run, trainer_argv, trainer_env, write_cell

CONTRACT = ["config.json", "env.json", "train.jsonl", "result.json", "eval.json", "eval_scores.csv",
            "samples/test.png", "checkpoints/last.pt"]


def _losses(run):
    lines = (run / "train.jsonl").read_text().splitlines()
    return [(r["iter"], r["loss_total"], r["grad_norm"]) for r in map(json.loads, lines)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One done run of RESUMABLE (18 steps, checkpoint every 2), shared: read it, or copy it first."""
    return trained_run(tmp_path_factory)


def test_tiny_run_writes_the_run_folder_contract(reference):
    run = reference
    for name in CONTRACT:
        assert (run / name).is_file(), name
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["n_images"] == 8
    assert 0 < evaluation["side_mean"] < 1 and 0 < evaluation["mad_mean"] < 90
    env = json.loads((run / "env.json").read_text())
    assert env["perceptual"] == "off" and "vgg_weights" in env["perceptual_reason"]
    assert env["torch"] == torch.__version__
    records = [json.loads(l) for l in (run / "train.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == list(range(18))  # 3 epochs of 24 images, batch 4
    assert [r["epoch"] for r in records] == [0] * 6 + [1] * 6 + [2] * 6
    for key in ("loss_l1", "loss_l1_flip", "loss_total", "grad_norm", "grad_norm_netD", "grad_norm_netC",
                "grad_max_abs", "clipped", "lr", "seconds", "epoch"):
        assert key in records[0], key
    assert json.loads((run / "result.json").read_text()) == {"state": "done", "iteration": 18}


def test_scoring_the_last_checkpoint_rewrites_the_same_eval(reference, tmp_path):
    from model.score import score_checkpoint
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    written = {name: (run / name).read_bytes() for name in ("eval.json", "eval_scores.csv")}
    for name in written:
        (run / name).unlink()
    summary = score_checkpoint(str(run), log=lambda msg: None)
    assert summary["n_images"] == 8
    for name, data in written.items():
        assert (run / name).read_bytes() == data, name


@pytest.mark.slow  # real training runs: CI runs them (-m slow); the default suite stays fast
def test_killed_run_resumes_to_the_same_result(reference, tmp_path):
    cell = write_cell(tmp_path, **RESUMABLE)
    run = tmp_path / "killed"
    proc = subprocess.Popen(trainer_argv(cell, run), cwd=ROOT, env=trainer_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        log = run / "train.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 7:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "result.json").exists(), "killed too late: the run had finished"
    resumed = train(cell, run)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    assert _losses(run) == _losses(reference)
    ours = json.loads((run / "eval.json").read_text())
    theirs = json.loads((reference / "eval.json").read_text())
    assert ours["side_mean"] == pytest.approx(theirs["side_mean"], rel=1e-6)


def test_non_finite_gradient_ends_the_run_as_diverged(tmp_path):
    proc = train(write_cell(tmp_path, inject_nan_at=2), tmp_path / "run")
    assert proc.returncode == 3
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["state"] == "diverged"
    assert result["iteration"] == 2 and result["network"] == "netD"
    assert [r[0] for r in _losses(tmp_path / "run")] == [0, 1]  # the log stays readable


@pytest.mark.parametrize("keys, needle", [
    ({"clip": "sometimes"}, "clip: 'sometimes' is not one of none, norm, value"),
    ({"clip_threshold": -1}, "clip_threshold: must be >= 0"),
    ({"dataset": "synface", "data_dir": "/nonexistent/data"}, "data_dir: no such folder /nonexistent/data"),
    ({"learning_rate": 0.1}, "learning_rate: unknown key"),
])
def test_config_mistakes_give_one_line_naming_the_key(tmp_path, capsys, keys, needle):
    # in-process: the config is rejected before any training state exists (the empty-data
    # test below checks the same one line from a real `python -m model.train` process)
    code = trainer.main(["--config", str(write_cell(tmp_path, **keys)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_empty_data_folder_is_one_line_naming_the_path(tmp_path):
    data = tmp_path / "data"
    for split in ("train", "val", "test"):
        (data / split / "image").mkdir(parents=True)
        (data / split / "depth").mkdir(parents=True)
    proc = train(write_cell(tmp_path, dataset="synface", data_dir=str(data)), tmp_path / "run")
    assert proc.returncode == 2
    assert str(data / "train" / "image") in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _model_and_batch(**keys):
    cfg = resolve(dict({"preset": "tiny"}, **keys))
    torch.manual_seed(0)
    model = PhotoGeoAutoencoder(cfg)
    return cfg, model, make_optimizer(cfg, model), torch.rand(4, 3, 32, 32)


@pytest.mark.parametrize("mode", ["norm", "value"])
def test_clipping_bounds_the_gradient_and_is_reported(mode):
    cfg, model, optimizer, images = _model_and_batch(clip=mode, clip_threshold=1e-3)
    out = model(images)
    out.losses["total"].backward()
    stats, bad = grad_diagnostics(model.nets)
    assert bad is None and stats["grad_norm"] > 1e-3
    assert clip_gradients(cfg, model.nets, stats)
    after, _ = grad_diagnostics(model.nets)
    if mode == "norm":
        assert after["grad_norm"] == pytest.approx(1e-3, rel=1e-3)
    else:
        assert after["grad_max_abs"] <= 1e-3 + 1e-9


def test_no_clipping_leaves_gradients_alone():
    cfg, model, optimizer, images = _model_and_batch(clip="none")
    record = train_step(cfg, model, optimizer, images, 0)
    assert record["clipped"] is False and record["grad_norm"] > 0


def test_every_network_gets_a_gradient():
    cfg, model, optimizer, images = _model_and_batch()
    model(images).losses["total"].backward()
    stats, _ = grad_diagnostics(model.nets)
    for name in ("netD", "netA", "netL", "netV", "netC"):
        assert stats["grad_norm_" + name] > 0, name


def test_train_step_raises_diverged_with_network_and_iteration():
    cfg, model, optimizer, images = _model_and_batch(inject_nan_at=5)
    with pytest.raises(Diverged) as info:
        train_step(cfg, model, optimizer, images, 5)
    assert info.value.iteration == 5 and info.value.network == "netD"


@pytest.mark.slow
def test_cpu_small_learns_depth_better_than_flat(tmp_path):
    # ~4 min: the full cpu-small cell of the default study, seed 1 (SIDE 0.84 and MAD
    # 0.36 of flat depth on one thread; docs/instability.md). Guards what made the
    # original's settings learn here: GroupNorm groups, camera noise, the textured
    # backdrop and stronger light of builtin_version 5.
    config = write_cell(tmp_path, preset="cpu-small", seed=1, threads=2)
    run = tmp_path / "run"
    done = train(config, run, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads((run / "eval.json").read_text())
    assert scores["side_mean"] < 0.93 * scores["flat_side_mean"]
    assert scores["mad_mean"] < 0.6 * scores["flat_mad_mean"]
