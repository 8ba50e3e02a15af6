"""The zoo's own bundled models: offline use, the README main job, and the transfer-learning
recipe visible in the shipped weights (each fine-tuned model's frozen parameters equal its
parent's: for ccx-general, dft-general's hidden layers 1 and 3)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.optimize import BFGS

from ase_mlpot import hub, list_models, load
from ase_mlpot.api import load_artifact_by_name

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ("dft-general", "ccx-general", "so3krates-dft-general", "so3krates-ccx-general")
#: (fine-tuned model, its parent)
TRANSFER_LEARNED = [("ccx-general", "dft-general"),
                    ("so3krates-ccx-general", "so3krates-dft-general")]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An empty cache and no network, as on a fresh machine without internet."""
    env = {"HF_HOME": str(tmp_path / "hf"), "ASE_MLPOT_CACHE": str(tmp_path / "zoo"),
           "HF_HUB_OFFLINE": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return env


def test_bundled_models_are_listed_as_usable_offline(offline: dict[str, str]) -> None:
    cached = list_models(cached=True)
    for name in BUNDLED:
        assert name in cached
        assert hub.model_status(name).pinning == hub.BUNDLED
        assert [check.status for check in hub.verify(name)] == ["ok", "ok"]


@pytest.mark.parametrize("name", ["ccx-general", "so3krates-ccx-general"])
def test_ccx_models_relax_and_report_uncertainty_offline(offline: dict[str, str],
                                                         name: str) -> None:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    atoms.calc = load(name, device="cpu")
    assert atoms.calc.parameters["model"] == name
    start = atoms.get_potential_energy()
    assert BFGS(atoms, logfile=None).run(fmax=0.02, steps=300)
    assert atoms.get_potential_energy() < start
    assert np.abs(atoms.get_forces()).max() < 0.02
    assert atoms.calc.results["energy_std"] > 0.0


@pytest.mark.parametrize(("tuned", "base"), TRANSFER_LEARNED, ids=[t for t, _ in TRANSFER_LEARNED])
def test_frozen_parameters_are_the_base_models(offline: dict[str, str], tuned: str,
                                               base: str) -> None:
    """Every fine-tuned zoo model, member by member: the architecture's default frozen set is
    bit-identical to the parent member's; every trained parameter moved, except in a member
    whose starting point stayed the best on its validation fold (best epoch 0), which keeps
    the parent's weights."""
    parent, _ = load_artifact_by_name(base)
    child, _ = load_artifact_by_name(tuned)
    assert child.metadata["model"]["parent"] == base
    frozen = child.model.transfer_learning_frozen()
    members = json.loads((child.path / "training.json").read_text())["members"]
    assert len(members) == child.model.ensemble_size
    assert any(member["best_epoch"] > 0 for member in members), "fine-tuning changed nothing"
    for k, member in enumerate(members):
        parent_state = parent.model.member(k).state_dict()
        for name, value in child.model.member(k).named_parameters():
            unchanged = torch.equal(value, parent_state[name])
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in frozen):
                assert unchanged, (k, name)
            elif value.requires_grad:
                assert unchanged == (member["best_epoch"] == 0), (k, name)


def test_readme_main_job_runs_offline(offline: dict[str, str], tmp_path: Path) -> None:
    """The README's example, exactly as written, in a fresh interpreter without network (and
    without deprecation warnings: users copy it)."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    main_job = next(block for block in blocks if 'load("ccx-general"' in block)
    script = tmp_path / "main_job.py"
    script.write_text(main_job)
    warnings_are_errors = ["-W", "error::DeprecationWarning", "-W", "error::FutureWarning"]
    result = subprocess.run([sys.executable, *warnings_are_errors, str(script)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, **offline})
    assert result.returncode == 0, result.stderr
    assert "eV" in result.stdout
