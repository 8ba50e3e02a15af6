"""Datasets of labelled molecular conformations: sampling, labelling, formats and splits.

* :mod:`~ase_mlpot.datasets.levels` — named, versioned levels of theory (pyscf):
  ``wb97x-631gs``, ``ccsd(t)-cbs-composite``, ``hf-sto3g``.
* :mod:`~ase_mlpot.datasets.runner` — resumable parallel labelling into a JSON-lines store.
* :mod:`~ase_mlpot.datasets.store` — the append-only, crash-safe geometry and label stores.
* :mod:`~ase_mlpot.datasets.hdf5` — :class:`ConformerDataset`, ANI HDF5, extxyz / ASE db.
* :mod:`~ase_mlpot.datasets.splits` — splits by molecule.
* :mod:`~ase_mlpot.datasets.sampling` — ETKDG, normal-mode and MD sampling, query by committee.
* :mod:`~ase_mlpot.datasets.cli` — the ``mlpot-zoo data`` commands.

Units: energies in Hartree, lengths in Å, forces (−∂E/∂r) in Hartree/Å inside datasets and
stores; eV and eV/Å only on :class:`ase.Atoms` (extxyz, ASE db). The label extra
(``pip install ase_mlpot[label]``: pyscf, rdkit, tblite) is imported only where needed.
"""

from __future__ import annotations

from ase_mlpot.datasets.errors import (
    DatasetError,
    DatasetFormatError,
    LabellingError,
    SamplingError,
    StoreLockedError,
    UnknownLevelError,
)
from ase_mlpot.datasets.hdf5 import (
    ConformerDataset,
    ConformerGroup,
    dataset_from_records,
    read_ani_h5,
    read_ase,
    read_dataset,
    write_ani_h5,
    write_ase,
)
from ase_mlpot.datasets.levels import LEVELS, Geometry, LabelResult, LevelOfTheory, get_level
from ase_mlpot.datasets.runner import RunSummary, label_geometries
from ase_mlpot.datasets.splits import split_by_molecule
from ase_mlpot.datasets.store import GeometryEntry, LabelStore, read_geometries, write_geometries

__all__ = [
    "LEVELS",
    "ConformerDataset",
    "ConformerGroup",
    "DatasetError",
    "DatasetFormatError",
    "Geometry",
    "GeometryEntry",
    "LabelResult",
    "LabelStore",
    "LabellingError",
    "LevelOfTheory",
    "RunSummary",
    "SamplingError",
    "StoreLockedError",
    "UnknownLevelError",
    "dataset_from_records",
    "get_level",
    "label_geometries",
    "read_ani_h5",
    "read_ase",
    "read_dataset",
    "read_geometries",
    "split_by_molecule",
    "write_ani_h5",
    "write_ase",
    "write_geometries",
]
