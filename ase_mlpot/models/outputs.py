"""The output head shared by every architecture: totals, forces, stress, ensemble statistics.

Physics. With per-atom energies E_i (model units), per-element reference energies e_Z (float64)
and graph index g(i), the energy of graph g is

    E_g = Σ_{i ∈ g} (E_i + e_{Z_i}),  accumulated in float64.

Forces are F = −∂E/∂r. The stress follows from a symmetric strain ε applied to positions and cell
(r → r (1 + ε_s), h → h (1 + ε_s), ε_s = ½(ε + εᵀ)): σ = (1/V) ∂E/∂ε at ε = 0, the ASE sign
convention (positive under tension). Edge vectors are rebuilt from positions, cell and integer
shifts *inside* autograd:

    r_ij = r'_j − r'_i + S_ij · h'.

For an ensemble of M members the reported energy is the member mean, forces are −∂(mean)/∂r,
``energy_std`` is the unbiased standard deviation of the member energies and ``forces_std`` (on
request, one backward pass per member) the unbiased standard deviation of member forces.
"""

from __future__ import annotations

import torch

from ase_mlpot import keys
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.nn.scatter import scatter_sum

__all__ = ["compute_outputs"]


def compute_outputs(
    model: PotentialModel,
    batch: dict[str, torch.Tensor],
    *,
    forces: bool = True,
    stress: bool = False,
    forces_std: bool = False,
    training: bool = False,
) -> dict[str, torch.Tensor]:
    """Evaluate ``model`` on ``batch`` and differentiate.

    Args:
        model: Any :class:`PotentialModel`.
        batch: A batch already cast to the model's dtype and device.
        forces: Compute forces.
        stress: Compute the stress of every graph (all graphs must be fully periodic).
        forces_std: For ensembles, also the spread of member forces (M backward passes).
        training: Keep the autograd graph: of the energies (for energy losses, even with
            ``forces=False``) and of the derivatives (``create_graph=True``, for force losses).

    Returns:
        ``total_energy (n_graphs,)`` float64, ``member_energies (n_members, n_graphs)`` float64,
        ``atomic_energies (n_atoms,)`` (member mean, with reference energies, float64),
        ``energy_std (n_graphs,)`` (zeros for a single model), and on request ``forces
        (n_atoms, 3)``, ``stress (n_graphs, 3, 3)``, ``forces_std (n_atoms, 3)``; model units.
    """
    positions = batch[keys.POSITIONS]  # (n_atoms, 3)
    cell = batch[keys.CELL]  # (n_graphs, 3, 3)
    graph = batch[keys.BATCH]  # (n_atoms,)
    centre, neighbour = batch[keys.EDGE_INDEX]  # (n_edges,), (n_edges,)
    n_graphs = cell.shape[0]
    dtype, device = positions.dtype, positions.device
    needs_grad = forces or stress or forces_std
    with torch.enable_grad() if needs_grad or training else torch.no_grad():
        if needs_grad:
            positions = positions.detach().requires_grad_(True)
        strain = torch.zeros((n_graphs, 3, 3), dtype=dtype, device=device, requires_grad=stress)
        symmetric = 0.5 * (strain + strain.transpose(1, 2))  # (n_graphs, 3, 3)
        strained_positions = positions + torch.einsum(
            "ni,nij->nj", positions, symmetric[graph]
        )  # (n_atoms, 3)
        strained_cell = cell + torch.bmm(cell, symmetric)  # (n_graphs, 3, 3)
        shift_vectors = torch.einsum(
            "ei,eij->ej", batch[keys.CELL_SHIFT].to(dtype), strained_cell[graph[centre]]
        )  # (n_edges, 3)
        edge_vectors = (
            strained_positions[neighbour] - strained_positions[centre] + shift_vectors
        )  # (n_edges, 3)
        atomic = model(
            {**batch, keys.POSITIONS: strained_positions, keys.EDGE_VECTORS: edge_vectors}
        )  # (n_atoms,) or (M, n_atoms)
        members = atomic if atomic.dim() == 2 else atomic.unsqueeze(0)  # (M, n_atoms)
        reference = model.reference_energies[batch[keys.SPECIES]]  # (n_atoms,) float64
        atomic64 = members.to(torch.float64) + reference  # (M, n_atoms)
        member_energies = scatter_sum(atomic64, graph, n_graphs, dim=1)  # (M, n_graphs)
        total = member_energies.mean(dim=0)  # (n_graphs,)
        n_members = member_energies.shape[0]
        results = {
            keys.TOTAL_ENERGY: total,
            keys.MEMBER_ENERGIES: member_energies,
            keys.ATOMIC_ENERGIES: atomic64.mean(dim=0),
            keys.ENERGY_STD: member_energies.std(dim=0)
            if n_members > 1
            else torch.zeros_like(total),
        }
        if not needs_grad:
            return results
        inputs = [positions, strain] if stress else [positions]
        if forces_std and n_members > 1:
            member_forces = []
            member_virials = []
            for m in range(n_members):
                grads = torch.autograd.grad(
                    member_energies[m].sum(), inputs, retain_graph=True, create_graph=training
                )
                member_forces.append(-grads[0])
                if stress:
                    member_virials.append(grads[1])
            stacked = torch.stack(member_forces)  # (M, n_atoms, 3)
            results[keys.FORCES] = stacked.mean(dim=0)
            results[keys.FORCES_STD] = stacked.std(dim=0)
            gradients = [None, torch.stack(member_virials).mean(dim=0)] if stress else [None]
        else:
            gradients = list(torch.autograd.grad(total.sum(), inputs, create_graph=training))
            results[keys.FORCES] = -gradients[0]
            if forces_std:
                results[keys.FORCES_STD] = torch.zeros_like(gradients[0])
        if stress:
            volume = torch.linalg.det(cell).abs()  # (n_graphs,)
            results[keys.STRESS] = gradients[1] / volume[:, None, None]  # (n_graphs, 3, 3)
    return results
