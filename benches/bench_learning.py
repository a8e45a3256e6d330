"""Does a preset learn depth? Train it per seed and score it beside a flat depth.

Each seed trains through the trainer every executor runs (`model.train.train`),
then scores the test set; the baseline is one constant depth scored on the same
images in the same evaluation, so the ratio model/flat needs no other run
(below 1 = better than flat). Also reports which seeds beat flat on both
metrics, the wall time per seed and the peak gradient norm (whether clipping at
5 would ever act).

    python benches/bench_learning.py [--preset cpu-small] [--seeds 0 1 2] [--threads 2]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.config import resolve  # noqa: E402
from model.train import train  # noqa: E402


def train_seed(preset, seed, threads, root):
    cfg = resolve({"preset": preset, "seed": seed, "threads": threads, "log_every": 10})
    out = root / ("seed%d" % seed)
    tic = time.perf_counter()
    code = train(cfg, str(out), log=lambda *a: None)  # data cache: root/.data, shared
    seconds = time.perf_counter() - tic
    if code != 0:
        return {"seed": seed, "exit": code, "seconds": seconds}
    scores = json.loads((out / "eval.json").read_text())
    records = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines() if line]
    return {"seed": seed, "exit": 0, "seconds": seconds,
            "side": scores["side_mean"] * 100, "mad": scores["mad_mean"],
            "flat_side": scores["flat_side_mean"] * 100, "flat_mad": scores["flat_mad_mean"],
            "max_grad_norm": max(r["grad_norm"] for r in records)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print("%-5s %8s %8s %6s %8s %8s %6s %7s %9s" % ("seed", "SIDE", "flat", "ratio", "MAD", "flat", "ratio",
                                                   "seconds", "max|g|"))
    wins = []
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        for seed in args.seeds:
            r = train_seed(args.preset, seed, args.threads, Path(tmp))
            if r["exit"]:
                print("%-5d exit %d after %.0f s" % (seed, r["exit"], r["seconds"]))
                continue
            print("%-5d %8.3f %8.3f %6.2f %8.1f %8.1f %6.2f %7.0f %9.2f" % (
                seed, r["side"], r["flat_side"], r["side"] / r["flat_side"], r["mad"], r["flat_mad"],
                r["mad"] / r["flat_mad"], r["seconds"], r["max_grad_norm"]))
            wins.append(r["side"] < r["flat_side"] and r["mad"] < r["flat_mad"])
    print("%s: %d of %d seeds beat flat depth on both SIDE (x1e-2) and MAD (deg)"
          % (args.preset, sum(wins), len(args.seeds)))


if __name__ == "__main__":
    main()
