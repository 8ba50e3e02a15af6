"""Segment sums on index tensors with torch's own ops (no torch-geometric)."""

from __future__ import annotations

import torch

__all__ = ["scatter_sum"]


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int, dim: int = 0) -> torch.Tensor:
    """Sum the slices of ``src`` along ``dim`` that share an ``index``.

    Args:
        src: Values, shape ``(..., n, ...)`` with ``n`` at position ``dim``.
        index: Target of every slice, shape ``(n,)``, int64, values in ``[0, dim_size)``.
        dim_size: Size of the output along ``dim``.
        dim: The reduced dimension.

    Returns:
        Tensor shaped like ``src`` but with ``dim_size`` at position ``dim``.
    """
    shape = list(src.shape)
    shape[dim] = dim_size
    out = torch.zeros(shape, dtype=src.dtype, device=src.device)
    return out.index_add_(dim, index, src)
