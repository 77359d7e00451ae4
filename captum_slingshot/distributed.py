"""Many processes on PyTorch's distributed engine: run a fit or an audit under ``torchrun``.

Nothing changes in the code that calls the library: when a default process group is initialized,
:meth:`GradientSlingshot.fit <captum_slingshot.transforms.GradientSlingshot.fit>` shards every
batch across the processes and averages the gradients (DDP's semantics: see
:mod:`captum_slingshot._utils.distributed` for why not its wrapper), and
:func:`~captum_slingshot.checks.audit_layer` splits the layer's units across them and merges the
report. :func:`init_from_env` joins the group ``torchrun`` describes (gloo on CPU, NCCL with one
GPU per process); ``captum-slingshot manipulate`` and ``audit`` call it themselves, and only rank 0
writes files.

Example:
    >>> from captum_slingshot.distributed import current_shard, init_from_env
    >>> init_from_env()   # outside torchrun: nothing to join, one process
    Shard(rank=0, world_size=1)

Under torchrun (2 CPU processes)::

    torchrun --standalone --nproc_per_node 2 my_script.py      # my_script calls init_from_env()
    torchrun --standalone --nproc_per_node 2 -m captum_slingshot.cli manipulate ...
"""

from __future__ import annotations

from ._utils.distributed import Shard, barrier, current_shard, init_from_env, is_distributed

__all__ = ["Shard", "current_shard", "init_from_env", "is_distributed", "barrier"]
