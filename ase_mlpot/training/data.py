"""Training data in model form: one prepared graph per labelled conformation, batched on demand.

A :class:`ConformerDataset` (Hartree, Å) becomes a list of :class:`LabelledGraph`: the validated
graph of :func:`ase_mlpot.data.batch.atoms_to_batch` (neighbour list at the model cutoff, built
once) with its reference energy in eV (float64) and forces in eV/Å (if labelled). Conformations
whose structure the model cannot take (an element it lacks, overlapping atoms) are reported, not
silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ase_mlpot.data.batch import atoms_to_batch, collate
from ase_mlpot.datasets.hdf5 import ConformerDataset
from ase_mlpot.errors import MLPotError
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.units import HARTREE_TO_EV

__all__ = [
    "LabelledGraph", "TargetBatch", "collate_targets", "iterate_batches", "prepare_graphs",
]


@dataclass(frozen=True)
class LabelledGraph:
    """One conformation ready for a model.

    Attributes:
        graph: Single-graph batch (float64 positions, edges at the model cutoff).
        energy: Reference total energy, eV.
        forces: Reference forces −∂E/∂r in eV/Å, shape ``(n_atoms, 3)`` (``None``: unlabelled).
        molecule: Molecule identifier (splits are by molecule).
        counts: Atoms per model element, shape ``(n_elements,)`` (for reference-energy fits).
    """

    graph: dict[str, torch.Tensor]
    energy: float
    forces: torch.Tensor | None
    molecule: str
    counts: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.graph["num_atoms"].sum())


@dataclass(frozen=True)
class TargetBatch:
    """Targets of a batch of graphs.

    Attributes:
        energy: Reference energies in eV, shape ``(n_graphs,)`` float64.
        num_atoms: Atoms per graph, shape ``(n_graphs,)``.
        forces: Reference forces in eV/Å of the atoms of graphs with forces, ``(n_labelled, 3)``.
        force_atoms: Indices (into the batch's atoms) of those atoms, ``(n_labelled,)``.
    """

    energy: torch.Tensor  # (n_graphs,) float64 | eV
    num_atoms: torch.Tensor  # (n_graphs,) int64
    forces: torch.Tensor  # (n_labelled, 3) float64 | eV/Å
    force_atoms: torch.Tensor  # (n_labelled,) int64

    def to(self, device: torch.device) -> TargetBatch:
        return TargetBatch(self.energy.to(device), self.num_atoms.to(device),
                           self.forces.to(device), self.force_atoms.to(device))


def prepare_graphs(
    dataset: ConformerDataset, model: PotentialModel, *, with_forces: bool = True,
    model_name: str = "model",
) -> tuple[list[LabelledGraph], list[str]]:
    """Turn every labelled conformation into a graph for ``model``.

    Args:
        dataset: Conformations with energies (Hartree) and optionally forces (Hartree/Å; a
            conformation whose force rows are not finite counts as energy-only).
        model: Supplies elements and cutoff.
        with_forces: Keep force labels (``False``: energy-only training even if present).
        model_name: The model's name in the reasons for left-out conformations.

    Returns:
        The graphs, and one message per conformation that was left out (unsupported element,
        invalid structure) naming the molecule and the reason.
    """
    elements = model.atomic_numbers
    graphs: list[LabelledGraph] = []
    skipped: list[str] = []
    for name, group in dataset.groups.items():
        if group.energies is None:
            skipped.append(f"{name}: {len(group)} conformations without energies")
            continue
        numbers = np.asarray(group.atomic_numbers)
        counts = np.array([(numbers == z).sum() for z in elements], dtype=np.float64)
        for index in range(len(group)):
            molecule = str(group.molecule[index]) if group.molecule is not None else name
            atoms = Atoms(numbers=numbers, positions=group.coordinates[index])
            try:
                graph = atoms_to_batch(atoms, elements=elements, cutoff=model.cutoff,
                                       model_name=model_name)
            except MLPotError as error:
                skipped.append(f"{molecule} (conformation {index}): {error}")
                continue
            forces = None  # NaN rows: no forces for this conformation (see attach_forces)
            if (with_forces and group.forces is not None
                    and np.isfinite(group.forces[index]).all()):
                forces = torch.from_numpy(group.forces[index] * HARTREE_TO_EV)  # (n_atoms, 3)
            graphs.append(LabelledGraph(
                graph=graph, energy=float(group.energies[index]) * HARTREE_TO_EV,
                forces=forces, molecule=molecule, counts=counts))
    return graphs, skipped


def collate_targets(graphs: Sequence[LabelledGraph]) -> TargetBatch:
    """Targets of ``graphs`` in batch order (force rows only for graphs with forces)."""
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    forces = [g.forces for g in graphs if g.forces is not None]
    atoms = [torch.arange(g.n_atoms) + int(o) for g, o in zip(graphs, offsets, strict=True)
             if g.forces is not None]
    return TargetBatch(
        energy=torch.tensor([g.energy for g in graphs], dtype=torch.float64),
        num_atoms=torch.tensor([g.n_atoms for g in graphs], dtype=torch.int64),
        forces=torch.cat(forces) if forces else torch.zeros((0, 3), dtype=torch.float64),
        force_atoms=torch.cat(atoms) if atoms else torch.zeros(0, dtype=torch.int64),
    )


def iterate_batches(
    graphs: Sequence[LabelledGraph],
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[dict[str, torch.Tensor], TargetBatch]]:
    """Batches of ``batch_size`` graphs (the last one smaller), shuffled if ``generator``.

    Yields:
        The collated model batch (CPU, float64) and its targets.
    """
    order = (torch.randperm(len(graphs), generator=generator).tolist() if generator is not None
             else list(range(len(graphs))))
    for start in range(0, len(order), batch_size):
        chunk = [graphs[i] for i in order[start:start + batch_size]]
        yield collate([g.graph for g in chunk]), collate_targets(chunk)
