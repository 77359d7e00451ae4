"""Captum-style ``neuron_selector`` handling: one activation per example from a layer output.

A selector is an ``int`` or ``tuple`` indexing the layer output without its batch dimension
(left-over dimensions are averaged), a :class:`Direction`, a :class:`Token` (a feature or a
direction of one token of a transformer's ``(B, tokens, D)`` output), or a callable
``(B, ...) -> (B,)``. Functions that take "one selector or a list" use :func:`as_selector_list`
and :func:`unbatch`.

Example:
    >>> import torch
    >>> out = torch.arange(12.0).view(2, 3, 2)
    >>> select_neuron(out, 1)          # channel 1, mean over the last dimension
    tensor([2.5000, 8.5000])
    >>> as_selector_list(1), as_selector_list([1, (2, 0)])
    (([1], True), ([1, (2, 0)], False))
    >>> select_neuron(out, Token(0, token=2))   # token 2 (of 3), feature 0
    tensor([ 4., 10.])
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["Direction", "Token", "NeuronSelector", "select_neuron", "check_selector", "as_selector_list", "unbatch",
           "segments_of", "row_activations"]


class Direction:
    """A direction ``v`` in a layer's channel space: activation ``<h, v>``.

    For outputs with spatial dimensions the channel vector is averaged over
    space first, i.e. the activation is ``mean_{y,x} sum_c h[c, y, x] v[c]``.

    Example:
        >>> import torch
        >>> d = Direction(torch.tensor([1.0, -1.0]))
        >>> d(torch.tensor([[3.0, 1.0]]))
        tensor([2.])
    """

    def __init__(self, vector: Union[Tensor, Sequence[float]]) -> None:
        v = torch.as_tensor(vector, dtype=torch.float32).flatten()
        if v.numel() == 0 or not torch.isfinite(v).all():
            raise ValueError("a direction needs a non-empty, finite vector")
        self.vector = v

    def __call__(self, output: Tensor) -> Tensor:
        if output.dim() < 2 or output.shape[1] != self.vector.numel():
            hint = (f"; for a transformer's (B, tokens, D) output use Token(Direction(...)) (a direction "
                    f"over D of one token)" if output.dim() == 3 and output.shape[2] == self.vector.numel() else "")
            raise ValueError(
                f"direction has {self.vector.numel()} entries but the layer output "
                f"has shape {tuple(output.shape)} (channels on dim 1){hint}"
            )
        v = self.vector.to(device=output.device, dtype=output.dtype)
        h = output.flatten(2).mean(-1) if output.dim() > 2 else output
        return h @ v

    def __repr__(self) -> str:
        return f"Direction(dim={self.vector.numel()})"


class Token:
    """A unit of one token of a transformer layer's output ``(B, tokens, D)``: a feature or a direction over ``D``.

    Args:
        feature: an index into ``D`` or a :class:`Direction` (or its vector) over ``D`` -- a
            direction in the residual stream.
        token: the token (default ``0``, ViT's CLS token); ``None`` averages over all tokens
            (the analogue of a conv channel's spatial mean).

    Example:
        >>> import torch
        >>> h = torch.arange(12.0).view(1, 3, 4)     # one example, 3 tokens, D = 4
        >>> Token(1)(h), Token(1, token=None)(h), Token([1.0, 0.0, 0.0, -1.0], token=2)(h)
        (tensor([1.]), tensor([5.]), tensor([-3.]))
        >>> Token(5)
        Token(5, token=0)
    """

    def __init__(self, feature: Union[int, Direction, Tensor, Sequence[float]], token: Optional[int] = 0) -> None:
        if isinstance(feature, bool) or not isinstance(feature, (int, Direction, Tensor, list, tuple)):
            raise TypeError(f"Token(feature) takes a feature index, a Direction or a vector, got {feature!r}")
        if not isinstance(feature, (int, Direction)):
            feature = Direction(feature)
        if token is not None and (isinstance(token, bool) or not isinstance(token, int)):
            raise TypeError(f"Token(token=...) takes a token index or None (all tokens averaged), got {token!r}")
        self.feature: Union[int, Direction] = feature
        self.token: Optional[int] = token

    def check(self, output_shape: Sequence[int], layer_desc: str = "the layer") -> None:
        """Raise a clear error if the unit does not fit a per-example output shape ``(tokens, D)``."""
        shape = tuple(output_shape)
        if len(shape) != 2:
            raise ValueError(f"{self!r} needs a layer with outputs (B, tokens, D), but {layer_desc} outputs shape "
                             f"{shape} per example")
        n_tok, d = shape
        if self.token is not None and not -n_tok <= self.token < n_tok:
            raise ValueError(f"{self!r} is out of range for {layer_desc}: it has {n_tok} tokens")
        size = self.feature.vector.numel() if isinstance(self.feature, Direction) else None
        if size is not None and size != d:
            raise ValueError(f"{self!r} has a direction of {size} entries but {layer_desc} has D = {d}")
        if size is None and not -d <= self.feature < d:  # type: ignore[operator]
            raise ValueError(f"{self!r} is out of range for {layer_desc}: feature {self.feature} of D = {d}")

    def __call__(self, output: Tensor) -> Tensor:
        if output.dim() != 3:
            raise ValueError(f"{self!r} needs a layer output (B, tokens, D), got shape {tuple(output.shape)}")
        h = output.mean(1) if self.token is None else output[:, self.token]
        if isinstance(self.feature, Direction):
            return self.feature(h)
        return h[:, self.feature]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token) or other.token != self.token:
            return False
        if isinstance(self.feature, Direction) and isinstance(other.feature, Direction):
            return torch.equal(self.feature.vector, other.feature.vector)
        return self.feature == other.feature

    def __hash__(self) -> int:
        f = self.feature
        return hash((self.token, tuple(f.vector.tolist()) if isinstance(f, Direction) else f))

    def __repr__(self) -> str:
        return f"Token({self.feature!r}, token={self.token!r})"


NeuronSelector = Union[int, Tuple[int, ...], Direction, Token, Callable[[Tensor], Tensor]]


def index_tuple(selector: Union[int, Tuple[int, ...]]) -> Tuple[int, ...]:
    """An index selector as a tuple of ints; anything else is a ``TypeError``."""
    if isinstance(selector, (int,)) and not isinstance(selector, bool):
        return (int(selector),)
    if isinstance(selector, tuple) and all(isinstance(i, int) for i in selector):
        return tuple(int(i) for i in selector)
    raise TypeError(
        "neuron_selector must be an int, a tuple of ints, a Direction or a callable, "
        f"got {selector!r}"
    )


def check_selector(selector: NeuronSelector, output_shape: Sequence[int], layer_desc: str = "the layer") -> None:
    """Raise a clear error if an index selector (or a :class:`Token`) does not fit ``output_shape`` (no batch dim)."""
    if isinstance(selector, Token):
        selector.check(output_shape, layer_desc)
        return
    if isinstance(selector, Direction) or callable(selector):
        return
    idx = index_tuple(selector)
    shape = tuple(output_shape)
    if len(idx) > len(shape):
        raise ValueError(
            f"neuron_selector {selector!r} has {len(idx)} indices but {layer_desc} "
            f"outputs shape {shape} per example"
        )
    for i, (k, n) in enumerate(zip(idx, shape)):
        if not -n <= k < n:
            raise ValueError(
                f"neuron_selector {selector!r} is out of range for {layer_desc}: index "
                f"{k} on dimension {i} of size {n} (output shape per example {shape})"
            )


def select_neuron(output: Tensor, selector: NeuronSelector) -> Tensor:
    """One activation per example, ``(B,)``, from a layer output ``(B, ...)``."""
    if isinstance(selector, Direction) or (callable(selector) and not isinstance(selector, (int, tuple))):
        act = selector(output)
        if act.dim() != 1 or act.shape[0] != output.shape[0]:
            raise ValueError(
                f"a callable neuron_selector must return one value per example, shape "
                f"({output.shape[0]},), got {tuple(act.shape)}"
            )
        return act
    idx = index_tuple(selector)  # type: ignore[arg-type]
    act = output[(slice(None),) + idx]
    return act.flatten(1).mean(1) if act.dim() > 1 else act


def as_selector_list(neuron_selector: Any) -> Tuple[List[Any], bool]:
    """``(selectors, single)``: a list of selectors, and whether one selector (not a list) was given."""
    if isinstance(neuron_selector, list):
        if not neuron_selector:
            raise ValueError("neuron_selector is an empty list; give at least one selector")
        return list(neuron_selector), False
    return [neuron_selector], True


def unbatch(t: Any, single: bool) -> Any:
    """Drop the leading unit dimension of a tensor (or of every tensor in a dict) for a single unit."""
    if not single:
        return t
    if isinstance(t, Tensor):
        return t[0]
    if isinstance(t, dict):
        return {k: unbatch(v, single) for k, v in t.items()}
    if isinstance(t, list):
        return t[0]
    return t


def segments_of(unit_of_row: Sequence[int]) -> List[Tuple[int, int, int]]:
    """Runs of equal unit index as ``(unit, begin, end)`` (rows ordered unit by unit).

    Example:
        >>> segments_of([0, 0, 1, 1, 1, 0])
        [(0, 0, 2), (1, 2, 5), (0, 5, 6)]
    """
    segs: List[list] = []
    for r, j in enumerate(unit_of_row):
        if segs and segs[-1][0] == j:
            segs[-1][2] = r + 1
        else:
            segs.append([j, r, r + 1])
    return [tuple(x) for x in segs]  # type: ignore[misc]


def row_activations(output: Tensor, selectors: Sequence[Any], segments: Sequence[Tuple[int, int, int]]) -> Tensor:
    """Activation of every row of a layer output for its own unit (``segments`` from :func:`segments_of`)."""
    if len(segments) == 1:
        return select_neuron(output, selectors[segments[0][0]])
    return torch.cat([select_neuron(output[a:b], selectors[j]) for j, a, b in segments])
