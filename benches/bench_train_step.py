"""Time one training step (forward, backward, clip, Adam) of a preset on this CPU.

Prints ms/step (median of the timed steps) and the process's peak resident
memory, for the `paper` preset (batch 64, 64x64, the original's widths) and for
`cpu-small`, measured side by side in one process, plus their ratio.

    python benches/bench_train_step.py [--steps 3] [--threads 2] [--presets paper cpu-small]
"""
import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.config import resolve  # noqa: E402
from model.photogeo import PhotoGeoAutoencoder  # noqa: E402
from model.train import make_optimizer, train_step  # noqa: E402


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def time_preset(preset, steps):
    cfg = resolve({"preset": preset, "clip": "norm"})
    torch.manual_seed(0)
    model = PhotoGeoAutoencoder(cfg)
    optimizer = make_optimizer(cfg, model)
    size = cfg["image_size"]
    images = torch.rand(cfg["batch_size"], 3, size, size)
    train_step(cfg, model, optimizer, images, 0)  # warm-up: allocator, mkldnn kernels
    times = []
    for i in range(steps):
        tic = time.perf_counter()
        train_step(cfg, model, optimizer, images, i + 1)
        times.append(time.perf_counter() - tic)
    return statistics.median(times) * 1000, cfg


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["cpu-small", "paper"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for preset in args.presets:
        ms, cfg = time_preset(preset, args.steps)
        results[preset] = ms
        print("%-10s batch %3d  %3dpx  nf %2d  perceptual %-3s  %9.1f ms/step  peak RSS so far %7.0f MiB"
              % (preset, cfg["batch_size"], cfg["image_size"], cfg["nf"], cfg["perceptual"], ms, _peak_rss_mib()))
    if "paper" in results and "cpu-small" in results:
        print("paper / cpu-small step time: %.1fx" % (results["paper"] / results["cpu-small"]))
    print("torch %s, %d threads" % (torch.__version__, torch.get_num_threads()))


if __name__ == "__main__":
    main()
