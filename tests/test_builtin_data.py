"""Built-in data: deterministic, synface layout, and scored ~0 against its own ground truth."""
import hashlib

import pytest

import torch

from model.builtin_data import ensure_builtin, render_faces
from model.config import resolve
from model.data import make_loaders
from model.evaluate import score_batch
from model.geometry import normals_from_depth
from model.metrics import depth_to_image
from model.photogeo import Camera, Decomposition


def _digest(folder):
    h = hashlib.sha1()
    for path in sorted(folder.rglob("*.png")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_and_in_synface_layout(tmp_path):
    cfg = resolve({"preset": "tiny"})
    first = ensure_builtin(cfg, str(tmp_path / "a"), log=lambda m: None)
    second = ensure_builtin(cfg, str(tmp_path / "b"), log=lambda m: None)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    images, depths = make_loaders(cfg, first, splits=("test",))["test"].dataset[0]
    assert images.shape == depths.shape == (3, 32, 32)
    assert ensure_builtin(cfg, str(tmp_path / "a"), log=lambda m: 1 / 0) == first  # cached


def test_ground_truth_factors_score_near_zero():
    """The model's own rendering of the true canonical depth, scored like a prediction:
    only 8-bit quantisation of the depth image separates it from the ground truth."""
    cfg = resolve({"preset": "tiny", "image_size": 64})
    camera = Camera(cfg)
    gen = torch.Generator()
    gen.manual_seed(3)
    depth, _, valid, foreground = render_faces(camera, cfg, gen, 6)
    depth_image = (depth_to_image(depth, cfg["min_depth"], cfg["max_depth"]) * foreground * 255).round() / 255
    out = Decomposition(recon_depth=depth, recon_normal=normals_from_depth(depth, camera.K), recon_valid=valid)
    side, mad, flat_side, flat_mad = score_batch(cfg, out, depth_image.unsqueeze(1).repeat(1, 3, 1, 1), camera)
    assert (side < 0.002).all() and (mad < 8).all(), (side, mad)
    assert (flat_side > 5 * side).all() and (flat_mad > 3 * mad).all()


def test_images_without_valid_pixels_are_counted_apart_not_averaged():
    from model.evaluate import Scores
    nan = float("nan")
    scores = Scores(torch.tensor([0.01, nan, 0.03]), torch.tensor([10.0, nan, 30.0]),
                    torch.tensor([0.02, 0.02, 0.02]), torch.tensor([40.0, 40.0, 40.0]))
    assert scores.summary["side_mean"] == pytest.approx(0.02) and scores.summary["mad_mean"] == pytest.approx(20.0)
    assert scores.summary["n_images"] == 2 and scores.summary["n_unscored"] == 1
