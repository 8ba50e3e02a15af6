"""`zoo/train_zoo.py`: the committed copy of the xTB stage, kept after training and restored
on a fresh checkout so that the later stages can be retrained without the hours of the xTB one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zoo_scripts import load_zoo_script


def test_xtb_stage_is_kept_and_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_zoo = load_zoo_script("train_zoo")
    monkeypatch.setattr(train_zoo, "STAGES", tmp_path / "stages")
    trained = tmp_path / "work" / "xtb-pretrain"
    trained.mkdir(parents=True)
    (trained / "config.json").write_text("{}")
    (trained / "model.safetensors").write_bytes(b"weights v1")
    kept = tmp_path / "stages" / "xtb-pretrain" / "model.safetensors"
    train_zoo.keep_xtb_stage(trained)
    assert kept.read_bytes() == b"weights v1"

    (trained / "model.safetensors").write_bytes(b"weights v2")  # a retrained stage replaces it
    train_zoo.keep_xtb_stage(trained)
    assert kept.read_bytes() == b"weights v2"

    fresh = tmp_path / "fresh-checkout" / "xtb-pretrain"  # zoo/work is not committed
    train_zoo.restore_xtb_stage(fresh)
    assert (fresh / "model.safetensors").read_bytes() == b"weights v2"
    (fresh / "model.safetensors").write_bytes(b"local")  # an existing local stage is kept
    train_zoo.restore_xtb_stage(fresh)
    assert (fresh / "model.safetensors").read_bytes() == b"local"
