"""impl: author -- the original Unsup3D trained through model.author_adapter, end to end."""
import json
from pathlib import Path

import pytest
import yaml

from model import train as trainer
from model.author_adapter import AUTHOR_FIXED, author_code_dir, author_config
from model.config import ConfigError, resolve
from model.author_code import FETCHED_DIR, SHARED_DIR
from tests.helpers.author_code import needs_author_code as needs_author
from tests.helpers.trainer import train

CONTRACT = ["config.json", "env.json", "train.jsonl", "result.json", "eval.json", "eval_scores.csv",
            "samples/test.png", "samples/epoch001.png", "checkpoints/checkpoint001.pth"]
# their nets are 64x64 at paper widths: keep the run to 2 steps of batch 2
SMALL = {"preset": "tiny", "impl": "author", "threads": 1, "batch_size": 2, "builtin_num_train": 4,
         "builtin_num_val": 2, "builtin_num_test": 2, "num_sample_images": 2}



def _cell(tmp_path, **keys):
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump(dict(SMALL, **keys)))
    return path


def _records(run):
    return [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]


def test_author_config_sets_what_their_code_fixes_and_says_so():
    said = []
    cfg, overrides = author_config(resolve({"preset": "tiny", "impl": "author"}), log=said.append)
    assert cfg["image_size"] == 64 and cfg["nf"] == 64 and cfg["zdim"] == 256
    assert overrides["image_size"] == [32, 64]
    assert cfg["author_overrides"] == overrides
    assert len(said) == 1 and "image_size 32 -> 64" in said[0]
    paper, none = author_config(resolve({"preset": "paper", "impl": "author"}), log=said.append)
    assert none == {} and all(paper[k] == v for k, v in AUTHOR_FIXED.items())


def test_missing_author_code_is_a_one_line_config_error(tmp_path, capsys):
    with pytest.raises(ConfigError) as err:
        author_code_dir({"author_code_dir": str(tmp_path / "nowhere")})
    assert "author_code_dir" in str(err.value) and "\n" not in str(err.value)
    # the trainer's own handling, in-process: rejected before any training state exists
    code = trainer.main(["--config", str(_cell(tmp_path, author_code_dir=str(tmp_path / "nowhere"))),
                         "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().startswith("error: author_code_dir:") and len(err.strip().splitlines()) == 1


@needs_author
def test_default_author_code_dir_is_the_fetched_checkout_else_the_shared_snapshot(monkeypatch):
    monkeypatch.delenv("REPRO_AUTHOR_CODE_DIR", raising=False)
    fetched = Path(FETCHED_DIR, "unsup3d", "model.py").is_file()
    assert Path(author_code_dir({"author_code_dir": None})) == Path(FETCHED_DIR if fetched else SHARED_DIR)


@needs_author
@pytest.mark.slow  # ~20 s of their paper-width nets; CI's slow run and test_oldtorch (docker) run it
def test_author_tiny_run_writes_the_run_folder_contract(tmp_path):
    run = tmp_path / "run"
    proc = train(_cell(tmp_path), run)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in CONTRACT:
        assert (run / name).is_file(), name
    records = _records(run)
    assert [r["iter"] for r in records] == [0, 1]
    for key in ("loss_total", "loss_l1", "loss_l1_flip", "grad_norm", "grad_norm_netD", "grad_norm_netA",
                "grad_norm_netL", "grad_norm_netV", "grad_norm_netC", "grad_max_abs", "clipped", "lr",
                "seconds", "time", "epoch"):
        assert key in records[0], key
    assert "loss_perc" not in records[0]  # perceptual off: their term is weighted 0, not logged
    env = json.loads((run / "env.json").read_text())
    assert env["impl"] == "author" and env["author_commit"] == "dc961410d61684561f19525c2f7e9ee6f4dacb91"
    assert env["perceptual"] == "off" and "lam_perc 0" in env["perceptual_reason"]
    assert "drop-in" in env["author_shims"]["neural_renderer"] and env["author_align_corners"] is True
    assert env["author_cfgs"]["num_workers"] == 0 and env["author_cfgs"]["lam_perc"] == 0.0
    config = json.loads((run / "config.json").read_text())
    assert config["impl"] == "author" and config["image_size"] == 64
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["n_images"] == 2 and 0 < evaluation["side_mean"] < 1 and 0 < evaluation["mad_mean"] < 90
    assert len((run / "eval_scores.csv").read_text().splitlines()) == 3
    assert json.loads((run / "result.json").read_text()) == {"state": "done", "iteration": 2}


@needs_author
@pytest.mark.slow
def test_author_resumes_from_its_epoch_checkpoint_and_truncates_the_log(tmp_path):
    run = tmp_path / "run"
    assert train(_cell(tmp_path), run).returncode == 0
    with open(str(run / "train.jsonl"), "a") as f:  # a line past the checkpoint, as after a kill
        f.write(json.dumps({"iter": 2, "epoch": 1, "loss_total": 1.0, "time": 99.0}) + "\n{\"torn")
    proc = train(_cell(tmp_path, num_epochs=2), run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming their checkpoint at epoch 1" in proc.stdout
    records = _records(run)
    assert [r["iter"] for r in records] == [0, 1, 2, 3] and [r["epoch"] for r in records] == [0, 0, 1, 1]
    assert records[2]["time"] >= records[1]["time"] and records[2]["time"] < 99
    assert (run / "checkpoints" / "checkpoint002.pth").is_file()


@needs_author
@pytest.mark.slow
def test_author_clipping_and_divergence(tmp_path):
    clipped = tmp_path / "clip"
    assert train(_cell(tmp_path, clip="norm", clip_threshold=1e-3), clipped).returncode == 0
    assert all(r["clipped"] and r["grad_norm"] > 1e-3 for r in _records(clipped))
    diverged = tmp_path / "nan"
    proc = train(_cell(tmp_path, inject_nan_at=1), diverged)
    assert proc.returncode == 3
    result = json.loads((diverged / "result.json").read_text())
    assert result["state"] == "diverged" and result["iteration"] == 1 and result["network"] == "netD"
