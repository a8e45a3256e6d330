"""model/renderer.py: NMR-convention depth rendering (torch backend) and backend errors.

Geometry is built like the original: a depth grid unprojected with K^-1 (depth_to_3d_grid)
and triangulated with grid_faces (get_face_idx). NMR samples pixel (r, c) at
u = c + 0.5, v = r + 0.5 (with 2x anti-aliasing: the mean of u, v in {+0.25, +0.75}).
"""
import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest
import torch

from model import compat
from model.renderer import RendererError, grid_faces, make_renderer

NEAR, FAR = 0.1, 10.0
AA_OFFSETS = ((0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))


def intrinsics(size, fov_deg=10.0):
    """The original renderer.py's K (float64)."""
    f = (size - 1) / 2.0 / math.tan(math.radians(fov_deg) / 2)
    c = (size - 1) / 2.0
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=torch.float64)


def pixel_rays(size, K, shift=(0.0, 0.0)):
    """K^-1 (u, v, 1) for the grid pixels u = col + shift_x, v = row + shift_y: (S, S, 3)."""
    ar = torch.arange(size, dtype=torch.float64)
    u = ar.view(1, -1).expand(size, size) + shift[0]
    v = ar.view(-1, 1).expand(size, size) + shift[1]
    return torch.stack([u, v, torch.ones_like(u)], -1) @ torch.inverse(K).t()


def depth_to_vertices(depth, K, shift=(0.0, 0.0)):
    """The original's depth_to_3d_grid, flattened: (B, S, S) -> (B, S*S, 3)."""
    batch, size = depth.shape[:2]
    return (pixel_rays(size, K, shift) * depth.unsqueeze(-1)).reshape(batch, -1, 3)


def plane_depth_at(u, v, K, normal, offset):
    """Depth where the ray through pixel (u, v) meets the plane normal . X = offset."""
    ray = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.inverse(K).t()
    return offset / (ray @ normal)


def test_grid_faces_match_original_get_face_idx():
    expected = [[0, 3, 1], [1, 4, 2], [3, 6, 4], [4, 7, 5],  # upper-left triangles first
                [1, 3, 4], [2, 4, 5], [4, 6, 7], [5, 7, 8]]
    faces = grid_faces(3, 3)
    assert faces.dtype == torch.int64
    assert faces.tolist() == expected


@pytest.mark.parametrize("anti_aliasing", [True, False])
def test_fronto_parallel_plane_renders_its_exact_depth(anti_aliasing):
    size, K = 16, intrinsics(16)
    depth = torch.full((2, size, size), 1.0, dtype=torch.float64)
    depth[1] = 0.95
    renderer = make_renderer("torch", size, K, NEAR, FAR, anti_aliasing=anti_aliasing)
    out = renderer.render_depth(depth_to_vertices(depth, K), grid_faces(size, size))
    assert out.shape == (2, size, size) and out.dtype == torch.float64
    # NMR's half-pixel offset: the last row and column sample beyond the mesh
    assert torch.allclose(out[:, :-1, :-1], depth[:, :-1, :-1], rtol=0, atol=1e-12)
    assert (out[:, -1, :] == FAR).all() and (out[:, :, -1] == FAR).all()


def test_tilted_plane_matches_ray_plane_intersection():
    size, K = 16, intrinsics(16)
    normal = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)  # tilted ~20 degrees
    ar = torch.arange(size, dtype=torch.float64)
    u, v = ar.view(1, -1).expand(size, size), ar.view(-1, 1).expand(size, size)
    grid_depth = plane_depth_at(u, v, K, normal, 1.0).unsqueeze(0)  # (1, S, S)
    vertices = depth_to_vertices(grid_depth, K)
    out = make_renderer("torch", size, K).render_depth(vertices, grid_faces(size, size))[0]
    expected = sum(plane_depth_at(u + dx, v + dy, K, normal, 1.0)
                   for dx, dy in AA_OFFSETS) / 4  # 2x2 super-sampling, then mean
    assert (grid_depth.max() - grid_depth.min()) > 0.01  # really tilted
    assert torch.allclose(out[:-1, :-1], expected[:-1, :-1], rtol=0, atol=1e-4)
    assert torch.allclose(out[:-1, :-1], expected[:-1, :-1], rtol=0, atol=1e-10)


