"""Test-set evaluation (SIDE, MAD, as the original computes them) and sample grids.

A dataset without ground-truth depth (celeba) has no SIDE or MAD: its eval.json says
so (`Unscored`) and its test images still give the decomposition grid.
"""
import csv
import io
import os

import torch

from .geometry import normals_from_depth
from .layouts import has_depth
from .metrics import erode, gt_depth_from_image, mad, side, summarize
from .runfiles import write_json, write_text
from .samples import decomposition_rows, save_decomposition_grid

__all__ = ["Scores", "Unscored", "evaluate", "evaluate_into", "score_batch", "save_samples"]


class Scores(object):
    """Per-image SIDE/MAD of the model and of the flat-depth baseline, and their summary."""

    def __init__(self, side_scores, mad_scores, flat_side, flat_mad):
        self.side, self.mad = side_scores, mad_scores
        # An image whose predicted view leaves no valid pixel after erosion scores NaN
        # (as in the original); it is counted apart instead of making the mean NaN.
        scored = torch.isfinite(side_scores) & torch.isfinite(mad_scores)
        self.summary = summarize(side_scores[scored], mad_scores[scored])
        self.summary["n_unscored"] = int((~scored).sum())
        flat = summarize(flat_side, flat_mad)
        self.summary.update(dict(("flat_" + k, v) for k, v in flat.items() if k != "n_images"))

    def summary_line(self):
        """The scores beside the flat-depth baseline, as both trainers print them at the end."""
        s = self.summary
        return "SIDE %.4f x1e-2, MAD %.2f deg (flat-depth baseline: SIDE %.4f x1e-2, MAD %.2f deg)" % (
            s["side_mean"] * 100, s["mad_mean"], s["flat_side_mean"] * 100, s["flat_mad_mean"])

    def write(self, out_dir):
        self.summary["scores_file"] = "eval_scores.csv"
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["index", "side", "mad"])
        for i, (s, m) in enumerate(zip(self.side.tolist(), self.mad.tolist())):
            writer.writerow([i, "%.8g" % s, "%.8g" % m])
        write_text(os.path.join(out_dir, "eval_scores.csv"), table.getvalue())
        write_json(os.path.join(out_dir, "eval.json"), self.summary)


class Unscored(object):
    """The test set of a dataset without ground-truth depth: eval.json says why there are no scores."""

    def __init__(self, dataset, n_images):
        self.summary = {"n_images": n_images, "depth": False,
                        "reason": "dataset %s has no ground-truth depth: no SIDE, no MAD" % dataset}

    def summary_line(self):
        return self.summary["reason"]

    def write(self, out_dir):
        write_json(os.path.join(out_dir, "eval.json"), self.summary)


def score_batch(cfg, out, depth_image, camera):
    """Per-image SIDE and MAD of a forward pass against ground-truth depth images.

    Returns (side, mad, flat_side, flat_mad), each (B,); the flat baseline predicts
    one constant depth for every pixel (its normals all face the camera).
    """
    b = depth_image.shape[0]
    depth_gt, mask_gt = gt_depth_from_image(depth_image[:, 0], cfg["min_depth"], cfg["max_depth"])
    normal_gt = normals_from_depth(depth_gt, camera.K)
    mask_pred = erode(out.recon_valid[:b])
    mask = erode(mask_gt) * mask_pred
    scores = (side(out.recon_depth[:b], depth_gt, mask), mad(out.recon_normal[:b], normal_gt, mask))
    flat_depth = torch.full_like(depth_gt, cfg["rot_center_depth"])
    flat_normal = normals_from_depth(flat_depth, camera.K)
    flat_mask = erode(mask_gt)
    return scores + (side(flat_depth, depth_gt, flat_mask), mad(flat_normal, normal_gt, flat_mask))


def evaluate(cfg, model, loader, device):
    model.eval()
    parts = []
    with torch.no_grad():
        for images, depth_image in loader:
            out = model(images.to(device))
            parts.append([t.cpu() for t in score_batch(cfg, out, depth_image.to(device), model.camera)])
    model.train()
    return Scores(*[torch.cat([p[i] for p in parts]) for i in range(4)])


def save_samples(cfg, model, loader, device, path):
    """One decomposition grid (the report's Fig. 7 rows) of the loader's first images."""
    batch = next(iter(loader))
    images = (batch[0] if isinstance(batch, (list, tuple)) else batch)[:cfg["num_sample_images"]]
    model.eval()
    with torch.no_grad():
        out = model(images.to(device))
    model.train()
    save_decomposition_grid(path, decomposition_rows(cfg, images, out.canon_depth, out.canon_albedo,
                                                     out.canon_diffuse, out.canon_normal, out.recon_im))


def evaluate_into(cfg, model, loader, device, out_dir):
    """Score the test set into out_dir: eval.json, eval_scores.csv (with depth), samples/test.png."""
    if has_depth(cfg["dataset"]):
        scores = evaluate(cfg, model, loader, device)
    else:
        scores = Unscored(cfg["dataset"], len(loader.dataset))
    scores.write(out_dir)
    save_samples(cfg, model, loader, device, os.path.join(out_dir, "samples", "test.png"))
    return scores
