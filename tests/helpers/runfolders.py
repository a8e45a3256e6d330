"""Run folders for tests: one real tiny cell trained once per session, copied and damaged per test.

`real_study` runs `repro run` on a one-cell CPU study (the `tiny` preset, ~15 s) once,
so every file in its folder (`real_run_folder`) is what the harness and the trainer
really write. Tests copy it
(`copy_run`) and then break or reshape the copy (`rewrite_train_log` keeps the trainer's
own record keys). `write_run` builds a synthetic folder for tests that need many cells
of other stacks; its env.json uses the keys model/env.py writes.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from model.codedigest import file_digest

__all__ = ["ROOT", "ONE_CELL_MATRIX", "RealStudy", "repro", "real_study", "real_run_folder", "copy_run", "rewrite_train_log",
           "set_status", "train_lines", "write_run", "png_bytes"]

ROOT = Path(__file__).resolve().parents[2]

ONE_CELL_MATRIX = """\
axes:
  stack:
    - {name: cpu, image: local, torch: "2.13.0"}
  preset: [tiny]
"""

class RealStudy(NamedTuple):
    matrix: Path                        # the study file
    results: Path                       # its results folder
    run_dir: Path                       # the one cell's folder
    run: subprocess.CompletedProcess    # the `repro run` that trained it


_TRAINED = {}  # session cache: the template folder is trained once for all test files


def repro(*args, timeout=300):
    """`python -m harness.cli ARGS` in the project root, one torch thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def real_study(tmp_path_factory) -> RealStudy:
    """The one-cell study run once by `repro run` (on first use; treat its folders as read-only)."""
    if "done" not in _TRAINED:
        tmp = tmp_path_factory.mktemp("real-run")
        (tmp / "m.yml").write_text(ONE_CELL_MATRIX)
        res = repro("run", "--matrix", tmp / "m.yml", "--results", tmp / "results")
        assert res.returncode == 0, res.stderr
        (cell,) = [p for p in (tmp / "results").iterdir() if p.is_dir() and not p.name.startswith(".")]
        _TRAINED["done"] = RealStudy(tmp / "m.yml", tmp / "results", cell, res)
    return _TRAINED["done"]


def real_run_folder(tmp_path_factory) -> Path:
    """The folder of one done tiny cell (trained on first use; treat it as read-only)."""
    return real_study(tmp_path_factory).run_dir


def copy_run(template: Path, results: Path, name: str = "") -> Path:
    """A copy of a run folder under `results` (named like the template unless `name` is given)."""
    dest = Path(results) / (name or template.name)
    shutil.copytree(template, dest)
    return dest


def set_status(run: Path, **changes) -> None:
    """Change fields of a run folder's status.json (the harness-owned file)."""
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps(dict(status, **changes)))


def rewrite_train_log(run: Path, losses, grads=None, clipped=None) -> None:
    """Replace train.jsonl by len(losses) records shaped like the trainer's first one."""
    template = json.loads((run / "train.jsonl").read_text().splitlines()[0])
    lines = []
    for i, loss in enumerate(losses):
        record = dict(template, iter=i, loss_total=loss, time=template["time"] * (i + 1))
        if grads is not None:
            record["grad_norm"] = grads[i]
        if clipped is not None:
            record["clipped"] = bool(clipped[i])
        lines.append(json.dumps(record) + "\n")
    (run / "train.jsonl").write_text("".join(lines))


# ----------------------------------------------------------------- synthetic folders (many stacks)

_STACK_CUDA = {"cpu": None, "cuda9.2": "9.2", "cuda10.0": "10.0", "cuda11.3": "11.3"}


def png_bytes(color=(200, 100, 50), size=(24, 16)) -> bytes:
    """A small valid PNG (a decomposition grid stand-in)."""
    import io
    from PIL import Image
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
              eval_json=True, grid=True, result=None, perceptual="off", torn=False, dataset="builtin"):
    """Write one run folder like the harness + trainer would (keys as they write them); return its path."""
    run = Path(results) / cell_id
    run.mkdir(parents=True)
    axes = {"stack": stack, "impl": impl, "clip": clip, "clip_threshold": 5.0, "seed": seed,
            "dataset": dataset, "preset": "tiny"}
    config = {**axes, "perceptual": perceptual, "vgg_weights": None}
    config.pop("stack")
    (run / "cell.json").write_text(json.dumps({
        "cell_id": cell_id, "name": f"{stack},{impl},clip={clip},seed={seed}", "axes": axes,
        "stack": {"name": stack, "cuda": _STACK_CUDA.get(stack), "torch": "2.1"}, "config": config}))
    (run / "status.json").write_text(json.dumps({
        "state": state, "reason": reason, "started": "2024-01-01T00:00:00", "ended":
        "2024-01-01T00:01:40", "attempt": 1}))
    if env:
        cuda = _STACK_CUDA.get(stack)
        (run / "env.json").write_text(json.dumps({
            "python": "3.11.7", "torch": "2.1.0", "cuda": cuda, "cudnn": 8902 if cuda else None,
            "device": "cuda:0" if cuda else "cpu", "gpu_name": "NVIDIA H100" if cuda else None,
            "gpu_capability": "9.0" if cuda else None, "driver": "550.54" if cuda else None,
            "tf32": False, "tf32_mode": "off", "cudnn_deterministic": True, "cudnn_benchmark": False,
            "CUBLAS_WORKSPACE_CONFIG": None, "image_digest": "sha256:abc", "git_sha": "1234abc",
            "host": "box", "perceptual": perceptual, "perceptual_reason": "no vgg_weights given",
            "code": {"model/step.py": file_digest(ROOT / "model" / "step.py")}}))
    if lines is None:
        lines = train_lines() if state in ("done", "diverged", "running") else []
    if lines:
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (run / "train.jsonl").write_text(text + ('{"epoch": 0, "iter": 99' if torn else ""))
    if eval_json is True and state == "done":
        (run / "eval.json").write_text(json.dumps({
            "side_mean": side, "side_std": side / 5, "mad_mean": mad, "mad_std": mad / 10,
            "mad_published_mean": mad, "mad_published_std": mad / 10, "mad_published_floor": 2.6,
            "flat_side_mean": 0.02, "flat_mad_mean": 45.0, "flat_mad_published_mean": 45.0,
            "n_images": 8, "n_unscored": 0, "scores_file": "eval_scores.csv"}))
    elif isinstance(eval_json, str):
        (run / "eval.json").write_text(eval_json)
    if result is not None:
        (run / "result.json").write_text(json.dumps(result))
    if grid and lines:
        (run / "samples").mkdir()
        (run / "samples" / "grid_2.png").write_bytes(png_bytes((0, 0, 0)))
        (run / "samples" / "grid_10.png").write_bytes(png_bytes())
    return run
