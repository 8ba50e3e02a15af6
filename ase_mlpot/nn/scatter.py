"""Segment sums on index tensors with torch's own ops (no torch-geometric)."""

from __future__ import annotations

import torch

__all__ = ["scatter_sum"]


def scatter_sum(
    src: torch.Tensor, index: torch.Tensor, dim_size: int, dim: int = 0
) -> torch.Tensor:
    """Sum the slices of ``src`` along ``dim`` that share an ``index``.

    Args:
        src: Values, shape ``(..., n, ...)`` with ``n`` at position ``dim``.
        index: Target of every slice, shape ``(n,)``, int64, values in ``[0, dim_size)``.
        dim_size: Size of the output along ``dim``.
        dim: The reduced dimension.

    Returns:
        Tensor shaped like ``src`` but with ``dim_size`` at position ``dim``.
    """
    moved = src.movedim(dim, 0)  # (n, ...)
    out = torch.zeros((dim_size, *moved.shape[1:]), dtype=src.dtype, device=src.device)
    # index_put_(accumulate=True) rather than index_add_: on a busy multi-core CPU the OpenMP path
    # of index_add_ spins and is up to 40x slower for the small tensors of molecular systems.
    out.index_put_((index,), moved, accumulate=True)
    return out.movedim(0, dim)
