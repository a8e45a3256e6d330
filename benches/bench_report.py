"""Time `repro report` over 10,000 synthetic run folders: cold, then after one cell changed.

    python benches/bench_report.py [--cells 10000] [--lines 300] [--keep DIR] [--pages]

Synthetic folders exist only here and in tests; the real report comes from
real runs. Each folder follows docs/run-folder.md: cell.json, status.json,
env.json, eval.json, result.json and a train.jsonl of `--lines` lines; 2% are
skipped GPU cells, 1% diverged, 1% have a torn last line. Targets on the 2-core
machine: under 10 s cold, under 2 s after one cell's train.jsonl grew.
`--pages` also times the three ways to draw one cell page's curves, side by side.
"""
import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.report import build_report  # noqa: E402

__all__ = ["make_study", "main"]

_STACKS = {"cpu": None, "cuda9.2": "9.2", "cuda10.0": "10.0", "cuda11.3": "11.3"}
_ENV = {"python": "3.6.9", "torch": "1.2.0", "cuda": "10.0", "cudnn": 7602, "device": "cuda",
        "gpu_name": "NVIDIA H100", "gpu_capability": "9.0", "cudnn_deterministic": True,
        "tf32": False, "git_sha": "0" * 40, "host": "bench", "perceptual": "off",
        "perceptual_reason": "no vgg_weights given"}


def _train_log(rng: random.Random, lines: int, clip: str, torn: bool) -> str:
    """A falling loss with a few spikes, the keys the trainer writes."""
    out = []
    for i in range(lines):
        spike = rng.random() < (0.01 if clip == "none" else 0.002)
        loss = (1.0 - 0.5 * i / lines) * (8 if spike else 1) * rng.uniform(0.95, 1.05)
        grad = rng.uniform(1, 4) * (30 if spike else 1)
        out.append(json.dumps({
            "epoch": i // 100, "iter": i, "loss_total": loss, "loss_l1": loss * 0.6,
            "loss_l1_flip": loss * 0.4, "loss_perc": 0.0, "loss_perc_flip": 0.0, "grad_norm": grad,
            "grad_norm_netD": grad / 2, "grad_norm_netA": grad / 3, "grad_norm_netL": 0.1,
            "grad_norm_netV": 0.1, "grad_norm_netC": 0.2, "grad_max_abs": grad / 10,
            "clipped": clip != "none" and grad > 5, "lr": 1e-4, "seconds": 0.4, "time": 0.4 * i}))
    return "\n".join(out) + "\n" + ('{"epoch": 0, "it' if torn else "")


