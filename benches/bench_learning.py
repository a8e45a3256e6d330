"""Does a preset learn depth? Train it per seed and score it beside a flat depth.

Each seed trains through the trainer every executor runs (`model.train.train`),
then scores the test set; the baseline is one constant depth scored on the same
images in the same evaluation, so the ratio model/flat needs no other run
(below 1 = better than flat). Also reports which seeds beat flat on both
metrics, the wall time per seed, the median and peak pre-clip gradient norm,
the share of steps where clipping acted and the spikes (harness/spikes.py, the
study's one definition). `--set` changes trainer keys (an A/B), `--jobs` trains
seeds side by side (each with --threads threads), `--json` keeps the rows.

    python benches/bench_learning.py [--preset cpu-small] [--seeds 0 1 2 3 4] [--threads 1 --jobs 2]
        [--set clip=norm --set lr=4e-4] [--json out.json]
"""
import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.collect import read_train_logs  # noqa: E402
from harness.spikes import spike_stats  # noqa: E402
from model.builtin_data import ensure_builtin  # noqa: E402
from model.config import resolve  # noqa: E402
from model.train import train  # noqa: E402


def train_seed(user, seed, root):
    cfg = resolve(dict(user, seed=seed))
    out = Path(root) / ("seed%d" % seed)
    tic = time.perf_counter()
    code = train(cfg, str(out), log=lambda *a: None)  # data cache: root/.data, shared
    seconds = time.perf_counter() - tic
    if code != 0:
        return {"seed": seed, "exit": code, "seconds": seconds}
    scores = json.loads((out / "eval.json").read_text())
    (log,) = read_train_logs([out / "train.jsonl"])  # the collector's own reader
    cols = log.columns
    return {"seed": seed, "exit": 0, "seconds": seconds,
            "side": scores["side_mean"] * 100, "mad": scores["mad_mean"],
            "flat_side": scores["flat_side_mean"] * 100, "flat_mad": scores["flat_mad_mean"],
            "median_grad_norm": float(np.nanmedian(cols["grad_norm"])),
            "max_grad_norm": float(np.nanmax(cols["grad_norm"])),
            "final_loss": float(np.nanmean(cols["loss_total"][-50:])), **spike_stats(cols)}


def parse_set(items):
    """key=value pairs, values read as YAML (numbers, true/false, strings)."""
    user = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit("bench_learning: --set %r: expected key=value" % item)
        user[key] = yaml.safe_load(value)
    return user


def print_row(r):
    if r["exit"]:
        print("%-5d exit %d after %.0f s" % (r["seed"], r["exit"], r["seconds"]), flush=True)
        return
    print("%-5d %7.3f %7.3f %6.2f %6.1f %6.1f %6.2f %7.0f %7.2f %7.2f %6.0f%% %6d %7.2f" % (
        r["seed"], r["side"], r["flat_side"], r["side"] / r["flat_side"], r["mad"], r["flat_mad"],
        r["mad"] / r["flat_mad"], r["seconds"], r["median_grad_norm"], r["max_grad_norm"],
        100 * r["clipped_frac"], r["n_spikes"], r["final_loss"]), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    user = dict(parse_set(args.set), preset=args.preset, threads=args.threads, log_every=1)
    cfg = resolve(user)  # a bad key fails here, once, not per seed
    print("%s %s" % (args.preset, " ".join(args.set)))
    print("%-5s %7s %7s %6s %6s %6s %6s %7s %7s %7s %7s %6s %7s" % (
        "seed", "SIDE", "flat", "ratio", "MAD", "flat", "ratio", "seconds", "med|g|", "max|g|", "clipped",
        "spikes", "loss50"))
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as scratch:
        tmp = str(args.out or scratch)
        if cfg["dataset"] == "builtin":  # generate the data once, before the seeds share it
            ensure_builtin(cfg, str(Path(tmp) / ".data"), log=lambda *a: None)
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(train_seed, [user] * len(args.seeds), args.seeds, [tmp] * len(args.seeds)))
    for r in rows:
        print_row(r)
    wins = [r["side"] < r["flat_side"] and r["mad"] < r["flat_mad"] for r in rows if not r["exit"]]
    print("%s: %d of %d seeds beat flat depth on both SIDE (x1e-2) and MAD (deg)"
          % (args.preset, sum(wins), len(args.seeds)))
    if args.json:
        args.json.write_text(json.dumps({"preset": args.preset, "set": args.set, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
