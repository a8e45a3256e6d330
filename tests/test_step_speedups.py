"""The speed-ups of a training step outside the networks change no bit: each kept or cheaper
path is run beside the path it replaces (a fresh renderer, the formula it replaced, a process
without the allocator setting) on real tensors of a real model."""
import json
import subprocess
import sys

import pytest
import torch

import model.geometry as geometry
from model.config import resolve
from model.geometry import depth_to_points, intrinsics, normals_from_depth, pixel_grid
from model.networks import NETWORK_NAMES
from model.photogeo import PhotoGeoAutoencoder
from model.precision import emulate_tf32_matmul
from model.renderer import grid_faces, make_renderer
from model.step import grad_diagnostics
from tests.conftest import ROOT

SIZE = 32


def _bits(t):
    return t.detach().contiguous().view(-1).view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def _same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(a), _bits(b))


def _model(seed=0):
    torch.manual_seed(seed)
    return PhotoGeoAutoencoder(resolve({"preset": "tiny", "perceptual": "off"}))


def _images(seed, n=4):
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _warped_vertices(seed):
    """The model's own warped depth mesh for a batch: what the renderer gets in a step."""
    m = _model(seed)
    out = m(_images(seed))
    rot, trans = geometry.view_transform(out.view.detach())
    points = depth_to_points(out.canon_depth.detach(), m.camera.K).reshape(out.view.shape[0], -1, 3)
    return geometry.warp_points(points, rot, trans, m.cfg["rot_center_depth"]).detach()


def _render(renderer, vertices, faces):
    vertices = vertices.clone().requires_grad_()
    depth = renderer.render_depth(vertices, faces)
    (depth * torch.linspace(0.5, 1.5, depth.numel()).view(depth.shape)).sum().backward()
    return depth, vertices.grad


def test_the_renderer_reuses_its_mesh_index_and_renders_the_bits_of_a_fresh_one():
    K, faces = intrinsics(SIZE, 10.0), grid_faces(SIZE, SIZE)
    warm = make_renderer("torch", SIZE, K)
    for seed in (1, 2):  # the second batch reuses the index the first one built
        vertices = _warped_vertices(seed)
        depth, grad = _render(warm, vertices, faces)
        fresh_depth, fresh_grad = _render(make_renderer("torch", SIZE, K), vertices, faces)
        assert _same_bits(depth, fresh_depth) and _same_bits(grad, fresh_grad)
        assert float((depth < 10.0).float().mean()) > 0.5  # the mesh covers the image
    index = warm._last_mesh
    warm.render_depth(vertices, faces)
    assert warm._last_mesh is index
    faces[0, 0] = faces[0, 1]  # the same tensor, edited: its index is built again
    assert _same_bits(warm.render_depth(vertices, faces),
                      make_renderer("torch", SIZE, K).render_depth(vertices, faces))
    assert warm._last_mesh is not index


def _points_as_before(depth, K):
    """depth_to_points as it was: the rays recomputed on every call."""
    b, h, w = depth.shape
    uv = pixel_grid(b, h, w, depth.dtype, depth.device)
    uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], -1)
    return geometry.matmul(uv1, torch.inverse(K.to(depth)).t()) * depth.unsqueeze(-1)


@pytest.mark.parametrize("tf32", [False, True])
def test_kept_rays_give_the_points_of_recomputed_ones_at_either_matmul_precision(tf32):
    K = intrinsics(SIZE, 10.0)
    depth = 0.9 + 0.2 * torch.rand(2, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    geometry._RAYS.clear()
    emulate_tf32_matmul(tf32)
    try:
        first, again = depth_to_points(depth, K), depth_to_points(depth.flip(2), K)
        assert _same_bits(first, _points_as_before(depth, K))
        assert _same_bits(again, _points_as_before(depth.flip(2), K))
        emulate_tf32_matmul(not tf32)  # the other precision is not served from this one's rays
        assert not _same_bits(depth_to_points(depth, K), first)
    finally:
        emulate_tf32_matmul(False)


def test_gradient_diagnostics_equal_the_per_tensor_formula_they_replaced():
    m = _model()
    m(_images(4)).losses["total"].backward()
    stats, bad = grad_diagnostics(m.nets)
    total, peak = 0.0, 0.0
    for name in NETWORK_NAMES:
        grads = [p.grad for p in m.nets[name].parameters() if p.grad is not None]
        sq = float(sum((g.double() ** 2).sum() for g in grads))
        assert stats["grad_norm_" + name].hex() == (sq ** 0.5).hex(), name
        total += sq
        peak = max(peak, max(float(g.abs().max()) for g in grads))
    assert (stats["grad_norm"].hex(), stats["grad_max_abs"].hex(), bad) == \
        ((total ** 0.5).hex(), peak.hex(), None)


def test_recon_normal_is_computed_when_first_read_and_equals_the_eager_one():
    m = _model()
    out = m(_images(5))
    assert "recon_normal" not in vars(out)  # a training step never reads it
    normal = out.recon_normal
    assert _same_bits(normal, normals_from_depth(out.recon_depth, m.camera.K))
    assert out.recon_normal is normal


_STEPS = """
import hashlib, json, sys, torch
from model.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
from model.config import resolve
from model.photogeo import PhotoGeoAutoencoder
from model.train import make_optimizer, train_step
torch.set_num_threads(1)
cfg = resolve({"preset": "tiny", "perceptual": "off", "clip": "norm"})
torch.manual_seed(0)
model = PhotoGeoAutoencoder(cfg)
optimizer = make_optimizer(cfg, model)
images = torch.rand(4, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
losses = [train_step(cfg, model, optimizer, x, i)["loss_total"].hex() for i, x in enumerate(images)]
weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.nets.parameters()))
print(json.dumps({"kept": kept, "losses": losses, "weights": weights.hexdigest()}))
"""


def test_training_steps_are_bit_identical_with_freed_memory_kept():
    runs = {}
    for how in ("keep", "plain"):
        done = subprocess.run([sys.executable, "-c", _STEPS, how], cwd=str(ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=True)
        runs[how] = json.loads(done.stdout.splitlines()[-1])
    if not runs["keep"]["kept"]:
        pytest.skip("no glibc mallopt here: the setting does nothing")
    assert runs["keep"]["losses"] == runs["plain"]["losses"]
    assert runs["keep"]["weights"] == runs["plain"]["weights"]
