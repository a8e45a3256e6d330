"""Container overhead: the same tiny cell run locally and in the cpu image, side by side.

For each run it measures, from launch: the time to the first train.jsonl record (the
first finished iteration) and the time until the cell ended. The docker overhead is
(docker - local) of both, reported in seconds and as a ratio of the local cell time.
Runs alternate local/docker so load on the shared cores hits both alike. The built-in
data is generated once beforehand, so neither side pays for it.

Needs a Docker engine and the cpu image (`repro images build cpu`).

    python benches/bench_docker_overhead.py [--repeat 2] [--epochs 1] [--threads 2]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import images  # noqa: E402
from harness.cells import expand  # noqa: E402
from harness.executors.docker import DockerExecutor, DockerSettings  # noqa: E402
from harness.executors.local import LocalExecutor  # noqa: E402
from harness.matrix import load_study  # noqa: E402
from harness.cellresult import classify  # noqa: E402
from harness.runfolder import prepare  # noqa: E402

MATRIX = """\
axes:
  stack:
    - {{name: cpu, image: local, torch: "2.13.0"}}
  seed: [0]
  preset: [tiny]
config: {{num_epochs: {epochs}}}
"""


def _cell(tmp: Path, epochs: int):
    path = tmp / "m.yml"
    path.write_text(MATRIX.format(epochs=epochs))
    (cell,) = expand(load_study(path))
    return cell


def _timed_run(executor, cell, run_dir: Path, threads: int):
    """(seconds to first iteration, seconds to the end) of one cell, measured from submit."""
    shutil.rmtree(run_dir, ignore_errors=True)
    prepare(run_dir, cell, threads=threads, executor=executor.name)
    jsonl = run_dir / "train.jsonl"
    t0 = time.perf_counter()
    sub = executor.submit(cell, run_dir)
    first = None
    while list(executor.poll([sub])):
        if first is None and jsonl.exists() and b"\n" in jsonl.read_bytes():
            first = time.perf_counter() - t0
        time.sleep(0.02)
    total = time.perf_counter() - t0
    state, reason = classify(sub.outcome, run_dir)
    if state != "done":
        raise SystemExit("%s run failed: %s" % (executor.name, reason))
    return first if first is not None else total, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per side (alternating)")
    parser.add_argument("--epochs", type=int, default=1, help="tiny preset epochs (4 iterations each)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (docker: CPU limit)")
    args = parser.parse_args()
    try:
        client = images.connect()
        images.require_image(client, "cpu")
    except images.ImageError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the local trainer inherits it
    sides = {"local": LocalExecutor(threads=args.threads),
             "docker": DockerExecutor(DockerSettings(cpus=args.threads), client=client)}
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        tmp = Path(tmp)
        cell = _cell(tmp, args.epochs)
        _timed_run(sides["local"], cell, tmp / "results" / "warmup", args.threads)  # builds .data
        times = {name: [] for name in sides}
        for _ in range(args.repeat):
            for name, executor in sides.items():
                times[name].append(_timed_run(executor, cell, tmp / "results" / name, args.threads))
    _report(times, args)
    return 0


def _report(times, args) -> None:
    med = {name: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
           for name, runs in times.items()}
    print("tiny cell, %d epoch(s), %d thread(s), median of %d runs each" % (args.epochs, args.threads,
                                                                          args.repeat))
    print("%-8s %22s %14s" % ("", "launch->first iter (s)", "cell time (s)"))
    for name, (first, total) in med.items():
        print("%-8s %22.2f %14.2f" % (name, first, total))
    start_overhead = med["docker"][0] - med["local"][0]
    cell_overhead = med["docker"][1] - med["local"][1]
    print("docker start-to-first-iteration overhead: %+.2f s = %.1f%% of the local cell time"
          % (start_overhead, 100 * start_overhead / med["local"][1]))
    print("docker/local cell time ratio: %.3f (overhead %+.2f s)"
          % (med["docker"][1] / med["local"][1], cell_overhead))


if __name__ == "__main__":
    sys.exit(main())
