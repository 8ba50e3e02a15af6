"""ANI atomic environment vectors (Smith, Isayev, Roitberg 2017; ANI-1x/ANI-1ccx definition).

For centre atom i, neighbours j, k and the cosine cutoff f_c (see :mod:`ase_mlpot.nn.cutoffs`):

Radial block of neighbour species s (one entry per shift R_s):

    G^R_{s,k}(i) = Σ_{j: Z_j = s, r_ij < R_cr} 0.25 · exp(−η_R (r_ij − R_s,k)²) · f_c(r_ij; R_cr)

Angular block of the unordered species pair p = {s_j, s_k}, over each unordered pair of
neighbours {j, k} within R_ca counted once, with θ' = acos(0.95 · cos θ_ijk):

    G^A_{p,a,z}(i) = Σ 2 · ((1 + cos(θ' − θ_z))/2)^ζ · exp(−η_A ((r_ij + r_ik)/2 − R_a)²)
                     · f_c(r_ij; R_ca) · f_c(r_ik; R_ca)

The 0.25 and 0.95 follow NeuroChem/TorchANI. cos(θ' − θ_z) is evaluated as
cos θ' cos θ_z + sin θ' sin θ_z with cos θ' = 0.95 cos θ and sin θ' = √(1 − cos²θ'), which equals
the acos form exactly and avoids the inverse trigonometric function. Layout of the vector:
radial blocks in species order, then angular pair blocks in upper-triangle order (HH, HC, HN, HO,
CC, …), each angular block ordered radial shift (outer) × angle section (inner).
"""

from __future__ import annotations

import torch

from ase_mlpot.models.ani.config import AEVConfig
from ase_mlpot.nn.constants import Float64BufferModule
from ase_mlpot.nn.cutoffs import cosine_cutoff
from ase_mlpot.nn.scatter import scatter_sum

__all__ = ["AEVComputer", "species_pair_index"]


def species_pair_index(n_species: int) -> torch.Tensor:
    """Symmetric ``(n_species, n_species)`` table of angular block indices (upper triangle)."""
    table = torch.zeros((n_species, n_species), dtype=torch.int64)
    block = 0
    for a in range(n_species):
        for b in range(a, n_species):
            table[a, b] = table[b, a] = block
            block += 1
    return table


