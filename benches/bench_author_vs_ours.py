"""Benchmark: one training step of the original Unsup3D vs ours, same process, same batch.

Both sides are built by tests/helpers/author_code.build_author_and_ours: their
Unsup3D (imported unmodified through model.author_shims, drop-in neural_renderer
backed by our torch rasterizer, so the same renderer on both sides) and our
PhotoGeoAutoencoder holding their weights; 64x64 (their nets are 64-only),
batch 8 of their demo faces, float32 on CPU, perceptual loss on with the same
seeded random VGG16 weights (the same function on both sides; `--perceptual off`
times what `impl: author` runs without VGG weights: theirs still evaluates VGG).

A step = forward + zero_grad + backward + Adam step (theirs: their forward() and
their own backward(), five Adams; ours: model(x), one Adam over all networks).
Steps alternate theirs/ours so load from other processes hits both alike; the
median of the timed steps is reported, then ratio = ours / theirs (< 1: ours faster).

Run: OMP_NUM_THREADS=1 python benches/bench_author_vs_ours.py [--widths small|paper]
     [--batch 8] [--steps 5] [--threads 1] [--perceptual on|off]
(small widths: nf 16, zdim 32, conf 16/16, enc 16 -- about half a minute on one core;
paper widths: nf 64, zdim 256, conf 64/128, enc 32 -- a few minutes.)
"""
import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from model.config import resolve  # noqa: E402
from model.train import make_optimizer  # noqa: E402
from tests.helpers.author_code import build_author_and_ours, seeded_vgg_state  # noqa: E402

WIDTHS = {
    "small": {"nf": 16, "zdim": 32, "conf_nf": 16, "conf_zdim": 16, "enc_nf": 16},
    "paper": {"nf": 64, "zdim": 256, "conf_nf": 64, "conf_zdim": 128, "enc_nf": 32},
}


def _faces(batch):
    import numpy as np
    from PIL import Image
    from tests.helpers.author_code import AUTHOR_ROOT
    folder = os.path.join(str(AUTHOR_ROOT), "demo", "images", "human_face")
    names = sorted(os.listdir(folder))[:batch]
    arrays = [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB").resize((64, 64), Image.BILINEAR))
              for n in names]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", choices=sorted(WIDTHS), default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--perceptual", choices=("on", "off"), default="on")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    user = dict(WIDTHS[args.widths], preset="tiny", image_size=64, batch_size=args.batch,
                z_translation_range=0.1)
    cfg = dict(resolve(user), perceptual=args.perceptual)
    theirs, ours = build_author_and_ours(cfg, seeded_vgg_state(0))
    theirs.init_optimizers()
    optimizer = make_optimizer(cfg, ours)  # what the trainer runs (compat.adam)
    images = _faces(args.batch)
    if images.shape[0] < args.batch:
        images = images.repeat((args.batch + images.shape[0] - 1) // images.shape[0], 1, 1, 1)[:args.batch]

    def step_theirs():
        theirs.forward(images)
        theirs.backward()  # their own method: zero_grad, backward, step of five Adams
        return float(theirs.loss_total)

    def step_ours():
        out = ours(images)
        optimizer.zero_grad()
        out.losses["total"].backward()
        optimizer.step()
        return float(out.losses["total"].detach())

    # warm-up. Same loss at paper widths; at small ones their GroupNorm keeps 16 groups (one
    # channel each at nf 16) where ours keeps 4 channels per group, so the losses differ.
    first = (step_theirs(), step_ours())
    times = {"theirs": [], "ours": []}
    for _ in range(args.steps):
        for name, fn in (("theirs", step_theirs), ("ours", step_ours)):
            tic = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - tic)
    med = dict((k, statistics.median(v) * 1000) for k, v in times.items())
    print("author vs ours, one training step, CPU %d thread(s), 64x64, batch %d, %s widths, perceptual %s, "
          "torch renderer on both sides (torch %s)" % (args.threads, args.batch, args.widths,
                                                        args.perceptual, torch.__version__))
    print("  first-step loss: theirs %.6f  ours %.6f" % first)
    for name in ("theirs", "ours"):
        print("  %-6s %8.1f ms/step  (median of %d; min %.1f, max %.1f)" % (
            name, med[name], args.steps, min(times[name]) * 1000, max(times[name]) * 1000))
    print("  ratio ours/theirs = %.3f  (%s)" % (med["ours"] / med["theirs"],
                                              "ours no slower" if med["ours"] <= med["theirs"] * 1.02
                                              else "ours SLOWER"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