def test_pixels_outside_the_mesh_get_far():
    size, K = 32, intrinsics(32)
    patch = 8  # a small plane patch around the image centre
    ar = torch.arange(patch, dtype=torch.float64) + 12
    u = ar.view(1, -1).expand(patch, patch)
    v = ar.view(-1, 1).expand(patch, patch)
    rays = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.inverse(K).t()
    vertices = (rays * 1.0).reshape(1, -1, 3)
    out = make_renderer("torch", size, K).render_depth(vertices, grid_faces(patch, patch))[0]
    inside = torch.zeros(size, size, dtype=torch.bool)
    inside[12:19, 12:19] = True  # samples at +0.25..+0.75 of pixels 12..18 lie on the patch
    assert torch.allclose(out[inside], torch.ones_like(out[inside]), atol=1e-12)
    assert (out[~inside] == FAR).all()


def test_near_and_far_clipping_leave_far():
    size, K = 8, intrinsics(8)
    faces = grid_faces(size, size)
    for too_close_or_far in (0.05, 12.0):
        depth = torch.full((1, size, size), too_close_or_far, dtype=torch.float64)
        out = make_renderer("torch", size, K).render_depth(depth_to_vertices(depth, K), faces)
        assert (out == FAR).all()


def test_large_triangles_reaching_past_the_image(monkeypatch):
    size, K = 16, intrinsics(16)
    corners = torch.tensor([[-8.0, -6.0], [-8.0, 25.0], [23.0, -6.0], [23.0, 25.0]],
                           dtype=torch.float64)  # pixel (u, v) of a quad beyond the image
    rays = torch.cat([corners, torch.ones(4, 1, dtype=torch.float64)], 1) @ \
        torch.inverse(K).t()
    vertices = (rays * 2.0).unsqueeze(0)  # fronto-parallel at depth 2
    faces = torch.tensor([[0, 1, 2], [2, 1, 3]])
    renderer = make_renderer("torch", size, K)
    out = renderer.render_depth(vertices, faces)
    assert torch.allclose(out, torch.full_like(out, 2.0), atol=1e-12)
    import model.renderer as renderer_module
    monkeypatch.setattr(renderer_module, "_MAX_CANDIDATES", 50)  # many small chunks
    assert torch.equal(renderer.render_depth(vertices, faces), out)


@pytest.mark.parametrize("near_first", [True, False])
def test_nearer_of_two_overlapping_surfaces_wins(near_first):
    size, K = 16, intrinsics(16)
    near_surface = depth_to_vertices(torch.full((1, size, size), 1.0, dtype=torch.float64), K)
    far_surface = depth_to_vertices(torch.full((1, size, size), 1.3, dtype=torch.float64), K)
    parts = [near_surface, far_surface] if near_first else [far_surface, near_surface]
    vertices = torch.cat(parts, 1)
    faces = torch.cat([grid_faces(size, size), grid_faces(size, size) + size * size], 0)
    out = make_renderer("torch", size, K).render_depth(vertices, faces)[0]
    assert torch.allclose(out[:-1, :-1], torch.ones(size - 1, size - 1, dtype=torch.float64),
                          atol=1e-12)


def test_back_faces_are_drawn_with_fill_back_and_culled_without():
    size, K = 8, intrinsics(8)
    vertices = depth_to_vertices(torch.ones(1, size, size, dtype=torch.float64), K)
    reversed_faces = grid_faces(size, size).flip(1)  # the other winding
    drawn = make_renderer("torch", size, K).render_depth(vertices, reversed_faces)
    culled = make_renderer("torch", size, K, fill_back=False).render_depth(
        vertices, reversed_faces)
    assert torch.allclose(drawn[0, :-1, :-1], torch.ones(size - 1, size - 1,
                                                         dtype=torch.float64))
    assert (culled == FAR).all()


