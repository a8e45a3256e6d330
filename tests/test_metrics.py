"""model.metrics on hand-made depth maps and normals, and against the original's utils."""
import importlib.util
import math
import sys
import types

import numpy as np
import pytest
import torch

from model.metrics import depth_to_image, erode, gt_depth_from_image, mad, side, summarize
from tests.helpers.author_code import AUTHOR_ROOT as AUTHOR_CODE


def _depth(batch=2, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return 0.9 + 0.2 * torch.rand(batch, size, size, generator=generator)   # (B, H, W)


def _plane_normals(tilt_degrees, batch=1, size=8):
    """Unit normals (B, H, W, 3) of the plane z = x * tan(tilt): tilted `tilt` from +z."""
    slope = math.tan(math.radians(tilt_degrees))
    normal = torch.tensor([-slope, 0.0, 1.0]) / math.sqrt(1 + slope ** 2)
    return normal.expand(batch, size, size, 3).clone()


def test_identical_depth_and_normals_score_zero():
    depth = _depth()
    mask = torch.ones_like(depth)
    normals = _plane_normals(20.0, batch=2)
    assert torch.allclose(side(depth, depth, mask), torch.zeros(2))
    assert torch.equal(mad(normals, normals, mask), torch.zeros(2))


def test_side_ignores_a_global_scale_of_depth():
    depth = _depth()
    mask = torch.ones_like(depth)
    assert torch.allclose(side(3.7 * depth, depth, mask), torch.zeros(2), atol=1e-6)


def test_side_is_the_std_of_the_log_ratio():
    gt = torch.ones(1, 2, 2)
    pred = gt * torch.tensor([[[math.exp(0.1), math.exp(-0.1)], [math.exp(0.1), math.exp(-0.1)]]])
    assert torch.allclose(side(pred, gt, torch.ones_like(gt)), torch.tensor([0.1]), atol=1e-6)


def test_mad_of_two_planes_is_their_angle():
    flat = _plane_normals(0.0, batch=3)
    mask = torch.ones(3, 8, 8)
    for tilt in (5.0, 30.0, 60.0):
        assert torch.allclose(mad(_plane_normals(tilt, batch=3), flat, mask), torch.full((3,), tilt),
                              atol=1e-3)


def test_masked_pixels_are_ignored():
    gt = _depth(batch=1)
    mask = torch.zeros_like(gt)
    mask[:, 2:6, 2:6] = 1
    pred = 2.0 * gt
    pred[mask == 0] = 50.0                                    # garbage outside the mask
    assert torch.allclose(side(pred, gt, mask), torch.zeros(1), atol=1e-6)
    flat, tilted = _plane_normals(0.0), _plane_normals(45.0)
    normals = flat.clone()
    normals[0, 2:6, 2:6] = tilted[0, 2:6, 2:6]                # only the masked square is tilted
    assert torch.allclose(mad(normals, flat, mask), torch.tensor([45.0]), atol=1e-3)
    assert torch.equal(mad(normals, flat, 1 - mask), torch.zeros(1))


def test_erode_removes_a_one_pixel_rim():
    mask = torch.zeros(1, 8, 8)
    mask[:, 2:6, 2:6] = 1
    expected = torch.zeros(1, 8, 8)
    expected[:, 3:5, 3:5] = 1
    assert torch.equal(erode(mask), expected)
    full = erode(torch.ones(1, 6, 6))                         # the image border is a rim too
    assert full.sum() == 16 and full[0, 1:5, 1:5].all()


def test_gt_depth_from_image_and_back():
    channel = torch.zeros(1, 4, 4)                            # black: background at max_depth
    channel[:, 1:3, 1:3] = torch.tensor([[1.0, 0.5], [0.25, 0.75]])
    depth, mask = gt_depth_from_image(channel, 0.9, 1.1)
    assert torch.allclose(depth[0, 0, 0], torch.tensor(1.1))
    assert torch.allclose(depth[0, 1, 1], torch.tensor(0.9))  # white: nearest, min_depth
    assert torch.allclose(depth[0, 1, 2], torch.tensor(1.0))
    assert torch.equal(mask[0], (channel[0] > 0).float())
    assert torch.allclose(depth_to_image(depth, 0.9, 1.1), channel, atol=1e-6)


def test_gt_mask_is_per_image():
    channel = torch.zeros(2, 4, 4)
    channel[0, 1:3, 1:3] = 1.0
    channel[1] = 0.5                                          # no background: nothing is nearer
    _, mask = gt_depth_from_image(channel, 0.9, 1.1)
    assert mask[0].sum() == 4 and mask[1].sum() == 0


def test_summarize_uses_unbiased_std():
    side_scores, mad_scores = torch.tensor([0.01, 0.02, 0.04]), torch.tensor([10.0, 12.0, 20.0])
    summary = summarize(side_scores, mad_scores)
    assert summary["n_images"] == 3
    assert summary["side_mean"] == pytest.approx(0.07 / 3)
    assert summary["side_std"] == pytest.approx(np.std([0.01, 0.02, 0.04], ddof=1))
    assert summary["mad_mean"] == pytest.approx(14.0)
    assert summary["mad_std"] == pytest.approx(np.std([10.0, 12.0, 20.0], ddof=1))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="side: expected"):
        side(torch.ones(1, 4, 4), torch.ones(1, 4, 5), torch.ones(1, 4, 4))


def _author_utils():
    """The original utils.py, loaded alone; cv2 (unused by the metrics) is stubbed."""
    path = AUTHOR_CODE / "unsup3d" / "utils.py"
    if not path.is_file():
        pytest.skip("original code not found at %s" % path)
    saved = sys.modules.get("cv2")
    sys.modules["cv2"] = types.ModuleType("cv2")
    try:
        spec = importlib.util.spec_from_file_location("_author_utils", str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["cv2"]
        else:
            sys.modules["cv2"] = saved
    return module


def test_matches_the_original_evaluation_on_random_maps():
    utils = _author_utils()
    pred, gt = _depth(batch=3, seed=1), _depth(batch=3, seed=2)
    mask = (torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3)) > 0.3).float()
    b = pred.size(0)
    theirs_side = (utils.compute_sc_inv_err(pred.log(), gt.log(), mask=mask).view(b, -1).sum(1)
                   / mask.view(b, -1).sum(1)) ** 0.5
    assert torch.allclose(side(pred, gt, mask), theirs_side, atol=1e-6)
    n_pred = torch.nn.functional.normalize(torch.randn(3, 8, 8, 3), dim=3)
    n_gt = torch.nn.functional.normalize(torch.randn(3, 8, 8, 3), dim=3)
    theirs_mad = (utils.compute_angular_distance(n_pred, n_gt, mask=mask).view(b, -1).sum(1)
                  / mask.view(b, -1).sum(1))
    assert torch.allclose(mad(n_pred, n_gt, mask), theirs_mad, atol=1e-3)
