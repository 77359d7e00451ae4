"""Whether a state dict fits a model: missing, unexpected and mis-shaped keys, said in one line.

Example:
    >>> import torch
    >>> from torch import nn
    >>> own = nn.Linear(3, 2).state_dict()
    >>> state_dict_problems(own, {"weight": torch.zeros(2, 4), "scale": torch.ones(())})
    ['missing 1 keys (bias)', 'unexpected 1 keys (scale)', 'shape mismatch (weight (2, 4) vs (2, 3); file vs model)']
    >>> some_names(["a", "b", "c", "d", "e"])
    'a, b, c and 2 more'
"""

from __future__ import annotations

from typing import List, Mapping, Sequence

from torch import Tensor

__all__ = ["some_names", "state_dict_problems"]


def some_names(names: Sequence[str], n: int = 3) -> str:
    """The first ``n`` of ``names``, comma-separated, and how many more there are."""
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def state_dict_problems(own: Mapping[str, Tensor], given: Mapping[str, Tensor],
                        sides: str = "file vs model") -> List[str]:
    """What keeps ``given`` from loading strictly into a model whose state dict is ``own``; ``[]`` when it fits.
    ``sides`` names the two shapes in a shape mismatch (``given`` first)."""
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    shapes = [f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in given and tuple(given[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys ({some_names(missing)})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys ({some_names(unexpected)})")
    if shapes:
        problems.append(f"shape mismatch ({some_names(shapes)}; {sides})")
    return problems
