"""Benchmark: the vectorised torch depth renderer vs a naive per-triangle loop.

Renders one rotated depth-grid mesh (as Unsup3D warps its canonical depth) at 64x64 and
128x128 with both renderers in the same process, checks that they agree, and prints ms
per call and the speed-up. Then times forward+backward of the torch renderer at the two
training loads (B=32 at 32x32, the cpu-small preset; B=128 at 64x64, the paper preset).

The naive reference transcribes NMR's CUDA kernel (forward_face_index_map_cuda_kernel_2)
literally: it loops over NMR's face list [faces, reversed faces] in Python, culls back
faces, tests pixels in NMR's [-1, 1] screen space, interpolates 1/z with clamped
barycentrics and keeps the first nearest face. Pixels inside each face's bounding box
are handled by numpy, so it is "naive" only in its per-triangle loop.

Run: python benches/bench_renderer.py [--cuda]   (about a minute on one core;
--cuda also checks and times the torch backend on the GPU)
"""
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from model.renderer import grid_faces, make_renderer  # noqa: E402

__all__ = ["intrinsics", "rotated_grid_mesh", "naive_render_depth", "main"]

NEAR, FAR = 0.1, 10.0
FOV_DEG = 10.0  # the original's default field of view


def intrinsics(size, fov_deg=FOV_DEG):
    """The original renderer.py's K: fx = (S-1)/2/tan(fov/2), cx = (S-1)/2."""
    f = (size - 1) / 2.0 / math.tan(math.radians(fov_deg) / 2)
    c = (size - 1) / 2.0
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=torch.float64)


def rotated_grid_mesh(batch, size, yaw_deg=25.0, pitch_deg=10.0, seed=0):
    """A bumpy depth grid (depth ~1) unprojected with K^-1, rotated about z = 1.

    Returns vertices (B, S*S, 3) float32.
    """
    gen = torch.Generator().manual_seed(seed)
    ar = torch.linspace(-1, 1, size)
    bump = 0.05 * torch.exp(-(ar.view(-1, 1) ** 2 + ar.view(1, -1) ** 2) * 3)  # (S, S)
    depth = 1.0 - bump + 0.005 * torch.rand(batch, size, size, generator=gen)
    cols = torch.arange(size).double().view(1, -1).expand(size, size)
    rows = cols.t()
    pix = torch.stack([cols, rows, torch.ones_like(cols)], -1)  # (S, S, 3) u, v, 1
    rays = pix @ torch.inverse(intrinsics(size)).t()
    pts = rays.unsqueeze(0) * depth.double().unsqueeze(-1)  # (B, S, S, 3)
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    rot_y = torch.tensor([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0],
                          [-math.sin(yaw), 0, math.cos(yaw)]], dtype=torch.float64)
    rot_x = torch.tensor([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)],
                          [0, math.sin(pitch), math.cos(pitch)]], dtype=torch.float64)
    centre = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    pts = (pts - centre) @ (rot_x @ rot_y).t() + centre
    return pts.reshape(batch, -1, 3).float()


def _nmr_screen(vertices, K, size):
    """NMR's projection(): (N, 3) -> (N, 3) of [-1, 1] screen x, y (y up) and z."""
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    uvw = np.stack([x / (z + 1e-9), y / (z + 1e-9), np.ones_like(z)], -1) @ K.T
    u, v = uvw[:, 0], size - uvw[:, 1]
    return np.stack([2 * (u - size / 2.0) / size, 2 * (v - size / 2.0) / size, z], -1)


def naive_render_depth(vertices, faces, K, size, anti_aliasing=True):
    """One mesh, per-triangle Python loop, NMR's conventions. Returns (S, S) float64."""
    screen = _nmr_screen(vertices.double().numpy(), K.double().numpy(), size)
    faces = faces.numpy()
    faces = np.concatenate([faces, faces[:, ::-1]], 0)  # fill_back
    n = size * 2 if anti_aliasing else size
    depth = np.full((n, n), FAR)
    for face in screen[faces]:  # (3, 3) rows: vertices; cols: x, y, z
        _draw_face(face, depth, n)
    depth = depth[::-1]  # NMR's rows run bottom-up; its output is flipped
    if anti_aliasing:
        depth = depth.reshape(size, 2, size, 2).mean((1, 3))
    return depth


