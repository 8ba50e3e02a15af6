"""``MLPotJob`` in pyiron-base: static, relax and MD jobs, fresh-process reload, aborted jobs.

pyiron-base creates ``~/pyiron.db`` and reads ``~/.pyiron`` when it is imported, so it is never
imported in the pytest process. Two subprocesses share one temporary project: the first runs every
job and pickles what it saw, the second (a fresh interpreter that does not import
``ase_mlpot.pyiron``) reloads the jobs from HDF5 and pickles the same. Both run with
``PYIRONSQLFILE`` in the temporary folder and ``HOME`` pointed at an empty folder, which must stay
empty.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE

from ase_mlpot.api import load
from ase_mlpot.io import save_artifact
from ase_mlpot.models.ani import ANIEnsemble
from ase_mlpot.testing import tiny_ani_model

RELAX = {"optimizer": "BFGS", "fmax": 0.01, "steps": 200}
MD_STEPS, MD_INTERVAL = 20, 5

RUN_SCRIPT = r"""
import pickle, sys
from pathlib import Path

import ase.build
import numpy as np

import ase_mlpot.pyiron
from pyiron_base import JOB_CLASS_DICT, Project

root, tiny, ani = (Path(arg) for arg in sys.argv[1:4])
relax_options, md_steps, md_interval = pickle.loads(Path(sys.argv[4]).read_bytes())
pr = Project(str(root / "project"))
seen = {"jobs": {}, "checks": {}}


def record(job, raised=None):
    seen["jobs"][job.job_name] = {
        "status": str(job.status),
        "input": job.input.to_builtin(),
        "output": job.output.to_builtin(),
        "raised": raised,
    }


def run(job):
    try:
        job.run()
    except RuntimeError as error:
        record(job, raised=str(error))
    else:
        record(job)


def submit(name, structure, model, calculation="static", create=None, dtype=None, **options):
    job = (create or pr.create.job.MLPotJob)(name)
    job.structure = structure
    job.input.model = str(model)
    job.input.device = "cpu"
    if dtype is not None:
        job.input.dtype = dtype
    job.input.calculation = calculation
    if calculation != "static":
        getattr(job.input, calculation).update(options)
    run(job)


box = ase.build.molecule("CH3OH")
box.cell = [7.0, 7.5, 8.0]
box.pbc = True
box.center()
submit("static_box", box, tiny, dtype="torch.float64")  # torch's name is accepted too
submit("relax_methanol", ase.build.molecule("CH3OH"), ani, "relax",
       create=pr.mlpot.job.MLPotJob, **relax_options)  # the toolkit's factory
submit("relax_box_cell", box, tiny, "relax", optimizer="FIRE", fmax=1e-4, steps=5,
       relax_cell=True)
for ensemble in ("nve", "langevin"):
    submit(f"md_{ensemble}", ase.build.molecule("CH3OH"), tiny, "md", ensemble=ensemble,
           temperature_K=300.0, timestep_fs=0.25, steps=md_steps, write_interval=md_interval,
           friction=0.05, seed=7)
submit("silane", ase.build.molecule("SiH4"), tiny)

hot = ase.build.molecule("CH4")
hot.cell = [3.0, 3.0, 3.0]
hot.pbc = True
hot.center()
submit("md_hot", hot, tiny, "md", ensemble="nve", temperature_K=10000.0, timestep_fs=1.0,
       steps=200, seed=0)

job = pr.create.job.MLPotJob("bad_input")
try:
    job.structure = "CH4"
except TypeError as error:
    seen["checks"]["structure_type_error"] = str(error)
job.structure = ase.build.molecule("CH4")
job.input.model = str(tiny)
job.input.calculation = "minimise"
try:
    job.run()
except ValueError as error:
    seen["checks"]["calculation_value_error"] = str(error)

