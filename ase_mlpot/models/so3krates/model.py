"""So3krates: the Euclidean transformer (Frank, Unke, Müller, Chmiela, Nat. Commun. 2024).

Physics. Each atom carries invariant features x_i ∈ R^F and Euclidean variables χ_i (one
spherical-harmonic channel per degree l ∈ 𝓛). Starting from x_i⁰ = W_Z onehot(Z_i), χ_i⁰ = 0,
T layers of non-softmax attention, whose filters see |r_ij| (radial basis) and the per-degree
invariants ‖χ_j^(l) − χ_i^(l)‖²/√(2l+1), update x (from values v_j) and χ (from Y_l(r̂_ij)); every
message is multiplied by the cutoff φ(r_ij), so the energy is smooth at r_c. An exchange block
mixes x with ‖χ_i^(l)‖². The atomic energy is E_i = s_Z MLP(x_i^T) + e'_Z (model energy unit,
eV by default); E = Σ_i E_i + Σ_i e_{Z_i} with float64 reference energies e_Z, forces
F = −∂E/∂r and stress by the shared output head (:mod:`ase_mlpot.models.outputs`). Only
even functions of the χ^(l) are read, so E is invariant under rotations *and* reflections.

Committee: with ``ensemble_size`` M > 1 the model holds M independent networks that share the
geometry (pairs, radial basis, spherical harmonics, cutoff) and returns ``(M, n_atoms)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch

from ase_mlpot import keys
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.so3krates.config import So3kratesConfig
from ase_mlpot.models.so3krates.layers import EnergyHead, PairGeometry, So3kratesLayer
from ase_mlpot.nn.cutoffs import CUTOFF_FUNCTIONS
from ase_mlpot.nn.radial import RADIAL_BASES, BernsteinBasis, RadialBasis
from ase_mlpot.nn.spherical import SphericalHarmonics, degree_index

__all__ = ["So3krates", "So3kratesNetwork", "edge_pairs"]


def edge_pairs(
    edge_index: torch.Tensor, cell_shift: torch.Tensor, n_atoms: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Match every edge (i, j, S) of a full neighbour list with its reverse (j, i, −S).

    Args:
        edge_index: ``(2, n_edges)`` int64, [receiver i; sender j].
        cell_shift: ``(n_edges, 3)`` int64 lattice shifts of j.
        n_atoms: Number of atoms.

    Returns:
        ``forward (n_pairs,)``: positions of the canonical edges (i < j, or i = j with S
        lexicographically positive), one per pair, and ``partner (n_edges,)``: the pair of each
        edge; or None if some edge has no reverse (not a full list), or the list cannot be
        encoded in int64.
    """
    i, j = edge_index[0], edge_index[1]  # (n_edges,)
    s0, s1, s2 = cell_shift.unbind(1)  # (n_edges,) each
    positive_shift = (s0 > 0) | ((s0 == 0) & ((s1 > 0) | ((s1 == 0) & (s2 > 0))))
    is_forward = (i < j) | ((i == j) & positive_shift)  # (n_edges,)
    forward = torch.nonzero(is_forward).squeeze(1)  # (n_pairs,)
    if 2 * forward.numel() != i.numel():
        return None
    span = int(cell_shift.abs().max()) if cell_shift.numel() else 0
    base = 2 * span + 1
    if float(n_atoms) ** 2 * base**3 >= 2.0**62:
        return None
    sign = torch.where(is_forward, 1, -1).unsqueeze(1)  # (n_edges, 1)
    low = torch.where(is_forward, i, j)  # (n_edges,)
    high = torch.where(is_forward, j, i)  # (n_edges,)
    shift = cell_shift * sign + span  # (n_edges, 3), canonical orientation, >= 0
    code = ((low * n_atoms + high) * base + shift[:, 0]) * base + shift[:, 1]
    code = code * base + shift[:, 2]  # (n_edges,)
    sorted_codes, order = torch.sort(code[forward])  # (n_pairs,)
    position = torch.searchsorted(sorted_codes, code).clamp_(max=max(forward.numel() - 1, 0))
    if forward.numel() and not bool(torch.equal(sorted_codes[position], code)):
        return None
    return forward, order[position]


