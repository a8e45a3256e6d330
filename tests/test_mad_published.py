"""Table 3's MAD is the original's: their normals and their angle, on real depth maps.

The original divides each normal by (|n| + 1e-7) and takes acos of the dot product; at
the study's image sizes |n| is ~1e-5 to 1e-4, so its normals are short and identical
depths score a few degrees. These tests feed the same depth maps (built-in faces, the
model's own geometry) through the authors' Renderer.get_normal_from_depth and
utils.compute_angular_distance and through ours, never unit vectors made by hand.
"""
import pytest
import torch

from model.builtin_data import render_faces
from model.config import resolve
from model.evaluate import score_batch
from model.geometry import normals_from_depth
from model.metrics import depth_to_image, erode, mad, mad_published
from model.photogeo import Camera, Decomposition
from tests.helpers.author_code import load_author_package, needs_author_code


def _faces(size, seed, n=4):
    cfg = resolve({"preset": "tiny", "image_size": size})
    camera = Camera(cfg)
    depth, _, valid, foreground = render_faces(camera, cfg, torch.Generator().manual_seed(seed), n)
    return cfg, camera, depth, valid, foreground


def _theirs(size, depth_pred, depth_gt, mask):
    """Per-image published MAD through the authors' own functions."""
    load_author_package()
    from unsup3d import utils
    from unsup3d.renderer import Renderer
    renderer = Renderer({"image_size": size, "fov": 10, "device": "cpu"})
    angles = utils.compute_angular_distance(renderer.get_normal_from_depth(depth_pred),
                                            renderer.get_normal_from_depth(depth_gt), mask=mask)
    b = depth_pred.shape[0]
    return angles.view(b, -1).sum(1) / mask.view(b, -1).sum(1)


@needs_author_code
@pytest.mark.parametrize("size", [32, 64])
def test_published_mad_equals_the_authors_on_face_depth_maps(size):
    cfg, camera, depth_gt, valid, foreground = _faces(size, seed=1)
    depth_pred = _faces(size, seed=2)[2]   # other faces: angles of tens of degrees
    mask = erode(foreground * valid)
    ours = mad_published(normals_from_depth(depth_pred, camera.K), normals_from_depth(depth_gt, camera.K), mask)
    theirs = _theirs(size, depth_pred, depth_gt, mask)
    assert torch.allclose(ours, theirs, atol=1e-3), (ours, theirs)
    assert (ours > 5).all()  # the maps really differ: not a comparison of two floors


@needs_author_code
def test_the_table3_column_is_the_authors_mad_of_what_the_trainer_scores():
    """score_batch (what eval.json's mad_published_* average) against their code on the same maps."""
    size = 64
    cfg, camera, depth_gt, valid, foreground = _faces(size, seed=3)
    depth_pred = _faces(size, seed=4)[2]
    depth_image = (depth_to_image(depth_gt, cfg["min_depth"], cfg["max_depth"]) * foreground * 255).round() / 255
    out = Decomposition(recon_depth=depth_pred, recon_normal=normals_from_depth(depth_pred, camera.K),
                        recon_valid=valid)
    scores = score_batch(cfg, out, depth_image.unsqueeze(1).repeat(1, 3, 1, 1), camera)
    # the ground truth as their forward rebuilds it from the depth image, and their mask
    gt = (1 - depth_image) * 2 - 1
    gt = (1 + gt) / 2 * cfg["max_depth"] + (1 - gt) / 2 * cfg["min_depth"]
    mask_gt = torch.stack([(g < g.max()).float() for g in gt])
    mask = erode(mask_gt) * erode(valid)
    assert torch.allclose(scores["mad_published"], _theirs(size, depth_pred, gt, mask), atol=1e-3)


@pytest.mark.parametrize("size, low, high", [(32, 2.0, 4.5), (64, 4.5, 8.0)])
def test_identical_depths_score_the_floor_published_and_zero_exact(size, low, high):
    _, camera, depth, valid, foreground = _faces(size, seed=5)
    normals = normals_from_depth(depth, camera.K)
    mask = erode(foreground * valid)
    floor = mad_published(normals, normals, mask)
    assert ((floor > low) & (floor < high)).all(), floor
    assert (mad(normals, normals, mask) < 1e-6).all()
