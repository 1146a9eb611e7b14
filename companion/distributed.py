"""Data-parallel training with the real ``torch.distributed``, small enough for a book.

:func:`run_data_parallel` starts ``world_size`` processes on this machine
(``torch.multiprocessing.spawn``, gloo backend on 127.0.0.1, meeting through a file store in a
temporary folder: no TCP port is chosen in advance, so nothing races for one), wraps the model in ``DistributedDataParallel`` (DDP), gives each rank an equal,
contiguous shard of the batch and measures what the chapter needs:

* each rank's *local* gradient :math:`g_r = \\nabla \\mathcal{L}_r` (computed under
  ``no_sync()``, i.e. before DDP's all-reduce) and its norm;
* the gradient DDP leaves on every rank after its all-reduce,
  :math:`\\bar g = \\tfrac{1}{R} \\sum_r g_r`, which equals the full-batch gradient when the
  shards have equal size (the loss is a mean);
* clipping *after* the all-reduce, :math:`\\bar g \\min(1, c/\\lVert\\bar g\\rVert)`, and
  clipping *before* it (each rank clips its own :math:`g_r`, then
  ``dist.all_reduce`` averages), :math:`\\tfrac1R \\sum_r g_r \\min(1, c/\\lVert g_r\\rVert)`;
* optionally a few SGD steps with DDP (clipping after the all-reduce if asked), returning
  the loss per step and the final weights.

The worker function lives in this importable module because ``spawn`` pickles it by
reference. The children write nothing to the notebook: their stdout/stderr go to a log
file that is shown only if a child fails.

See the chapter "Distributed training".
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ._checks import check_choice, check_int, check_nonnegative, check_positive

__all__ = ["DataParallelJob", "DataParallelResult", "run_data_parallel", "run_jobs"]

_LOSSES = ("mse", "cross_entropy")


@dataclass
class DataParallelJob:
    """One model to measure (and optionally train) data-parallel; see :func:`run_data_parallel`."""

    model: nn.Module
    X: torch.Tensor
    y: torch.Tensor
    loss_fn: str = "mse"
    steps: int = 0
    lr: float = 0.0
    clip_norm: float | None = None


@dataclass
class DataParallelResult:
    """What the ranks measured, as gathered by rank 0 (all tensors on the CPU).

    Attributes:
        world_size: number of processes :math:`R`.
        local_grad_norms: :math:`\\lVert g_r \\rVert` for each rank, before the all-reduce.
        grad_norm: :math:`\\lVert \\bar g \\rVert` after DDP's all-reduce (step 0).
        grads: parameter name -> :math:`\\bar g` (DDP's averaged gradient at step 0).
        local_grads: parameter name -> rank 0's local gradient :math:`g_0`.
        clipped_after: parameter name -> :math:`\\bar g` clipped to norm ``clip_norm``
            (``None`` without ``clip_norm``).
        clipped_before: parameter name -> average of the per-rank clipped gradients
            (the wrong order; ``None`` without ``clip_norm``).
        losses: global mean loss before each training step.
        step_grad_norms: :math:`\\lVert \\bar g \\rVert` at each training step, before clipping.
        step_weight_grad_norms: per training step, the norm of :math:`\\bar g` for each weight
            matrix (parameters with two or more dimensions), in ``named_parameters()`` order.
        diverged_step: first step whose loss or gradient norm was not finite, else ``None``.
        state_dict: the weights after training (identical on every rank).
    """

    world_size: int
    local_grad_norms: list[float]
    grad_norm: float
    grads: dict[str, torch.Tensor]
    local_grads: dict[str, torch.Tensor]
    clipped_after: dict[str, torch.Tensor] | None
    clipped_before: dict[str, torch.Tensor] | None
    losses: list[float] = field(default_factory=list)
    step_grad_norms: list[float] = field(default_factory=list)
    step_weight_grad_norms: list[list[float]] = field(default_factory=list)
    diverged_step: int | None = None
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)


def _loss(name: str, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if name == "mse":
        return nn.functional.mse_loss(outputs, y)
    return nn.functional.cross_entropy(outputs, y)


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _set_grads(model: nn.Module, grads: dict[str, torch.Tensor]) -> None:
    for n, p in model.named_parameters():
        p.grad = grads[n].clone()


def _gradients_at_start(ddp, model, xr, yr, loss_fn: str, world_size: int):
    """Rank's local gradient, every rank's local norm, and DDP's averaged gradient (step 0)."""
    import torch.distributed as dist

    # 1. Local gradient: no_sync() skips DDP's all-reduce for this backward.
    with ddp.no_sync():
        _loss(loss_fn, ddp(xr), yr).backward()
    local = _grads(model)
    local_norm = torch.nn.utils.get_total_norm(list(local.values())).reshape(1)
    gathered = [torch.zeros_like(local_norm) for _ in range(world_size)]
    dist.all_gather(gathered, local_norm)
    ddp.zero_grad(set_to_none=True)
    # 2. DDP's gradient: the all-reduce (a mean over ranks) runs inside backward().
    _loss(loss_fn, ddp(xr), yr).backward()
    return local, torch.cat(gathered).tolist(), _grads(model)


def _clip_both_orders(model, local, clip_norm: float, world_size: int):
    """The averaged gradient clipped (right), and the average of per-rank clipped ones (wrong)."""
    import torch.distributed as dist

    params = list(model.parameters())
    # Right: clip the averaged gradient (now in p.grad), the same on every rank.
    torch.nn.utils.clip_grad_norm_(params, clip_norm)
    clipped_after = _grads(model)
    # Wrong: each rank clips its local gradient, then the clipped ones are averaged.
    _set_grads(model, local)
    torch.nn.utils.clip_grad_norm_(params, clip_norm)
    for p in params:
        dist.all_reduce(p.grad)
        p.grad /= world_size
    return clipped_after, _grads(model)


def _train(ddp, model, xr, yr, job: DataParallelJob, world_size: int):
    """Plain SGD (no momentum) for ``job.steps`` steps, clipping after the all-reduce.

    Returns the global losses, total gradient norms, per-matrix norms and the divergence step.
    """
    import torch.distributed as dist

    params = list(model.parameters())
    weights = [p for p in params if p.dim() >= 2]
    losses: list[float] = []
    norms: list[float] = []
    weight_norms: list[list[float]] = []
    for step in range(job.steps):
        ddp.zero_grad(set_to_none=True)
        loss = _loss(job.loss_fn, ddp(xr), yr)
        loss.backward()
        layer_norms = torch.stack([w.grad.norm() for w in weights])  # before clipping
        if job.clip_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, job.clip_norm)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        global_loss = loss.detach().clone()
        dist.all_reduce(global_loss)
        global_loss /= world_size
        # One host sync per step: loss, total norm and per-matrix norms together.
        values = torch.cat([global_loss.reshape(1), norm.reshape(1).to(global_loss.dtype),
                            layer_norms.to(global_loss.dtype)]).tolist()
        losses.append(values[0])
        norms.append(values[1])
        weight_norms.append(values[2:])
        # Every rank sees the same averaged loss and norm, so all stop together.
        if not (math.isfinite(losses[-1]) and math.isfinite(norms[-1])):
            return losses, norms, weight_norms, step
        # Plain SGD, p <- p - lr * grad, written out: torch.optim's first use imports
        # torch._dynamo, which costs each fresh process seconds.
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-job.lr)
    return losses, norms, weight_norms, None


