import copy
import math

import pytest
import torch

from model.geometry import depth_to_points, intrinsics, normals_from_depth, points_to_grid2d, \
    unwarp_points, view_transform, warp_points
from model.precision import emulate_tf32, round_to_tf32


def test_points_project_back_to_their_pixels():
    K = intrinsics(16, 10, torch.float64)
    depth = 0.9 + 0.2 * torch.rand(2, 16, 16, dtype=torch.float64)
    grid = points_to_grid2d(depth_to_points(depth, K), K)
    lin = torch.linspace(-1, 1, 16, dtype=torch.float64)
    assert torch.allclose(grid[0, 3, :, 0], lin)  # x runs along columns
    assert torch.allclose(grid[0, :, 5, 1], lin)  # y along rows


def test_unwarp_inverts_warp():
    torch.manual_seed(0)
    view = torch.cat([torch.rand(3, 3) - 0.5, (torch.rand(3, 3) - 0.5) * 0.2], 1).double()
    rot, trans = view_transform(view)
    points = torch.rand(3, 50, 3, dtype=torch.float64) + 0.5
    back = unwarp_points(warp_points(points, rot, trans, 1.0), rot, trans, 1.0)
    assert torch.allclose(back, points)


def test_yaw_rotation_matrix_turns_x_towards_minus_z():
    rot, _ = view_transform(torch.tensor([[0.0, math.pi / 2, 0, 0, 0, 0]], dtype=torch.float64))
    assert torch.allclose(rot[0] @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 0, -1], dtype=torch.float64), atol=1e-12)


def test_normals_of_a_tilted_plane_are_its_analytic_normal():
    size = 32
    K = intrinsics(size, 10, torch.float64)
    # plane n.X = c through (0, 0, 1) tilted 20 deg about y
    n = torch.tensor([math.sin(math.radians(20)), 0.0, -math.cos(math.radians(20))], dtype=torch.float64)
    rays = depth_to_points(torch.ones(1, size, size, dtype=torch.float64), K)
    depth = (n @ torch.tensor([0, 0, 1.0], dtype=torch.float64)) / (rays @ n)
    normals = normals_from_depth(depth, K)[0, 1:-1, 1:-1]
    # the original's +1e-7 in the norm shortens these tiny cross products (~1e-5) by ~1%
    normals = normals / normals.norm(dim=-1, keepdim=True)
    expected = -n / n.norm()  # facing the camera
    assert torch.allclose(normals, expected.expand_as(normals), atol=1e-9)


def test_tf32_rounding_keeps_ten_mantissa_bits_and_is_close():
    x = torch.randn(1000)
    y = round_to_tf32(x)
    assert ((y.view(torch.int32) & 0x1FFF) == 0).all()
    assert torch.allclose(x, y, rtol=2 ** -10)
    assert not torch.equal(x, y)


def test_tf32_emulation_changes_conv_outputs_slightly():
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ConvTranspose2d(8, 3, 3))
    x = torch.randn(2, 3, 16, 16)
    exact = conv(x)
    assert emulate_tf32(conv) == 2
    rounded = conv(x)
    assert not torch.equal(exact, rounded)
    assert torch.allclose(exact, rounded, atol=1e-2)


def test_tf32_emulation_passes_gradients_straight_through():
    """The emulated conv's weight gradient is the exact conv's, which finite differences of the
    float64 loss confirm: the rounding is invisible to backprop, as on a GPU."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    exact = copy.deepcopy(conv).double()
    x = torch.randn(2, 3, 8, 8)
    emulate_tf32(conv)
    conv(x).square().sum().backward()

    def loss(weight):
        return torch.nn.functional.conv2d(x.double(), weight, exact.bias).square().sum().item()

    eps, w = 1e-6, exact.weight.detach()
    for index in [(0, 0, 0, 0), (1, 2, 1, 1), (3, 1, 2, 0), (2, 0, 1, 2)]:
        step = torch.zeros_like(w)
        step[index] = eps
        numeric = (loss(w + step) - loss(w - step)) / (2 * eps)
        # TF32 operands and gradients keep 10 mantissa bits: agreement to about 1e-3 relative
        assert conv.weight.grad[index].item() == pytest.approx(numeric, rel=5e-3, abs=1e-3)
