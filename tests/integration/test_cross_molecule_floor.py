"""``zoo/cross_molecule_floor.py``: atom types, and the additive correction recovered exactly from
synthetic CC and DFT stores built so that CC − DFT is a sum of atom-type increments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase.build import molecule
from ase.collections import g2

from ase_mlpot.io import save_artifact
from ase_mlpot.testing import tiny_ani_model
from tests.zoo_scripts import load_zoo_script

script = load_zoo_script("cross_molecule_floor")


def test_atom_types_of_ethanol() -> None:
    ethanol = molecule("CH3CH2OH")
    types = script.atom_types(list(ethanol.numbers), ethanol.positions)
    assert sorted(types) == sorted([("C", 4, 3), ("C", 4, 2), ("O", 2, 1)] + [("H", 0, 0)] * 6)


def _records(names: list[str], rng: np.random.Generator) -> list[dict]:
    """Three slightly displaced conformations per molecule (bonds unchanged)."""
    records = []
    for name in names:
        atoms = molecule(name)
        for k in range(3):
            positions = atoms.positions + rng.normal(scale=0.02, size=atoms.positions.shape)
            records.append({"molecule": name, "numbers": [int(z) for z in atoms.numbers],
                            "positions": positions.tolist(), "geometry_hash": f"{name}-{k}"})
    return records


def test_additive_difference_is_recovered(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [n for n in g2.names if set(molecule(n).get_chemical_symbols()) <= set("HCNO")]
    records = _records(names, rng)
    per_record = script.record_types(records)
    types = sorted({t for atoms in per_record for t in atoms})
    increments = rng.normal(scale=2.0, size=len(types))  # kcal/mol per atom type
    delta = script.type_counts(per_record, types) @ increments  # (n,) | kcal/mol
    offsets = script.element_counts(records) @ np.array([-0.5, -38.0, -54.6, -75.0])  # Hartree
    dft_energy = offsets + rng.normal(scale=0.01, size=len(records))  # Hartree
    cc_energy = dft_energy + 0.3 * script.element_counts(records)[:, 1] + delta / 627.509474
    stores = {}
    for level, energies in (("cc", cc_energy), ("dft", dft_energy)):
        stores[level] = tmp_path / f"{level}.jsonl"
        lines = [json.dumps({**r, "key": f"{level}-{r['geometry_hash']}", "status": "ok",
                             "energy": float(e)}) + "\n"
                 for r, e in zip(records, energies, strict=True)]
        stores[level].write_text("".join(lines))
    # held out: every fourth molecule whose atom types all occur in the others
    held_out = []
    for name in names[::4]:
        own = {t for r, atoms in zip(records, per_record, strict=True)
               if r["molecule"] == name for t in atoms}
        others = {t for r, atoms in zip(records, per_record, strict=True)
                  if r["molecule"] != name and r["molecule"] not in held_out for t in atoms}
        if own <= others:
            held_out.append(name)
    assert len(held_out) >= 6
    test_molecules = tmp_path / "test-molecules.txt"
    test_molecules.write_text("\n".join(held_out) + "\n")
    artifact = save_artifact(tiny_ani_model().double(), tmp_path / "tiny", name="tiny",
                             metadata={"level_of_theory": "wb97x-631gs"})

    result = script.analyse([str(artifact)], stores["cc"], stores["dft"], test_molecules)

    assert result["held_out"] == {"conformations": 3 * len(held_out), "molecules": len(held_out)}
    assert result["correction"]["training_rmse"] < 1e-6
    assert result["wb97x"] > 0.5  # the increments do not reduce to per-element offsets
    assert result["wb97x_plus_correction"] < 1e-6
    row = result["models"]["tiny"]
    assert row["level_of_theory"] == "wb97x-631gs"
    assert np.isfinite([row["vs_cc"], row["vs_wb97x"], row["plus_correction_vs_cc"]]).all()
