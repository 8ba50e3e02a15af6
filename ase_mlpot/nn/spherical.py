"""Real orthonormal spherical harmonics Y_l^m(r̂) of selected degrees, via :mod:`e3nn.o3`.

The normalisation is fixed explicitly to e3nn's ``"integral"`` convention,

    ∫_{S²} Y_l^m(r̂) Y_{l'}^{m'}(r̂) dΩ = δ_{ll'} δ_{mm'},   e.g. ‖Y_1(r̂)‖ = √(3/(4π)),

which is the convention of the So3krates reference code (JAX and torch). Only per-degree inner
products and scalar multiples of Y_l enter So3krates, so the real basis (e3nn's axis order) does
not matter, but the normalisation does. Input vectors are normalised inside (r̂ = r⃗/|r⃗|) and
must be non-zero. Output layout: degrees in the given order, m = −l … l within a degree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3

__all__ = ["SphericalHarmonics", "degree_index", "num_orders"]


def num_orders(degrees: Sequence[int]) -> int:
    """Total number of components m_tot = Σ_l (2l + 1)."""
    return sum(2 * int(degree) + 1 for degree in degrees)


def degree_index(degrees: Sequence[int]) -> torch.Tensor:
    """For each of the m_tot components, the position of its degree in ``degrees`` (int64)."""
    return torch.tensor(
        [n for n, degree in enumerate(degrees) for _ in range(2 * int(degree) + 1)],
        dtype=torch.int64,
    )  # (m_tot,)


class SphericalHarmonics(torch.nn.Module):
    """r⃗ ↦ concat_l Y_l(r⃗/|r⃗|), orthonormal on the sphere ("integral" normalisation).

    Args:
        degrees: The degrees l (each ≥ 0, distinct), in output order.
    """

    def __init__(self, degrees: Sequence[int]) -> None:
        super().__init__()
        self.degrees = tuple(int(degree) for degree in degrees)
        if not self.degrees:
            raise ValueError("need at least one degree")
        if min(self.degrees) < 0 or len(set(self.degrees)) != len(self.degrees):
            raise ValueError(f"degrees must be distinct and >= 0, got {self.degrees}")
        self.irreps = o3.Irreps([(1, (degree, (-1) ** degree)) for degree in self.degrees])
        self.num_orders = num_orders(self.degrees)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """``vectors (n, 3)`` (any length > 0) → ``(n, m_tot)``."""
        return o3.spherical_harmonics(
            list(self.degrees), vectors, normalize=True, normalization="integral"
        )  # (n, m_tot)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}"