def _draw_face(face, depth, n):
    """z-buffer one face into depth (n, n) (rows bottom-up), as NMR's kernel does."""
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = face
    if (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0):
        return  # back face
    p = 0.5 * (face[:, :2] * n + n - 1)  # pixel coordinates
    lo = np.maximum(np.ceil(p.min(0)), 0).astype(int)
    hi = np.minimum(np.floor(p.max(0)), n - 1).astype(int)
    if (hi < lo).any():
        return
    xi, yi = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
    xp, yp = (2.0 * xi + 1 - n) / n, (2.0 * yi + 1 - n) / n
    outside = (((yp - y0) * (x1 - x0) < (xp - x0) * (y1 - y0)) |
               ((yp - y1) * (x2 - x1) < (xp - x1) * (y2 - y1)) |
               ((yp - y2) * (x0 - x2) < (xp - x2) * (y0 - y2)))
    (a0, b0), (a1, b1), (a2, b2) = p
    det = a2 * (b0 - b1) + a0 * (b1 - b2) + a1 * (b2 - b0)
    w = np.stack([((b1 - b2) * xi + (a2 - a1) * yi + a1 * b2 - a2 * b1) / det,
                  ((b2 - b0) * xi + (a0 - a2) * yi + a2 * b0 - a0 * b2) / det,
                  ((b0 - b1) * xi + (a1 - a0) * yi + a0 * b1 - a1 * b0) / det])
    w = np.clip(w, 0, 1)
    w = w / w.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        zp = 1.0 / (w[0] / z0 + w[1] / z1 + w[2] / z2)
    draw = ~outside & (zp > NEAR) & (zp < FAR)
    view = depth[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
    view[draw & (zp < view)] = zp[draw & (zp < view)]  # strict <: first face wins ties


def _ms_per_call(fn, min_seconds=1.0, max_calls=200):
    fn()  # warm-up
    calls, start = 0, time.perf_counter()
    while calls < max_calls and (calls == 0 or time.perf_counter() - start < min_seconds):
        fn()
        calls += 1
    return 1000.0 * (time.perf_counter() - start) / calls


def compare_with_naive(size):
    """Time both renderers on one mesh of size x size; report agreement."""
    vertices = rotated_grid_mesh(1, size)
    faces = grid_faces(size, size)
    K = intrinsics(size)
    renderer = make_renderer("torch", size, K.float(), NEAR, FAR)
    ours = renderer.render_depth(vertices, faces)[0].double().numpy()
    naive = naive_render_depth(vertices[0], faces, K, size)
    ms_ours = _ms_per_call(lambda: renderer.render_depth(vertices, faces))
    start = time.perf_counter()
    naive_render_depth(vertices[0], faces, K, size)
    ms_naive = 1000.0 * (time.perf_counter() - start)
    diff = np.abs(ours - naive)
    print("{0}x{0}: torch {1:8.2f} ms/call   naive loop {2:9.1f} ms/call   speed-up {3:6.0f}x"
          "   max |diff| {4:.2e}   pixels differing > 1e-4: {5}".format(
              size, ms_ours, ms_naive, ms_naive / ms_ours, diff.max(), int((diff > 1e-4).sum())))


def time_training_load(batch, size, device="cpu"):
    """Forward+backward ms of the torch renderer at one training load."""
    vertices = rotated_grid_mesh(batch, size).to(device).requires_grad_(True)
    faces = grid_faces(size, size)
    renderer = make_renderer("torch", size, intrinsics(size).float(), NEAR, FAR)

    def step():
        renderer.render_depth(vertices, faces).clamp(0.9, 1.1).sum().backward()
        vertices.grad = None
        _sync(device)

    def forward():
        with torch.no_grad():
            renderer.render_depth(vertices, faces)
        _sync(device)

    print("{0} B={1:3d} {2}x{2}: forward {3:7.2f} ms   forward+backward {4:7.2f} ms".format(
        device, batch, size, _ms_per_call(forward), _ms_per_call(step)))


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def check_cuda_matches_cpu(batch=8, size=64):
    """The torch backend on the GPU renders what it renders on the CPU."""
    vertices = rotated_grid_mesh(batch, size)
    faces = grid_faces(size, size)
    renderer = make_renderer("torch", size, intrinsics(size).float(), NEAR, FAR)
    cpu = renderer.render_depth(vertices, faces)
    gpu = renderer.render_depth(vertices.cuda(), faces.cuda()).cpu()
    print("cuda vs cpu, B={} {}x{}: max |diff| {:.2e}".format(
        batch, size, size, (cpu - gpu).abs().max().item()))


def main():
    torch.set_num_threads(1)  # the budget is stated for one core
    print("torch {}, {} thread(s)".format(torch.__version__, torch.get_num_threads()))
    for size in (64, 128):
        compare_with_naive(size)
    time_training_load(32, 32)
    time_training_load(128, 64)
    if "--cuda" in sys.argv[1:] and torch.cuda.is_available():
        check_cuda_matches_cpu()
        time_training_load(32, 32, "cuda")
        time_training_load(128, 64, "cuda")


if __name__ == "__main__":
    main()
