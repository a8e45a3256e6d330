"""SIDE and MAD exactly as the original evaluates them (model.py forward, utils.py).

* SIDE: sqrt of the masked variance of log(pred) - log(gt) per image
  (their compute_sc_inv_err on log depths, summed over the mask / mask count).
* MAD as published (`mad_published`, Table 3's MAD): their compute_angular_distance,
  acos(clamp(n1 . n2)) on normals divided by (|n| + 1e-7), summed over the mask / mask
  count. At 64 px |n| before normalising is about 3e-5, so those normals are ~0.3%
  short and identical depths score a few degrees (about 6 at 64 px, 3 at 32 px).
* MAD, the exact angle (`mad`): atan2(|n1 x n2|, n1 . n2) in float64, 0 for identical
  normals at any length: the second column, free of that floor.

Both return one score per image in plain units (reports multiply SIDE by 100);
an image with an empty mask scores NaN, as in the original. Masks are float
{0, 1} tensors, already eroded with `erode`. Python 3.6 / PyTorch 1.2 compatible.
"""
import math

import torch
import torch.nn.functional as F

__all__ = ["side", "mad", "mad_published", "erode", "gt_depth_from_image", "depth_to_image", "summarize"]


def _check_maps(name, pred, gt, mask, trailing=()):
    expected = tuple(mask.shape) + tuple(trailing)
    if mask.dim() != 3 or tuple(pred.shape) != expected or tuple(gt.shape) != expected:
        raise ValueError("%s: expected pred/gt %s and mask (B, H, W), got %s, %s, %s"
                         % (name, "(B, H, W%s)" % (", 3" if trailing else ""),
                            tuple(pred.shape), tuple(gt.shape), tuple(mask.shape)))


def _masked_mean(values, mask):
    """Per-image sum over the mask / mask count: (B, H, W) -> (B,)."""
    batch = values.size(0)
    return (values * mask).view(batch, -1).sum(1) / mask.view(batch, -1).sum(1)


def side(depth_pred, depth_gt, mask):
    """Scale-invariant depth error per image.

    Args:
        depth_pred, depth_gt: positive depths, (B, H, W).
        mask: valid pixels, float {0, 1}, (B, H, W), already eroded.
    Returns:
        (B,) sqrt of the masked variance of the log-depth difference.
    """
    _check_maps("side", depth_pred, depth_gt, mask)
    mask = mask.float()
    diff = depth_pred.log() - depth_gt.log()             # (B, H, W)
    mean_diff = _masked_mean(diff, mask)                 # (B,)
    squared = (diff - mean_diff.view(-1, 1, 1)) ** 2     # (B, H, W)
    return _masked_mean(squared, mask).sqrt()


def mad(normal_pred, normal_gt, mask):
    """Mean angular deviation between unit normals per image.

    Args:
        normal_pred, normal_gt: unit normals, (B, H, W, 3).
        mask: valid pixels, float {0, 1}, (B, H, W), already eroded.
    Returns:
        (B,) masked mean angle, degrees.
    """
    _check_maps("mad", normal_pred, normal_gt, mask, trailing=(3,))
    # The original's acos(clamp(n1 . n2)) in float32 has a ~0.02 degree floor for
    # equal normals (acos is ill-conditioned near 1); atan2(|n1 x n2|, n1 . n2) is
    # the same angle for unit normals, exact at 0, and float64 keeps it stable.
    pred, gt = normal_pred.double(), normal_gt.double()
    sine = torch.cross(pred, gt, dim=3).norm(dim=3)          # (B, H, W)
    cosine = (pred * gt).sum(3)                              # (B, H, W)
    angle = torch.atan2(sine, cosine) / math.pi * 180
    return _masked_mean(angle, mask.double()).to(normal_pred.dtype)


def mad_published(normal_pred, normal_gt, mask):
    """The original's MAD per image, as their model.py computes it for the paper's tables.

    Args:
        normal_pred, normal_gt: normals as their get_normal_from_depth returns them (ours:
            model.geometry.normals_from_depth): divided by (|n| + 1e-7), (B, H, W, 3).
        mask: valid pixels, float {0, 1}, (B, H, W), already eroded.
    Returns:
        (B,) masked mean of acos(clamp(n1 . n2, -1, 1)), degrees, in the normals' dtype.
    """
    _check_maps("mad_published", normal_pred, normal_gt, mask, trailing=(3,))
    angle = (normal_pred * normal_gt).sum(3).clamp(-1, 1).acos() / math.pi * 180   # (B, H, W)
    return _masked_mean(angle, mask.to(angle.dtype))


def erode(mask):
    """The original's 1-pixel erosion: keep pixels whose whole 3x3 neighbourhood is set.

    Zero padding counts as unset, so the image border is eroded too (as theirs).
    mask: (B, H, W) -> float (B, H, W).
    """
    pooled = F.avg_pool2d(mask.float().unsqueeze(1), 3, stride=1, padding=1)  # (B, 1, H, W)
    return (pooled.squeeze(1) > 0.99).float()


def _rescale_depth(d, min_depth, max_depth):
    """The original's depth_rescaler: [-1, 1] -> [min_depth, max_depth]."""
    return (1 + d) / 2 * max_depth + (1 - d) / 2 * min_depth


def gt_depth_from_image(depth_channel, min_depth, max_depth):
    """Ground-truth depth and foreground mask from a loaded synface depth image.

    Args:
        depth_channel: first channel of the depth image in [0, 1], (B, H, W);
            white is near, black (background) is max_depth.
    Returns:
        depth (B, H, W) in [min_depth, max_depth] and mask (B, H, W) float, not eroded:
        pixels nearer than the image's farthest depth. The original takes the max
        over the whole batch; per image gives the same mask whenever every image
        shows background (synface always does) and does not depend on batching.
    """
    depth = _rescale_depth((1 - depth_channel) * 2 - 1, min_depth, max_depth)
    farthest = depth.view(depth.size(0), -1).max(1)[0].view(-1, 1, 1)   # (B, 1, 1)
    return depth, (depth < farthest).float()


def depth_to_image(depth, min_depth, max_depth):
    """Inverse of `gt_depth_from_image`'s depth: depth -> image channel in [0, 1].

    Depths outside [min_depth, max_depth] are clamped; callers quantise to 8 bits.
    """
    return ((max_depth - depth) / (max_depth - min_depth)).clamp(0, 1)


def summarize(per_image_side, per_image_mad, per_image_mad_published=None):
    """Mean and std over images, std unbiased as the original's save_scores (torch .std()).

    Returns:
        dict(side_mean, side_std, mad_mean, mad_std, n_images) of Python numbers, plus
        mad_published_mean/std when those scores are given.
    """
    side_scores = torch.as_tensor(per_image_side, dtype=torch.float64).view(-1)
    mad_scores = torch.as_tensor(per_image_mad, dtype=torch.float64).view(-1)
    if side_scores.numel() != mad_scores.numel():
        raise ValueError("summarize: %d SIDE scores but %d MAD scores"
                         % (side_scores.numel(), mad_scores.numel()))
    summary = {
        "side_mean": float(side_scores.mean()),
        "side_std": float(side_scores.std()),
        "mad_mean": float(mad_scores.mean()),
        "mad_std": float(mad_scores.std()),
        "n_images": int(side_scores.numel()),
    }
    if per_image_mad_published is not None:
        published = torch.as_tensor(per_image_mad_published, dtype=torch.float64).view(-1)
        summary.update(mad_published_mean=float(published.mean()), mad_published_std=float(published.std()))
    return summary