seen["checks"]["job_class_dict"] = JOB_CLASS_DICT.get("MLPotJob")
seen["checks"]["models"] = pr.mlpot.models()
Path(sys.argv[5]).write_bytes(pickle.dumps(seen))
"""

RELOAD_SCRIPT = r"""
import pickle, sys
from pathlib import Path

from pyiron_base import Project

root, names = Path(sys.argv[1]), sys.argv[3:]
pr = Project(str(root / "project"))
seen = {"jobs": {}, "table": {}}
for name in names:
    job = pr.load(name)
    final = job.get_structure()
    seen["jobs"][name] = {
        "status": str(job.status),
        "input": job.input.to_builtin(),
        "output": job.output.to_builtin(),
        "class": f"{type(job).__module__}.{type(job).__qualname__}",
        "structure_numbers": job.structure.numbers,
        "final_positions": None if final is None else final.positions,
    }
table = pr.job_table()
seen["table"] = dict(zip(table["job"], table["status"]))
seen["hamilton"] = sorted(set(table["hamilton"]))
seen["formula"] = dict(zip(table["job"], table["chemicalformula"]))
Path(sys.argv[2]).write_bytes(pickle.dumps(seen))
"""

JOB_NAMES = [
    "static_box",
    "relax_methanol",
    "relax_box_cell",
    "md_nve",
    "md_langevin",
    "silane",
    "md_hot",
]


def _python(script: Path, args: list[str], *, root: Path) -> None:
    env = dict(os.environ)
    env.update(
        HOME=str(root / "home"),
        PYIRONSQLFILE=str(root / "pyiron.db"),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    env.pop("PYIRONDISABLE", None)
    env.pop("PYIRONPROJECTPATHS", None)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=root / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, ani1ccx_model: ANIEnsemble) -> Path:
    root = tmp_path_factory.mktemp("pyiron")
    (root / "home").mkdir()
    (root / "cwd").mkdir()
    save_artifact(tiny_ani_model(seed=0), root / "tiny", name="tiny-ani", version="1")
    save_artifact(ani1ccx_model, root / "ani1ccx", name="ani-1ccx-test", version="2")
    return root


@pytest.fixture(scope="module")
def ran(workspace: Path) -> dict[str, Any]:
    script = workspace / "run_jobs.py"
    script.write_text(textwrap.dedent(RUN_SCRIPT))
    options = workspace / "options.pkl"
    options.write_bytes(pickle.dumps((RELAX, MD_STEPS, MD_INTERVAL)))
    out = workspace / "ran.pkl"
    args = [str(workspace), str(workspace / "tiny"), str(workspace / "ani1ccx"), str(options)]
    _python(script, [*args, str(out)], root=workspace)
    return pickle.loads(out.read_bytes())


@pytest.fixture(scope="module")
def reloaded(workspace: Path, ran: dict[str, Any]) -> dict[str, Any]:
    script = workspace / "reload_jobs.py"
    script.write_text(textwrap.dedent(RELOAD_SCRIPT))
    out = workspace / "reloaded.pkl"
    _python(script, [str(workspace), str(out), *JOB_NAMES], root=workspace)
    return pickle.loads(out.read_bytes())


def _assert_same(a: Any, b: Any, where: str = "") -> None:
    """Exact equality of nested dicts, arrays and scalars (HDF5 must round-trip bit for bit)."""
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict), where
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
        assert np.array_equal(a, b), where
    else:
        assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
        assert a == b, f"{where}: {a!r} != {b!r}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _methanol_box() -> Atoms:
    box = molecule("CH3OH")
    box.cell = [7.0, 7.5, 8.0]
    box.pbc = True
    box.center()
    return box


def test_static_job_matches_the_calculator(ran: dict[str, Any], workspace: Path) -> None:
    job = ran["jobs"]["static_box"]
    assert job["status"] == "finished", job
    assert job["input"]["dtype"] == "float64"  # given as "torch.float64", stored by name
    output = job["output"]
    box = _methanol_box()
    box.calc = load(workspace / "tiny", device="cpu")
    assert output["energy"] == pytest.approx(box.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(output["forces"], box.get_forces(), atol=1e-8)
    np.testing.assert_allclose(output["stress"], box.get_stress(), atol=1e-10)
    assert output["energies"].shape == (len(box),)
    assert output["energies"].sum() == pytest.approx(output["energy"], abs=1e-8)
    assert output["energy_std"] > 0  # three members with different random weights
    assert output["forces_std"].shape == (len(box), 3)
    np.testing.assert_array_equal(output["structure"]["numbers"], box.numbers)
    np.testing.assert_allclose(output["structure"]["cell"], box.cell[:])
    assert output["model"] == {
        "name": "tiny-ani",
        "version": "1",
        "revision": None,
        "weights_sha256": _sha256(workspace / "tiny" / "model.safetensors"),
        "config_sha256": _sha256(workspace / "tiny" / "config.json"),
    }
    assert "trajectory" not in output
    assert job["input"]["structure"]["pbc"].tolist() == [True, True, True]


def test_relax_matches_plain_ase(ran: dict[str, Any], workspace: Path) -> None:
    job = ran["jobs"]["relax_methanol"]
    assert job["status"] == "finished", job
    output = job["output"]
    atoms = molecule("CH3OH")
    atoms.calc = load(workspace / "ani1ccx", device="cpu")
    optimizer = BFGS(atoms, logfile=None)
    converged = optimizer.run(fmax=RELAX["fmax"], steps=RELAX["steps"])
    assert converged and output["converged"]
    assert output["n_steps"] == optimizer.nsteps > 1
    assert abs(output["energy"] - atoms.get_potential_energy()) < 1e-6
    np.testing.assert_allclose(output["structure"]["positions"], atoms.positions, atol=1e-5)
    trajectory = output["trajectory"]
    frames = optimizer.nsteps + 1  # the initial structure and one frame per step
    assert trajectory["positions"].shape == (frames, len(atoms), 3)
    assert trajectory["energies"].shape == trajectory["fmax"].shape == (frames,)
    assert trajectory["energies"][-1] < trajectory["energies"][0]
    assert trajectory["fmax"][-1] < RELAX["fmax"] < trajectory["fmax"][0]
    assert output["model"]["name"] == "ani-1ccx-test"
    assert output["model"]["weights_sha256"] == _sha256(workspace / "ani1ccx" / "model.safetensors")
    assert "stress" not in output  # a molecule in vacuum


def test_cell_relaxation_matches_plain_ase(ran: dict[str, Any], workspace: Path) -> None:
    job = ran["jobs"]["relax_box_cell"]
    assert job["status"] == "finished", job
    output = job["output"]
    box = _methanol_box()
    box.calc = load(workspace / "tiny", device="cpu")
    optimizer = FIRE(FrechetCellFilter(box), logfile=None)
    optimizer.run(fmax=1e-4, steps=5)
    assert output["converged"] is False and output["n_steps"] == 5
    assert abs(output["energy"] - box.get_potential_energy()) < 1e-6
    np.testing.assert_allclose(output["structure"]["cell"], box.cell[:], atol=1e-8)
    cells = output["trajectory"]["cells"]
    assert cells.shape == (6, 3, 3)
    assert not np.allclose(cells[-1], cells[0])  # the cell moved
    np.testing.assert_allclose(output["stress"], box.get_stress(), atol=1e-10)


@pytest.mark.parametrize("ensemble", ["nve", "langevin"])
def test_md_trajectory(ran: dict[str, Any], ensemble: str) -> None:
    job = ran["jobs"][f"md_{ensemble}"]
    assert job["status"] == "finished", job
    output = job["output"]
    trajectory = output["trajectory"]
    np.testing.assert_array_equal(trajectory["steps"], np.arange(0, MD_STEPS + 1, MD_INTERVAL))
    np.testing.assert_allclose(trajectory["times_fs"], trajectory["steps"] * 0.25)
    frames = len(trajectory["steps"])
    assert trajectory["positions"].shape == (frames, 6, 3)
    assert np.all(np.isfinite(trajectory["temperatures"]))
    assert trajectory["temperatures"][0] > 50  # thermalised from 300 K, not started at rest
    np.testing.assert_array_equal(trajectory["positions"][-1], output["structure"]["positions"])
    assert trajectory["energies"][-1] == pytest.approx(output["energy"], abs=1e-10)
    total = trajectory["energies"] + trajectory["kinetic_energies"]
    drift = np.abs(total - total[0]).max()
    if ensemble == "nve":
        assert drift < 2e-3, f"NVE total energy drifts by {drift} eV"
    else:
        assert drift > 2e-3, "the Langevin thermostat should exchange energy"


def test_md_seeded_ensembles_differ(ran: dict[str, Any]) -> None:
    nve, langevin = (ran["jobs"][f"md_{e}"]["output"]["trajectory"] for e in ("nve", "langevin"))
    np.testing.assert_array_equal(nve["positions"][0], langevin["positions"][0])
    assert not np.allclose(nve["positions"][-1], langevin["positions"][-1])


def test_unsupported_element_aborts(ran: dict[str, Any]) -> None:
    job = ran["jobs"]["silane"]
    assert job["status"] == "aborted"
    assert "aborted" in job["raised"]
    output = job["output"]
    assert output["error"]["type"] == "UnsupportedElementError"
    assert "Si" in output["error"]["message"]
    assert set(output) == {"error", "model"}  # no partial results


def test_diverging_md_aborts(ran: dict[str, Any]) -> None:
    job = ran["jobs"]["md_hot"]
    assert job["status"] == "aborted"
    output = job["output"]
    assert output["error"]["type"] == "InvalidStructureError"
    assert "overlapping" in output["error"]["message"]
    assert 0 <= output["error"]["step"] < 200
    assert set(output) == {"error", "model"}


def test_input_checks_and_registration(ran: dict[str, Any]) -> None:
    checks = ran["checks"]
    assert "ase.Atoms" in checks["structure_type_error"]
    assert "minimise" in checks["calculation_value_error"]
    assert checks["job_class_dict"] == "ase_mlpot.pyiron"
    assert isinstance(checks["models"], list)
    assert checks["models"] and all(isinstance(name, str) for name in checks["models"])


@pytest.mark.parametrize("name", JOB_NAMES)
def test_reload_in_fresh_process_is_identical(
    ran: dict[str, Any], reloaded: dict[str, Any], name: str
) -> None:
    before, after = ran["jobs"][name], reloaded["jobs"][name]
    assert after["class"] == "ase_mlpot.pyiron.MLPotJob"
    assert after["status"] == before["status"] == reloaded["table"][name]
    _assert_same(before["output"], after["output"], f"{name}/output")
    _assert_same(before["input"], after["input"], f"{name}/input")
    numbers = before["input"]["structure"]["numbers"]
    np.testing.assert_array_equal(after["structure_numbers"], numbers)
    if before["status"] == "finished":
        np.testing.assert_array_equal(
            after["final_positions"], before["output"]["structure"]["positions"]
        )
    else:
        assert after["final_positions"] is None


def test_job_table(reloaded: dict[str, Any]) -> None:
    assert reloaded["hamilton"] == ["MLPotJob"]
    assert reloaded["table"]["static_box"] == "finished"
    assert reloaded["table"]["silane"] == "aborted"
    assert reloaded["formula"]["static_box"] == "CH4O"
    assert reloaded["formula"]["silane"] == "H4Si"


def test_nothing_written_outside_the_temporary_folder(
    reloaded: dict[str, Any], workspace: Path
) -> None:
    assert list((workspace / "home").iterdir()) == []
    assert (workspace / "pyiron.db").is_file()
    assert (workspace / "project" / "static_box.h5").is_file()
