"""TF32 emulation on CPU (model/precision.py): the rounding mode on known bit patterns, and
TF32 operands in both passes of convolutions and matmuls, checked against explicit ops."""
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
import torch.nn.functional as F

from model.geometry import depth_to_points, intrinsics
from model.precision import emulate_tf32_conv, emulate_tf32_matmul, matmul, round_to_tf32

ROOT = Path(__file__).resolve().parents[1]


def _f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


# float32 bits -> TF32 (10 mantissa bits) by round to nearest, ties to even
BIT_PATTERNS = [
    (0x3F800000, 0x3F800000),   # 1.0 is exact
    (0x3F801000, 0x3F800000),   # 1 + 2^-11: a tie, the kept last bit is even (0): down
    (0x3F803000, 0x3F804000),   # 1 + 3*2^-11: a tie, the kept last bit is odd: up to even
    (0x3F801001, 0x3F802000),   # just over the tie: up
    (0x3F800FFF, 0x3F800000),   # just under the tie: down
    (0xBF801000, 0xBF800000),   # -(1 + 2^-11): ties to even by magnitude, as IEEE
    (0xBF803000, 0xBF804000),
    (0x3FFFF000, 0x40000000),   # a carry into the exponent: 1.99987... -> 2.0
    (0x7F7FFFFF, 0x7F800000),   # the largest float32 rounds to inf, as IEEE round-to-nearest does
    (0x7F800000, 0x7F800000),   # inf stays inf
    (0x00001000, 0x00000000),   # a subnormal tie: down to 0
]


@pytest.mark.parametrize("bits, expected", BIT_PATTERNS)
def test_rounding_is_to_nearest_ties_to_even(bits, expected):
    rounded = round_to_tf32(torch.tensor([_f32(bits)], dtype=torch.float32))
    assert rounded.view(torch.int32).item() & 0xFFFFFFFF == expected


def test_nan_passes_unchanged():
    assert torch.isnan(round_to_tf32(torch.tensor([float("nan")]))).all()


def _conv_pair():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    emulated = torch.nn.Conv2d(3, 8, 3, padding=1)
    emulated.load_state_dict(conv.state_dict())
    assert emulate_tf32_conv(emulated) == 1
    return conv, emulated


def test_conv_forward_and_both_backward_convolutions_take_tf32_operands():
    conv, emulated = _conv_pair()
    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    grad_out = torch.randn(2, 8, 12, 12)
    out = emulated(x)
    r = round_to_tf32
    expected = F.conv2d(r(x.detach()), r(conv.weight.detach()), conv.bias.detach(), padding=1)
    assert torch.equal(out, expected)
    out.backward(grad_out)
    # what cuDNN's backward computes with TF32 operands: rounded incoming gradient, rounded saved operands
    expected_dx = torch.nn.grad.conv2d_input(x.shape, r(conv.weight.detach()), r(grad_out), padding=1)
    expected_dw = torch.nn.grad.conv2d_weight(r(x.detach()), conv.weight.shape, r(grad_out), padding=1)
    assert torch.allclose(x.grad, expected_dx, rtol=0, atol=1e-6)
    assert torch.allclose(emulated.weight.grad, expected_dw, rtol=0, atol=1e-5)
    assert torch.equal(emulated.bias.grad, grad_out.sum((0, 2, 3)))   # the bias is no TF32 operand
    # and it differs from float32: the emulation does something
    exact = conv(x.detach())
    assert not torch.equal(exact, out) and torch.allclose(exact, out, atol=1e-2)


def test_conv_transpose_is_emulated_too():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ConvTranspose2d(8, 3, 3))
    x = torch.randn(2, 3, 10, 10)
    exact = net(x)
    assert emulate_tf32_conv(net) == 2
    assert not torch.equal(exact, net(x))


def test_matmul_emulation_rounds_operands_in_both_passes_and_only_while_on():
    torch.manual_seed(2)
    a = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(5, 3)
    assert torch.equal(matmul(a, b), a.matmul(b))    # off by default
    emulate_tf32_matmul(True)
    try:
        out = matmul(a, b)
        grad_out = torch.randn(4, 3)
        out.backward(grad_out)
    finally:
        emulate_tf32_matmul(False)
    r = round_to_tf32
    assert torch.equal(out, r(a.detach()).matmul(r(b)))
    assert torch.allclose(a.grad, r(grad_out).matmul(r(b).t()), rtol=0, atol=1e-6)


def test_the_geometry_runs_its_matmuls_through_the_emulation():
    K = intrinsics(64, 10.0)
    depth = 1.0 + 0.05 * torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))
    exact = depth_to_points(depth, K)
    emulate_tf32_matmul(True)
    try:
        emulated = depth_to_points(depth, K)
    finally:
        emulate_tf32_matmul(False)
    assert not torch.equal(exact, emulated) and torch.allclose(exact, emulated, rtol=0, atol=1e-3)


def _train_tiny(tmp_path, name, **keys):
    config = tmp_path / (name + ".yaml")
    config.write_text(yaml.safe_dump(dict({"preset": "tiny", "threads": 1, "num_epochs": 1}, **keys)))
    run = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "model.train", "--config", str(config), "--out", str(run)],
                          cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line)["loss_total"] for line in (run / "train.jsonl").read_text().splitlines()]


@pytest.mark.slow  # real training runs: CI runs them (-m slow); the default suite stays fast
def test_real_training_runs_with_tf32_emulated_and_its_losses_move(tmp_path):
    # the networks' in-place activations follow emulated convs: training must run through them
    exact = _train_tiny(tmp_path, "fp32")
    tf32 = _train_tiny(tmp_path, "tf32", tf32=True, tf32_matmul=True)
    assert len(tf32) == len(exact) and all(map(math.isfinite, tf32))
    assert tf32[0] != exact[0]   # rounded operands from the first forward on
