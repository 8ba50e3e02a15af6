"""Dataset formats (ANI HDF5, extxyz, ASE db, label stores) and splits by molecule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ase_mlpot.datasets.errors import DatasetError, DatasetFormatError
from ase_mlpot.datasets.hdf5 import (
    ConformerDataset,
    dataset_from_records,
    hill_formula,
    read_ani_h5,
    read_ase,
    read_dataset,
    write_ani_h5,
    write_ase,
)
from ase_mlpot.datasets.splits import assign_molecules, split_by_molecule
from ase_mlpot.datasets.store import GeometryEntry, LabelStore
from ase_mlpot.units import HARTREE_TO_EV

MakeEntries = Callable[..., list[GeometryEntry]]


def _fake_records(entries: list[GeometryEntry], *, seed: int = 1) -> list[dict[str, Any]]:
    """Label records with arbitrary but distinct energies, forces and components."""
    rng = np.random.default_rng(seed)
    out = []
    for i, e in enumerate(entries):
        forces = rng.normal(size=e.positions.shape)  # (n_atoms, 3) | Ha/Å
        out.append({
            "key": f"k{i}", "geometry_hash": e.geometry_hash, "level": "test-level",
            "level_version": 2, "status": "ok", "molecule": e.molecule, "smiles": e.smiles,
            "numbers": e.numbers.tolist(), "positions": e.positions.tolist(),
            "energy": -76.0 - 0.01 * i, "forces": forces.tolist(),
            "components": {"hf": -75.0 - 0.01 * i, "total": -76.0 - 0.01 * i},
        })
    return out


@pytest.fixture
def dataset(make_entries: MakeEntries) -> ConformerDataset:
    """Six water and six ammonia conformations, plus one failed record that must be dropped."""
    records = _fake_records(make_entries(12))
    records.append({**records[0], "key": "bad", "status": "failed", "energy": None})
    return dataset_from_records(records)


def test_records_to_groups(dataset: ConformerDataset) -> None:
    """Groups by Hill formula, heavy atoms first, failed records dropped."""
    assert set(dataset.groups) == {"H2O", "H3N"}
    assert dataset.n_conformations == 12
    assert dataset.level_of_theory == "test-level" and dataset.level_version == 2
    water = dataset.groups["H2O"]
    assert water.atomic_numbers.tolist() == [8, 1, 1]
    assert water.coordinates.shape == (6, 3, 3) and water.forces is not None
    assert water.extra["hf"].shape == (6,)
    assert hill_formula([6, 1, 1, 1, 1, 8, 1, 6, 1]) == "C2H6O"
    assert hill_formula([6, 6, 7, 7]) == "C2N2"  # carbon without hydrogen (cyanogen)
    assert hill_formula([8, 1, 1, 7]) == "H2NO"


def test_ani_h5_round_trip(dataset: ConformerDataset, tmp_path: Path) -> None:
    """write → read is exact, and the file states units, level and the force sign."""
    path = tmp_path / "d.h5"
    write_ani_h5(dataset, path)
    with h5py.File(path, "r") as fh:
        assert fh.attrs["energy_unit"] == "Hartree"
        assert fh.attrs["length_unit"] == "Angstrom"
        assert fh.attrs["forces_kind"] == "forces"
        assert fh["H2O"].attrs["level_of_theory"] == "test-level"
        assert fh["H2O/species"][()].tolist() == [b"O", b"H", b"H"]
    back = read_ani_h5(path)
    assert back.level_of_theory == "test-level" and back.level_version == 2
    for name, group in dataset.groups.items():
        other = back.groups[name]
        np.testing.assert_array_equal(other.coordinates, group.coordinates)
        np.testing.assert_array_equal(other.energies, group.energies)
        np.testing.assert_array_equal(other.forces, group.forces)
        np.testing.assert_array_equal(other.molecule, group.molecule)
        np.testing.assert_array_equal(other.extra["hf"], group.extra["hf"])


def test_gradients_convention_round_trip(dataset: ConformerDataset, tmp_path: Path) -> None:
    """Stored as gradients, the file holds −F and reading gives F back."""
    path = tmp_path / "g.h5"
    write_ani_h5(dataset, path, forces_kind="gradients")
    with h5py.File(path, "r") as fh:
        np.testing.assert_array_equal(fh["H2O/forces"][()], -dataset.groups["H2O"].forces)
    back = read_ani_h5(path, forces_kind="forces")  # the file's attribute wins
    np.testing.assert_array_equal(back.groups["H2O"].forces, dataset.groups["H2O"].forces)


def test_unknown_force_sign_raises(dataset: ConformerDataset, tmp_path: Path) -> None:
    """A third-party file without forces_kind (and not COMP6) needs the convention stated."""
    path = tmp_path / "third.h5"
    with h5py.File(path, "w") as fh:
        g = fh.create_group("w")
        g["species"] = np.array([b"O", b"H", b"H"])
        g["coordinates"] = dataset.groups["H2O"].coordinates
        g["forces"] = dataset.groups["H2O"].forces
    with pytest.raises(DatasetFormatError, match="forces_kind"):
        read_ani_h5(path)
    got = read_ani_h5(path, forces_kind="gradients")
    np.testing.assert_array_equal(got.groups["w"].forces, -dataset.groups["H2O"].forces)


def test_comp6_reads_with_gradient_sign(comp6_path: Path) -> None:
    """COMP6 S66x8: 66 dimers x 8, forces are the negated stored gradients, Hartree energies."""
    dataset = read_ani_h5(comp6_path)
    assert dataset.n_conformations == 528 and len(dataset.groups) == 66
    assert dataset.level_of_theory == "wb97x/6-31g*"
    with h5py.File(comp6_path, "r") as fh:
        stored = fh["s66x8/mol00/forces"][()]  # (8, 6, 3) float32 gradients
    group = dataset.groups["s66x8/mol00"]
    np.testing.assert_array_equal(group.forces, -stored.astype(np.float64))
    assert group.atomic_numbers.tolist() == [8, 1, 1, 8, 1, 1]
    assert -153.0 < group.energies.min() < -152.0  # Hartree
    summary = dataset.summary()
    assert summary["elements"] == ["C", "H", "N", "O"] and summary["molecules"] == 66


@pytest.mark.parametrize("suffix", [".extxyz", ".db"])
def test_ase_formats_round_trip(dataset: ConformerDataset, tmp_path: Path, suffix: str) -> None:
    """extxyz and ASE db through ase.io: eV on file, Hartree back, molecule names kept."""
    from ase.io import read

    path = tmp_path / f"d{suffix}"
    write_ase(dataset, path)
    images = read(str(path), index=":")
    assert len(images) == 12
    assert images[0].get_potential_energy() == pytest.approx(
        dataset.groups["H2O"].energies[0] * HARTREE_TO_EV, rel=1e-12)
    back = read_ase(path)
    assert back.molecules() == dataset.molecules()
    for name, group in dataset.groups.items():
        np.testing.assert_allclose(back.groups[name].energies, group.energies, rtol=1e-12)
        # extxyz writes 8 decimals of eV/Å
        np.testing.assert_allclose(back.groups[name].forces, group.forces, rtol=0, atol=1e-8)
        np.testing.assert_allclose(back.groups[name].coordinates, group.coordinates, atol=1e-10)


def test_read_dataset_from_label_store(make_entries: MakeEntries, tmp_path: Path) -> None:
    """A label store converts directly; only the latest successful record per key counts."""
    records = _fake_records(make_entries(4))
    path = tmp_path / "labels.jsonl"
    with LabelStore(path) as store:
        store.append({**records[0], "status": "failed", "energy": None, "forces": None})
        for rec in records:
            store.append(rec)
    got = read_dataset(path)
    assert got.n_conformations == 4


def test_split_by_molecule_never_by_conformation(make_entries: MakeEntries) -> None:
    """Each molecule's conformations land in exactly one split; fractions are of molecules."""
    entries = make_entries(40)
    for i, e in enumerate(entries):  # 10 molecules (two formulas), 4 conformations each
        e.molecule = f"{e.molecule}-{i % 10}"
    dataset = dataset_from_records(_fake_records(entries))
    parts = split_by_molecule(dataset, {"train": 0.6, "valid": 0.2, "test": 0.2}, seed=3)
    owners: dict[str, str] = {}
    for split, part in parts.items():
        for mol, count in part.molecules().items():
            assert count == 4  # all conformations of the molecule
            assert mol not in owners, f"{mol} in {owners.get(mol)} and {split}"
            owners[mol] = split
    assert len(owners) == 10
    assert [len(p.molecules()) for p in parts.values()] == [6, 2, 2]
    assert sum(p.n_conformations for p in parts.values()) == 40
    again = split_by_molecule(dataset, {"train": 0.6, "valid": 0.2, "test": 0.2}, seed=3)
    assert {k: sorted(v.molecules()) for k, v in again.items()} == {
        k: sorted(v.molecules()) for k, v in parts.items()}
    with pytest.raises(DatasetError):
        assign_molecules(["a"], {"train": 0.5, "test": 0.6})


