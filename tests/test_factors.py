"""The factor table (model/factors.py): tied to the defaults, `stack` settled per torch and GPU,
shown by --dry-run, recorded in env.json, applied the same way for both trainers."""
import json
import subprocess
import sys

import pytest
import torch
import yaml

from harness.cells import expand
from harness.compare import DESIGN_KEYS
from harness.matrix import FACTOR_AXES, load_study
from model import compat
from model.config import DEFAULTS, ConfigError, resolve
from model.factors import FACTORS, NUMERICS, SCHEMA_ONE, STACK, in_force, later_keys
from model.numerics import apply_flags, settle
from tests.conftest import ROOT

ALL_STACK = {name: STACK for name in NUMERICS}


def test_every_factor_is_a_trainer_key_with_the_table_default():
    for factor in FACTORS:
        assert factor.name in DEFAULTS, factor.name
        assert DEFAULTS[factor.name] == factor.default, factor.name
        if factor.values is not None:
            assert factor.default in factor.values, factor.name
        if factor.before != SCHEMA_ONE:  # a later key: its pre-existing value must be allowed
            assert factor.before in factor.values, factor.name


def test_the_harness_reads_its_factors_from_the_table():
    assert FACTOR_AXES == tuple(f.name for f in FACTORS)
    assert set(FACTOR_AXES) <= set(DESIGN_KEYS) and "seed" not in DESIGN_KEYS
    assert later_keys()["tf32_matmul"] is False and "tf32" not in later_keys()


def test_numerics_take_stack_and_other_keys_do_not():
    assert resolve(ALL_STACK)["tf32"] == STACK
    with pytest.raises(ConfigError, match="^cpu_isa: 'stack' is not one of"):
        resolve({"cpu_isa": STACK})
    with pytest.raises(ConfigError, match="^tf32: expected true/false"):
        resolve({"tf32": "yes please"})


# (torch, GPU capability or None for CPU, impl) -> what that stack does by default
SEED_STACKS = [
    # the seed's cuda11.3 row on an A100: TF32 conv and matmul on, bare grid_sample False
    ((1, 11), "8.0", "author", dict(tf32_conv=True, tf32_matmul=True, align_corners=False,
                                    cudnn_benchmark=True, deterministic="cudnn", renderer="nmr")),
    # the same image on a V100: no TF32 hardware
    ((1, 11), "7.0", "ours", dict(tf32_conv=False, tf32_matmul=False, align_corners=False,
                                  cudnn_benchmark=True, deterministic="cudnn", renderer="nmr")),
    # cuda9.2/10.0 (torch 1.2): the authors' tested stack
    ((1, 2), "7.5", "author", dict(tf32_conv=False, tf32_matmul=False, align_corners=True,
                                   cudnn_benchmark=True, deterministic="cudnn", renderer="nmr")),
    # torch >= 1.12 on Ampere: matmul TF32 off by default, conv still on
    ((2, 13), "9.0", "ours", dict(tf32_conv=True, tf32_matmul=False, align_corners=False,
                                  cudnn_benchmark=True, deterministic="cudnn", renderer="nmr")),
    # CPU: no TF32, no cuDNN, our renderer
    ((2, 13), None, "ours", dict(tf32_conv=False, tf32_matmul=False, align_corners=False,
                                 cudnn_benchmark=False, deterministic="off", renderer="torch")),
]


@pytest.mark.parametrize("version, capability, impl, expected", SEED_STACKS)
def test_stack_values_are_what_each_torch_and_gpu_do_by_default(version, capability, impl, expected):
    cfg = resolve(dict(ALL_STACK, impl=impl))
    assert in_force(cfg, version, capability, nmr=True) == expected


def test_explicit_values_are_kept_and_tf32_needs_ampere_on_a_gpu():
    cfg = resolve({"tf32": True, "align_corners": True})
    assert in_force(cfg, (1, 11), "7.0")["tf32_conv"] is False   # the flag acts on sm >= 8.0 only
    assert in_force(cfg, (1, 11), "8.6")["tf32_conv"] is True
    assert in_force(cfg, (2, 13), None)["tf32_conv"] is True      # CPU: emulated
    assert in_force(cfg, (2, 13), None)["align_corners"] is True


