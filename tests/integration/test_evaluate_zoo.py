"""``zoo/evaluate_zoo.py`` end to end on a tiny random-weight artifact (numbers meaningless)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ase_mlpot.io import save_artifact
from ase_mlpot.testing import tiny_ani_model
from tests.zoo_scripts import load_zoo_script


def test_evaluate_zoo_tiny_artifact(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = save_artifact(tiny_ani_model().double(), tmp_path / "tiny-art", name="tiny")
    # the training record names the folds (split seed) and held-out molecules for the
    # out-of-fold scores
    script = load_zoo_script("evaluate_zoo")
    record = {"recipe": {"training": {"split_seed": 0}},
              "held_out_molecules": script.read_molecule_list(script.TEST_MOLECULES)}
    (artifact / "training.json").write_text(json.dumps(record))
    output = tmp_path / "results"

    assert script.main([str(artifact), "--shared", str(shared_data), "-o", str(output)]) == 0

    result = json.loads((output / "tiny.json").read_text())
    assert set(result) == {"model", "held_out_cc", "held_out_dft", "out_of_fold_cc", "hc7_isol6",
                           "s66x10"}
    assert result["model"]["ensemble_size"] == 3
    assert result["model"]["provenance"]["name"] == "tiny"
    for key in ("held_out_cc", "held_out_dft"):  # the corpus labels every held-out molecule
        assert result[key] is not None, key
        assert result[key]["conformations"] > 0 and "energy" in result[key]
    out_of_fold = result["out_of_fold_cc"]  # every CC-labelled molecule but the held-out ones
    held_out = set(script.read_molecule_list(script.TEST_MOLECULES))
    assert sum(out_of_fold["folds"]) == out_of_fold["conformations"] > 0
    assert len(out_of_fold["folds"]) == 3
    assert not held_out & set(out_of_fold["relative_conformer_energy_per_molecule"])

    hc7 = result["hc7_isol6"]
    assert len(hc7["reactions"]) == 12
    assert {r["subset"] for r in hc7["reactions"]} == {"HC7", "ISOL6"}
    assert set(hc7["summary"]) == {"HC7", "ISOL6"}
    assert hc7["summary"]["HC7"]["n"] == 7
    assert hc7["summary"]["ISOL6"]["n"] == 5
    # The published ANI-1ccx numbers reproduce the README's error summary.
    assert hc7["summary"]["HC7"]["published"]["ani-1ccx"]["mad"] == pytest.approx(2.53, abs=0.01)
    for row in hc7["reactions"]:
        assert row["error"] == pytest.approx(row["model"] - row["reference"])

    s66 = result["s66x10"]
    assert s66["n"] == 660
    assert len(s66["dimers"]) == 660
    assert {k: v["n"] for k, v in s66["subsets"].items()} == {
        "all": 660, "z=1.0": 66, "z>=0.9": 528
    }
    for subset in s66["subsets"].values():
        assert set(subset) == {"n", "mae", "rmse", "mse"}
    assert s66["baselines"]["ani-1ccx"]["all"] == {"mae": 2.82, "rmse": 4.54, "mse": 2.59}
    assert set(s66["baselines"]) == {"ani-1ccx", "ani-1x"}

    assert "S66x10" in capsys.readouterr().out
