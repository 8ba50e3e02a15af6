"""Smooth cutoff functions φ(r) with φ(0) = 1 and φ(r ≥ r_c) = 0."""

from __future__ import annotations

import math

import torch

__all__ = ["CUTOFF_FUNCTIONS", "cosine_cutoff", "physnet_cutoff"]


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


#: Cutoff functions by the name used in configs.
CUTOFF_FUNCTIONS = {"cosine": cosine_cutoff, "physnet": physnet_cutoff}
