"""The calculator inside ASE workflows, loading artifacts, and the ``convert`` command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import units
from ase.build import molecule
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS, FIRE
from ase.vibrations import Vibrations
from click.testing import CliRunner

import ase_mlpot
from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.cli import main
from ase_mlpot.errors import ChecksumError, DeviceUnavailableError, ModelFormatError
from ase_mlpot.io import load_artifact, save_artifact
from ase_mlpot.testing import periodic_water_box, tiny_ani_model, water


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return save_artifact(tiny_ani_model(seed=1), tmp_path / "tiny", name="tiny-ani", version="1")


def test_load_artifact_folder_records_provenance(artifact: Path) -> None:
    calc = ase_mlpot.load(artifact, device="cpu", dtype=torch.float32)
    assert calc.dtype == torch.float32
    assert calc.parameters["model"] == "tiny-ani"
    assert calc.parameters["model_version"] == "1"
    metadata = json.loads((artifact / "config.json").read_text())
    assert calc.parameters["weights_sha256"] == metadata["weights_sha256"]
    assert calc.parameters["config_sha256"] == hashlib.sha256(
        (artifact / "config.json").read_bytes()).hexdigest()
    assert calc.provenance["config_sha256"] == calc.parameters["config_sha256"]
    assert metadata["versions"]["torch"] == torch.__version__
    atoms = water()
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())


def test_default_dtype_is_float64(artifact: Path) -> None:
    assert ase_mlpot.load(artifact, device="cpu").dtype == torch.float64


@pytest.mark.parametrize("name, dtype", [("float32", torch.float32),
                                         ("torch.float64", torch.float64)])
def test_dtype_by_name(artifact: Path, name: str, dtype: torch.dtype) -> None:
    calc = ase_mlpot.load(artifact, device="cpu", dtype=name)
    assert calc.dtype == dtype
    assert all(p.dtype == dtype for p in calc.model.parameters())
    atoms = water()
    atoms.calc = calc
    assert atoms.get_forces().dtype == np.float64


@pytest.mark.parametrize("dtype", ["float16", "double", torch.int64, 64])
def test_unknown_dtype_is_refused(artifact: Path, dtype: object) -> None:
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float64'\]"):
        ase_mlpot.load(artifact, device="cpu", dtype=dtype)


def test_tampered_weights_are_refused(artifact: Path) -> None:
    weights = artifact / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256"):
        load_artifact(artifact)


def test_newer_format_version_is_refused(artifact: Path) -> None:
    config = json.loads((artifact / "config.json").read_text())
    config["format_version"] = 99
    (artifact / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="upgrade ase_mlpot"):
        load_artifact(artifact)


def test_unknown_config_key_is_refused(artifact: Path) -> None:
    config = json.loads((artifact / "config.json").read_text())
    config["config"]["hidden_size"] = 3
    (artifact / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="hidden_size"):
        load_artifact(artifact)


def test_device_auto_and_cuda_request() -> None:
    calc = MLPotCalculator(tiny_ani_model(), device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert calc.device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
            MLPotCalculator(tiny_ani_model(), device="cuda")


def test_calculate_batch_edge_cases() -> None:
    """No structures: no results; stress of a batch with a molecule: the same error as
    ``get_stress`` of that molecule (not a stress divided by a zero volume)."""
    from ase.calculators.calculator import PropertyNotImplementedError

    calc = MLPotCalculator(tiny_ani_model(), device="cpu")
    assert calc.calculate_batch([]) == []
    with pytest.raises(PropertyNotImplementedError, match=r"structures \[0\] are not"):
        calc.calculate_batch([water(), periodic_water_box()], stress=True)
    box = calc.calculate_batch([periodic_water_box()], stress=True)[0]
    assert np.isfinite(box["stress"]).all()


def test_instances_do_not_share_property_lists() -> None:
    first, second = MLPotCalculator(tiny_ani_model()), MLPotCalculator(tiny_ani_model())
    first.implemented_properties.append("dipole")
    assert "dipole" not in second.implemented_properties


@pytest.mark.parametrize("optimizer", [BFGS, FIRE])
def test_optimizers_reduce_forces(optimizer) -> None:
    atoms = molecule("CH4")
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    atoms.calc = MLPotCalculator(tiny_ani_model(seed=3), device="cpu")
    start = atoms.get_potential_energy()
    assert optimizer(atoms, logfile=None).run(fmax=0.05, steps=300)  # converged
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() < 0.05
    assert atoms.get_potential_energy() < start


def test_cell_relaxation_with_frechet_filter(ani1ccx_model) -> None:
    """A compressed water box (ANI-1ccx) expands: energy falls and the cell changes."""
    atoms = periodic_water_box(n_side=2, spacing=2.9)
    atoms.calc = MLPotCalculator(ani1ccx_model, device="cpu")
    energy_before, volume_before = atoms.get_potential_energy(), atoms.get_volume()
    assert np.abs(atoms.get_stress()).max() > 1e-3
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=0.1, steps=15)
    assert atoms.get_potential_energy() < energy_before
    assert atoms.get_volume() != pytest.approx(volume_before, rel=1e-4)


def test_molecular_dynamics_runs() -> None:
    atoms = molecule("CH3OH")
    atoms.calc = MLPotCalculator(tiny_ani_model(seed=4), device="cpu", min_distance=0.01)
    VelocityVerlet(atoms, timestep=0.25 * units.fs).run(10)
    Langevin(
        atoms,
        timestep=0.25 * units.fs,
        temperature_K=300,
        friction=0.02,
        rng=np.random.default_rng(0),
    ).run(10)
    assert np.isfinite(atoms.get_potential_energy())


def test_vibrations(tmp_path: Path) -> None:
    atoms = molecule("H2O")
    atoms.calc = MLPotCalculator(tiny_ani_model(seed=5), device="cpu")
    vibrations = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.005)
    vibrations.run()
    frequencies = vibrations.get_frequencies()
    assert frequencies.shape == (9,)
    hessian = vibrations.get_vibrations().get_hessian_2d()
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-2 * np.abs(hessian).max())


def test_convert_cli_neurochem_and_torchani(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    neurochem = runner.invoke(
        main,
        [
            "convert",
            str(shared_data / "ani-neurochem-weights" / "ani-1ccx_8x.info"),
            "-o",
            str(tmp_path / "nc"),
            "--name",
            "ani-1ccx",
        ],
    )
    assert neurochem.exit_code == 0, neurochem.output
    state_dict = shared_data / "torchani-statedicts" / "StateDicts" / "ani1ccx_state_dict.pt"
    torchani = runner.invoke(main, ["convert", str(state_dict), "-o", str(tmp_path / "ta")])
    assert torchani.exit_code == 0, torchani.output
    atoms = water()
    energies = []
    for folder in ("nc", "ta"):
        atoms.calc = ase_mlpot.load(tmp_path / folder, device="cpu")
        energies.append(atoms.get_potential_energy())
    assert energies[0] == pytest.approx(-2078.502897, abs=1e-6)
    # The state dict's float32 self energies differ by ≈ −8.6e-5 eV for O (ani.md §5).
    assert energies[1] - energies[0] == pytest.approx(-8.6e-5 + 2 * 3e-7, abs=1e-5)
    again = runner.invoke(main, ["convert", str(state_dict), "-o", str(tmp_path / "ta")])
    assert again.exit_code != 0


def test_load_refuses_meaningless_names(artifact: Path) -> None:
    """An empty name is not the current folder; None is not a name; a folder has no revisions."""
    from ase_mlpot.errors import ModelNotFoundError, RevisionError

    with pytest.raises(ModelNotFoundError, match="empty model name"):
        ase_mlpot.load("")
    with pytest.raises(TypeError, match="not NoneType"):
        ase_mlpot.load(None)  # type: ignore[arg-type]
    with pytest.raises(RevisionError, match="artifact folder"):
        ase_mlpot.load(artifact, revision="abc123")
