"""Building blocks of So3krates: filter networks, Euclidean attention, exchange, energy head.

Notation (Frank et al., Nat. Commun. 15, 6539 (2024)): invariant features x_i ∈ R^F, Euclidean
variables χ_i = (χ_i^(l))_{l ∈ 𝓛}, χ_i^(l) ∈ R^{2l+1}, stored concatenated, shape (n_atoms, m_tot).
Edges are handled as *pairs*: pair p joins atoms a_p and b_p with r⃗_p = r⃗_b − r⃗_a. Everything a
filter network sees (|r⃗_p|, ‖χ_b^(l) − χ_a^(l)‖²) is symmetric under a ↔ b, so each filter is
evaluated once per pair and used for both messages a ← b and b ← a; the spherical harmonics of the
reversed direction are (−1)^l Y_l(r̂_p). A list of pairs evaluated in one direction only is the
plain edge list (see :class:`PairGeometry`).

Weight layout of the per-head projections: ``(heads, d_in, d_out)`` with q_i^h = x_i^h W^h.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional

from ase_mlpot.models.so3krates.aggregation import AttentionLayout, aggregate_attention
from ase_mlpot.models.so3krates.config import So3kratesConfig
from ase_mlpot.nn.spherical import degree_index

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "EnergyHead",
    "EuclideanAttention",
    "ExchangeBlock",
    "FilterNetworks",
    "PairGeometry",
    "ResidualMLP",
    "So3kratesLayer",
]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


#: Activation functions by config name.
ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": functional.silu,
    "identity": _identity,
    "tanh": torch.tanh,
    "gelu": functional.gelu,
}


def _lecun_normal_(weight: torch.Tensor, generator: torch.Generator | None) -> None:
    """N(0, 1/fan_in) in place (flax's default ``lecun_normal`` without truncation)."""
    fan_in = weight.shape[-2] if weight.dim() == 3 else weight.shape[-1]
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
                     * fan_in**-0.5)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PairGeometry:
    """Per-structure geometry shared by every layer and committee member.

    Messages run along *edges*: with both directions, edge e < n_pairs is the message a_p ← b_p
    of pair p = e and edge n_pairs + p the reverse b_p ← a_p; otherwise edges are the pairs.

    Attributes:
        first: a_p, ``(n_pairs,)`` int64.
        second: b_p, ``(n_pairs,)`` int64.
        num_directions: D = 2 if each pair carries both messages, else 1.
        receivers: Receiver of each edge, ``(n_edges,)`` int64 (n_edges = D · n_pairs).
        senders: Sender of each edge, ``(n_edges,)`` int64.
        cutoff: φ(r_p), ``(n_pairs,)``.
        head_cutoffs: φ(r_p)/c_inv repeated for the H invariant heads, then φ(r_p)/c_ev for the
            |𝓛| Euclidean heads, ``(n_pairs, H + n_degrees)``.
        harmonics: Y(r̂) along each edge (receiver → sender), ``(n_edges, m_tot)``; the reverse
            of pair p has Y_l(−r̂_p) = (−1)^l Y_l(r̂_p).
        rbf: Radial basis, ``(n_pairs, K)``.
        degree_index: Degree slot of each χ component, ``(m_tot,)`` int64.
        norm_matrix: ``(m_tot, n_degrees)``, entry 1/√(2l+1) where the component has degree l, so
            that (v ⊙ v) @ norm_matrix = (‖v^(l)‖²/√(2l+1))_l.
        n_atoms: Number of atoms.
    """

    first: torch.Tensor
    second: torch.Tensor
    num_directions: int
    receivers: torch.Tensor
    senders: torch.Tensor
    cutoff: torch.Tensor
    head_cutoffs: torch.Tensor
    harmonics: torch.Tensor
    rbf: torch.Tensor
    degree_index: torch.Tensor
    norm_matrix: torch.Tensor
    n_atoms: int


