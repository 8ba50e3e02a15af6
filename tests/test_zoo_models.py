"""The zoo's own bundled models: offline use, the README main job, and the transfer-learning
recipe visible in the shipped weights (ccx-general's frozen layers equal dft-general's)."""

from __future__ import annotations

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
BUNDLED = ("dft-general", "ccx-general")


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


def test_ccx_general_relaxes_and_reports_uncertainty_offline(offline: dict[str, str]) -> None:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    atoms.calc = load("ccx-general", device="cpu")
    assert atoms.calc.parameters["model"] == "ccx-general"
    start = atoms.get_potential_energy()
    assert BFGS(atoms, logfile=None).run(fmax=0.02, steps=300)
    assert atoms.get_potential_energy() < start
    assert np.abs(atoms.get_forces()).max() < 0.02
    assert atoms.calc.results["energy_std"] > 0.0


def test_ccx_general_keeps_dft_general_layers_1_and_3(offline: dict[str, str]) -> None:
    """The ANI-1ccx recipe, checked on our own shipped weights as on the published ones."""
    dft, _ = load_artifact_by_name("dft-general")
    ccx, _ = load_artifact_by_name("ccx-general")
    assert ccx.metadata["model"]["parent"] == "dft-general"
    dft_state, ccx_state = dft.model.state_dict(), ccx.model.state_dict()
    for key, value in ccx_state.items():
        layer = int(key.rsplit(".", 1)[1])
        assert torch.equal(value, dft_state[key]) == (layer in (0, 2)), key


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