def angular_pairs(
    centres: torch.Tensor, n_atoms: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All unordered pairs {a, b} of edges that share a centre.

    Args:
        centres: Centre atom of each edge, ``(n_edges,)``, sorted ascending.
        n_atoms: Number of atoms.

    Returns:
        ``pair_centre (n_pairs,)``, ``first (n_pairs,)``, ``second (n_pairs,)``: the centre and the
        positions (into ``centres``) of the two edges of each pair.
    """
    device = centres.device
    counts = torch.bincount(centres, minlength=n_atoms)  # (n_atoms,)
    pair_counts = counts * (counts - 1) // 2  # (n_atoms,)
    n_pairs = int(pair_counts.sum())
    if n_pairs == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return empty, empty, empty
    max_count = int(counts.max())
    # Lower-triangle order (b, a) with a < b: the pairs of the first c edges come first for any c.
    lower = torch.tril_indices(max_count, max_count, offset=-1, device=device)  # (2, P_max)
    pair_centre = torch.repeat_interleave(
        torch.arange(n_atoms, device=device), pair_counts, output_size=n_pairs
    )  # (n_pairs,)
    pair_start = torch.cumsum(pair_counts, 0) - pair_counts  # (n_atoms,)
    local = torch.arange(n_pairs, device=device) - pair_start[pair_centre]  # (n_pairs,)
    edge_start = (torch.cumsum(counts, 0) - counts)[pair_centre]  # (n_pairs,)
    first = edge_start + lower[1, local]  # (n_pairs,)
    second = edge_start + lower[0, local]  # (n_pairs,)
    return pair_centre, first, second


class AEVComputer(Float64BufferModule):
    """Computes ANI atomic environment vectors from species, edges and edge vectors.

    Args:
        config: AEV hyperparameters.
        n_species: Number of elements of the model (defines the block layout).
    """

    radial_shifts: torch.Tensor
    angular_shifts: torch.Tensor
    cos_sections: torch.Tensor
    sin_sections: torch.Tensor
    pair_index: torch.Tensor

    def __init__(self, config: AEVConfig, n_species: int) -> None:
        super().__init__()
        self.config = config
        self.n_species = n_species
        self.n_pairs = n_species * (n_species + 1) // 2
        sections = torch.tensor(config.angle_sections, dtype=torch.float64)
        self.register_buffer(
            "radial_shifts",
            torch.tensor(config.radial_shifts, dtype=torch.float64),
            persistent=False,
        )
        self.register_buffer(
            "angular_shifts",
            torch.tensor(config.angular_shifts, dtype=torch.float64),
            persistent=False,
        )
        self.register_buffer("cos_sections", torch.cos(sections), persistent=False)
        self.register_buffer("sin_sections", torch.sin(sections), persistent=False)
        self.register_buffer("pair_index", species_pair_index(n_species), persistent=False)

    @property
    def radial_length(self) -> int:
        return self.n_species * len(self.config.radial_shifts)

    @property
    def angular_length(self) -> int:
        return self.n_pairs * len(self.config.angular_shifts) * len(self.config.angle_sections)

    def forward(
        self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor
    ) -> torch.Tensor:
        """AEVs of all atoms.

        Args:
            species: Species index of each atom, ``(n_atoms,)``.
            edge_index: ``(2, n_edges)``, edges sorted by centre, all with r < radial cutoff.
            edge_vectors: r_j − r_i (+ shift), ``(n_edges, 3)``, Å.

        Returns:
            AEVs, ``(n_atoms, aev_length)``, dtype of ``edge_vectors``.
        """
        cfg = self.config
        n_atoms = species.shape[0]
        dtype = edge_vectors.dtype
        centre, neighbour = edge_index[0], edge_index[1]  # (n_edges,)
        distances = torch.linalg.vector_norm(edge_vectors, dim=1)  # (n_edges,)

        radial_terms = (
            cfg.radial_prefactor
            * torch.exp(-cfg.radial_eta * (distances[:, None] - self.radial_shifts.to(dtype)) ** 2)
            * cosine_cutoff(distances, cfg.radial_cutoff)[:, None]
        )  # (n_edges, n_R)
        radial = scatter_sum(
            radial_terms, centre * self.n_species + species[neighbour], n_atoms * self.n_species
        )  # (n_atoms·n_species, n_R)

        angular_edges = torch.nonzero(distances < cfg.angular_cutoff).squeeze(1)  # (n_ang,)
        pair_centre, first, second = angular_pairs(centre[angular_edges], n_atoms)
        edge_a, edge_b = angular_edges[first], angular_edges[second]  # (n_pairs,)
        d_a, d_b = distances[edge_a], distances[edge_b]  # (n_pairs,)
        cos_angle = (edge_vectors[edge_a] * edge_vectors[edge_b]).sum(1) / (d_a * d_b)
        cos_scaled = cfg.cosine_scale * cos_angle  # (n_pairs,) cos θ'
        sin_scaled = torch.sqrt(1.0 - cos_scaled**2)  # (n_pairs,) sin θ'
        cos_shifted = cos_scaled[:, None] * self.cos_sections.to(dtype) + sin_scaled[
            :, None
        ] * self.sin_sections.to(dtype)  # (n_pairs, n_θ)
        angle_terms = ((1.0 + cos_shifted) * 0.5) ** cfg.angular_zeta  # (n_pairs, n_θ)
        mean_distance = 0.5 * (d_a + d_b)  # (n_pairs,)
        distance_terms = (
            torch.exp(
                -cfg.angular_eta * (mean_distance[:, None] - self.angular_shifts.to(dtype)) ** 2
            )
            * (
                2.0
                * cosine_cutoff(d_a, cfg.angular_cutoff)
                * cosine_cutoff(d_b, cfg.angular_cutoff)
            )[:, None]
        )  # (n_pairs, n_A)
        angular_terms = (distance_terms[:, :, None] * angle_terms[:, None, :]).flatten(1)
        pair_block = self.pair_index[species[neighbour[edge_a]], species[neighbour[edge_b]]]
        angular = scatter_sum(
            angular_terms, pair_centre * self.n_pairs + pair_block, n_atoms * self.n_pairs
        )  # (n_atoms·n_pairs, n_A·n_θ)
        return torch.cat(
            [radial.view(n_atoms, -1), angular.view(n_atoms, -1)], dim=1
        )  # (n_atoms, aev_length)