def _run_job(job: DataParallelJob, rank: int, world_size: int) -> DataParallelResult | None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = job.model
    shard = len(job.X) // world_size
    xr = job.X[rank * shard : (rank + 1) * shard]
    yr = job.y[rank * shard : (rank + 1) * shard]
    ddp = DDP(model)  # broadcasts rank 0's weights: every rank starts identical
    local, local_norms, averaged = _gradients_at_start(ddp, model, xr, yr, job.loss_fn, world_size)
    grad_norm = torch.nn.utils.get_total_norm(list(averaged.values()))
    clipped_after = clipped_before = None
    if job.clip_norm is not None:
        clipped_after, clipped_before = _clip_both_orders(model, local, job.clip_norm, world_size)
    ddp.zero_grad(set_to_none=True)
    losses, norms, weight_norms, diverged = _train(ddp, model, xr, yr, job, world_size) if job.steps else ([], [], [], None)
    if rank != 0:
        return None
    return DataParallelResult(
        world_size=world_size,
        local_grad_norms=local_norms,
        grad_norm=grad_norm.item(),
        grads=averaged,
        local_grads=local,
        clipped_after=clipped_after,
        clipped_before=clipped_before,
        losses=losses,
        step_grad_norms=norms,
        step_weight_grad_norms=weight_norms,
        diverged_step=diverged,
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
    )


