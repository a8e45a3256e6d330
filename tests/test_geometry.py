import math

import pytest
import torch

from model.geometry import depth_to_points, intrinsics, normals_from_depth, points_to_grid2d, \
    unwarp_points, view_transform, warp_points


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
