"""Real orthonormal spherical harmonics Y_l^m(r̂) of selected degrees, via :mod:`e3nn.o3`.

The normalisation is fixed explicitly to e3nn's ``"integral"`` convention,

    ∫_{S²} Y_l^m(r̂) Y_{l'}^{m'}(r̂) dΩ = δ_{ll'} δ_{mm'},   e.g. ‖Y_1(r̂)‖ = √(3/(4π)),

which is the convention of the So3krates reference code (JAX and torch). Only per-degree inner
products and scalar multiples of Y_l enter So3krates, so the real basis (e3nn's axis order) does
not matter, but the normalisation does. Input vectors are normalised inside (r̂ = r⃗/|r⃗|) and
must be non-zero. Output layout: degrees in the given order, m = −l … l within a degree.

Evaluation. Y_l is a homogeneous polynomial of degree l in r̂, so Y_l(r̂) = u_l(r̂) C_l with the
3^l tensor-power monomials u_l = r̂ ⊗ … ⊗ r̂ (l factors, flattened) and constant coefficients C_l.
C_l is fitted once to e3nn's own values (float64 least squares, minimum norm over the repeated
monomials; exact to rounding, since homogeneous polynomials of one degree are determined by their
values on the sphere). A call then costs l − 1 broadcast products and one matrix product instead
of e3nn's per-component recursion, whose forward and backward are hundreds of small kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3

from ase_mlpot.nn.constants import Float64BufferModule

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


def _tensor_powers(unit: torch.Tensor, max_degree: int) -> list[torch.Tensor]:
    """The flattened tensor powers r̂^{⊗l}, ``(n, 3^l)`` for l = 0 … max_degree."""
    powers = [unit.new_ones((unit.shape[0], 1))]  # (n, 1)
    if max_degree >= 1:
        powers.append(unit)  # (n, 3)
    for _ in range(2, max_degree + 1):
        powers.append((powers[-1].unsqueeze(2) * unit.unsqueeze(1)).flatten(1))  # (n, 3^l)
    return powers


def _monomial_coefficients(degrees: Sequence[int]) -> torch.Tensor:
    """Block-diagonal C with concat_l Y_l(r̂) = concat_l u_l(r̂) C, ``(Σ_l 3^l, m_tot)`` float64.

    Each block is the minimum-norm least-squares fit of e3nn's Y_l ("integral" normalisation) on
    4·3^l + 16 fixed random unit vectors.
    """
    generator = torch.Generator().manual_seed(0)
    blocks = []
    for degree in degrees:
        points = torch.randn((4 * 3**degree + 16, 3), generator=generator, dtype=torch.float64)
        points = points / torch.linalg.vector_norm(points, dim=1, keepdim=True)  # (N, 3)
        target = o3.spherical_harmonics(degree, points, normalize=False,
                                        normalization="integral")  # (N, 2l+1)
        monomials = _tensor_powers(points, degree)[degree]  # (N, 3^l)
        blocks.append(torch.linalg.lstsq(monomials, target, driver="gelsd").solution)
    return torch.block_diag(*blocks)  # (Σ_l 3^l, m_tot)


class SphericalHarmonics(Float64BufferModule):
    """r⃗ ↦ concat_l Y_l(r⃗/|r⃗|), orthonormal on the sphere ("integral" normalisation).

    Args:
        degrees: The degrees l (each ≥ 0, distinct), in output order.
    """

    coefficients: torch.Tensor

    def __init__(self, degrees: Sequence[int]) -> None:
        super().__init__()
        self.degrees = tuple(int(degree) for degree in degrees)
        if not self.degrees:
            raise ValueError("need at least one degree")
        if min(self.degrees) < 0 or len(set(self.degrees)) != len(self.degrees):
            raise ValueError(f"degrees must be distinct and >= 0, got {self.degrees}")
        self.irreps = o3.Irreps([(1, (degree, (-1) ** degree)) for degree in self.degrees])
        self.num_orders = num_orders(self.degrees)
        self.register_buffer(
            "coefficients", _monomial_coefficients(self.degrees), persistent=False
        )  # (Σ_l 3^l, m_tot)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """``vectors (n, 3)`` (any length > 0) → ``(n, m_tot)``."""
        unit = vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)  # (n, 3)
        powers = _tensor_powers(unit, max(self.degrees))  # (n, 3^l) for l = 0 … l_max
        monomials = torch.cat([powers[degree] for degree in self.degrees], dim=1)  # (n, Σ 3^l)
        return monomials @ self.coefficients.to(vectors.dtype)  # (n, m_tot)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}"
