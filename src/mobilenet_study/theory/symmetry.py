"""Symmetry (Q1b): a layer whose filters start equal keeps them equal under gradient descent.

Equal filters compute equal outputs; every later layer treats them alike, so they receive
equal gradients and stay equal: the layer has one filter's worth of capacity. Zero is the
extreme case (every activation 0 as well). :func:`distinct_filters` counts the filters of a
weight tensor that differ from each other.
"""

from __future__ import annotations

import torch


def distinct_filters(weight: torch.Tensor, tolerance: float = 1e-6) -> int:
    """How many of ``weight``'s filters (its first axis) are distinct: two filters count as one
    when no entry differs by more than ``tolerance`` times the layer's largest |weight| (times
    1 when all are zero)."""
    filters = weight.detach().reshape(weight.shape[0], -1).double()
    scale = float(filters.abs().max()) or 1.0
    representatives: list[torch.Tensor] = []
    for row in filters:
        if all(float((row - kept).abs().max()) > tolerance * scale for kept in representatives):
            representatives.append(row)
    return len(representatives)


def distinct_per_layer(weights: list[torch.Tensor], tolerance: float = 1e-6) -> list[int]:
    return [distinct_filters(w, tolerance) for w in weights]
