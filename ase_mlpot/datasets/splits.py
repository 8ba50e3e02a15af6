"""Train/validation/test splits by molecule, never by conformation.

Conformations of one molecule are strongly correlated; splitting them across train and test
leaks the test set into training. Every molecule (``ConformerGroup.molecule``, else the group
name) goes whole into one split.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from ase_mlpot.datasets.errors import DatasetError
from ase_mlpot.datasets.hdf5 import ConformerDataset, ConformerGroup

__all__ = ["assign_molecules", "molecule_fold", "split_by_molecule"]


def assign_molecules(
    molecules: Sequence[str], fractions: Mapping[str, float], *, seed: int = 0
) -> dict[str, str]:
    """Assign each molecule to one split.

    Molecules are shuffled with ``seed`` and cut into consecutive blocks whose sizes are
    ``round(fraction × n_molecules)`` (the last split takes the remainder), so the assignment
    depends only on the set of molecule names, the fractions and the seed.

    Args:
        molecules: Molecule identifiers (duplicates are ignored).
        fractions: Split name → fraction of molecules; fractions must sum to 1.
        seed: Shuffle seed.

    Returns:
        Molecule → split name.

    Raises:
        DatasetError: Fractions not positive or not summing to 1.
    """
    values = np.asarray(list(fractions.values()), dtype=np.float64)  # (n_splits,)
    if np.any(values < 0) or not np.isclose(values.sum(), 1.0):
        raise DatasetError(f"split fractions must be >= 0 and sum to 1, got {dict(fractions)}")
    names = sorted(set(molecules))
    order = np.random.default_rng(seed).permutation(len(names))  # (n_molecules,)
    shuffled = [names[i] for i in order]
    out: dict[str, str] = {}
    start = 0
    splits = list(fractions)
    for k, split in enumerate(splits):
        stop = len(shuffled) if k == len(splits) - 1 else start + round(values[k] * len(names))
        for mol in shuffled[start:stop]:
            out[mol] = split
        start = stop
    return out


def molecule_fold(molecule: str, k: int, seed: int) -> int:
    """Fold ``0 … k−1`` of a molecule, a function of its name and the seed only: the same
    molecule lands in the same fold at every stage of a transfer-learning chain (as ANI-1ccx kept
    ANI-1x's folds), whatever other molecules the stage's data hold."""
    return zlib.crc32(f"{seed}:{molecule}".encode()) % k


def split_by_molecule(
    dataset: ConformerDataset,
    fractions: Mapping[str, float] | None = None,
    *,
    seed: int = 0,
) -> dict[str, ConformerDataset]:
    """Split a dataset so that each molecule's conformations all land in one split.

    Args:
        dataset: The dataset.
        fractions: Split name → fraction of *molecules* (default train 0.8, valid 0.1,
            test 0.1).
        seed: Shuffle seed.

    Returns:
        Split name → dataset (same level and attributes; empty groups dropped).
    """
    fractions = fractions or {"train": 0.8, "valid": 0.1, "test": 0.1}
    assignment = assign_molecules(list(dataset.molecules()), fractions, seed=seed)
    out = {
        split: ConformerDataset(groups={}, level_of_theory=dataset.level_of_theory,
                                level_version=dataset.level_version, attrs=dict(dataset.attrs))
        for split in fractions
    }
    for name, group in dataset.groups.items():
        ids = group.molecule if group.molecule is not None else np.full(len(group), name)
        labels = np.asarray([assignment[str(m)] for m in ids])  # (n_conf,)
        for split in fractions:
            mask = labels == split  # (n_conf,)
            if mask.any():
                sub: ConformerGroup = group.select(mask)
                out[split].groups[name] = sub
    return out
