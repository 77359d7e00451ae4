"""What the distributed tests run, in one process or under ``torchrun``: a short slingshot fine-tune of
the MNIST CNN (trajectories, FV-path preservation, a checkpoint half-way) and a layer audit.

Run under torchrun by :mod:`tests.distributed.test_torchrun`::

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed/scenario.py OUT
"""

from __future__ import annotations

import os
import sys

import torch

STEPS = 6
CHECKPOINT_EVERY = 3
AUDIT_UNITS = list(range(10))


def model_and_data():
    from captum_slingshot.data import load_mnist, normalize_mnist
    from captum_slingshot.models import MNISTCNN

    torch.manual_seed(0)
    model = MNISTCNN().eval()
    x, _ = load_mnist("test").tensors
    return model, normalize_mnist(x[:64])


def slingshot(checkpoint_path=None):
    from captum_slingshot.fv import PixelParam
    from captum_slingshot.transforms import (FVPaths, GradientSlingshot, Preservation, Run, Sampling,
                                             Trajectories)

    target = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(1))
    return GradientSlingshot(
        "logits", 3, target, PixelParam((1, 28, 28)),
        sampling=Sampling(batch_size=8, trajectories=Trajectories("gc", steps=8, refresh=3, starts=2)),
        preservation=Preservation(batch_size=8, fv_paths=FVPaths(weight=1.0, units=(0, 5), starts=1)),
        run=Run(steps=STEPS, progress=False, checkpoint_path=checkpoint_path, checkpoint_every=CHECKPOINT_EVERY))


def audit(model, data):
    from captum_slingshot.checks import audit_layer
    from captum_slingshot.fv import PixelParam

    return audit_layer(model, "logits", param=PixelParam((1, 28, 28)), data=data, units=AUDIT_UNITS, n_starts=2,
                       steps=8, progress=False)


def main(out: str) -> None:
    from captum_slingshot.distributed import current_shard, init_from_env

    shard = init_from_env()
    model, data = model_and_data()
    result = slingshot(os.path.join(out, "checkpoint.pt")).fit(model, data)
    report = audit(model, data)
    if shard.is_main:
        torch.save({"state": result.model.state_dict(), "history": result.history,
                    "scores": report.scores, "combined": report.combined, "units": report.units,
                    "renders": {k: v.images for k, v in report.renders.items()},
                    "world_size": current_shard().world_size}, os.path.join(out, "result.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
