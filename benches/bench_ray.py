"""Scheduling overhead of the Ray executor per cell, against the local executor, side by side.

N one-iteration cells (tiny preset, one batch, seeds 0..N-1) run through the same
scheduler twice per block of cells: once with the local executor, once with the Ray
executor on a one-CPU local Ray instance (tasks run the local executor inside), one
cell at a time in both, blocks alternating so load on the machine hits both alike.
Overhead per cell = (Ray wall - local wall) / N; goal < 0.5 s.

    python benches/bench_ray.py [--cells 200] [--block 10]
"""
import argparse
import tempfile
import time
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.cells import expand  # noqa: E402
from harness.executors.local import LocalExecutor  # noqa: E402
from harness.executors.ray import RayExecutor, RaySettings  # noqa: E402
from harness.matrix import load_study  # noqa: E402
from harness.progress import Progress  # noqa: E402
from harness.scheduler import run_cells  # noqa: E402

# one training iteration (4 images, batch 4) and the smallest evaluation the trainer allows
STUDY = """\
axes:
  stack: [{name: cpu, image: local, torch: "2.13.0"}]
  clip: [none]
  seed: %s
  preset: [tiny]
config: {builtin_num_train: 4, builtin_num_test: 4, builtin_num_val: 4, num_sample_images: 2}
"""


def one_iteration_cells(n: int, tmp: Path):
    path = tmp / "bench.yml"
    path.write_text(STUDY % list(range(n)))
    return expand(load_study(path))


def timed(cells, executor, results: Path) -> float:
    t0 = time.perf_counter()
    out = run_cells(cells, executor, results, jobs=1, threads=1,
                    progress=Progress(total=len(cells), jobs=1, tty=False, heartbeat_s=1e9,
                                      stream=open("/dev/null", "w")))
    wall = time.perf_counter() - t0
    bad = [r for r in out if r.state != "done"]
    if bad:
        sys.exit("%s: cell %s %s: %s" % (executor.name, bad[0].cell_id, bad[0].state, bad[0].reason))
    return wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200, help="one-iteration cells per executor")
    parser.add_argument("--block", type=int, default=10, help="cells per alternation block")
    args = parser.parse_args()
    import ray
    ray.init(num_cpus=1, log_to_driver=False, logging_level="WARNING")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            cells = one_iteration_cells(args.cells, tmp)
            local = LocalExecutor(threads=1)
            remote = RayExecutor(RaySettings())
            walls = {"local": 0.0, "ray": 0.0}
            for i in range(0, len(cells), args.block):
                block = cells[i:i + args.block]
                walls["local"] += timed(block, local, tmp / "local")
                walls["ray"] += timed(block, remote, tmp / "ray")
    finally:
        ray.shutdown()
    n = len(cells)
    for name, wall in walls.items():
        print("%-6s %4d cells %8.1f s  %6.3f s/cell" % (name, n, wall, wall / n))
    print("ray overhead per cell %6.3f s  (goal < 0.5 s)" % ((walls["ray"] - walls["local"]) / n))
    print("ray / local wall      %6.3f" % (walls["ray"] / walls["local"]))


if __name__ == "__main__":
    main()