class So3kratesNetwork(torch.nn.Module):
    """One So3krates network (a committee member): embedding, T layers, energy head.

    Args:
        config: The architecture.
    """

    def __init__(self, config: So3kratesConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = torch.nn.Embedding(len(config.elements), config.num_features)
        self.layers = torch.nn.ModuleList(So3kratesLayer(config) for _ in range(config.num_layers))
        self.head = EnergyHead(config)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """JAX-style initialisation: every dense weight N(0, 1/fan_in), biases zero."""
        with torch.no_grad():
            self.embedding.weight.copy_(
                torch.randn(self.embedding.weight.shape, generator=generator,
                            dtype=self.embedding.weight.dtype)
                * self.config.num_features**-0.5
            )
        for layer in self.layers:
            layer.reset_parameters(generator)
        self.head.reset_parameters(generator)

    def forward(
        self, species: torch.Tensor, chi: torch.Tensor, geometry: PairGeometry
    ) -> torch.Tensor:
        """Atomic energies ``(n_atoms,)`` from ``species (n_atoms,)`` and χ⁰ ``(n_atoms, m)``."""
        x = self.embedding(species)  # (n_atoms, F)
        for layer in self.layers:
            x, chi = layer(x, chi, geometry)
        return self.head(x, species)  # (n_atoms,)


class So3krates(PotentialModel):
    """So3krates potential (and committee), native units Å and ``config.energy_unit``.

    Args:
        config: Architecture hyperparameters.
        reference_energies: Per-element reference energies e_Z (float64, model energy unit).
    """

    architecture: ClassVar[str] = "so3krates"
    #: Evaluate each filter once per atom pair (exact; off only to test the plain edge path).
    use_pair_symmetry: bool = True

    def __init__(
        self, config: So3kratesConfig, *, reference_energies: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(
            config, config.elements, reference_energies=reference_energies,
            energy_unit=config.energy_unit, length_unit="Angstrom",
        )
        self.harmonics = SphericalHarmonics(config.degrees)
        radial_class = RADIAL_BASES[config.radial_basis]
        self.radial_basis: RadialBasis = (
            BernsteinBasis(config.num_radial_basis, config.cutoff, gamma=config.bernstein_gamma)
            if radial_class is BernsteinBasis
            else radial_class(config.num_radial_basis, config.cutoff)
        )
        cutoff_function = CUTOFF_FUNCTIONS[config.cutoff_function]
        if config.cutoff_function == "polynomial":
            cutoff_function = functools.partial(cutoff_function, p=config.polynomial_cutoff_p)
        self.cutoff_function = cutoff_function
        self.members = torch.nn.ModuleList(
            So3kratesNetwork(config) for _ in range(config.ensemble_size)
        )
        self.register_buffer("degree_index", degree_index(config.degrees), persistent=False)
        self.register_buffer(
            "parity",
            torch.tensor([(-1.0) ** degree for degree in config.degrees], dtype=torch.float64),
            persistent=False,
        )  # (|L|,)
        norm = torch.zeros(config.num_orders, len(config.degrees), dtype=torch.float64)
        norm[torch.arange(config.num_orders), self.degree_index] = torch.tensor(
            [1.0 / math.sqrt(2 * config.degrees[int(n)] + 1) for n in self.degree_index],
            dtype=torch.float64,
        )
        self.register_buffer("norm_matrix", norm, persistent=False)  # (m_tot, |L|)
        self.attention_denominators = config.attention_denominators()
        self.reset_parameters()

    @property
    def cutoff(self) -> float:
        return float(self.config.cutoff)

    @property
    def ensemble_size(self) -> int:
        return int(self.config.ensemble_size)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw all weights (JAX-style N(0, 1/fan_in), zero biases; see the members)."""
        for member in self.members:
            member.reset_parameters(generator)

    def zero_output_layer(self) -> None:
        with torch.no_grad():
            for member in self.members:
                member.head.out.weight.zero_()
                member.head.out.bias.zero_()
                member.head.shift.zero_()

    def transfer_learning_frozen(self) -> tuple[str, ...]:
        """Embedding and every Euclidean-transformer layer but the last frozen; the last layer
        and the energy head are fine-tuned (the head's per-element scale and shift only when the
        config makes them learnable)."""
        frozen = ["members.*.embedding.*"]
        frozen += [f"members.*.layers.{t}.*" for t in range(self.config.num_layers - 1)]
        return tuple(frozen)

    def _member_state(self, member: int) -> dict[str, torch.Tensor]:
        prefix = f"members.{member}."
        return {"members.0." + k[len(prefix):]: v for k, v in self.state_dict().items()
                if k.startswith(prefix)}

    @classmethod
    def _stacked_state(cls, states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {f"members.{m}." + k[len("members.0."):]: v
                for m, state in enumerate(states) for k, v in state.items()}

    def geometry(self, batch: dict[str, torch.Tensor]) -> PairGeometry:
        """Pairs, radial basis, harmonics and cutoff weights shared by all layers and members."""
        edge_index = batch[keys.EDGE_INDEX]  # (2, n_edges)
        vectors = batch[keys.EDGE_VECTORS]  # (n_edges, 3)
        n_atoms = batch[keys.SPECIES].shape[0]
        dtype = vectors.dtype
        pairs = (edge_pairs(edge_index, batch[keys.CELL_SHIFT], n_atoms)
                 if self.use_pair_symmetry else None)
        if pairs is not None:
            forward, _ = pairs
            first, second = edge_index[0, forward], edge_index[1, forward]  # (n_pairs,)
            vectors = vectors.index_select(0, forward)  # (n_pairs, 3)
        else:
            first, second = edge_index[0], edge_index[1]  # (n_edges,)
        distances = torch.linalg.vector_norm(vectors, dim=1)  # (n_pairs,)
        phi = self.cutoff_function(distances, self.config.cutoff)  # (n_pairs,)
        c_inv, c_ev = self.attention_denominators
        n_pairs, n_heads, n_degrees = phi.shape[0], self.config.num_heads, len(self.config.degrees)
        head_cutoffs = torch.cat([(phi / c_inv).unsqueeze(1).expand(n_pairs, n_heads),
                                  (phi / c_ev).unsqueeze(1).expand(n_pairs, n_degrees)],
                                 dim=1)  # (n_pairs, H + |L|)
        harmonics = self.harmonics(vectors)  # (n_pairs, m_tot)
        if pairs is not None:  # reverse messages: Y_l(−r̂) = (−1)^l Y_l(r̂)
            signs = self.parity.to(dtype)[self.degree_index]  # (m_tot,)
            harmonics = torch.cat([harmonics, harmonics * signs])  # (n_edges, m_tot)
            receivers, senders = torch.cat([first, second]), torch.cat([second, first])
        else:
            receivers, senders = first, second  # (n_edges,)
        return PairGeometry(
            first=first, second=second, num_directions=1 if pairs is None else 2,
            receivers=receivers, senders=senders, cutoff=phi, head_cutoffs=head_cutoffs,
            harmonics=harmonics, rbf=self.radial_basis(distances), degree_index=self.degree_index,
            norm_matrix=self.norm_matrix.to(dtype), n_atoms=n_atoms,
        )

    def initial_chi(self, geometry: PairGeometry, dtype: torch.dtype) -> torch.Tensor:
        """χ⁰: zeros, or Eq. 11 χ_i⁰ = (1/n̄) Σ_j φ(r_ij) Y(r̂_ij), ``(n_atoms, m_tot)``."""
        chi = torch.zeros((geometry.n_atoms, self.config.num_orders), dtype=dtype,
                          device=geometry.rbf.device)  # (n_atoms, m_tot)
        if self.config.chi_init == "zeros":
            return chi
        phi = geometry.cutoff.unsqueeze(1) / (self.config.avg_num_neighbors or 1.0)  # (n_pairs, 1)
        n_pairs, m_tot = phi.shape[0], chi.shape[1]
        n_edges = geometry.receivers.shape[0]
        messages = geometry.harmonics.view(geometry.num_directions, n_pairs, m_tot) * phi
        # messages: (D, n_pairs, m_tot)
        return chi.index_add(0, geometry.receivers, messages.view(n_edges, m_tot))  # (n_atoms, m)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Atomic energies, ``(n_atoms,)`` (or ``(M, n_atoms)`` for a committee), model units."""
        species = batch[keys.SPECIES]  # (n_atoms,)
        geometry = self.geometry(batch)
        chi = self.initial_chi(geometry, batch[keys.EDGE_VECTORS].dtype)  # (n_atoms, m_tot)
        energies = [member(species, chi, geometry) for member in self.members]  # M × (n_atoms,)
        if self.ensemble_size == 1:
            return energies[0]  # (n_atoms,)
        return torch.stack(energies)  # (M, n_atoms)

