"""One training step of a preset against this CPU's limit: FLOPs, ms, GFLOP/s, matmul peak.

For each preset (`cpu-small`, `paper`), in one process on the same threads:
- FLOPs per step, counted by torch.utils.flop_counter.FlopCounterMode over a whole
  step (forward, backward, clip, Adam; it counts convolutions and matmuls, the
  elementwise rest, Adam included, counts 0), not estimated by hand;
- ms/step (median of the timed steps) and the achieved GFLOP/s;
- the matmul peak: a 2048x2048 float32 matmul on the same threads, timed between
  the steps so load from other processes hits both alike; the ratio is printed as
  `NN% of the matmul peak`;
- the renderer's share of the step: torch.profiler time of the depth rasterizer's
  forward (render_depth) and backward (_RasterizeDepthBackward) over the step's;
- the networks' own ceiling: FLOPs and GFLOP/s of the five networks' forward and backward
  alone on the step's input (no renderer, losses or optimizer). The step cannot run at a
  higher share of the peak than its convolutions do at these sizes.

Then, with --compare-jobs, how to keep both cores busy across a study: steps/s of one
`cpu-small` process on 2 threads against two processes on 1 thread each at once
(what `repro run -j 2` does), alternated --rounds times; the ratio is their throughput.

    python benches/bench_train_step.py [--steps 5] [--threads 2] [--presets cpu-small paper]
    python benches/bench_train_step.py --compare-jobs [--rounds 3] [--steps 20]
"""
import argparse
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.config import resolve  # noqa: E402
from model.photogeo import PhotoGeoAutoencoder  # noqa: E402
from model.train import make_optimizer, train_step  # noqa: E402

_PEAK_SIZE = 2048  # matmul side of the peak measurement
_RENDER_FORWARD = "renderer.render_depth"
_RENDER_BACKWARD = "_RasterizeDepthBackward"


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _matmul_gflops(a, b):
    tic = time.perf_counter()
    torch.mm(a, b)
    return 2.0 * _PEAK_SIZE ** 3 / (time.perf_counter() - tic) / 1e9


def _build(preset):
    cfg = resolve({"preset": preset, "clip": "norm"})
    torch.manual_seed(0)
    model = PhotoGeoAutoencoder(cfg)
    optimizer = make_optimizer(cfg, model)
    size = cfg["image_size"]
    images = torch.rand(cfg["batch_size"], 3, size, size)
    return cfg, model, optimizer, images


def count_step_flops(cfg, model, optimizer, images):
    """FLOPs of one step as FlopCounterMode counts them (conv/matmul forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        train_step(cfg, model, optimizer, images, 0)
    return counter.get_total_flops()


def renderer_share(cfg, model, optimizer, images, steps=2):
    """Fraction of the step's profiled CPU time spent in the rasterizer (forward + backward)."""
    from torch.profiler import ProfilerActivity, profile, record_function
    renderer = model.camera.renderer
    plain = renderer.render_depth

    def timed_render(vertices, faces):
        with record_function(_RENDER_FORWARD):
            return plain(vertices, faces)

    renderer.render_depth = timed_render
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(steps):
                with record_function("step"):
                    train_step(cfg, model, optimizer, images, i)
    finally:
        renderer.render_depth = plain
    totals = {}
    for event in prof.events():
        if event.name in ("step", _RENDER_FORWARD, _RENDER_BACKWARD):
            totals[event.name] = totals.get(event.name, 0.0) + event.cpu_time_total
    render = totals.get(_RENDER_FORWARD, 0.0) + totals.get(_RENDER_BACKWARD, 0.0)
    return render / totals["step"] if totals.get("step") else float("nan")


def _networks_pass(model, images):
    """Forward and backward of the five networks alone, as the step runs them."""
    x = images * 2 - 1
    total = 0
    for net in model.nets.values():
        out = net(x)
        for o in (out if isinstance(out, tuple) else (out,)):
            total = total + o.sum()
    total.backward()