def test_energy_only_records_with_components(make_entries: MakeEntries, tmp_path: Path) -> None:
    """Composite-style records (no forces, many components) survive HDF5 and stay forceless."""
    records = _fake_records(make_entries(4))
    for rec in records:
        rec["forces"] = None
        rec["components"] = {"hf_qz": rec["energy"] + 0.3, "mp2_corr_cbs": -0.3,
                             "total": rec["energy"]}
    dataset = dataset_from_records(records)
    assert all(g.forces is None for g in dataset.groups.values())
    path = tmp_path / "cc.h5"
    write_ani_h5(dataset, path)
    back = read_ani_h5(path)
    assert back.summary()["has_forces"] is False
    water = back.groups["H2O"]
    assert water.forces is None
    np.testing.assert_allclose(water.extra["hf_qz"] - 0.3, water.energies, rtol=0, atol=1e-12)
    assert "total" not in water.extra


def test_non_ascii_molecule_names(make_entries: MakeEntries, tmp_path: Path) -> None:
    """Molecule names are stored as UTF-8."""
    entries = make_entries(2)
    entries[0].molecule = "α-water"
    dataset = dataset_from_records(_fake_records(entries))
    path = tmp_path / "u.h5"
    write_ani_h5(dataset, path)
    assert set(read_ani_h5(path).molecules()) == {"α-water", "NH3"}
