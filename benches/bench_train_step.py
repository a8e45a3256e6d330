"""One training step of a preset against this CPU's limit: FLOPs, ms, GFLOP/s, matmul peak.

For each preset (`cpu-small`, `paper`), in one process on the same threads, with glibc's
freed memory kept as the trainer keeps it (model/allocator.py):
- FLOPs per step, counted by torch.utils.flop_counter.FlopCounterMode over a whole
  step (forward, backward, clip, Adam; it counts convolutions and matmuls, the
  elementwise rest, Adam included, counts 0), not estimated by hand;
- ms/step (median of the timed steps) and the achieved GFLOP/s;
- the matmul peak: a 2048x2048 float32 matmul on the same threads, timed between
  the steps so load from other processes hits both alike; the ratio is printed as
  `NN% of the matmul peak`;
- shares of the step outside the networks: torch.profiler time of the depth rasterizer's
  forward (render_depth) and backward (_RasterizeDepthBackward), of Adam's step (the
  cell's optimizer_impl: by default the per-parameter loop) and of the gradient
  diagnostics, over the step's;
- the networks' own ceiling: FLOPs and GFLOP/s of the five networks' forward and backward
  alone on the step's input (no renderer, losses or optimizer). The step cannot run at a
  higher share of the peak than its convolutions do at these sizes; 1 - their share of the
  step's time is the share outside the networks.

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
from model.allocator import keep_freed_memory  # noqa: E402
from model.config import resolve  # noqa: E402
from model.photogeo import PhotoGeoAutoencoder  # noqa: E402
from model.train import make_optimizer, train_step  # noqa: E402

_PEAK_SIZE = 2048  # matmul side of the peak measurement
_RENDER_FORWARD = "renderer.render_depth"
_RENDER_BACKWARD = "_RasterizeDepthBackward"
_ADAM = "Optimizer.step#Adam.step"  # torch's own label of Adam.step
_DIAGNOSTICS = "step.grad_diagnostics"


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


def step_shares(cfg, model, optimizer, images, steps=2):
    """Fractions of the step's profiled CPU time in the rasterizer (forward + backward), in
    Adam's step and in the gradient diagnostics (model.step.grad_diagnostics)."""
    from torch.profiler import ProfilerActivity, profile, record_function
    import model.step as step_module
    renderer = model.camera.renderer
    plain_render, plain_diagnostics = renderer.render_depth, step_module.grad_diagnostics

    def timed(label, function):
        def run(*args):
            with record_function(label):
                return function(*args)
        return run

    renderer.render_depth = timed(_RENDER_FORWARD, plain_render)
    step_module.grad_diagnostics = timed(_DIAGNOSTICS, plain_diagnostics)
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(steps):
                with record_function("step"):
                    train_step(cfg, model, optimizer, images, i)
    finally:
        renderer.render_depth, step_module.grad_diagnostics = plain_render, plain_diagnostics
    totals = {}
    for event in prof.events():
        totals[event.name] = totals.get(event.name, 0.0) + event.cpu_time_total
    step = totals.get("step") or float("nan")
    return {"renderer": (totals.get(_RENDER_FORWARD, 0.0) + totals.get(_RENDER_BACKWARD, 0.0)) / step,
            "adam": totals.get(_ADAM, 0.0) / step, "diagnostics": totals.get(_DIAGNOSTICS, 0.0) / step}


def _networks_pass(model, images):
    """Forward and backward of the five networks alone, as the step runs them."""
    x = images * 2 - 1
    total = 0
    for net in model.nets.values():
        out = net(x)
        for o in (out if isinstance(out, tuple) else (out,)):
            total = total + o.sum()
    total.backward()


def networks_flops(model, images):
    """FLOPs of the networks' forward + backward alone (see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        _networks_pass(model, images)
    return counter.get_total_flops()


def _seconds(function, *args):
    tic = time.perf_counter()
    function(*args)
    return time.perf_counter() - tic


def time_preset(preset, steps):
    """Returns a dict of the preset's numbers (see the module docstring).

    A step, the networks' pass alone and the matmul take turns, so that load from other
    processes hits all three alike; the networks' share is the median of per-turn ratios.
    """
    cfg, model, optimizer, images = _build(preset)
    flops = count_step_flops(cfg, model, optimizer, images)  # also the warm-up step
    net_flops = networks_flops(model, images)
    a, b = torch.randn(_PEAK_SIZE, _PEAK_SIZE), torch.randn(_PEAK_SIZE, _PEAK_SIZE)
    _matmul_gflops(a, b)  # warm-up
    times, net_times, peaks = [], [], []
    for i in range(steps):
        times.append(_seconds(train_step, cfg, model, optimizer, images, i + 1))
        net_times.append(_seconds(_networks_pass, model, images))  # train_step zeroes its gradients
        peaks.append(_matmul_gflops(a, b))
    model.zero_grad()
    ms, net_ms = statistics.median(times) * 1000, statistics.median(net_times) * 1000
    peak = max(peaks)  # the least disturbed measurement is the closest to the limit
    return {"cfg": cfg, "flops": flops, "ms": ms, "gflops": flops / ms / 1e6, "peak": peak,
            "shares": step_shares(cfg, model, optimizer, images),
            "net_gflops": net_flops / net_ms / 1e6,
            "net_share": statistics.median(n / t for n, t in zip(net_times, times))}


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
    keep_freed_memory()  # as model.train does
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
              "peak %6.1f GFLOP/s  %3.0f%% of the matmul peak  peak RSS %5.0f MiB"
              % (preset, cfg["batch_size"], cfg["image_size"], cfg["nf"], r["flops"] / 1e9, r["ms"],
                 r["gflops"], r["peak"], 100 * r["gflops"] / r["peak"], _peak_rss_mib()))
        print("%-10s networks alone (forward + backward): %6.1f GFLOP/s, %3.0f%% of the matmul "
              "peak, %3.0f%% of the step's time; outside them %3.0f%% (renderer %.0f%%, Adam %.0f%%, "
              "gradient diagnostics %.0f%%; the rest: geometry, shading, losses, flips)"
              % (preset, r["net_gflops"], 100 * r["net_gflops"] / r["peak"], 100 * r["net_share"],
                 100 * (1 - r["net_share"]), 100 * r["shares"]["renderer"], 100 * r["shares"]["adam"],
                 100 * r["shares"]["diagnostics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
