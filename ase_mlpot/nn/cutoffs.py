"""Smooth cutoff functions φ(r) with φ(0) = 1 and φ(r ≥ r_c) = 0."""

from __future__ import annotations

import math

import torch

__all__ = [
    "CUTOFF_FUNCTIONS",
    "cosine_cutoff",
    "exponential_cutoff",
    "physnet_cutoff",
    "polynomial_cutoff",
]


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Cosine cutoff φ(r) = ½ cos(π r / r_c) + ½ for r < r_c, else 0 (ANI, So3krates Eq. 17).

    Continuous with a continuous first derivative at r_c.
    """
    inside = distances < cutoff
    value = 0.5 * torch.cos(distances * (math.pi / cutoff)) + 0.5
    return torch.where(inside, value, torch.zeros_like(value))


def physnet_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """PhysNet polynomial φ(x) = 1 − 6x⁵ + 15x⁴ − 10x³, x = r/r_c < 1, else 0 (SO3LR).

    Continuous up to the second derivative at r_c.
    """
    x = distances / cutoff
    value = 1.0 + x**3 * (-10.0 + x * (15.0 - 6.0 * x))
    return torch.where(x < 1.0, value, torch.zeros_like(value))


def exponential_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """SpookyNet exponential φ(r) = exp(−r² / (r_c² − r²)) for r < r_c, else 0.

    Every derivative vanishes at r_c (C^∞). Evaluated on a masked argument so that neither the
    value nor its gradient is NaN outside the cutoff.
    """
    inside = distances < cutoff
    safe = torch.where(inside, distances, torch.zeros_like(distances))  # r, 0 outside
    value = torch.exp(-(safe * safe) / (cutoff * cutoff - safe * safe))
    return torch.where(inside, value, torch.zeros_like(value))


def polynomial_cutoff(distances: torch.Tensor, cutoff: float, p: int = 5) -> torch.Tensor:
    """Polynomial envelope of degree p + 2 (DimeNet/NequIP) for x = r/r_c < 1, else 0.

    φ(x) = 1 − ½(p+1)(p+2) xᵖ + p(p+2) xᵖ⁺¹ − ½p(p+1) xᵖ⁺², continuous up to the (p−1)-th
    derivative at r_c. p = 3 is :func:`physnet_cutoff`.
    """
    x = distances / cutoff
    x_p = x**p
    value = (
        1.0
        - 0.5 * (p + 1) * (p + 2) * x_p
        + p * (p + 2) * x_p * x
        - 0.5 * p * (p + 1) * x_p * x * x
    )
    return torch.where(x < 1.0, value, torch.zeros_like(value))


#: Cutoff functions ``f(distances, cutoff)`` by the name used in configs (``polynomial`` with
#: its default p = 5; pass ``p`` explicitly for other degrees).
CUTOFF_FUNCTIONS = {
    "cosine": cosine_cutoff,
    "physnet": physnet_cutoff,
    "exponential": exponential_cutoff,
    "polynomial": polynomial_cutoff,
}
