"""Overhead of GradientMonitor on a training loop (target: at most 3 % slower).

A 20-layer, 256-wide ReLU MLP, batch 256, plain SGD. Both variants run in the same
process, interleaved (plain, monitored, monitored, plain, ...), so drifts in machine load
hit both alike. The reported ratio is min(monitored) / min(plain): on a shared machine the
fastest repeat is the one least disturbed by other processes (as in ``timeit``); the
medians are printed too. On the CPU the clock is the process's CPU time
(``time.process_time``), which other processes on a shared machine do not inflate; on a
GPU it is wall time around synchronized work.

Usage: python benchmarks/bench_monitor.py [--steps N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import companion
from companion.diagnostics import GradientMonitor
from companion.models import mlp


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(model, opt, x, y, steps: int, monitor: GradientMonitor | None) -> float:
    """Seconds for ``steps`` SGD steps (the monitor's one host sync included)."""
    device = x.device
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    _sync(device)
    start = clock()
    for step in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        if monitor is not None:
            monitor.record(step)
        opt.step()
    if monitor is not None:
        monitor.norms()  # reading the norms is part of the cost
    _sync(device)
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per timing (default: 10 CPU, 200 GPU)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    companion.seed_everything(0)
    device = companion.default_device()
    steps = args.steps or (200 if device.type == "cuda" else 10)
    model = mlp(256, 10, depth=20, width=256, activation="relu").to(device)
    # lr small enough that 20 layers of He-initialised ReLU train without diverging.
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(256, 256, device=device)
    y = torch.randint(0, 10, (256,), device=device)
    run(model, opt, x, y, 5, None)  # warm-up: allocator, kernels, lazy init
    run(model, opt, x, y, 5, GradientMonitor(model))
    plain, monitored = [], []
    for repeat in range(args.repeats):
        # Alternate which variant goes first (ABBA...), so neither always runs on a warmer cache.
        if repeat % 2 == 0:
            plain.append(run(model, opt, x, y, steps, None))
            monitored.append(run(model, opt, x, y, steps, GradientMonitor(model)))
        else:
            monitored.append(run(model, opt, x, y, steps, GradientMonitor(model)))
            plain.append(run(model, opt, x, y, steps, None))
    ratio = min(monitored) / min(plain)
    median_ratio = statistics.median(monitored) / statistics.median(plain)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads, CPU time)"
    print(f"bench_monitor: device={name}, torch {torch.__version__}, {steps} steps x {args.repeats} repeats")
    # A second, less noisy estimate: the cost of record() alone on fixed gradients,
    # relative to the plain step (on a loaded machine the end-to-end ratio is noisy).
    monitor = GradientMonitor(model)
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    _sync(device)
    start = clock()
    for step in range(10 * steps):
        monitor.record(step)
    _sync(device)
    record_cost = (clock() - start) / (10 * steps)
    for label, times in (("plain", plain), ("monitored", monitored)):
        print(f"  {label:9s} min {min(times) / steps * 1e3:8.3f}  median {statistics.median(times) / steps * 1e3:8.3f} ms/step")
    print(f"  record() alone {record_cost * 1e3:.3f} ms/call = {record_cost / (min(plain) / steps):.1%} of a plain step")
    print(f"  ratio monitored/plain: min {ratio:.3f} (target <= 1.03: {'OK' if ratio <= 1.03 else 'OVER'}), median {median_ratio:.3f}")


if __name__ == "__main__":
    main()
