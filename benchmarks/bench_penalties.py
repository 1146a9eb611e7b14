"""Fused (torch._foreach_*) penalties vs a plain Python loop over parameters.

200 parameter tensors (100 weight matrices 64x64 and 100 bias vectors, the shapes of a
deep narrow MLP). For each variant we time ``value + backward`` of the L2 and L1
penalties, and the in-place proximal L1 step, with the companion's fused path
(``companion.penalties`` / ``companion.proximal``) and with the loop one would write by
hand (``sum(p.pow(2).sum() for p in params)``). Both run in the same process,
interleaved, and the reported ratio is min(loop) / min(fused) over the repeats (the
fastest repeat is the least disturbed one on a shared machine, as in ``timeit``). On the
CPU the clock is process CPU time; on a GPU, wall time around synchronized work.
The results are checked to agree before timing.

Usage: python benchmarks/bench_penalties.py [--tensors 200] [--iters 50] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import torch

import companion
from companion.penalties import l1_penalty, l2_penalty
from companion.proximal import proximal_l1_step_, soft_threshold


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loop_l2(params, strength):
    return 0.5 * strength * sum(p.pow(2).sum() for p in params)


def loop_l1(params, strength):
    return strength * sum(p.abs().sum() for p in params)


@torch.no_grad()
def loop_prox(params, threshold):
    for p in params:
        p.copy_(soft_threshold(p, threshold))


def timed(fn, params, iters: int, device: torch.device, backward: bool) -> float:
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    _sync(device)
    start = clock()
    for _ in range(iters):
        if backward:
            for p in params:
                p.grad = None
            fn(params, 1e-4).backward()
        else:
            fn(params, 1e-6)
    _sync(device)
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", type=int, default=200)
    parser.add_argument("--iters", type=int, default=None, help="calls per timing (default 20 CPU, 200 GPU)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    companion.seed_everything(0)
    torch.set_num_threads(1) if not torch.cuda.is_available() else None
    device = companion.default_device()
    iters = args.iters or (200 if device.type == "cuda" else 20)
    half = args.tensors // 2
    params = [torch.randn(64, 64, device=device, requires_grad=True) for _ in range(half)]
    params += [torch.randn(64, device=device, requires_grad=True) for _ in range(args.tensors - half)]

    # Same values before timing anything.
    torch.testing.assert_close(l2_penalty(params, 0.1), loop_l2(params, 0.1), rtol=1e-5, atol=0)
    torch.testing.assert_close(l1_penalty(params, 0.1), loop_l1(params, 0.1), rtol=1e-5, atol=0)

    cases = [
        ("l2_penalty + backward", l2_penalty, loop_l2, True),
        ("l1_penalty + backward", l1_penalty, loop_l1, True),
        ("proximal_l1_step_", proximal_l1_step_, loop_prox, False),
    ]
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU, 1 thread'})")
    print(f"{args.tensors} tensors, {iters} calls per timing, {args.repeats} repeats (min)")
    for name, fused, loop, backward in cases:
        timed(fused, params, 2, device, backward)  # warm-up
        timed(loop, params, 2, device, backward)
        t_fused, t_loop = [], []
        for _ in range(args.repeats):
            t_fused.append(timed(fused, params, iters, device, backward))
            t_loop.append(timed(loop, params, iters, device, backward))
        f, lo = min(t_fused) / iters, min(t_loop) / iters
        print(f"{name:24s} fused {1e3 * f:8.3f} ms   loop {1e3 * lo:8.3f} ms   loop/fused = {lo / f:5.2f}x")


if __name__ == "__main__":
    main()
