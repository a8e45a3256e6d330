"""Harness overhead per cell vs the time of a cpu-small cell, measured side by side.

Overhead = expand + hash (per cell of matrix.yml) + launch bookkeeping (cell.json,
cell.yaml, marker, status, classify, finish) + a process spawn + the scheduler's mean
poll latency + collect (one run folder into the tidy table).
The cpu-small cell time is measured by training a few real cpu-small iterations and
scaling by the preset's iteration count (`--full` trains a whole cpu-small cell instead).

    python benches/bench_harness_overhead.py [--full]
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.cells import expand  # noqa: E402
from harness.executors.base import Outcome  # noqa: E402
from harness.executors.local import LocalExecutor  # noqa: E402
from harness.matrix import load_study  # noqa: E402
from harness.cellresult import classify  # noqa: E402
from harness.progress import expected_iterations  # noqa: E402
from harness.runfolder import finish, prepare  # noqa: E402
from harness.scheduler import POLL_S  # noqa: E402

SAMPLE_ITERS = 24   # cpu-small iterations trained to time a step (after 4 warm-up steps)


def _best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def expand_per_cell():
    study_path = ROOT / "matrix.yml"
    n = len(expand(load_study(study_path)))
    return _best(lambda: expand(load_study(study_path))) / n


def bookkeeping_per_cell(cell, tmp: Path):
    def once():
        run_dir = tmp / ("book-" + cell.cell_id)
        status = prepare(run_dir, cell, threads=1, executor="local")
        (run_dir / "result.json").write_text('{"state": "done"}')
        state, reason = classify(Outcome(exit_code=0), run_dir)
        finish(run_dir, status, state, reason)
        shutil.rmtree(run_dir)
    return _best(once)


def spawn_per_cell():
    # a process start/wait of the kind the local executor does, with an empty program
    return _best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat=3)


def collect_per_cell(run_dir: Path, tmp: Path):
    from harness.collect import collect
    results = tmp / "collect"
    results.mkdir()
    shutil.copytree(run_dir, results / run_dir.name)
    got = collect(results)
    df, skipped = got.table, got.skipped
    assert len(df) == 1 and not skipped, skipped  # time a real read, not a skip
    return _best(lambda: collect(results), repeat=3)


def cpu_small_cell(cell, tmp: Path, full: bool):
    """(seconds of a whole cpu-small cell, run folder used); measured, or per-step x iterations."""
    run_dir = tmp / cell.cell_id
    if full:
        cfg = cell.trainer_config(threads=0)
    else:
        per_epoch = SAMPLE_ITERS + 4
        cfg = dict(cell.trainer_config(threads=0), num_epochs=1,
                   builtin_num_train=per_epoch * cell.config["batch_size"])
    status = prepare(run_dir, cell, threads=0, executor="local")
    import yaml
    (run_dir / "cell.yaml").write_text(yaml.safe_dump(cfg))  # the shortened sample config
    ex = LocalExecutor()
    t0 = time.perf_counter()
    sub = ex.submit(cell, run_dir)
    sub.handle.wait()
    wall = time.perf_counter() - t0
    if sub.handle.returncode != 0:
        sys.exit("trainer failed: see %s/stdout.log" % run_dir)
    finish(run_dir, status, *classify(Outcome(exit_code=0), run_dir))
    if full:
        return wall, run_dir
    steps = [json.loads(l)["seconds"] for l in (run_dir / "train.jsonl").read_text().splitlines()][4:]
    per_step = sorted(steps)[len(steps) // 2]
    fixed = wall - sum(json.loads(l)["seconds"] for l in (run_dir / "train.jsonl").read_text().splitlines())
    return fixed + per_step * expected_iterations(cell.config), run_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="train a whole cpu-small cell (~minutes)")
    args = parser.parse_args()
    cell = expand(load_study(ROOT / "matrix.yml"))[0]
    assert cell.config["preset"] == "cpu-small"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cell_s, run_dir = cpu_small_cell(cell, tmp, args.full)
        parts = {"expand+hash": expand_per_cell(), "launch bookkeeping": bookkeeping_per_cell(cell, tmp),
                 "process spawn": spawn_per_cell(), "poll latency (mean)": POLL_S / 2,
                 "collect": collect_per_cell(run_dir, tmp)}
    total = sum(parts.values())
    for name, s in parts.items():
        print("%-22s %9.4f s" % (name, s))
    print("%-22s %9.4f s" % ("harness total", total))
    print("%-22s %9.1f s  (%s)" % ("cpu-small cell", cell_s, "measured" if args.full else
                                   "%d-step sample x %d iterations" % (SAMPLE_ITERS, expected_iterations(cell.config))))
    print("overhead ratio         %9.4f %%  (target < 1 %%)" % (100 * total / cell_s))


if __name__ == "__main__":
    main()
