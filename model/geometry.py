"""Camera geometry of Unsup3D: intrinsics, depth <-> 3D points, view transforms, normals.

Conventions follow the original renderer: pixel (u, v) = (column, row) in
0..S-1, principal point at (S-1)/2, focal length from the field of view, a
view is (rx, ry, rz, tx, ty, tz) with rotations about a centre at
`rot_center_depth` on the optical axis, R = Rz @ Ry @ Rx.
"""
import math

import torch

from .precision import matmul, matmul_mode

__all__ = ["intrinsics", "pixel_grid", "depth_to_points", "points_to_grid2d", "rotation_matrix",
           "view_transform", "warp_points", "unwarp_points", "normals_from_depth"]

EPS = 1e-7


def intrinsics(image_size, fov_degrees, dtype=torch.float32):
    """3x3 K in pixel units: fx = fy = (S-1)/2 / tan(fov/2), centre (S-1)/2."""
    f = (image_size - 1) / 2.0 / math.tan(fov_degrees / 2.0 * math.pi / 180)
    c = (image_size - 1) / 2.0
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=dtype)


def pixel_grid(b, h, w, dtype=torch.float32, device=None):
    """(B, H, W, 2) pixel coordinates (u=column, v=row)."""
    rows = torch.arange(h, dtype=dtype, device=device).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=dtype, device=device).view(1, w).expand(h, w)
    return torch.stack([cols, rows], -1).unsqueeze(0).expand(b, h, w, 2)


def depth_to_points(depth, K):
    """(B, H, W) depth -> (B, H, W, 3) camera-frame points d * K^-1 (u, v, 1)."""
    return _rays(depth.shape, K, depth) * depth.unsqueeze(-1)


_RAYS = {}  # (sizes, K's values, dtype, device, matmul precision) -> rays; a few entries
_MAX_RAYS = 8


def _rays(shape, K, like):
    """(B, H, W, 3) K^-1 (u, v, 1) of every pixel, in like's dtype and device.

    A constant of the camera: a training step needs it three times with the same K and
    sizes, so it is computed once (by the same ops on the same operands, so to the same
    bits) and kept; not when K needs a gradient.
    """
    b, h, w = shape
    key = None
    if not K.requires_grad:
        key = (b, h, w, K.dtype, tuple(K.flatten().tolist()), like.dtype, str(like.device), matmul_mode())
        if key in _RAYS:
            return _RAYS[key]
    uv = pixel_grid(b, h, w, like.dtype, like.device)
    uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], -1)
    inv_K = torch.inverse(K.to(like))
    rays = matmul(uv1, inv_K.t())
    if key is not None:
        if len(_RAYS) >= _MAX_RAYS:
            _RAYS.clear()
        _RAYS[key] = rays
    return rays


def points_to_grid2d(points, K):
    """(B, H, W, 3) points -> (B, H, W, 2) image positions normalised to [-1, 1]
    with corners at pixel centres 0 and S-1 (the original's normalisation)."""
    b, h, w, _ = points.shape
    projected = matmul(points / points[..., 2:], K.to(points).t())[..., :2]
    size = torch.tensor([w - 1, h - 1], dtype=points.dtype, device=points.device)
    return projected / size * 2.0 - 1.0


def rotation_matrix(rx, ry, rz):
    """(B,) angles in radians -> (B, 3, 3) = Rz @ Ry @ Rx."""
    zeros, ones = torch.zeros_like(rx), torch.ones_like(rx)

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    m_x = mat([[ones, zeros, zeros], [zeros, rx.cos(), -rx.sin()], [zeros, rx.sin(), rx.cos()]])
    m_y = mat([[ry.cos(), zeros, ry.sin()], [zeros, ones, zeros], [-ry.sin(), zeros, ry.cos()]])
    m_z = mat([[rz.cos(), -rz.sin(), zeros], [rz.sin(), rz.cos(), zeros], [zeros, zeros, ones]])
    return matmul(m_z, matmul(m_y, m_x))


def view_transform(view):
    """(B, 6) view (radians, scene units) -> rotation (B, 3, 3), translation (B, 1, 3)."""
    rot = rotation_matrix(view[:, 0], view[:, 1], view[:, 2])
    return rot, view[:, 3:6].reshape(-1, 1, 3)


def _rotate_about_centre(points, rot, centre_depth):  # points (B, N, 3)
    centre = torch.zeros_like(points[:1, :1])
    centre[..., 2] = centre_depth
    return matmul(points - centre, rot.transpose(1, 2)) + centre


def warp_points(points, rot, trans, centre_depth):
    """Canonical -> input view: rotate about the centre, then translate. (B, N, 3)."""
    return _rotate_about_centre(points, rot, centre_depth) + trans


def unwarp_points(points, rot, trans, centre_depth):
    """Input view -> canonical: the exact inverse of warp_points. (B, N, 3)."""
    return _rotate_about_centre(points - trans, rot.transpose(1, 2), centre_depth)


def normals_from_depth(depth, K):
    """(B, H, W) depth -> (B, H, W, 3) unit normals from central differences of the
    3D points; the 1-pixel border gets (0, 0, 1) as in the original."""
    b, h, w = depth.shape
    points = depth_to_points(depth, K)
    du = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
    dv = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
    inner = torch.cross(du, dv, dim=3)
    normal = torch.zeros_like(points)
    normal[..., 2] = 1.0
    normal = torch.cat([normal[:, :1], torch.cat([normal[:, 1:-1, :1], inner, normal[:, 1:-1, -1:]], 2),
                        normal[:, -1:]], 1)
    return normal / ((normal ** 2).sum(3, keepdim=True) ** 0.5 + EPS)