def _worker(rank: int, world_size: int, folder: str) -> None:
    """Entry point of each spawned process (must be importable: spawn pickles it by name)."""
    import torch.distributed as dist

    # Keep the children's C++ warnings out of the notebook (ipykernel captures fd 2).
    log = os.open(os.path.join(folder, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT)
    os.dup2(log, 1)
    os.dup2(log, 2)
    # A forked child of a Jupyter kernel inherits sys.stdout/sys.stderr objects that talk to
    # the kernel's threads, which do not exist in the child: write Python output to the log too.
    sys.stdout = sys.stderr = open(log, "w", closefd=False)
    torch.set_num_threads(1)
    # A file store: the ranks meet through a file in the run's own folder. (A TCP store needs a
    # port chosen before the children bind it, which another process, e.g. a Jupyter kernel
    # starting beside this one, can take in between.)
    dist.init_process_group(
        "gloo", init_method=f"file://{os.path.join(folder, 'store')}", rank=rank, world_size=world_size
    )
    try:
        jobs = torch.load(os.path.join(folder, "jobs.pt"), weights_only=False)
        results = [_run_job(job, rank, world_size) for job in jobs]
        if rank == 0:
            torch.save(results, os.path.join(folder, "results.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _check_job(job: DataParallelJob, world_size: int) -> None:
    if not isinstance(job, DataParallelJob):
        raise TypeError(f"jobs must contain DataParallelJob objects, got {type(job).__name__}")
    if not isinstance(job.model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(job.model).__name__}")
    for name in ("X", "y"):
        if not isinstance(getattr(job, name), torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(getattr(job, name)).__name__}")
    if len(job.X) != len(job.y):
        raise ValueError(f"X and y must have the same length, got {len(job.X)} and {len(job.y)}")
    if len(job.X) == 0 or len(job.X) % world_size:
        raise ValueError(
            f"the number of examples ({len(job.X)}) must be a positive multiple of "
            f"world_size={world_size}: equal shards make the DDP average the full-batch gradient"
        )
    check_choice("loss_fn", job.loss_fn, _LOSSES)
    check_int("steps", job.steps, minimum=0)
    check_nonnegative("lr", job.lr)
    if job.clip_norm is not None:
        check_positive("clip_norm", job.clip_norm)
    if any(p.device.type != "cpu" for p in job.model.parameters()) or job.X.device.type != "cpu":
        raise ValueError("model and data must be on the CPU (the gloo backend runs there)")


def run_jobs(
    jobs: list[DataParallelJob], *, world_size: int = 2, start_method: str = "spawn"
) -> list[DataParallelResult]:
    """Run several :class:`DataParallelJob` in one start of ``world_size`` processes.

    Starting the processes costs a few seconds; jobs that run together share that cost.
    Each job's model is copied to the children; the caller's model is not modified.

    Args:
        jobs: the jobs, run in order.
        world_size: number of processes (>= 1).
        start_method: ``"spawn"`` (fresh interpreters that import torch, a few seconds;
            the portable choice, and what ``torch.multiprocessing.spawn`` does), ``"fork"``
            (POSIX only: the children inherit the already imported modules and start in a
            fraction of a second; on a machine with a GPU, autograd refuses to run in a child
            forked after the parent has run a backward pass) or ``"auto"`` (fork on a POSIX
            machine without CUDA, spawn otherwise).

    Returns:
        One :class:`DataParallelResult` per job.

    See the chapter "Distributed training".
    """
    import torch.multiprocessing as mp

    world_size = check_int("world_size", world_size, minimum=1)
    start_method = check_choice("start_method", start_method, ("spawn", "fork", "auto"))
    if start_method == "auto":
        import multiprocessing

        forkable = "fork" in multiprocessing.get_all_start_methods()
        start_method = "fork" if forkable and not torch.cuda.is_available() else "spawn"
    jobs = list(jobs)
    if not jobs:
        raise ValueError("jobs must contain at least one DataParallelJob, got an empty list")
    for job in jobs:
        _check_job(job, world_size)
    if start_method == "fork":
        # DDP's constructor imports torch._dynamo on first use (seconds); import it here once
        # so that the forked children inherit it instead of each importing it again.
        importlib.import_module("torch._dynamo")
    with tempfile.TemporaryDirectory(prefix="companion-ddp-") as folder:
        torch.save(jobs, os.path.join(folder, "jobs.pt"))
        try:
            mp.start_processes(_worker, args=(world_size, folder), nprocs=world_size,
                               join=True, start_method=start_method)
        except Exception as error:  # noqa: BLE001 - re-raised with the children's logs
            logs = "".join(p.read_text(errors="replace") for p in sorted(Path(folder).glob("rank*.log")))
            raise RuntimeError(f"data-parallel run failed: {error}\n{logs}") from error
        return torch.load(os.path.join(folder, "results.pt"), weights_only=False)


def run_data_parallel(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    loss_fn: str = "mse",
    world_size: int = 2,
    steps: int = 0,
    lr: float = 0.0,
    clip_norm: float | None = None,
    start_method: str = "spawn",
) -> DataParallelResult:
    """Measure one model's gradients under DDP and optionally train it for a few steps.

    Rank :math:`r` of :math:`R` gets the contiguous shard ``X[r*m:(r+1)*m]`` with
    :math:`m = n/R`. With a mean loss, DDP's averaged gradient is the full-batch gradient:

    .. math::

        \\bar g = \\frac{1}{R} \\sum_{r=1}^{R} \\nabla \\frac{1}{m} \\sum_{i \\in S_r} \\ell_i
                = \\nabla \\frac{1}{n} \\sum_{i=1}^{n} \\ell_i .

    Args:
        model: a CPU model (copied; the caller's is not modified).
        train: ``(X, y)`` with ``len(X)`` a multiple of ``world_size``.
        loss_fn: ``"mse"`` or ``"cross_entropy"`` (mean over the shard).
        world_size: number of processes.
        steps: SGD steps to train after the step-0 measurements (0: measure only).
        lr: SGD learning rate for the training steps.
        clip_norm: if given, also report clipping before/after the all-reduce at step 0,
            and clip after the all-reduce while training.
        start_method: ``"spawn"``, ``"fork"`` or ``"auto"``, see :func:`run_jobs`.

    Returns:
        A :class:`DataParallelResult`.

    See the chapter "Distributed training".
    """
    if not isinstance(train, tuple) or len(train) != 2:
        raise TypeError("train must be a tuple (X, y) of tensors")
    job = DataParallelJob(model, train[0], train[1], loss_fn, steps, lr, clip_norm)
    return run_jobs([job], world_size=world_size, start_method=start_method)[0]
