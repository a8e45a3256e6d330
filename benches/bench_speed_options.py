"""The speed options (compile, memory_format, optimizer_impl) against the default, side by side.

In one process, on the same threads (1 by default: `repro run -j 2` gives each CPU
cell one), a `cpu-small` model per variant is built as the trainer builds it
(model.numerics.settle, model.runtime.build_model, model.train.make_optimizer) from
the same seed, and all variants step on the same batches:
- compile: the first step's time beyond a steady step (torch.compile traces and
  generates code there), counted apart; the inductor cache on disk is used as found
  (--cold turns it off: what a cell pays on a fresh machine);
- ms/step: the variants take turns, --steps steps each, for --rounds rounds, who goes
  first rotating, so that load from other processes hits them alike; ms is the median of
  the rounds' medians, x the median over rounds of the default's ms over the variant's
  in the same round (> 1: faster);
- bit-identical: whether the variant's parameters after all steps equal the default's
  bit for bit, and the largest difference if not.

    python benches/bench_speed_options.py [--threads 1] [--rounds 20] [--steps 3] [--cold]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.config import resolve  # noqa: E402
from model.numerics import settle  # noqa: E402
from model.runtime import build_model  # noqa: E402
from model.train import make_optimizer, train_step  # noqa: E402

VARIANTS = (("default", {}), ("compile=default", {"compile": "default"}),
            ("memory_format=channels_last", {"memory_format": "channels_last"}),
            ("optimizer_impl=foreach", {"optimizer_impl": "foreach"}),
            ("optimizer_impl=fused", {"optimizer_impl": "fused"}))


class Variant(object):
    def __init__(self, name, options):
        self.name = name
        self.cfg, _ = settle(resolve(dict(options, preset="cpu-small")), torch.device("cpu"))
        torch.manual_seed(0)
        self.model = build_model(self.cfg, torch.device("cpu"))
        self.optimizer = make_optimizer(self.cfg, self.model)
        self.iteration = 0
        self.times = []

    def step(self, images):
        tic = time.perf_counter()
        train_step(self.cfg, self.model, self.optimizer, images, self.iteration)
        self.iteration += 1
        return time.perf_counter() - tic

    def params(self):
        return [p.detach() for p in self.model.nets.parameters()]


def largest_difference(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a.params(), b.params()))


def run(rounds, steps):
    batches = torch.rand(rounds * steps + 1, 16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    variants = [Variant(name, options) for name, options in VARIANTS]
    first = dict((v.name, v.step(batches[0])) for v in variants)
    for r in range(rounds):
        turn = variants[r % len(variants):] + variants[:r % len(variants)]  # who goes first rotates
        for v in turn:
            v.times.append(statistics.median(v.step(batches[1 + r * steps + i]) for i in range(steps)))
    base = variants[0]
    for v in variants:
        ms = statistics.median(v.times) * 1000
        ratio = statistics.median(b / t for b, t in zip(base.times, v.times))  # per round: same load
        diff = largest_difference(base, v)
        print("%-28s %7.1f ms/step  x%.2f  first step +%6.1f s  %s"
              % (v.name, ms, ratio, first[v.name] - ms / 1000,
                 "bit-identical" if diff == 0 else "differs (max |dparam| %.2e)" % diff))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="no inductor cache: compile from scratch")
    args = parser.parse_args(argv)
    if args.cold:
        os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    torch.set_num_threads(args.threads)
    from bench_train_step import machine_line
    print(machine_line())
    print("cpu-small, %d rounds x %d steps per variant, taking turns; x = default ms / variant ms"
          % (args.rounds, args.steps))
    run(args.rounds, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