def networks_ceiling(model, images, steps):
    """(FLOPs, median ms) of the networks' forward + backward alone (see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        _networks_pass(model, images)
    times = []
    for _ in range(steps):
        tic = time.perf_counter()
        _networks_pass(model, images)
        times.append(time.perf_counter() - tic)
    model.zero_grad()
    return counter.get_total_flops(), statistics.median(times) * 1000


def time_preset(preset, steps):
    """Returns a dict of the preset's numbers (see the module docstring)."""
    cfg, model, optimizer, images = _build(preset)
    flops = count_step_flops(cfg, model, optimizer, images)  # also the warm-up step
    a, b = torch.randn(_PEAK_SIZE, _PEAK_SIZE), torch.randn(_PEAK_SIZE, _PEAK_SIZE)
    _matmul_gflops(a, b)  # warm-up
    times, peaks = [], []
    for i in range(steps):
        tic = time.perf_counter()
        train_step(cfg, model, optimizer, images, i + 1)
        times.append(time.perf_counter() - tic)
        peaks.append(_matmul_gflops(a, b))
    ms = statistics.median(times) * 1000
    peak = max(peaks)  # the least disturbed measurement is the closest to the limit
    net_flops, net_ms = networks_ceiling(model, images, steps)
    return {"cfg": cfg, "flops": flops, "ms": ms, "gflops": flops / ms / 1e6, "peak": peak,
            "render_share": renderer_share(cfg, model, optimizer, images),
            "net_gflops": net_flops / net_ms / 1e6, "net_share": net_ms / ms}


def _worker(preset, steps):
    """Subprocess body for --compare-jobs: print the seconds of `steps` steps after a warm-up."""
    cfg, model, optimizer, images = _build(preset)
    train_step(cfg, model, optimizer, images, 0)
    tic = time.perf_counter()
    for i in range(steps):
        train_step(cfg, model, optimizer, images, i + 1)
    print(time.perf_counter() - tic)


def _steps_per_second(processes, threads, steps):
    """Throughput of `processes` concurrent workers on `threads` threads each."""
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--steps", str(steps)]
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, universal_newlines=True)
               for _ in range(processes)]
    seconds = [float(w.communicate()[0].split()[-1]) for w in workers]
    return processes * steps / max(seconds)


def compare_jobs(rounds, steps):
    """Median steps/s of 1 process x 2 threads vs 2 processes x 1 thread, alternated."""
    one, two = [], []
    for _ in range(rounds):
        one.append(_steps_per_second(1, 2, steps))
        two.append(_steps_per_second(2, 1, steps))
    one, two = statistics.median(one), statistics.median(two)
    print("cpu-small, %d rounds of %d steps: 1 cell x 2 threads %.2f steps/s, 2 cells x 1 thread "
          "%.2f steps/s: ratio %.2fx (> 1: -j 2 is faster)" % (rounds, steps, one, two, two / one))


def machine_line():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    return "%s, ISA %s, torch %s, %d threads" % (cpu, capability, torch.__version__,
                                                torch.get_num_threads())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["cpu-small", "paper"])
    parser.add_argument("--compare-jobs", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        return _worker(args.presets[0], args.steps)
    print(machine_line())
    if args.compare_jobs:
        return compare_jobs(args.rounds, args.steps)
    for preset in args.presets:
        r = time_preset(preset, args.steps)
        cfg = r["cfg"]
        print("%-10s batch %3d %3dpx nf %2d  %6.2f GFLOP/step  %8.1f ms/step  %6.1f GFLOP/s  "
              "peak %6.1f GFLOP/s  %3.0f%% of the matmul peak  renderer %3.0f%% of the step  "
              "peak RSS %5.0f MiB"
              % (preset, cfg["batch_size"], cfg["image_size"], cfg["nf"], r["flops"] / 1e9, r["ms"],
                 r["gflops"], r["peak"], 100 * r["gflops"] / r["peak"], 100 * r["render_share"],
                 _peak_rss_mib()))
        print("%-10s networks alone (forward + backward): %6.1f GFLOP/s, %3.0f%% of the matmul "
              "peak, %3.0f%% of the step's time" % (preset, r["net_gflops"], 100 * r["net_gflops"] / r["peak"],
                                                   100 * r["net_share"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
