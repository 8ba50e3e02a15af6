"""Small labelled datasets for training tests: a teacher model labels perturbed molecules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase.build import molecule

from ase_mlpot import keys
from ase_mlpot.data.batch import atoms_to_batch, batch_to_device
from ase_mlpot.datasets.hdf5 import ConformerDataset, dataset_from_records
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.units import ENERGY_UNITS_TO_EV, HARTREE_TO_EV

__all__ = ["TEACHER_MOLECULES", "teacher_dataset"]

#: CHNO molecules of ASE's G2 set (1–3 heavy atoms) used by the teacher datasets.
TEACHER_MOLECULES = (
    "H2O", "CH4", "NH3", "CH3OH", "H2CO", "HCOOH", "CH3CH2OH", "CH3OCH3", "C2H6", "C2H4",
    "CH3CHO", "H3CNH2", "HCN", "CH3CN", "HCOOCH3", "CH3COOH", "CH3CONH2", "C3H8",
)


def teacher_dataset(
    teacher: PotentialModel,
    *,
    molecules: Sequence[str] = TEACHER_MOLECULES,
    conformations: int = 8,
    displacement: float = 0.08,
    seed: int = 0,
    with_forces: bool = True,
    level: str = "teacher",
) -> ConformerDataset:
    """Conformations of G2 molecules (Gaussian displacements, Å) labelled by ``teacher``.

    The labels are exactly learnable by a model of the teacher's architecture, so training
    tests can demand a large error reduction. Energies in Hartree, forces in Hartree/Å.

    Args:
        teacher: The labelling model (float64 recommended).
        molecules: ASE G2 names.
        conformations: Conformations per molecule.
        displacement: Standard deviation of the displacements, Å.
        seed: Seed of the displacements.
        with_forces: Store forces.
        level: Level-of-theory name of the dataset.
    """
    rng = np.random.default_rng(seed)
    parameter = next(teacher.parameters())
    to_hartree = ENERGY_UNITS_TO_EV[teacher.energy_unit] / HARTREE_TO_EV
    records = []
    for name in molecules:
        atoms = molecule(name)
        for index in range(conformations):
            positions = atoms.positions + rng.normal(0.0, displacement, atoms.positions.shape)
            conformer = atoms.copy()
            conformer.positions = positions
            batch = batch_to_device(
                atoms_to_batch(conformer, elements=teacher.atomic_numbers, cutoff=teacher.cutoff),
                dtype=parameter.dtype, device=parameter.device)
            out = compute_outputs(teacher, batch, forces=with_forces)
            forces = (out[keys.FORCES].detach().cpu().double().numpy() * to_hartree
                      if with_forces else None)
            records.append({
                "key": f"{name}-{index}", "level": level, "level_version": 1, "status": "ok",
                "numbers": atoms.numbers.tolist(), "positions": positions.tolist(),
                "energy": float(out[keys.TOTAL_ENERGY].detach().cpu()) * to_hartree,
                "forces": None if forces is None else forces.tolist(), "molecule": name,
            })
    return dataset_from_records(records, level=level, components=False)
