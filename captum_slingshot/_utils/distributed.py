"""Many processes on PyTorch's own distributed engine (``torch.distributed``), in one place.

A run is distributed when a default process group is initialized (``torchrun`` plus
:func:`init_from_env`, or the caller's own ``torch.distributed.init_process_group``); otherwise
every helper here is the identity and nothing is communicated. Rank ``r`` of ``W`` takes
rows ``[r B / W, (r + 1) B / W)`` of every global batch (:meth:`Shard.rows`), so ``W`` processes
see exactly the rows one process would, and averaging their gradients (:func:`average_gradients`)
gives the one-process gradient of a batch-mean loss.

Why not :class:`~torch.nn.parallel.DistributedDataParallel`'s wrapper: its reducer is armed by a
forward through the wrapper and fires per bucket during ``backward``. The slingshot runs several
forwards per step that are cut short after the manipulated layer (the later parameters get no
gradient), and its gradient-form losses differentiate through ``torch.autograd.grad(...,
create_graph=True)``, which the DDP documentation lists as unsupported. DDP's semantics -- the
same initial weights on every rank (:func:`broadcast_parameters`), gradients all-reduced and
averaged before every optimizer step -- are what this module implements with one flat
``all_reduce`` per step.

Example:
    >>> shard = current_shard()          # no process group: one process, rank 0 of 1
    >>> shard.world_size, shard.rows(8), shard.is_main
    (1, slice(0, 8, None), True)
    >>> Shard(1, 4).rows(8), Shard(1, 4).split(10)
    (slice(2, 4, None), slice(3, 6, None))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "Shard", "current_shard", "init_from_env", "is_distributed", "average_gradients", "broadcast_parameters",
    "all_mean", "any_true", "all_gather_objects", "gather_rows", "barrier", "concat_units",
]


@dataclass(frozen=True)
class Shard:
    """This process's place in a run: ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    def rows(self, batch_size: int, what: str = "batch") -> slice:
        """This rank's rows of a global batch of ``batch_size`` (which the world size must divide)."""
        if batch_size % self.world_size:
            raise ValueError(f"the {what} size {batch_size} is not divisible by the world size {self.world_size}: "
                             f"every process must get the same number of rows; use a {what} size that is a multiple "
                             f"of {self.world_size}, or run with fewer processes")
        n = batch_size // self.world_size
        return slice(self.rank * n, (self.rank + 1) * n)

    def split(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items (sizes differ by at most one; a part may be empty)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))


def is_distributed() -> bool:
    """Whether a default process group with more than one process is initialized."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def current_shard() -> Shard:
    """Rank and world size of the default process group (``Shard(0, 1)`` without one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def init_from_env(backend: Optional[str] = None) -> Shard:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...).

    Does nothing outside ``torchrun`` (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) or when a group exists.
    ``backend`` defaults to NCCL when CUDA is available, else gloo; with CUDA each process uses
    the GPU ``LOCAL_RANK``.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or dist.is_initialized():
        return current_shard()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return current_shard()


def _device_for_collectives(t: Tensor) -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return t.device


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """All-reduce and average the ``.grad`` of ``parameters`` across processes (one flat buffer).

    A parameter without a gradient keeps none (as in one process, where the optimizer then skips
    it): every rank runs the same computation on other rows, so the same parameters have none.
    """
    import torch.distributed as dist

    if not is_distributed():
        return
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dev = _device_for_collectives(flat)
    flat_c = flat.to(dev)
    dist.all_reduce(flat_c, op=dist.ReduceOp.SUM)
    flat = flat_c.to(flat.device) / dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p).clone()
        offset += n


def broadcast_parameters(module: nn.Module, src: int = 0) -> None:
    """Give every process rank ``src``'s parameters and buffers (DDP's start)."""
    import torch.distributed as dist

    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dev = _device_for_collectives(t)
            tmp = t.detach().to(dev).clone()
            dist.broadcast(tmp, src)
            t.copy_(tmp.to(t.device))


def all_mean(values: Sequence[float]) -> List[float]:
    """The mean of each of ``values`` over processes (the values themselves in one process)."""
    import torch.distributed as dist

    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dev = _device_for_collectives(t)
    t = t.to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) / dist.get_world_size() for v in t.cpu()]


def any_true(flag: bool) -> bool:
    """Whether ``flag`` holds on any process (so that all processes take the same branch)."""
    import torch.distributed as dist

    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    dev = _device_for_collectives(t)
    t = t.to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_gather_objects(obj: Any) -> List[Any]:
    """Every process's ``obj`` (picklable), in rank order; ``[obj]`` in one process."""
    import torch.distributed as dist

    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(local: Tensor) -> Tensor:
    """Concatenate every process's ``local`` rows in rank order (equal shapes on every rank)."""
    import torch.distributed as dist

    if not is_distributed():
        return local
    dev = _device_for_collectives(local)
    src = local.detach().contiguous().to(dev)
    parts = [torch.empty_like(src) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, src)
    return torch.cat(parts).to(local.device)


def barrier() -> None:
    """Wait for every process (nothing in one process)."""
    import torch.distributed as dist

    if is_distributed():
        dist.barrier()


def concat_units(parts: Sequence[Any], sizes: Sequence[int]) -> Any:
    """Join per-process results over disjoint, consecutive parts of a unit list (``sizes[i]`` units each).

    Tensors and lists whose first dimension is each part's unit count are concatenated; dicts and
    dataclasses are joined field by field; anything else (and lists equal on every process, such
    as a check's strategy labels) is taken from the first part.

    Example:
        >>> import torch
        >>> a = {"score": torch.tensor([1.0, 2.0]), "labels": ["gc", "tr"], "units": [0, 1]}
        >>> b = {"score": torch.tensor([3.0]), "labels": ["gc", "tr"], "units": [2]}
        >>> out = concat_units([a, b], [2, 1])
        >>> out["score"].tolist(), out["labels"], out["units"]
        ([1.0, 2.0, 3.0], ['gc', 'tr'], [0, 1, 2])
    """
    import dataclasses

    first = parts[0]
    if isinstance(first, Tensor):
        if first.dim() >= 1 and all(isinstance(p, Tensor) and p.dim() >= 1 and p.shape[0] == n
                                    for p, n in zip(parts, sizes)):
            return torch.cat(list(parts))
        return first
    if isinstance(first, dict):
        return {k: concat_units([p[k] for p in parts], sizes) for k in first}
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(first, **{f.name: concat_units([getattr(p, f.name) for p in parts], sizes)
                                             for f in dataclasses.fields(first) if f.init})
    if isinstance(first, (list, tuple)):
        same = all(_equal(p, first) for p in parts[1:])
        if not same and all(isinstance(p, (list, tuple)) and len(p) == n for p, n in zip(parts, sizes)):
            return type(first)(x for p in parts for x in p)
        return first
    return first


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False