class FilterNetworks(torch.nn.Module):
    """The two filter networks of a layer (invariant and Euclidean branch), Eq. 20.

    For branch b ∈ {inv, ev}: w_p^b = MLP_r^b(rbf_p) + MLP_s^b(d_p) with
    MLP_r: K → F (σ) → F, MLP_s: |𝓛| → F/4 (σ) → F and the SPHC distance invariants
    d_p^(l) = ‖χ_b^(l) − χ_a^(l)‖² / √(2l+1). The first layers of both branches are stored
    stacked (rows [inv; ev]) and evaluated as one product. (Fusing the radial first layers of
    all T layers into one product is no faster on a molecule and slower on a large box, where
    the ``(n_pairs, T·2F)`` result is too large for the allocator to recycle.)

    Args:
        config: The architecture.
    """

    def __init__(self, config: So3kratesConfig) -> None:
        super().__init__()
        f, k, n_deg = config.num_features, config.num_radial_basis, len(config.degrees)
        self.num_features = f
        self.activation = ACTIVATION_FUNCTIONS[config.activation]
        self.radial_hidden = torch.nn.Linear(k, 2 * f)  # rows: [inv; ev]
        self.radial_out_inv = torch.nn.Linear(f, f)
        self.radial_out_ev = torch.nn.Linear(f, f)
        self.sphc_hidden = torch.nn.Linear(n_deg, 2 * (f // 4))  # rows: [inv; ev]
        self.sphc_out_inv = torch.nn.Linear(f // 4, f)
        self.sphc_out_ev = torch.nn.Linear(f // 4, f)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights N(0, 1/fan_in), biases zero."""
        for layer in (self.radial_hidden, self.radial_out_inv, self.radial_out_ev,
                      self.sphc_hidden, self.sphc_out_inv, self.sphc_out_ev):
            _lecun_normal_(layer.weight, generator)
            torch.nn.init.zeros_(layer.bias)

    def forward(self, rbf: torch.Tensor, sphc_invariants: torch.Tensor) -> torch.Tensor:
        """Filters of both branches.

        Args:
            rbf: Radial basis, ``(n_pairs, K)``.
            sphc_invariants: d_p, ``(n_pairs, |𝓛|)``.

        Returns:
            ``[w_inv, w_ev]``, ``(n_pairs, 2F)``.
        """
        radial_hidden = self.activation(self.radial_hidden(rbf))  # (n_pairs, 2F)
        # torch.split, not slicing: a slice's backward zero-fills the whole input each time.
        radial_inv, radial_ev = radial_hidden.split(self.num_features, dim=1)  # (n_pairs, F) ×2
        sphc_hidden = self.activation(self.sphc_hidden(sphc_invariants))  # (n_pairs, F/2)
        sphc_inv, sphc_ev = sphc_hidden.split(self.num_features // 4, dim=1)  # (n_pairs, F/4) ×2
        filters = []
        for radial_part, sphc_part, radial_out, sphc_out in (
            (radial_inv, sphc_inv, self.radial_out_inv, self.sphc_out_inv),
            (radial_ev, sphc_ev, self.radial_out_ev, self.sphc_out_ev),
        ):  # both biases added to the (F,) row once, not to the (n_pairs, F) output
            radial = torch.addmm(radial_out.bias + sphc_out.bias, radial_part,
                                 radial_out.weight.t())  # (n_pairs, F)
            filters.append(torch.addmm(radial, sphc_part, sphc_out.weight.t()))  # (n_pairs, F)
        return torch.cat(filters, dim=1)  # (n_pairs, 2F)


class EuclideanAttention(torch.nn.Module):
    """Invariant and Euclidean attention without softmax (Eq. 15, 21, 26 in the paper's code).

    With H invariant heads of size d = F/H and |𝓛| Euclidean heads of size d' = F/|𝓛| (block-
    diagonal query/key/value matrices), for the message i ← j:

        α_ij^h = ⟨q_i^h ⊙ w_ij^h, k_j^h⟩ / c_inv,   Δx_i = concat_h Σ_j φ(r_ij) α_ij^h v_j^h,
        β_ij^(l) = ⟨q'_i^(l) ⊙ w'_ij^(l), k'_j^(l)⟩ / c_ev,
        Δχ_i^(l) = Σ_j φ(r_ij) β_ij^(l) Y_l(r̂_ij),

    with q = σ(x W_q), k = σ(x W_k), v = x W_v and σ the q/k non-linearity. Receiver i gives the
    query, sender j the key and value.

    Evaluation: the five block-diagonal projections are gathered from the head matrices into
    one ``(F, 5F)`` matrix by one ``index_select``; everything per edge runs in
    :func:`~ase_mlpot.models.so3krates.aggregation.aggregate_attention`, chunk by chunk: all
    H + |𝓛| head sums ⟨·,·⟩ are one reshaped sum over g = gcd(d, d') consecutive features
    (followed, only if d ≠ d', by a product with a constant 0/1 matrix 2F/g → H + |𝓛|; a narrow
    product is several times slower than the sum on the CPU), and the cutoff weights φ/c
    multiply the H + |𝓛| coefficients rather than the 2F filters.

    Args:
        config: The architecture.
    """

    projection_index: torch.Tensor
    head_sum: torch.Tensor | None
    degree_index: torch.Tensor
    degree_one_hot: torch.Tensor
    #: Atom pairs per chunk of the edge computations on the CPU (sized to stay in cache); on a
    #: GPU all pairs go in one chunk.
    cpu_chunk_pairs: int | None = 1024

    def __init__(self, config: So3kratesConfig) -> None:
        super().__init__()
        f, h, n_deg = config.num_features, config.num_heads, len(config.degrees)
        self.num_features, self.num_heads, self.num_degrees = f, h, n_deg
        self.head_dim, self.ev_head_dim = f // h, f // n_deg
        self.qk_non_linearity = ACTIVATION_FUNCTIONS[config.qk_non_linearity]
        self.query_inv = torch.nn.Parameter(torch.empty(h, f // h, f // h))
        self.key_inv = torch.nn.Parameter(torch.empty(h, f // h, f // h))
        self.value_inv = torch.nn.Parameter(torch.empty(h, f // h, f // h))
        self.query_ev = torch.nn.Parameter(torch.empty(n_deg, f // n_deg, f // n_deg))
        self.key_ev = torch.nn.Parameter(torch.empty(n_deg, f // n_deg, f // n_deg))
        self.register_buffer(
            "projection_index", self._projection_index(), persistent=False
        )  # (F·5F,)
        # head_sum[c, g] = 1 if the c-th group of sum_width features of [q ⊙ k ⊙ w]_inv,ev
        # belongs to head g (H invariant, then |L| Euclidean heads); None if that is the identity.
        self.sum_width = math.gcd(self.head_dim, self.ev_head_dim)
        groups = torch.arange(f // self.sum_width) * self.sum_width  # (F/g,) first features
        head_of_group = torch.cat([groups // self.head_dim,
                                   h + groups // self.ev_head_dim])  # (2F/g,)
        self.register_buffer(
            "head_sum",
            functional.one_hot(head_of_group, h + n_deg).to(torch.float64)
            if self.head_dim != self.ev_head_dim else None,
            persistent=False,
        )  # (2F/g, H + |L|)
        self.register_buffer("degree_index", degree_index(config.degrees), persistent=False)
        self.register_buffer(
            "degree_one_hot",
            functional.one_hot(self.degree_index, n_deg).to(torch.float64),
            persistent=False,
        )  # (m_tot, |L|)
        self.reset_parameters()

    def layout(self, dtype: torch.dtype, device: torch.device) -> AttentionLayout:
        """Head layout and chunk size of the edge computations, constants in ``dtype``."""
        return AttentionLayout(
            num_heads=self.num_heads, head_dim=self.head_dim, sum_width=self.sum_width,
            head_sum=None if self.head_sum is None else self.head_sum.to(dtype),
            degree_one_hot=self.degree_one_hot.to(dtype), degree_index=self.degree_index,
            chunk_pairs=None if device.type == "cuda" else self.cpu_chunk_pairs,
        )

    def _head_matrices(self) -> tuple[torch.Tensor, ...]:
        """The head matrices in the column order [q | q' | k | k' | v] of the projection."""
        return (self.query_inv, self.query_ev, self.key_inv, self.key_ev, self.value_inv)

    def _projection_index(self) -> torch.Tensor:
        """Position of each entry of the ``(F, 5F)`` projection (row-major, flattened) in the
        concatenated flattened head matrices; off-diagonal-block entries point to a trailing
        zero."""
        f = self.num_features
        index = torch.full((f, 5 * f), -1, dtype=torch.int64)
        offset = 0
        for column, weight in enumerate(self._head_matrices()):
            heads, size = weight.shape[0], weight.shape[1]
            block = index[:, column * f:(column + 1) * f].view(heads, size, heads, size)
            for head in range(heads):
                block[head, :, head, :] = offset + torch.arange(size * size).view(size, size)
                offset += size * size
        index.masked_fill_(index < 0, offset)
        return index.view(-1)  # (F·5F,)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every head matrix N(0, 1/d_in)."""
        for weight in self._head_matrices():
            _lecun_normal_(weight, generator)

    def projection_matrix(self) -> torch.Tensor:
        """All node projections as one dense ``(F, 5F)`` matrix [q | q' | k | k' | v]."""
        weights = self._head_matrices()
        flat = torch.cat([weight.reshape(-1) for weight in weights]
                         + [weights[0].new_zeros(1)])  # (Σ heads·d² + 1,)
        # index_select, not advanced indexing: several times faster on the CPU, forward and back.
        f = self.num_features
        return flat.index_select(0, self.projection_index).view(f, 5 * f)  # (F, 5F)

    def forward(
        self, x: torch.Tensor, filters: torch.Tensor, geometry: PairGeometry
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention updates.

        Args:
            x: Invariant features, ``(n_atoms, F)``.
            filters: ``[w_inv, w_ev]``, ``(n_pairs, 2F)``.
            geometry: Pairs, edges, cutoffs, harmonics.

        Returns:
            ``Δx (n_atoms, F)``, ``Δχ (n_atoms, m_tot)``.
        """
        f, two_f = self.num_features, 2 * self.num_features
        projected = x @ self.projection_matrix()  # (n_atoms, 5F)
        # torch.split, not slicing: a slice's backward zero-fills the whole input each time.
        query_key, value = projected.split([2 * two_f, f], dim=1)  # (n_atoms, 4F), (n_atoms, F)
        if self.qk_non_linearity is not _identity:
            query_key = self.qk_non_linearity(query_key)  # (n_atoms, 4F)
        query, key = query_key.split(two_f, dim=1)  # (n_atoms, 2F) ×2
        return aggregate_attention(query, key, value, filters, geometry.head_cutoffs,
                                   geometry.harmonics, geometry.receivers, geometry.senders,
                                   self.layout(x.dtype, x.device))


class ExchangeBlock(torch.nn.Module):
    """Feature exchange between x and χ (Eq. 24–27).

    s_i^(l) = ‖χ_i^(l)‖²/√(2l+1); [a_i, b_i] = W [x_i, s_i] + c (one dense layer of width
    F + |𝓛|); returns Δx_i = a_i and Δχ_i^(l) = b_i^(l) χ_i^(l).

    Args:
        config: The architecture.
    """

    def __init__(self, config: So3kratesConfig) -> None:
        super().__init__()
        width = config.num_features + len(config.degrees)
        self.num_features = config.num_features
        self.dense = torch.nn.Linear(width, width, bias=config.exchange_bias)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        _lecun_normal_(self.dense.weight, generator)
        if self.dense.bias is not None:
            torch.nn.init.zeros_(self.dense.bias)

    def forward(
        self, x: torch.Tensor, chi: torch.Tensor, geometry: PairGeometry
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (n_atoms, F)``, ``χ (n_atoms, m_tot)`` → ``Δx (n_atoms, F)``, ``Δχ (n_atoms, m)``."""
        invariants = (chi * chi) @ geometry.norm_matrix  # (n_atoms, |L|)
        mixed = self.dense(torch.cat([x, invariants], dim=1))  # (n_atoms, F + |L|)
        delta_x, per_degree = mixed.split([self.num_features, invariants.shape[1]], dim=1)
        scale = per_degree.index_select(1, geometry.degree_index)  # (n_atoms, m_tot)
        return delta_x, scale * chi


class ResidualMLP(torch.nn.Module):
    """Δx = W₂ σ(W₁ σ(x) + b₁) + b₂ (the residual MLPs of SO3LR-style layers)."""

    def __init__(self, num_features: int, activation: str) -> None:
        super().__init__()
        self.activation = ACTIVATION_FUNCTIONS[activation]
        self.first = torch.nn.Linear(num_features, num_features)
        self.second = torch.nn.Linear(num_features, num_features)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for layer in (self.first, self.second):
            _lecun_normal_(layer.weight, generator)
            torch.nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.first(self.activation(x))  # (n_atoms, F)
        return self.second(self.activation(hidden))  # (n_atoms, F)


class So3kratesLayer(torch.nn.Module):
    """One Euclidean-transformer layer: attention, [LN₁, MLP₁], exchange, [MLP₂, LN₂].

    x ← x + Δx_att, χ ← χ + Δχ_att; optional x ← LN₁(x), x ← x + MLP₁(x);
    x ← x + Δx_ex, χ ← χ + Δχ_ex; optional x ← x + MLP₂(x), x ← LN₂(x).

    Args:
        config: The architecture.
    """

    def __init__(self, config: So3kratesConfig) -> None:
        super().__init__()
        f = config.num_features
        self.filters = FilterNetworks(config)
        self.attention = EuclideanAttention(config)
        self.exchange = ExchangeBlock(config)
        self.layer_norm_1 = (torch.nn.LayerNorm(f, eps=config.layer_norm_eps)
                             if config.layer_norm_1 else None)
        self.mlp_1 = ResidualMLP(f, config.activation) if config.residual_mlp_1 else None
        self.mlp_2 = ResidualMLP(f, config.activation) if config.residual_mlp_2 else None
        self.layer_norm_2 = (torch.nn.LayerNorm(f, eps=config.layer_norm_eps)
                             if config.layer_norm_2 else None)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self.filters.reset_parameters(generator)
        self.attention.reset_parameters(generator)
        self.exchange.reset_parameters(generator)
        for mlp in (self.mlp_1, self.mlp_2):
            if mlp is not None:
                mlp.reset_parameters(generator)
        for norm in (self.layer_norm_1, self.layer_norm_2):
            if norm is not None:
                norm.reset_parameters()

    def forward(
        self, x: torch.Tensor, chi: torch.Tensor, geometry: PairGeometry
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer.

        Args:
            x: ``(n_atoms, F)``.
            chi: ``(n_atoms, m_tot)``.
            geometry: Pairs, radial basis, cutoffs, harmonics.

        Returns:
            Updated ``x (n_atoms, F)`` and ``χ (n_atoms, m_tot)``.
        """
        difference = (chi.index_select(0, geometry.second)
                      - chi.index_select(0, geometry.first))  # (n_pairs, m_tot)
        sphc_invariants = (difference * difference) @ geometry.norm_matrix  # (n_pairs, |L|)
        filters = self.filters(geometry.rbf, sphc_invariants)  # (n_pairs, 2F)
        delta_x, delta_chi = self.attention(x, filters, geometry)
        x = x + delta_x  # (n_atoms, F)
        chi = chi + delta_chi  # (n_atoms, m_tot)
        if self.layer_norm_1 is not None:
            x = self.layer_norm_1(x)
        if self.mlp_1 is not None:
            x = x + self.mlp_1(x)
        delta_x, delta_chi = self.exchange(x, chi, geometry)
        x = x + delta_x  # (n_atoms, F)
        chi = chi + delta_chi  # (n_atoms, m_tot)
        if self.mlp_2 is not None:
            x = x + self.mlp_2(x)
        if self.layer_norm_2 is not None:
            x = self.layer_norm_2(x)
        return x, chi


class EnergyHead(torch.nn.Module):
    """Atomic energies E_i = s_{Z_i} (W₂ σ(W₁ x_i + b₁) + b₂) + e'_{Z_i}, model energy unit.

    s_Z (initially 1) and e'_Z (initially 0) are per-element parameters, trainable on request;
    the float64 reference energies of the model are added later, by the output head.

    Args:
        config: The architecture.
    """

    def __init__(self, config: So3kratesConfig) -> None:
        super().__init__()
        n_elements = len(config.elements)
        self.activation = ACTIVATION_FUNCTIONS[config.energy_activation]
        self.zero_init = config.energy_zero_init
        self.hidden = torch.nn.Linear(config.num_features, config.energy_regression_dim)
        self.out = torch.nn.Linear(config.energy_regression_dim, 1)
        self.scale = torch.nn.Parameter(torch.ones(n_elements),
                                        requires_grad=config.learn_atomic_scales)
        self.shift = torch.nn.Parameter(torch.zeros(n_elements),
                                        requires_grad=config.learn_atomic_shifts)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        _lecun_normal_(self.hidden.weight, generator)
        torch.nn.init.zeros_(self.hidden.bias)
        if self.zero_init:
            torch.nn.init.zeros_(self.out.weight)
        else:
            _lecun_normal_(self.out.weight, generator)
        torch.nn.init.zeros_(self.out.bias)
        with torch.no_grad():
            self.scale.fill_(1.0)
            self.shift.zero_()

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """``x (n_atoms, F)``, ``species (n_atoms,)`` → ``E_i (n_atoms,)``."""
        energies = self.out(self.activation(self.hidden(x))).squeeze(1)  # (n_atoms,)
        return energies * self.scale[species] + self.shift[species]  # (n_atoms,)
