"""Tests of the random CHNO molecule enumerator (:mod:`ase_mlpot.datasets.enumerate`)."""

from __future__ import annotations

import pytest
from rdkit import Chem
from rdkit.Chem import AllChem, rdMolDescriptors

from ase_mlpot.datasets.enumerate import heavy_atom_count, random_molecules


@pytest.fixture(scope="module")
def sample() -> list[str]:
    """200 molecules of 1–7 heavy atoms from seed 0 (shared by several tests)."""
    return random_molecules(200, max_heavy=7, seed=0)


def test_reproducible_for_a_seed_and_different_for_another(sample: list[str]) -> None:
    assert random_molecules(200, max_heavy=7, seed=0) == sample
    assert random_molecules(200, max_heavy=7, seed=1) != sample


def test_distinct_and_canonical(sample: list[str]) -> None:
    assert len(sample) == 200
    assert len(set(sample)) == len(sample)
    assert all(Chem.MolToSmiles(Chem.MolFromSmiles(s)) == s for s in sample)


def test_valid_neutral_closed_shell_chno_within_bounds() -> None:
    molecules = random_molecules(150, min_heavy=3, max_heavy=6, seed=3)
    for smiles in molecules:
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None, smiles
        atoms = list(Chem.AddHs(mol).GetAtoms())
        assert {a.GetSymbol() for a in atoms} <= {"C", "H", "N", "O"}, smiles
        assert all(a.GetFormalCharge() == 0 for a in atoms), smiles
        assert all(a.GetNumRadicalElectrons() == 0 for a in atoms), smiles
        assert 3 <= heavy_atom_count(smiles) <= 6, smiles


def test_chemistry_rules(sample: list[str]) -> None:
    forbidden = [
        Chem.MolFromSmarts(s)
        for s in ("O~O~O", "N~N~N", "O~@O", "O=O", "[R]#[R]", "[R]=[R]=[R]")
    ]
    oo_bond = Chem.MolFromSmarts("O~O")
    for smiles in sample:
        mol = Chem.MolFromSmiles(smiles)
        assert not any(mol.HasSubstructMatch(p) for p in forbidden), smiles
        assert len(mol.GetSubstructMatches(oo_bond)) <= 1, smiles
        small_rings = [r for r in mol.GetRingInfo().AtomRings() if len(r) <= 4]
        assert all(sum(i in r for r in small_rings) < 2 for i in range(mol.GetNumAtoms())), smiles


def test_exclude_is_honoured(sample: list[str]) -> None:
    # Non-canonical spellings of the first ten molecules must be recognised too.
    excluded = [Chem.MolToSmiles(Chem.MolFromSmiles(s), doRandom=True) for s in sample[:10]]
    molecules = random_molecules(200, max_heavy=7, seed=0, exclude=excluded)
    assert not set(sample[:10]) & set(molecules)
    assert len(set(molecules)) == 200


def test_rings_only_with_ring_probability() -> None:
    with_rings = random_molecules(100, min_heavy=4, max_heavy=6, ring_probability=0.5, seed=2)
    ring_counts = [rdMolDescriptors.CalcNumRings(Chem.MolFromSmiles(s)) for s in with_rings]
    assert sum(c > 0 for c in ring_counts) >= 10
    acyclic = random_molecules(100, min_heavy=4, max_heavy=6, ring_probability=0.0, seed=2)
    assert all(rdMolDescriptors.CalcNumRings(Chem.MolFromSmiles(s)) == 0 for s in acyclic)


def test_ring_sizes_respected() -> None:
    molecules = random_molecules(
        60, min_heavy=5, max_heavy=7, ring_probability=0.6, min_ring_size=5, max_ring_size=6,
        seed=4,
    )
    mols = [Chem.MolFromSmiles(s) for s in molecules]
    sizes = {len(r) for mol in mols for r in mol.GetRingInfo().AtomRings()}
    assert sizes
    assert sizes <= {5, 6}


def test_impossible_request_raises_with_count() -> None:
    # Only methane, ammonia and water have a single heavy atom.
    with pytest.raises(ValueError, match="found only 3 of 50"):
        random_molecules(50, max_heavy=1)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="elements"):
        random_molecules(5, elements=("C", "S"), element_weights=(0.5, 0.5))
    with pytest.raises(ValueError, match="element_weights"):
        random_molecules(5, element_weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="exclude"):
        random_molecules(5, exclude=["not a smiles"])


def test_sample_embeds_with_etkdg(sample: list[str]) -> None:
    for smiles in sample[-5:]:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0, smiles


def test_heavy_atom_count() -> None:
    assert heavy_atom_count("CCO") == 3
    assert heavy_atom_count("[H][H]") == 0
    with pytest.raises(ValueError, match="cannot parse"):
        heavy_atom_count("C1CC")
