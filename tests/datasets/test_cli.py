"""``mlpot-zoo data`` through click's CliRunner: sample → label → info → convert → split."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from ase_mlpot.cli import main
from ase_mlpot.datasets.hdf5 import read_ani_h5
from ase_mlpot.datasets.store import GeometryEntry, read_jsonl, write_geometries

MakeEntries = Callable[..., list[GeometryEntry]]


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, ["data", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_data_group_is_registered() -> None:
    """``mlpot-zoo data --help`` lists the six subcommands."""
    out = _invoke("--help")
    for command in ("sample", "select", "label", "info", "convert", "split"):
        assert command in out


def test_label_info_convert_split(tmp_path: Path, make_entries: MakeEntries) -> None:
    """Label a geometry file, resume it, inspect it, convert it and split it by molecule."""
    geometries = tmp_path / "g.jsonl"
    write_geometries(geometries, make_entries(6))
    store = tmp_path / "labels.jsonl"
    summary = json.loads(_invoke("label", str(geometries), "--level", "hf-sto3g", "-s",
                                 str(store), "--json"))
    assert summary["ok"] == 6 and summary["failed"] == 0 and summary["cpu_seconds"] > 0
    again = json.loads(_invoke("label", str(geometries), "--level", "hf-sto3g", "-s",
                               str(store), "--json"))
    assert again["skipped"] == 6 and again["ok"] == 0
    text = _invoke("label", str(geometries), "--level", "hf-sto3g", "-s", str(store))
    assert "6 already stored" in text and "CPU time" in text

    info = json.loads(_invoke("info", str(store), "--json"))
    level = info["levels"]["hf-sto3g@v1"]
    assert level["ok"] == 6 and level["molecules"] == 2 and level["failed"] == 0
    assert level["by_heavy_atoms"]["1"] == {"molecules": 2, "conformations": 6}
    assert "6 labelled conformations of 2 molecules" in _invoke("info", str(store))
    geo_info = json.loads(_invoke("info", str(geometries), "--json"))
    assert geo_info == {"path": str(geometries), "kind": "geometries", "conformations": 6,
                        "molecules": 2}

    h5 = tmp_path / "labels.h5"
    _invoke("convert", str(store), str(h5))
    dataset = read_ani_h5(h5)
    assert dataset.n_conformations == 6 and dataset.level_of_theory == "hf-sto3g"
    h5_info = json.loads(_invoke("info", str(h5), "--json"))
    assert h5_info["conformations"] == 6 and h5_info["has_forces"] is True
    xyz = tmp_path / "labels.extxyz"
    _invoke("convert", str(h5), str(xyz))
    assert json.loads(_invoke("info", str(xyz), "--json"))["conformations"] == 6

    splits = json.loads(_invoke("split", str(h5), "-o", str(tmp_path / "splits"),
                                "--fractions", "train=0.5,test=0.5", "--json"))
    parts = splits["splits"]
    assert parts["train"]["molecules"] == 1 and parts["test"]["molecules"] == 1
    assert parts["train"]["conformations"] + parts["test"]["conformations"] == 6
    assert Path(parts["train"]["path"]).exists()


def test_label_records_failures(tmp_path: Path, make_entries: MakeEntries) -> None:
    """Failures appear in the summary and the store; the command still succeeds."""
    geometries = tmp_path / "g.jsonl"
    write_geometries(geometries, make_entries(1))
    store = tmp_path / "labels.jsonl"
    # a lone H atom declared a singlet is inconsistent: pyscf raises, the runner records it
    entry = make_entries(1)[0]
    entry.numbers = entry.numbers[:1] * 0 + 1
    entry.positions = entry.positions[:1]
    write_geometries(geometries, [entry])
    out = _invoke("label", str(geometries), "--level", "hf-sto3g", "-s", str(store))
    assert "1 failed" in out and "failed:" in out
    assert [r["status"] for r in read_jsonl(store)] == ["failed"]


def test_sample_from_smiles(tmp_path: Path) -> None:
    """SMILES file → relaxed, normal-mode and MD sampled geometries with GFN2-xTB."""
    smi = tmp_path / "pool.smi"
    smi.write_text("# test pool\nO water\nN ammonia\n")
    out = tmp_path / "g.jsonl"
    summary = json.loads(_invoke("sample", str(smi), "-o", str(out), "--conformers", "1",
                                 "--normal-mode", "2", "--md", "1", "--json"))
    assert summary["molecules"] == 2 and summary["conformations"] == 8
    molecules = [obj["molecule"] for obj in read_jsonl(out)]
    assert molecules[:2] == ["water", "ammonia"]  # round-robin order


def test_info_rejects_unknown_force_sign(tmp_path: Path) -> None:
    """A third-party HDF5 without forces_kind: a clear error, not a silent sign guess."""
    import h5py
    import numpy as np

    path = tmp_path / "third.h5"
    with h5py.File(path, "w") as fh:
        g = fh.create_group("w")
        g["species"] = np.array([b"H", b"H"])
        g["coordinates"] = np.zeros((1, 2, 3)) + np.array([[0, 0, 0], [0, 0, 0.7]])
        g["forces"] = np.zeros((1, 2, 3))
    result = CliRunner().invoke(main, ["data", "info", str(path)])
    assert result.exit_code != 0 and "forces_kind" in result.output
    ok = CliRunner().invoke(main, ["data", "info", str(path), "--forces-kind", "gradients"])
    assert ok.exit_code == 0, ok.output


def test_select_by_committee(tmp_path: Path, make_entries: MakeEntries) -> None:
    """``data select``: ρ of every candidate as query_by_committee gives it, selection above the
    threshold largest first, excluded geometries skipped, ρ recorded in the output."""
    from ase import Atoms

    from ase_mlpot import load
    from ase_mlpot.datasets.sampling import query_by_committee
    from ase_mlpot.io import save_artifact
    from ase_mlpot.testing import tiny_ani_model

    model = save_artifact(tiny_ani_model(seed=2, ensemble_size=3), tmp_path / "committee",
                          name="committee", version="1")
    entries = make_entries(8, scale=0.2)
    geometries = tmp_path / "candidates.jsonl"
    write_geometries(geometries, entries)
    labelled = tmp_path / "labelled.jsonl"  # two of the candidates and one other geometry
    write_geometries(labelled, entries[:2] + make_entries(1, seed=9))
    from ase.build import molecule

    from ase_mlpot.datasets.store import GeometryEntry

    silane = molecule("SiH4")  # an element the model lacks: reported, not scored
    write_geometries(geometries, entries + entries[3:5] + [GeometryEntry(
        molecule="SiH4", numbers=silane.numbers.astype(np.int64), positions=silane.positions)])
    _, rho = query_by_committee([Atoms(numbers=e.numbers, positions=e.positions)
                                 for e in entries[2:]], load(model, device="cpu"), threshold=0)
    threshold = float(np.median(rho))
    output = tmp_path / "selected.jsonl"
    summary = json.loads(_invoke("select", str(geometries), "-m", str(model), "-o", str(output),
                                 "--threshold", str(threshold), "--exclude", str(labelled),
                                 "--device", "cpu", "--json"))
    assert summary["candidates"] == 6 and summary["excluded"] == 2
    assert summary["unsupported_elements"] == 1
    chosen = list(read_jsonl(output))
    assert summary["selected"] == len(chosen) == int((rho > threshold).sum()) >= 1
    chosen_rho = [obj["source"]["committee"]["rho"] for obj in chosen]
    assert chosen_rho == sorted(chosen_rho, reverse=True)
    np.testing.assert_allclose(chosen_rho, np.sort(rho[rho > threshold])[::-1], rtol=1e-12)
    assert all(obj["source"]["committee"]["model"] == "committee" for obj in chosen)
    assert {obj["geometry_hash"] for obj in chosen}.isdisjoint(e.geometry_hash
                                                               for e in entries[:2])
    one = json.loads(_invoke("select", str(geometries), "-m", str(model), "-o", str(output),
                             "--threshold", "0", "--max", "1", "--device", "cpu", "--json"))
    assert one["selected"] == 1 and len(list(read_jsonl(output))) == 1


def test_select_needs_an_ensemble(tmp_path: Path, make_entries: MakeEntries) -> None:
    """A single model cannot disagree with itself (usage error); unknown names exit 5."""
    from ase_mlpot.io import save_artifact
    from ase_mlpot.testing import tiny_ani_model

    single = save_artifact(tiny_ani_model(ensemble_size=1), tmp_path / "single", name="single",
                           version="1")
    geometries = tmp_path / "candidates.jsonl"
    write_geometries(geometries, make_entries(2))
    runner = CliRunner()
    result = runner.invoke(main, ["data", "select", str(geometries), "-m", str(single), "-o",
                                  str(tmp_path / "out.jsonl"), "--device", "cpu"])
    assert result.exit_code == 2 and "needs an ensemble" in result.output
    result = runner.invoke(main, ["data", "select", str(geometries), "-m", "ccx-genral", "-o",
                                  str(tmp_path / "out.jsonl"), "--device", "cpu"])
    assert result.exit_code == 5 and "did you mean 'ccx-general'" in result.output
    assert not (tmp_path / "out.jsonl").exists()
