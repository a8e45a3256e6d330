"""Where the perceptual loss's VGG16 weights come from, and who decides it is on.

`vgg_weights: image` names the file the cell's image carries ($REPRO_VGG_WEIGHTS); the host
leaves `perceptual: auto` open and the trainer settles it where the cell runs. Real tiny
training runs with a stand-in vgg16 state dict (the real layer shapes, random values).
"""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from harness.cells import expand
from harness.matrix import load_study
from model.config import VGG_ENV, ConfigError, resolve
from model.losses import standin_vgg_state
from model.networks import VGG16Features
from model.runtime import perceptual_setup
from tests.helpers.vgg import stand_in_weights

ROOT = Path(__file__).resolve().parents[1]


def test_the_host_leaves_image_weights_unchecked_and_auto_unsettled():
    cfg = resolve({"preset": "tiny", "vgg_weights": "image"})
    assert cfg["perceptual"] == "auto" and cfg["vgg_weights"] == "image"
    assert resolve({"preset": "tiny"})["perceptual"] == "off"  # as before: no weights, off
    with pytest.raises(ConfigError, match=r"^vgg_weights: no such file /nowhere/vgg16\.pth$"):
        resolve({"vgg_weights": "/nowhere/vgg16.pth"})  # a host path is still checked on the host


def test_image_weights_turn_auto_on_and_say_which_file(tmp_path):
    weights = stand_in_weights(tmp_path / "opt")
    link = tmp_path / "opt" / "vgg16.pth"
    link.symlink_to(weights.name)  # the image's fixed path, as fetch-vgg.sh installs it
    cfg, state, why = perceptual_setup(resolve({"preset": "tiny", "vgg_weights": "image"}), {VGG_ENV: str(link)})
    assert cfg["perceptual"] == "on" and "features.0.weight" in state
    assert why == "vgg16 weights from %s" % weights  # the real name: a stand-in shows as one


@pytest.mark.parametrize("environ,reason", [
    ({}, "vgg_weights: image, and this environment sets no REPRO_VGG_WEIGHTS (see docker/README.md)"),
    ({VGG_ENV: "/opt/vgg16/vgg16.pth"}, "vgg_weights: image, but REPRO_VGG_WEIGHTS=/opt/vgg16/vgg16.pth is no "
                                        "file: the image was built without VGG16 weights"),
])
def test_an_image_without_weights_turns_auto_off_saying_why(environ, reason):
    cfg, state, why = perceptual_setup(resolve({"preset": "tiny", "vgg_weights": "image"}), environ)
    assert cfg["perceptual"] == "off" and state is None and why.startswith(reason)


def test_perceptual_on_without_image_weights_is_one_clear_line():
    cfg = resolve({"preset": "tiny", "vgg_weights": "image", "perceptual": "on"})
    with pytest.raises(ConfigError, match=r"^perceptual: 'on' needs VGG16 weights, but vgg_weights: image, "
                                          r"and this environment sets no REPRO_VGG_WEIGHTS"):
        perceptual_setup(cfg, {})


def _train(tmp_path, environ):
    config = tmp_path / "cell.yaml"
    config.write_text(yaml.safe_dump({"preset": "tiny", "threads": 1, "vgg_weights": "image"}))
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != VGG_ENV}
    proc = subprocess.run([sys.executable, "-m", "model.train", "--config", str(config), "--out", str(run)],
                          cwd=ROOT, env=dict(env, OMP_NUM_THREADS="1", **environ), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(l) for l in (run / "train.jsonl").read_text().splitlines()]
    return json.loads((run / "env.json").read_text()), json.loads((run / "config.json").read_text()), records


@pytest.mark.slow  # real training runs: CI runs them (-m slow); the default suite stays fast
def test_a_tiny_run_trains_with_the_weights_its_environment_names(tmp_path):
    weights = stand_in_weights(tmp_path / "opt")
    env, config, records = _train(tmp_path, {VGG_ENV: str(weights)})
    assert env["perceptual"] == "on" and env["perceptual_reason"] == "vgg16 weights from %s" % weights
    assert config["perceptual"] == "on" and config["vgg_weights"] == "image"  # what ran, as asked
    assert all(math.isfinite(r["loss_perc"]) and math.isfinite(r["loss_perc_flip"]) for r in records)


def test_a_tiny_run_without_them_trains_without_the_perceptual_loss_and_says_so(tmp_path):
    env, config, records = _train(tmp_path, {})
    assert env["perceptual"] == "off" and "sets no REPRO_VGG_WEIGHTS" in env["perceptual_reason"]
    assert config["perceptual"] == "off" and not any("loss_perc" in r for r in records)


def test_gpu_stacks_take_the_images_weights_and_cpu_cells_stay_as_they_were():
    cells = expand(load_study(ROOT / "matrix.yml"))
    gpu = [c for c in cells if c.stack.needs_gpu]
    assert gpu and all(c.config["vgg_weights"] == "image" and c.config["perceptual"] == "auto" for c in gpu)
    cpu = [c for c in cells if not c.stack.needs_gpu]
    assert cpu and all(c.config["vgg_weights"] is None and c.config["perceptual"] == "off" for c in cpu)


def test_the_stand_in_is_torchvisions_vgg16_init_from_a_fixed_generator():
    state = standin_vgg_state()
    assert set(state) == {name for name, _ in VGG16Features().named_parameters()}
    assert all(torch.equal(state[k], v) for k, v in standin_vgg_state().items())        # every cell: one network
    assert not torch.equal(state["features.0.weight"], standin_vgg_state(seed=1)["features.0.weight"])
    for name, value in state.items():
        if name.endswith("bias"):
            assert not value.any()
        else:   # Kaiming normal, fan_out, ReLU gain: std sqrt(2 / (out x kh x kw))
            expected = (2.0 / (value.shape[0] * value.shape[2] * value.shape[3])) ** 0.5
            assert value.std().item() == pytest.approx(expected, rel=0.05), name


@pytest.mark.parametrize("extra, message", [
    ({"vgg_weights": "image"}, "perceptual_net: 'standin' uses seeded random weights; drop vgg_weights"),
    ({"perceptual": "off"}, "perceptual_net: 'standin' needs the perceptual loss, but perceptual is 'off'"),
    ({"impl": "author"}, "perceptual_net: 'standin' is built for impl ours"),
])
def test_the_stand_in_refuses_what_would_mislabel_it(extra, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        resolve(dict({"preset": "tiny", "perceptual_net": "standin"}, **extra))


@pytest.mark.slow  # real training runs: CI runs them (-m slow); the default suite stays fast
def test_a_tiny_run_with_the_stand_in_trains_the_perceptual_term_and_labels_it(tmp_path):
    config = tmp_path / "cell.yaml"
    config.write_text(yaml.safe_dump({"preset": "tiny", "threads": 1, "perceptual_net": "standin"}))
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "model.train", "--config", str(config), "--out", str(run)],
                          cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    env = json.loads((run / "env.json").read_text())
    assert env["perceptual"] == "on" and env["perceptual_reason"].startswith("STAND-IN: VGG16")
    records = [json.loads(l) for l in (run / "train.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss_perc"]) and r["loss_perc"] != 0 for r in records)
    assert json.loads((run / "config.json").read_text())["perceptual_net"] == "standin"
