"""Speed of companion.ensemble against a loop of single runs (the chapters' multi-seed runs).

K small networks (default: 8 ten-layer, width-32 tanh MLPs on 256 two-spiral points,
full-batch SGD) are trained two ways in the same process, interleaved (loop, ensemble,
ensemble, loop, ...) so that drifts in machine load hit both alike:

* **loop**: one model per seed, trained one after the other with a plain PyTorch loop
  (forward, loss, backward, ``optimizer.step``), recording nothing;
* **ensemble**: the same K seeds stacked by :func:`companion.ensemble.build` and trained
  together by :func:`companion.ensemble.train` (``record_grad_norms=False``).

The reported speed-up is min(loop) / min(ensemble): on a shared machine the fastest repeat
is the least disturbed one (as in ``timeit``); medians are printed too. On the CPU the
clock is the process's CPU time, which other processes do not inflate; on a GPU it is wall
time around synchronized work. The run also checks that both ways end at the same weights
(``torch.testing.assert_close``), so the speed-up is not bought with a different computation.

Usage: python benchmarks/bench_ensemble.py [--members K] [--steps N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import companion
from companion import ensemble as E
from companion.models import mlp


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _factory():
    return mlp(2, 2, depth=10, width=32, activation="tanh")


def loop(seeds, x, y, steps: int, lr: float) -> tuple[float, list[nn.Module]]:
    """Seconds to train one model per seed, one after the other; and the trained models."""
    clock = time.perf_counter if x.device.type == "cuda" else time.process_time
    models = []
    for seed in seeds:  # building the models is part of both timings
        companion.seed_everything(seed)
        models.append(_factory().to(x.device))
    _sync(x.device)
    start = clock()
    for model in models:
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    _sync(x.device)
    return clock() - start, models


def stacked(seeds, x, y, steps: int, lr: float) -> tuple[float, E.Ensemble]:
    """Seconds to train the same seeds as one stacked ensemble; and the ensemble."""
    clock = time.perf_counter if x.device.type == "cuda" else time.process_time
    ens = E.build(_factory, seeds, device=x.device)
    _sync(x.device)
    start = clock()
    E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, lr=lr),
            epochs=steps, record_grad_norms=False)
    _sync(x.device)
    return clock() - start, ens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="seeds trained (default 8)")
    parser.add_argument("--steps", type=int, default=100, help="SGD steps per model (default 100)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = companion.default_device()
    x, y = companion.data.two_spirals(256, seed=0)
    x, y = x.to(device), y.to(device)
    seeds = list(range(args.members))
    lr = 0.05

    times = {"loop": [], "ensemble": []}
    for r in range(args.repeats):
        order = ("loop", "ensemble") if r % 2 == 0 else ("ensemble", "loop")
        for name in order:
            seconds, trained = (loop if name == "loop" else stacked)(seeds, x, y, args.steps, lr)
            times[name].append(seconds)
            if name == "loop":
                models = trained
            else:
                ens = trained
    for k, (member, alone) in enumerate(zip(ens.unstack(), models)):
        for (name, a), b in zip(member.named_parameters(), alone.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"member {k} {name}: {m}")

    clock = "wall time" if device.type == "cuda" else "CPU time"
    print(f"{args.members} ten-layer width-32 tanh MLPs, {args.steps} full-batch SGD steps, "
          f"{device.type}, {torch.get_num_threads()} thread(s), {clock}, {args.repeats} repeats")
    for name, ts in times.items():
        print(f"  {name:9s} min {min(ts):.3f} s   median {statistics.median(ts):.3f} s")
    print(f"  final weights of ensemble and loop agree (assert_close, rtol 1e-4)")
    print(f"speed-up of the ensemble over the loop: {min(times['loop']) / min(times['ensemble']):.2f}x "
          f"(medians: {statistics.median(times['loop']) / statistics.median(times['ensemble']):.2f}x)")


if __name__ == "__main__":
    main()