def _write_cell(run: Path, k: int, rng: random.Random, lines: int) -> None:
    stack = list(_STACKS)[k % 4]
    impl, clip, seed = ("ours", "author")[k // 4 % 2], ("none", "norm")[k // 8 % 2], k // 16
    state = "skipped" if rng.random() < 0.02 else "diverged" if rng.random() < 0.01 else "done"
    axes = {"stack": stack, "impl": impl, "clip": clip, "clip_threshold": 5.0, "seed": seed,
            "dataset": "builtin", "preset": "paper"}
    run.mkdir()
    (run / "cell.json").write_text(json.dumps({"cell_id": run.name, "name": run.name, "axes": axes,
                                               "stack": {"name": stack, "cuda": _STACKS[stack]},
                                               "config": {"perceptual": "off"}}))
    (run / "status.json").write_text(json.dumps({"state": state, "reason": "needs a GPU" if state == "skipped" else "",
                                                 "started": 0, "ended": 100.0, "attempt": 1}))
    if state == "skipped":
        return
    (run / "env.json").write_text(json.dumps(_ENV))
    (run / "train.jsonl").write_text(_train_log(rng, lines, clip, torn=rng.random() < 0.01))
    if state == "diverged":
        (run / "result.json").write_text(json.dumps({"state": "diverged", "iteration": 200, "network": "netD"}))
        return
    (run / "result.json").write_text('{"state": "done"}')
    (run / "eval.json").write_text(json.dumps({"side_mean": rng.uniform(0.008, 0.05), "side_std": 0.002,
                                               "mad_mean": rng.uniform(15, 70), "mad_std": 2.0,
                                               "mad_published_mean": rng.uniform(15, 70), "mad_published_std": 2.0,
                                               "n_images": 1000, "scores_file": "eval_scores.csv"}))


def make_study(root: Path, cells: int, lines: int, seed: int = 0) -> Path:
    """Write `cells` synthetic run folders (plus a stray and a hidden one) under root/results."""
    results = root / "results"
    results.mkdir(parents=True)
    rng = random.Random(seed)
    for k in range(cells):
        _write_cell(results / f"{k:08x}", k, rng, lines)
    (results / "stray").mkdir()
    (results / ".data").mkdir()
    return results


def _grow_one_cell(results: Path) -> str:
    """Append ten lines to the train.jsonl of a done cell in the middle of the study (as a running cell does)."""
    done = [d for d in sorted(results.iterdir()) if (d / "eval.json").exists()]
    cell = done[len(done) // 2]
    lines = (cell / "train.jsonl").read_text().splitlines()
    last = json.loads(lines[-1] if lines[-1].endswith("}") else lines[-2])
    with open(cell / "train.jsonl", "a") as fh:
        fh.write("".join(json.dumps(dict(last, iter=last["iter"] + k)) + "\n" for k in range(1, 11)))
    stamp = time.time() - 60    # settled: folder_signature trusts a folder untouched for 2 s
    os.utime(cell / "train.jsonl", (stamp, stamp))
    return cell.name


def _peak_rss_mb() -> tuple[float, float]:
    """(this process, its largest child) peak resident set, MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _time_pages(results: Path, reports: Path, repeat: int = 20) -> None:
    """One cell page's curves three ways: matplotlib PNG, SVG path text from Python, base64 for cellplot.js."""
    from harness.collect import collect
    from harness.report.cellpage import plot_data
    from harness.report.cellplots import curves_png
    got = collect(results, jobs=1)
    cell_id, series = next(iter(got.series.items()))

    def svg_text():
        x = series["iter"]
        return ["M" + " L".join(f"{a:.1f} {b:.4g}" for a, b in zip(x, series[f])) for f in ("loss_total", "grad_norm")]

    ways = {"matplotlib PNG": lambda: curves_png([("", series)], reports / "bench_curves.png"),
            "SVG path text": svg_text, "base64 for cellplot.js": lambda: plot_data(series, 5.0)}
    for name, way in ways.items():
        tic = time.perf_counter()
        for _ in range(repeat):
            way()
        print(f"page curves, {name:24s} {(time.perf_counter() - tic) / repeat * 1e3:8.3f} ms per cell")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=300, help="train.jsonl lines per folder")
    parser.add_argument("--keep", type=Path, help="write the study here and keep it")
    parser.add_argument("--pages", action="store_true", help="also time one page's curves three ways")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_report_"))
    try:
        tic = time.perf_counter()
        results = make_study(root, args.cells, args.lines)
        print(f"wrote {args.cells} folders x {args.lines} lines in {time.perf_counter() - tic:.1f}s")
        time.sleep(2.1)   # let the last folders settle (runfolder.folder_signature)
        load = os.getloadavg()[0]
        cpu = time.process_time()
        cold = build_report(results, root / "reports")
        cpu = time.process_time() - cpu
        grown = _grow_one_cell(results)
        warm = build_report(results, root / "reports")
        print(f"cold: {cold.seconds:.2f}s for {cold.cells} cells ({cold.seconds / args.cells * 1e3:.3f} ms/folder; "
              f"this process's CPU {cpu:.1f}s, the workers' besides), target < 10 s: "
              f"{'OK' if cold.seconds < 10 else 'TOO SLOW'}")
        print(f"after cell {grown}'s train.jsonl grew: {warm.seconds:.2f}s ({warm.reread} folder read again, "
              f"{len(warm.outputs)} files written), target < 2 s: {'OK' if warm.seconds < 2 else 'TOO SLOW'}")
        own, child = _peak_rss_mb()
        print(f"peak RSS: {own:.0f} MB this process, {child:.0f} MB the largest worker; load average at start {load:.1f}")
        if args.pages:
            _time_pages(results, root / "reports")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
