"""The speed options (compile, memory_format, optimizer_impl): off by default without renaming a
cell, refused in one line where they cannot run, recorded in env.json, and what each does to
the numbers of real training steps on this CPU."""
import subprocess
import sys

import pytest
import torch
import yaml

from harness.cells import expand
from harness.matrix import load_study
from model import compat
from model.config import ConfigError, resolve
from model.env import fingerprint
from model.factors import SPEED, later_keys, torch_version
from model.numerics import settle
from model.runtime import build_model
from model.train import make_optimizer, train_step
from tests.conftest import ROOT

CPU = torch.device("cpu")


def _trained(options, steps=3):
    """Parameters and losses after `steps` real tiny-preset steps on fixed batches."""
    cfg, _ = settle(resolve(dict(options, preset="tiny")), CPU)
    torch.manual_seed(0)
    model = build_model(cfg, CPU)
    optimizer = make_optimizer(cfg, model)
    batches = torch.rand(steps, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    losses = [train_step(cfg, model, optimizer, images, i)["loss_total"] for i, images in enumerate(batches)]
    return [p.detach().clone() for p in model.nets.parameters()], losses, model


def _largest_difference(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def test_each_option_is_off_by_default_and_left_out_of_cell_ids():
    defaults = resolve({})
    assert dict((k, defaults[k]) for k in SPEED) == {"compile": "off", "memory_format": "contiguous",
                                                    "optimizer_impl": "loop"}
    assert dict((k, later_keys()[k]) for k in SPEED) == dict((k, defaults[k]) for k in SPEED)
    speed = {c.name: c.cell_id for c in expand(load_study(ROOT / "matrices" / "speed-cpu.yml"))}
    causes = {c.name: c.cell_id for c in expand(load_study(ROOT / "matrices" / "causes-cpu.yml"))}
    # the speed study's baseline is the causes study's: the same cells, the same folders
    assert speed["cpu/ours/clip=none/compile=off/memory_format=contiguous/optimizer_impl=loop/seed=0"] == \
        causes["cpu/ours/clip=none/clip_threshold=5.0/tf32=False/align_corners=True/cpu_isa=native/seed=0"]
    assert len(set(speed.values())) == 25


def test_loop_and_foreach_adam_are_bit_identical_on_cpu_and_fused_within_float_rounding():
    loop, loop_losses, _ = _trained({})
    foreach, foreach_losses, _ = _trained({"optimizer_impl": "foreach"})
    assert foreach_losses == loop_losses
    assert _largest_difference(loop, foreach) == 0.0
    fused, _, _ = _trained({"optimizer_impl": "fused"})
    assert _largest_difference(loop, fused) < 1e-5  # ulps of lr-sized updates, not another algorithm


def test_channels_last_runs_the_networks_on_nhwc_kernels_and_hands_back_nchw():
    _, default_losses, _ = _trained({}, steps=1)
    _, losses, model = _trained({"memory_format": "channels_last"}, steps=1)
    conv = next(m for m in model.nets["netA"].modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    albedo = model.nets["netA"](torch.rand(2, 3, 32, 32))
    assert albedo.is_contiguous()  # the renderer and losses see what they always saw
    assert losses[0] == pytest.approx(default_losses[0], rel=1e-5)


def test_env_json_records_the_options_a_cell_ran_with():
    cfg, in_force = settle(resolve({"memory_format": "channels_last", "optimizer_impl": "fused"}), CPU)
    assert fingerprint(cfg, CPU, "", in_force)["speed"] == {
        "compile": "off", "memory_format": "channels_last", "optimizer_impl": "fused"}


def test_this_torch_has_all_three_adams_on_cpu():
    if torch_version(torch.__version__) < (2, 4):
        pytest.skip("torch %s: fused Adam on CPU came in 2.4" % torch.__version__)
    assert compat.adam_impls(CPU) == ("loop", "foreach", "fused")


@pytest.mark.parametrize("options, message", [
    ({"impl": "author", "compile": "default"}, "^compile: 'default' applies to impl: ours only"),
    ({"impl": "author", "optimizer_impl": "foreach"}, "^optimizer_impl: 'foreach' applies to impl: ours only"),
])
def test_the_authors_code_refuses_the_options_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        settle(resolve(options), CPU)


def test_an_older_torch_refuses_what_it_lacks_in_one_line(monkeypatch):
    """What the cpu-torch1.8 stack and the torch 1.2 images see (their torch has none of these)."""
    monkeypatch.setattr(compat, "HAS_COMPILE", False)
    monkeypatch.setattr(compat, "HAS_CHANNELS_LAST", False)
    monkeypatch.setattr(compat, "adam_impls", lambda device: ("loop",))
    assert settle(resolve({}), CPU)[0]["optimizer_impl"] == "loop"  # the default runs everywhere
    refusals = [({"compile": "default"}, r"^compile: 'default' needs PyTorch >= 2\.0 \(this is "),
                ({"memory_format": "channels_last"}, r"^memory_format: channels_last needs PyTorch >= 1\.5"),
                ({"optimizer_impl": "fused"}, r"^optimizer_impl: 'fused' is not in PyTorch .* on cpu \(it has loop\)$")]
    for options, message in refusals:
        with pytest.raises(ConfigError, match=message):
            settle(resolve(options), CPU)


def test_a_cell_asking_for_an_option_that_cannot_apply_exits_2_with_one_line(tmp_path):
    cell = tmp_path / "cell.yaml"
    cell.write_text(yaml.safe_dump({"preset": "tiny", "impl": "author", "memory_format": "channels_last"}))
    done = subprocess.run([sys.executable, "-m", "model.train", "--config", str(cell), "--out", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: memory_format: 'channels_last' applies to impl: ours only (the authors' code builds its own "
        "networks and Adams); leave it at 'contiguous'"]


@pytest.mark.slow
def test_compile_trains_the_same_model_to_within_float_rounding():
    """torch.compile (inductor) fuses and reorders: close to eager after real steps, not equal."""
    if not compat.HAS_COMPILE:
        pytest.skip("torch %s has no torch.compile" % torch.__version__)
    eager, eager_losses, _ = _trained({}, steps=2)
    compiled, losses, _ = _trained({"compile": "default"}, steps=2)
    assert losses == pytest.approx(eager_losses, rel=1e-4)
    assert _largest_difference(eager, compiled) < 1e-3