def test_batched_faces_equal_shared_faces():
    size, K = 8, intrinsics(8)
    depth = 1.0 + 0.01 * torch.rand(3, size, size, dtype=torch.float64)
    vertices = depth_to_vertices(depth, K)
    renderer = make_renderer("torch", size, K)
    faces = grid_faces(size, size)
    shared = renderer.render_depth(vertices, faces)
    batched = renderer.render_depth(vertices, faces.unsqueeze(0).repeat(3, 1, 1).int())
    assert torch.equal(shared, batched)


@pytest.mark.parametrize("anti_aliasing", [True, False])
def test_gradients_reach_vertex_depths(anti_aliasing):
    size, K = 6, intrinsics(6)
    torch.manual_seed(0)
    # shift the grid off the sample lattice so no sample sits on a triangle edge and the
    # covering triangles do not change under gradcheck's perturbations
    shift = (0.3, 0.1)
    depth = (1.0 + 0.02 * torch.rand(2, size, size, dtype=torch.float64)).requires_grad_(True)
    faces = grid_faces(size, size)
    renderer = make_renderer("torch", size, K, anti_aliasing=anti_aliasing)

    def render(d):
        return renderer.render_depth(depth_to_vertices(d, K, shift), faces)

    assert torch.autograd.gradcheck(render, (depth,), eps=1e-6, atol=1e-6)
    render(depth).sum().backward()
    assert (depth.grad[:, :-1, :-1] != 0).all()  # every vertex that covers a sample


def test_gradients_reach_all_vertex_coordinates():
    size, K = 5, intrinsics(5)
    torch.manual_seed(1)
    depth = 1.0 + 0.02 * torch.rand(1, size, size, dtype=torch.float64)
    vertices = depth_to_vertices(depth, K, (0.3, 0.1)).requires_grad_(True)  # off edges
    renderer = make_renderer("torch", size, K)
    assert torch.autograd.gradcheck(
        lambda v: renderer.render_depth(v, grid_faces(size, size)), (vertices,),
        eps=1e-7, atol=1e-5)


def _load_bench():
    path = Path(__file__).resolve().parents[1] / "benches" / "bench_renderer.py"
    spec = importlib.util.spec_from_file_location("bench_renderer", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rotated_mesh_matches_literal_nmr_kernel_transcription():
    bench = _load_bench()
    size = 16
    vertices = bench.rotated_grid_mesh(1, size, yaw_deg=40.0, pitch_deg=-15.0)
    K = bench.intrinsics(size)
    faces = grid_faces(size, size)
    ours = make_renderer("torch", size, K.float()).render_depth(vertices, faces)[0]
    naive = torch.from_numpy(bench.naive_render_depth(vertices[0], faces, K, size))
    assert (naive < FAR).sum() > 100  # the mesh is in view
    assert torch.allclose(ours.double(), naive, rtol=0, atol=1e-4)


def test_nmr_without_neural_renderer_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "neural_renderer", None)  # import fails
    with pytest.raises(RendererError) as info:
        make_renderer("nmr", 8, intrinsics(8))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("renderer: 'nmr' needs neural_renderer_pytorch and a CUDA GPU (")
    assert message.endswith("); use renderer: torch")


def test_nmr_without_cuda_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "neural_renderer", types.ModuleType("neural_renderer"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RendererError) as info:
        make_renderer("nmr", 8, intrinsics(8))
    assert "\n" not in str(info.value)
    assert "cuda" in str(info.value).lower() and str(info.value).endswith("use renderer: torch")


def test_unknown_backend_names_key_and_allowed_values():
    with pytest.raises(RendererError) as info:
        make_renderer("opengl", 8, intrinsics(8))
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert message.startswith("renderer:") and "'opengl'" in message
    assert "torch" in message and "nmr" in message


def test_compat_scatter_min_fallback_matches_native():
    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 50, (1000,), generator=gen)
    src = torch.randint(0, 10 ** 12, (1000,), generator=gen)
    init = torch.full((60,), 2 ** 62, dtype=torch.int64)
    expected = init.clone()
    for i, s in zip(index.tolist(), src.tolist()):
        expected[i] = min(int(expected[i]), s)
    assert torch.equal(compat.scatter_min_int64(init.clone(), index, src), expected)
    assert torch.equal(compat._scatter_min_int64_by_sort(init.clone(), index, src), expected)
