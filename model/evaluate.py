"""Test-set evaluation (SIDE, MAD as the original computes them, the exact angle) and sample grids.

A dataset without ground-truth depth (celeba) has no SIDE or MAD: its eval.json says
so (`Unscored`) and its test images still give the decomposition grid.
"""
import csv
import io
import os

import torch

from .geometry import normals_from_depth
from .layouts import has_depth
from .metrics import erode, gt_depth_from_image, mad, mad_published, side, summarize
from .runfiles import write_json, write_text
from .samples import decomposition_rows, save_decomposition_grid

__all__ = ["SCORE_KEYS", "Scores", "Unscored", "evaluate", "evaluate_into", "score_batch", "join_scores",
           "save_samples"]


# per-image scores of one test set (score_batch's keys, each a (N,) tensor)
SCORE_KEYS = ("side", "mad", "mad_published", "flat_side", "flat_mad", "flat_mad_published", "floor_mad_published")


class Scores(object):
    """Per-image SIDE/MAD of the model and of the flat-depth baseline, and their summary.

    eval.json: side_*, mad_* (the exact angle), mad_published_* (the original's formula:
    Table 3's MAD), flat_* (one constant depth), mad_published_floor (the published MAD of
    the ground truth against itself: what identical depths score), n_unscored.
    """

    def __init__(self, scores):
        self.scores = scores
        self.side, self.mad, self.mad_published = scores["side"], scores["mad"], scores["mad_published"]
        # An image whose predicted view leaves no valid pixel after erosion scores NaN
        # (as in the original); it is counted apart instead of making the mean NaN.
        scored = torch.isfinite(self.side) & torch.isfinite(self.mad)
        self.summary = summarize(self.side[scored], self.mad[scored], self.mad_published[scored])
        self.summary["n_unscored"] = int((~scored).sum())
        flat = summarize(scores["flat_side"], scores["flat_mad"], scores["flat_mad_published"])
        self.summary.update(dict(("flat_" + k, v) for k, v in flat.items() if k != "n_images"))
        floor = scores["floor_mad_published"]
        self.summary["mad_published_floor"] = float(floor[torch.isfinite(floor)].double().mean())

    def summary_line(self):
        """The scores beside the flat-depth baseline, as both trainers print them at the end."""
        s = self.summary
        return ("SIDE %.4f x1e-2, MAD %.2f deg (exact angle %.2f) (flat-depth baseline: SIDE %.4f x1e-2, "
                "MAD %.2f deg)" % (s["side_mean"] * 100, s["mad_published_mean"], s["mad_mean"],
                                   s["flat_side_mean"] * 100, s["flat_mad_published_mean"]))

    def write(self, out_dir):
        self.summary["scores_file"] = "eval_scores.csv"
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["index", "side", "mad", "mad_published"])
        for i, row in enumerate(zip(self.side.tolist(), self.mad.tolist(), self.mad_published.tolist())):
            writer.writerow([i] + ["%.8g" % v for v in row])
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
    """Per-image scores of a forward pass against ground-truth depth images.

    Returns:
        dict of SCORE_KEYS -> (B,): the model's SIDE, MAD (exact angle) and MAD as published;
        the same for the flat baseline (one constant depth, normals facing the camera); and
        the published MAD of the ground truth against itself (the formula's floor).
    """
    b = depth_image.shape[0]
    depth_gt, mask_gt = gt_depth_from_image(depth_image[:, 0], cfg["min_depth"], cfg["max_depth"])
    normal_gt = normals_from_depth(depth_gt, camera.K)
    mask = erode(mask_gt) * erode(out.recon_valid[:b])
    normal = out.recon_normal[:b]
    flat_depth = torch.full_like(depth_gt, cfg["rot_center_depth"])
    flat_normal = normals_from_depth(flat_depth, camera.K)
    flat_mask = erode(mask_gt)
    return {"side": side(out.recon_depth[:b], depth_gt, mask), "mad": mad(normal, normal_gt, mask),
            "mad_published": mad_published(normal, normal_gt, mask),
            "flat_side": side(flat_depth, depth_gt, flat_mask), "flat_mad": mad(flat_normal, normal_gt, flat_mask),
            "flat_mad_published": mad_published(flat_normal, normal_gt, flat_mask),
            "floor_mad_published": mad_published(normal_gt, normal_gt, flat_mask)}


def join_scores(parts):
    """Scores of a whole test set from score_batch's per-batch dicts."""
    return Scores(dict((k, torch.cat([p[k].detach().cpu() for p in parts])) for k in SCORE_KEYS))


def evaluate(cfg, model, loader, device):
    model.eval()
    parts = []
    with torch.no_grad():
        for images, depth_image in loader:
            out = model(images.to(device))
            parts.append(score_batch(cfg, out, depth_image.to(device), model.camera))
    model.train()
    return join_scores(parts)


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