def test_the_seed_study_dry_run_shows_each_rows_values_in_force():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()

    def shown(name):
        (i,) = [i for i, line in enumerate(lines) if line.split()[1:2] == [name]]
        return lines[i + 1].strip()
    assert shown("cuda11.3/author/clip=none/seed=0") == (
        "tf32 conv on for sm>=8.0 matmul on for sm>=8.0, align_corners False, benchmark on, "
        "deterministic cudnn, renderer nmr")
    for row in ("cuda9.2", "cuda10.0"):
        assert shown(row + "/author/clip=none/seed=0") == (
            "tf32 conv off matmul off, align_corners True, benchmark on, deterministic cudnn, renderer nmr")
    assert shown("cpu/ours/clip=none/seed=0") == (
        "tf32 conv off matmul off, align_corners False, benchmark off, deterministic off, renderer torch")


def test_cells_with_explicit_values_keep_their_ids():
    """The factor study pinned its values before `stack` existed: its ids (and cached results) stay."""
    cells = {c.name: c.cell_id for c in expand(load_study(ROOT / "matrices" / "causes-cpu.yml"))}
    baseline = "cpu/ours/clip=none/clip_threshold=5.0/tf32=False/align_corners=True/cpu_isa=native/seed=0"
    assert cells[baseline] == "3da1d2c4d1ac"


def test_settle_then_apply_sets_the_flags_for_either_trainer():
    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, compat.tf32_flags())
    try:
        cfg, values = settle(resolve(dict(ALL_STACK, impl="author")), torch.device("cpu"))
        assert cfg["align_corners"] is False and cfg["renderer"] == "torch" and cfg["tf32"] is False
        apply_flags(dict(values, deterministic="cudnn", cudnn_benchmark=True, tf32_conv=True))
        assert torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
        assert compat.tf32_flags()["cudnn_allow_tf32"] is True and compat.tf32_flags()["matmul_allow_tf32"] is False
    finally:
        apply_flags({"deterministic": "cudnn" if before[0] else "off", "cudnn_benchmark": before[1],
                     "tf32_conv": before[2]["cudnn_allow_tf32"], "tf32_matmul": before[2]["matmul_allow_tf32"]})


def test_matmul_tf32_on_cpu_is_ours_only_and_refused_for_the_authors_in_one_line():
    assert settle(resolve({"tf32_matmul": True}), torch.device("cpu"))[1]["tf32_matmul"] is True
    with pytest.raises(ConfigError, match="^tf32_matmul: true is emulated on CPU in our geometry only"):
        settle(resolve({"tf32_matmul": True, "impl": "author"}), torch.device("cpu"))


@pytest.mark.slow
def test_a_real_run_records_what_it_ran_with(tmp_path):
    """A tiny cell with every numerics factor at `stack` trains and writes env.json in_force."""
    cell = tmp_path / "cell.yaml"
    cell.write_text(yaml.safe_dump(dict(ALL_STACK, preset="tiny", builtin_num_train=8, batch_size=4)))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "model.train", "--config", str(cell), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    env = json.loads((out / "env.json").read_text())
    assert env["in_force"] == {"tf32_conv": False, "tf32_matmul": False, "align_corners": False,
                               "cudnn_benchmark": False, "deterministic": "off", "renderer": "torch"}
    assert json.loads((out / "config.json").read_text())["align_corners"] == STACK  # asked, not settled
    assert "mad_published_mean" in json.loads((out / "eval.json").read_text())


def test_perturb_init_moves_one_weight_by_one_ulp_after_seeding():
    from model.runtime import build_model, seed_everything
    cfg = settle(resolve({"preset": "tiny"}), torch.device("cpu"))[0]
    models = []
    for perturb in (False, True):
        seed_everything(0)
        models.append(build_model(dict(cfg, perturb_init=perturb), torch.device("cpu")))
    plain, moved = (torch.cat([p.detach().view(-1) for p in m.nets.parameters()]) for m in models)
    changed = (plain != moved).nonzero().view(-1)
    assert changed.tolist() == [0]   # netD's first weight, nothing else
    assert moved[0].item() == compat.next_float_up(plain[:1]).item() > plain[0].item()
    assert torch.equal(plain[:1].view(torch.int32) + (1 if plain[0] > 0 else -1), moved[:1].view(torch.int32))
