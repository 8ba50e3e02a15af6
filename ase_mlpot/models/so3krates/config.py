"""Typed configuration of the So3krates family (Frank, Unke, Müller, Chmiela, Nat. Commun. 2024).

Every choice on which the public implementations differ is a field (see ``docs/so3krates.md``
for a table of the settings of the JAX ``mlff`` branches, so3krates-torch and SO3LR).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "ATTENTION_NORMALIZATIONS",
    "CHI_INITIALIZATIONS",
    "CUTOFF_FUNCTION_NAMES",
    "RADIAL_BASIS_NAMES",
    "So3kratesConfig",
]

#: Names accepted for activation functions (filters, residual MLPs, q/k, energy head).
ACTIVATIONS = ("silu", "identity", "tanh", "gelu")
#: Denominators c of the attention coefficients.
ATTENTION_NORMALIZATIONS = ("sqrt_head_dim", "avg_num_neighbors", "identity")
#: Initial Euclidean variables χ⁰.
CHI_INITIALIZATIONS = ("zeros", "neighbors")
#: Cutoff functions φ(r) (see :mod:`ase_mlpot.nn.cutoffs`).
CUTOFF_FUNCTION_NAMES = ("cosine", "physnet", "exponential", "polynomial")
#: Radial bases (see :mod:`ase_mlpot.nn.radial`).
RADIAL_BASIS_NAMES = ("physnet", "bernstein", "gaussian")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class So3kratesConfig:
    """A So3krates model (one network, or a committee of ``ensemble_size`` independent ones).

    Defaults follow the paper-era JAX code (``mlff`` ``train_so3krates``: 3 layers, 4 heads,
    cosine cutoff at 5 Å, 32 PhysNet radial functions, √(head dim) attention normalisation,
    χ⁰ = 0, no residual MLPs or layer norms) with 128 features, degrees {1, 2, 3, 4} and a
    128-wide SiLU energy head.

    Attributes:
        elements: Chemical symbols in species order.
        num_features: F, width of the invariant features x_i; divisible by 4, by ``num_heads``
            and by ``len(degrees)``.
        num_heads: H, heads of the invariant attention (head dim F/H).
        num_layers: T, Euclidean-transformer layers (no weight sharing).
        degrees: 𝓛, degrees l ≥ 1 of the Euclidean variables χ (one channel per degree).
        cutoff: r_c, Å.
        radial_basis: ``"physnet"``, ``"bernstein"`` or ``"gaussian"``.
        num_radial_basis: K, number of radial basis functions.
        bernstein_gamma: γ of the Bernstein basis x = e^{−γ r}, Å⁻¹.
        cutoff_function: ``"cosine"``, ``"physnet"``, ``"exponential"`` or ``"polynomial"``.
        polynomial_cutoff_p: p of the ``"polynomial"`` cutoff.
        activation: Activation of the filter networks and residual MLPs.
        attention_normalization: Denominator c of the attention coefficients:
            ``"sqrt_head_dim"`` (√(F/H) invariant, √(F/|𝓛|) Euclidean; JAX default),
            ``"avg_num_neighbors"`` (n̄ = ``avg_num_neighbors``; SO3LR, so3krates-torch) or
            ``"identity"`` (c = 1).
        avg_num_neighbors: n̄, the mean neighbour count of the training set (required by
            ``"avg_num_neighbors"`` and used by ``chi_init="neighbors"``; never recomputed).
        chi_init: ``"zeros"`` (all released code) or ``"neighbors"`` (Eq. 11:
            χ_i⁰ = (1/n̄) Σ_j φ(r_ij) Y(r̂_ij), n̄ = 1 when ``avg_num_neighbors`` is None).
        qk_non_linearity: σ in q_i = σ(W_q x_i), k_j = σ(W_k x_j).
        residual_mlp_1: x ← x + MLP(x) after the attention update.
        residual_mlp_2: x ← x + MLP(x) after the exchange update.
        layer_norm_1: LayerNorm on x after the attention update (before ``residual_mlp_1``).
        layer_norm_2: LayerNorm on x at the end of the layer (after ``residual_mlp_2``).
        layer_norm_eps: ε of the layer norms (flax default 1e-6).
        exchange_bias: Bias of the exchange-block dense layer.
        energy_regression_dim: Hidden width of the atomic-energy head.
        energy_activation: Activation of the atomic-energy head.
        energy_zero_init: Zero-initialise the last layer of the energy head (``mlff`` v1.0).
        learn_atomic_scales: Per-element scale s_Z of the atomic energies is trainable.
        learn_atomic_shifts: Per-element shift e'_Z of the atomic energies is trainable
            (in addition to the fixed float64 reference energies of the model).
        ensemble_size: Number M of independent committee members evaluated together.
        energy_unit: Native energy unit (key of :data:`ase_mlpot.units.ENERGY_UNITS_TO_EV`).
    """

    elements: tuple[str, ...] = ("H", "C", "N", "O")
    num_features: int = 128
    num_heads: int = 4
    num_layers: int = 3
    degrees: tuple[int, ...] = (1, 2, 3, 4)
    cutoff: float = 5.0
    radial_basis: str = "physnet"
    num_radial_basis: int = 32
    bernstein_gamma: float = 0.9448630629184640
    cutoff_function: str = "cosine"
    polynomial_cutoff_p: int = 5
    activation: str = "silu"
    attention_normalization: str = "sqrt_head_dim"
    avg_num_neighbors: float | None = None
    chi_init: str = "zeros"
    qk_non_linearity: str = "identity"
    residual_mlp_1: bool = False
    residual_mlp_2: bool = False
    layer_norm_1: bool = False
    layer_norm_2: bool = False
    layer_norm_eps: float = 1e-6
    exchange_bias: bool = True
    energy_regression_dim: int = 128
    energy_activation: str = "silu"
    energy_zero_init: bool = False
    learn_atomic_scales: bool = False
    learn_atomic_shifts: bool = False
    ensemble_size: int = 1
    energy_unit: str = "eV"

    def __post_init__(self) -> None:
        from ase.data import atomic_numbers

        from ase_mlpot.units import ENERGY_UNITS_TO_EV

        if not self.elements or len(set(self.elements)) != len(self.elements):
            raise ValueError(f"elements must be non-empty and distinct, got {self.elements}")
        unknown = [s for s in self.elements if s not in atomic_numbers or s == "X"]
        if unknown:
            raise ValueError(f"unknown chemical symbols {unknown}")
        if not self.degrees or min(self.degrees) < 1 or len(set(self.degrees)) != len(self.degrees):
            raise ValueError(f"degrees must be distinct integers >= 1, got {self.degrees}")
        f = self.num_features
        for divisor, what in ((4, "4"), (self.num_heads, "num_heads"),
                              (len(self.degrees), "len(degrees)")):
            if divisor < 1 or f % divisor:
                raise ValueError(f"num_features={f} must be divisible by {what} ({divisor})")
        for name, value in (("num_layers", self.num_layers),
                            ("num_radial_basis", self.num_radial_basis),
                            ("energy_regression_dim", self.energy_regression_dim),
                            ("ensemble_size", self.ensemble_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.num_radial_basis < 2:
            raise ValueError("num_radial_basis must be >= 2")
        if self.cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff}")
        _check_choice("radial_basis", self.radial_basis, RADIAL_BASIS_NAMES)
        _check_choice("cutoff_function", self.cutoff_function, CUTOFF_FUNCTION_NAMES)
        _check_choice("attention_normalization", self.attention_normalization,
                      ATTENTION_NORMALIZATIONS)
        _check_choice("chi_init", self.chi_init, CHI_INITIALIZATIONS)
        for name in ("activation", "qk_non_linearity", "energy_activation"):
            _check_choice(name, getattr(self, name), ACTIVATIONS)
        if self.attention_normalization == "avg_num_neighbors" and not self.avg_num_neighbors:
            raise ValueError("attention_normalization='avg_num_neighbors' needs avg_num_neighbors")
        if self.avg_num_neighbors is not None and self.avg_num_neighbors <= 0:
            raise ValueError("avg_num_neighbors must be positive")
        if self.polynomial_cutoff_p < 1:
            raise ValueError("polynomial_cutoff_p must be >= 1")
        if self.energy_unit not in ENERGY_UNITS_TO_EV:
            raise ValueError(f"energy_unit must be one of {sorted(ENERGY_UNITS_TO_EV)}")

    @property
    def num_orders(self) -> int:
        """m_tot = Σ_l (2l + 1), the size of χ_i (24 for 𝓛 = {1, 2, 3, 4})."""
        return sum(2 * degree + 1 for degree in self.degrees)

    def attention_denominators(self) -> tuple[float, float]:
        """(c_inv, c_ev): denominators of the invariant and the Euclidean attention."""
        if self.attention_normalization == "sqrt_head_dim":
            return (
                (self.num_features / self.num_heads) ** 0.5,
                (self.num_features / len(self.degrees)) ** 0.5,
            )
        if self.attention_normalization == "avg_num_neighbors":
            assert self.avg_num_neighbors is not None
            return float(self.avg_num_neighbors), float(self.avg_num_neighbors)
        return 1.0, 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elements"] = list(self.elements)
        data["degrees"] = list(self.degrees)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> So3kratesConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        values = dict(data)
        for key in ("elements", "degrees"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)
