"""Radial basis expansions of interatomic distances, r ↦ (B_1(r), …, B_K(r)).

Three families used by the So3krates/SO3LR code lines (distances in Å, bases dimensionless):

* Gaussian: B_k(r) = exp(−(r − μ_k)² / (2 w²)), μ_k = linspace(r_0, r_c, K), w = μ_2 − μ_1.
* PhysNet exponential (Unke & Meuwly 2019): B_k(r) = exp(−β (e^{−r} − μ_k)²),
  μ_k = linspace(e^{−r_c}, 1, K), β = ((2/K)(1 − e^{−r_c}))^{−2}.
* Bernstein polynomials of x = e^{−γ r} (SpookyNet/SO3LR):
  B_k(r) = C(K−1, k) x^k (1 − x)^{K−1−k}, γ = 0.9448630629 Å⁻¹, evaluated in log space
  (x^31 underflows float32) with x clipped to [ε, 1 − ε], ε = 1e-6.

None of them is multiplied by a cutoff function: in So3krates the cutoff multiplies the attention
weights. Constants are kept in float64 (:class:`~ase_mlpot.nn.constants.Float64BufferModule`) and
cast to the working dtype on use, so a float64 evaluation of a model cast from float32 is exact.
"""

from __future__ import annotations

import math

import torch

from ase_mlpot.nn.constants import Float64BufferModule

__all__ = ["RADIAL_BASES", "BernsteinBasis", "GaussianBasis", "PhysNetBasis", "RadialBasis"]


class RadialBasis(Float64BufferModule):
    """Base class: ``forward(distances (n,)) -> (n, num_basis)``.

    Args:
        num_basis: Number K of basis functions.
        cutoff: Cutoff radius r_c, Å.
    """

    def __init__(self, num_basis: int, cutoff: float) -> None:
        super().__init__()
        if num_basis < 2:
            raise ValueError(f"num_basis must be >= 2, got {num_basis}")
        if cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        self.num_basis = int(num_basis)
        self.cutoff = float(cutoff)

    def extra_repr(self) -> str:
        return f"num_basis={self.num_basis}, cutoff={self.cutoff}"


class GaussianBasis(RadialBasis):
    """B_k(r) = exp(−(r − μ_k)² / (2 w²)), μ_k evenly spaced on [r_0, r_c], w the spacing.

    Args:
        num_basis: K.
        cutoff: r_c, Å (the last centre).
        start: r_0, Å (the first centre).
    """

    centers: torch.Tensor

    def __init__(self, num_basis: int, cutoff: float, start: float = 0.0) -> None:
        super().__init__(num_basis, cutoff)
        centers = torch.linspace(start, cutoff, num_basis, dtype=torch.float64)  # (K,)
        self.register_buffer("centers", centers, persistent=False)
        self.inv_two_width2 = 0.5 / float(centers[1] - centers[0]) ** 2  # Å⁻²

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        centers = self.centers.to(distances.dtype)  # (K,)
        diff = distances.unsqueeze(-1) - centers  # (n, K)
        return torch.exp(-self.inv_two_width2 * diff * diff)  # (n, K)


class PhysNetBasis(RadialBasis):
    """B_k(r) = exp(−β (e^{−r} − μ_k)²), μ_k on [e^{−r_c}, 1], β = ((2/K)(1 − e^{−r_c}))^{−2}.

    Args:
        num_basis: K.
        cutoff: r_c, Å.
    """

    centers: torch.Tensor

    def __init__(self, num_basis: int, cutoff: float) -> None:
        super().__init__(num_basis, cutoff)
        start = math.exp(-cutoff)
        centers = torch.linspace(start, 1.0, num_basis, dtype=torch.float64)  # (K,)
        self.register_buffer("centers", centers, persistent=False)
        self.beta = ((2.0 / num_basis) * (1.0 - start)) ** -2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        centers = self.centers.to(distances.dtype)  # (K,)
        diff = torch.exp(-distances).unsqueeze(-1) - centers  # (n, K)
        return torch.exp(-self.beta * diff * diff)  # (n, K)


class BernsteinBasis(RadialBasis):
    """B_k(r) = C(K−1, k) x^k (1 − x)^{K−1−k}, x = e^{−γ r} (clipped to [ε, 1 − ε]).

    Args:
        num_basis: K.
        cutoff: r_c, Å (recorded; the basis itself does not depend on it).
        gamma: γ, Å⁻¹.
        eps: ε of the clipping of x (keeps the logarithms finite at r → 0 and r → ∞).
    """

    log_binomial: torch.Tensor
    powers: torch.Tensor

    def __init__(
        self, num_basis: int, cutoff: float, gamma: float = 0.9448630629184640, eps: float = 1e-6
    ) -> None:
        super().__init__(num_basis, cutoff)
        n = num_basis - 1
        log_binomial = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                        for k in range(num_basis)]
        self.register_buffer(
            "log_binomial", torch.tensor(log_binomial, dtype=torch.float64), persistent=False
        )  # (K,)
        self.register_buffer(
            "powers", torch.arange(num_basis, dtype=torch.float64), persistent=False
        )  # (K,)
        self.gamma = float(gamma)
        self.eps = float(eps)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        dtype = distances.dtype
        k = self.powers.to(dtype)  # (K,)
        x = torch.exp(-self.gamma * distances).clamp(self.eps, 1.0 - self.eps)  # (n,)
        log_x = torch.log(x).unsqueeze(-1)  # (n, 1)
        log_1mx = torch.log1p(-x).unsqueeze(-1)  # (n, 1)
        n = float(self.num_basis - 1)
        log_b = self.log_binomial.to(dtype) + k * log_x + (n - k) * log_1mx  # (n, K)
        return torch.exp(log_b)  # (n, K)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"


#: Radial bases by the name used in configs.
RADIAL_BASES: dict[str, type[RadialBasis]] = {
    "gaussian": GaussianBasis,
    "physnet": PhysNetBasis,
    "bernstein": BernsteinBasis,
}
