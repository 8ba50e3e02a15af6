"""pyiron-base job type for zoo models: static, relaxation and molecular dynamics.

Importing this module registers :class:`MLPotJob` in pyiron-base's ``JOB_CLASS_DICT`` (pyiron-base
has no entry points) and a ``mlpot`` toolkit on :class:`pyiron_base.Project`:

>>> import ase_mlpot.pyiron  # doctest: +SKIP
>>> from pyiron_base import Project  # doctest: +SKIP
>>> pr = Project("water")  # doctest: +SKIP
>>> job = pr.create.job.MLPotJob("h2o")  # or pr.mlpot.job.MLPotJob("h2o")  # doctest: +SKIP
>>> job.structure = ase.build.molecule("H2O")  # doctest: +SKIP
>>> job.input.model = "ccx-general"  # doctest: +SKIP
>>> job.run()  # doctest: +SKIP
>>> pr.load("h2o").output.energy  # in any later process  # doctest: +SKIP

The job keeps only plain data: the structure as arrays (``numbers``, ``positions``, ``cell``,
``pbc``) and the model's name or folder and revision. The model is loaded inside
:meth:`MLPotJob.run_static`, so jobs serialise and can be sent to a queue.

Input (``job.input``):
    model: Zoo name or artifact folder. revision: hub revision overriding the registry's pin.
    device: ``"auto"``, ``"cpu"``, ``"cuda"``. dtype: ``"float64"`` (default) or ``"float32"``.
    calculation: ``"static"`` (default), ``"relax"`` or ``"md"``.
    relax: ``optimizer`` (``"BFGS"``, ``"FIRE"``, ``"LBFGS"``), ``fmax`` (eV/Å), ``steps``,
    ``relax_cell`` (cell and positions through :class:`ase.filters.FrechetCellFilter`; fully
    periodic structures only).
    md: ``ensemble`` (``"nve"`` or ``"langevin"``, NVT), ``temperature_K`` (initial
    Maxwell-Boltzmann velocities, and the thermostat target), ``timestep_fs``, ``steps``,
    ``write_interval`` (steps between trajectory frames), ``friction`` (1/fs, Langevin), ``seed``.

Output (``job.output``) on success:
    energy (eV), forces (eV/Å), stress (eV/Å³, Voigt, fully periodic only), energies (per atom),
    energy_std, forces_std (ensemble spread; zero for a single model), structure (final, as
    arrays), model (name, version, revision, weights_sha256, config_sha256), and for relax/md a
    trajectory: ``steps``, ``positions``, ``cells``, ``energies`` (potential, eV) plus ``fmax``
    (relax) or ``temperatures`` (K), ``kinetic_energies`` and ``times_fs`` (md); relax also
    stores ``converged`` and ``n_steps``.

A failed run (unsupported element, overlapping atoms, non-finite energy, unknown model) stores
``output.error`` (``type``, ``message`` and, for md, ``step``), leaves the job ``aborted`` with no
partial results and raises :class:`RuntimeError`, as pyiron does for failed executables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms, units
from pyiron_base import JOB_CLASS_DICT, Project, PythonTemplateJob, Toolkit
from pyiron_base.jobs.job.factory import JobFactoryCore

if TYPE_CHECKING:
    from ase.optimize.optimize import Optimizer

    from ase_mlpot.calculator import MLPotCalculator

__all__ = ["CALCULATIONS", "MLPotJob", "MLPotTools", "atoms_from_arrays", "atoms_to_arrays"]

#: The calculation types of :class:`MLPotJob`.
CALCULATIONS = ("static", "relax", "md")
_OPTIMIZERS = ("BFGS", "FIRE", "LBFGS")
_ENSEMBLES = ("nve", "langevin")
#: Boolean entries (section, key) of input and output: pyiron's HDF5 layer stores a Python bool
#: as the integer 0/1, so they are turned back into bools when a job is loaded.
_BOOLEANS = (("input", ("relax", "relax_cell")), ("output", ("converged",)))


class MLPotDivergenceError(RuntimeError):
    """A molecular-dynamics run whose energy or positions became non-finite."""


def atoms_to_arrays(atoms: Any) -> dict[str, np.ndarray]:
    """Plain arrays of a structure: ``numbers``, ``positions``, ``cell``, ``pbc``.

    Args:
        atoms: An :class:`ase.Atoms` (pyiron_atomistics structures are subclasses of it) or any
            object with ``get_atomic_numbers()``, ``positions``, ``cell`` and ``pbc``.

    Returns:
        Copies of the arrays (int64, float64, float64 (3, 3), bool (3,)).

    Raises:
        TypeError: ``atoms`` is not a structure.
    """
    if not isinstance(atoms, Atoms):
        required = ("get_atomic_numbers", "positions", "cell", "pbc")
        if not all(hasattr(atoms, attribute) for attribute in required):
            raise TypeError(
                f"job.structure must be an ase.Atoms or a pyiron_atomistics structure, "
                f"not {type(atoms).__name__}"
            )
    numbers = np.asarray(atoms.get_atomic_numbers(), dtype=np.int64).copy()
    positions = np.asarray(atoms.positions, dtype=np.float64).reshape(len(numbers), 3).copy()
    cell = np.asarray(atoms.cell, dtype=np.float64).reshape(3, 3).copy()
    pbc = np.broadcast_to(np.asarray(atoms.pbc, dtype=bool), (3,)).copy()
    return {"numbers": numbers, "positions": positions, "cell": cell, "pbc": pbc}


def atoms_from_arrays(arrays: Mapping[str, Any]) -> Atoms:
    """Rebuild an :class:`ase.Atoms` from :func:`atoms_to_arrays` output (dict or DataContainer)."""
    return Atoms(
        numbers=np.asarray(arrays["numbers"], dtype=np.int64),
        positions=np.asarray(arrays["positions"], dtype=np.float64),
        cell=np.asarray(arrays["cell"], dtype=np.float64),
        pbc=np.asarray(arrays["pbc"], dtype=bool),
    )


def _plain(value: Any) -> Any:
    """``DataContainer`` (after reload) or dict → dict; other values unchanged."""
    if hasattr(value, "to_builtin"):
        return value.to_builtin()
    return value


class MLPotJob(PythonTemplateJob):
    """A static, relaxation or MD calculation with an ase_mlpot zoo model.

    Create it from a project (``pr.create.job.MLPotJob("name")``), set :attr:`structure` and
    ``input.model``, choose ``input.calculation`` and its options, then ``run()``. Job names are
    sanitised by pyiron (``"ccx-general"`` becomes ``"ccxmgeneral"``); choose names that describe
    the calculation, not the model.

    Args:
        project: The job's :class:`pyiron_base.storage.hdfio.ProjectHDFio`.
        job_name: The job name.
    """

    def __init__(self, project: Any, job_name: str) -> None:
        super().__init__(project, job_name)
        self.input.model = None
        self.input.revision = None
        self.input.device = "auto"
        self.input.dtype = "float64"
        self.input.calculation = "static"
        self.input.structure = None
        self.input.relax = {"optimizer": "BFGS", "fmax": 0.01, "steps": 500, "relax_cell": False}
        self.input.md = {
            "ensemble": "nve",
            "temperature_K": 300.0,
            "timestep_fs": 0.5,
            "steps": 100,
            "write_interval": 1,
            "friction": 0.01,
            "seed": 0,
        }

    # ------------------------------------------------------------------ structure

    @property
    def structure(self) -> Atoms | None:
        """The input structure as a new :class:`ase.Atoms` (``None`` until set)."""
        if self.input.structure is None:
            return None
        return atoms_from_arrays(self.input.structure)

    @structure.setter
    def structure(self, atoms: Any) -> None:
        self.input.structure = atoms_to_arrays(atoms)

    def get_structure(self) -> Atoms | None:
        """The final structure of a finished job (``None`` before it has run or when aborted)."""
        if "structure" not in self.output:
            return None
        return atoms_from_arrays(self.output.structure)

    def from_hdf(self, hdf: Any = None, group_name: str | None = None) -> None:
        """Load the job from HDF5, with its boolean input and output entries as ``bool``."""
        super().from_hdf(hdf=hdf, group_name=group_name)
        for container_name, path in _BOOLEANS:
            container = getattr(self, container_name)
            *parents, key = path
            for parent in parents:
                container = container.get(parent) if container is not None else None
            if container is not None and key in container:
                container[key] = bool(container[key])

    def db_entry(self) -> dict[str, Any]:
        """pyiron's database entry, with the input structure's chemical formula."""
        entry = super().db_entry()
        structure = self.structure
        if structure is not None:
            entry["chemicalformula"] = structure.get_chemical_formula()
        return entry

    # ------------------------------------------------------------------ input checks

    def _options(self, section: str) -> dict[str, Any]:
        return dict(_plain(self.input[section]) or {})

    def validate_ready_to_run(self) -> None:
        """Check the input before the job is saved and run.

        Raises:
            ValueError: Missing structure or model, or an unknown calculation, optimiser, ensemble
                or dtype.
        """
        super().validate_ready_to_run()
        if self.input.structure is None:
            raise ValueError("set job.structure before running the job")
        if not self.input.model:
            raise ValueError("set job.input.model to a zoo model name or an artifact folder")
        if self.input.calculation not in CALCULATIONS:
            raise ValueError(
                f"job.input.calculation must be one of {CALCULATIONS}, "
                f"not {self.input.calculation!r}"
            )
        if self.input.dtype is not None:  # stored by name; torch's names are fine too
            from ase_mlpot.calculator import resolve_dtype

            try:
                dtype = resolve_dtype(str(self.input.dtype))
            except ValueError as error:
                raise ValueError(f"job.input.{error}") from None
            self.input.dtype = str(dtype).removeprefix("torch.")
        relax = self._options("relax")
        if self.input.calculation == "relax" and relax.get("optimizer") not in _OPTIMIZERS:
            raise ValueError(
                f"job.input.relax['optimizer'] must be one of {_OPTIMIZERS}, "
                f"not {relax.get('optimizer')!r}"
            )
        md = self._options("md")
        if self.input.calculation == "md":
            if str(md.get("ensemble", "")).lower() not in _ENSEMBLES:
                raise ValueError(
                    f"job.input.md['ensemble'] must be one of {_ENSEMBLES}, "
                    f"not {md.get('ensemble')!r}"
                )
            if int(md.get("write_interval", 1)) < 1:
                raise ValueError("job.input.md['write_interval'] must be at least 1")

    # ------------------------------------------------------------------ run

    def _calculator(self) -> MLPotCalculator:
        from ase_mlpot.api import load

        return load(
            str(self.input.model),
            revision=self.input.revision or None,
            device=self.input.device or "auto",
            dtype=str(self.input.dtype) if self.input.dtype else None,
        )

    def run_static(self) -> None:
        """Load the model, run the calculation and write the output (or abort with its reason)."""
        self.status.running = True
        results: dict[str, Any] = {}
        try:
            calc = self._calculator()
            results["model"] = {
                "name": calc.parameters.get("model"),
                "version": calc.parameters.get("model_version"),
                "revision": calc.parameters.get("revision"),
                "weights_sha256": calc.parameters.get("weights_sha256"),
                "config_sha256": calc.parameters.get("config_sha256"),
            }
            atoms = atoms_from_arrays(self.input.structure)
            atoms.calc = calc
            if self.input.calculation == "relax":
                results.update(self._relax(atoms))
            elif self.input.calculation == "md":
                results.update(self._md(atoms))
            results.update(_final_results(atoms))
        except Exception as error:
            self._abort(error, model=results.get("model"))
            raise RuntimeError(
                f"MLPotJob {self.job_name!r} aborted: {type(error).__name__}: {error}"
            ) from error
        for key, value in results.items():
            self.output[key] = value
        self.status.finished = True
        self.to_hdf()

    def _abort(self, error: Exception, *, model: dict[str, Any] | None) -> None:
        self.output.clear()
        reason: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
        step = getattr(error, "step", None)
        if step is not None:
            reason["step"] = int(step)
        self.output.error = reason
        if model is not None:
            self.output.model = model
        self.status.aborted = True
        self.to_hdf()

    def _relax(self, atoms: Atoms) -> dict[str, Any]:
        from ase.filters import FrechetCellFilter
        from ase.optimize import BFGS, FIRE, LBFGS

        options = self._options("relax")
        optimizers = {"BFGS": BFGS, "FIRE": FIRE, "LBFGS": LBFGS}
        target: Any = atoms
        if options.get("relax_cell", False):
            if not np.all(atoms.pbc):
                raise ValueError("relax_cell needs a fully periodic structure")
            target = FrechetCellFilter(atoms)
        optimizer: Optimizer = optimizers[options["optimizer"]](target, logfile=None)
        frames: dict[str, list[Any]] = {
            "steps": [],
            "positions": [],
            "cells": [],
            "energies": [],
            "fmax": [],
        }

        def record() -> None:
            frames["steps"].append(optimizer.nsteps)
            frames["positions"].append(atoms.get_positions())
            frames["cells"].append(np.array(atoms.cell))
            frames["energies"].append(atoms.get_potential_energy())
            forces = target.get_forces()
            frames["fmax"].append(float(np.sqrt((forces**2).sum(axis=1).max())))

        optimizer.attach(record, interval=1)
        converged = optimizer.run(
            fmax=float(options.get("fmax", 0.01)), steps=int(options.get("steps", 500))
        )
        return {
            "converged": bool(converged),
            "n_steps": int(optimizer.nsteps),
            "trajectory": {key: np.array(value) for key, value in frames.items()},
        }

    def _md(self, atoms: Atoms) -> dict[str, Any]:
        from ase.constraints import FixCom
        from ase.md import velocitydistribution
        from ase.md.langevin import Langevin
        from ase.md.velocitydistribution import Stationary, ZeroRotation
        from ase.md.verlet import VelocityVerlet

        options = self._options("md")
        temperature = float(options.get("temperature_K", 300.0))
        timestep = float(options.get("timestep_fs", 0.5)) * units.fs
        seed = int(options.get("seed", 0))
        interval = int(options.get("write_interval", 1))
        # ASE 3.29 renamed MaxwellBoltzmannDistribution (now deprecated) to thermalize_momenta.
        thermalize = getattr(
            velocitydistribution,
            "thermalize_momenta",
            velocitydistribution.MaxwellBoltzmannDistribution,
        )
        thermalize(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
        Stationary(atoms)
        if not np.any(atoms.pbc):
            ZeroRotation(atoms)
        if str(options.get("ensemble", "nve")).lower() == "langevin":
            # ASE >= 3.28 deprecates Langevin(fixcm=True) in favour of a FixCom constraint.
            atoms.set_constraint(FixCom())
            dynamics: Any = Langevin(
                atoms,
                timestep,
                temperature_K=temperature,
                friction=float(options.get("friction", 0.01)) / units.fs,
                fixcm=False,
                rng=np.random.default_rng(seed + 1),
                logfile=None,
            )
        else:
            dynamics = VelocityVerlet(atoms, timestep, logfile=None)
        frames: dict[str, list[Any]] = {
            "steps": [],
            "times_fs": [],
            "positions": [],
            "cells": [],
            "energies": [],
            "kinetic_energies": [],
            "temperatures": [],
        }

        def check() -> None:
            energy = atoms.get_potential_energy()
            if not (math.isfinite(energy) and np.all(np.isfinite(atoms.positions))):
                error = MLPotDivergenceError(
                    f"MD diverged at step {dynamics.nsteps}: non-finite energy or positions"
                )
                error.step = dynamics.nsteps  # type: ignore[attr-defined]
                raise error
            if dynamics.nsteps % interval == 0:
                frames["steps"].append(dynamics.nsteps)
                frames["times_fs"].append(dynamics.nsteps * timestep / units.fs)
                frames["positions"].append(atoms.get_positions())
                frames["cells"].append(np.array(atoms.cell))
                frames["energies"].append(energy)
                frames["kinetic_energies"].append(atoms.get_kinetic_energy())
                frames["temperatures"].append(atoms.get_temperature())

        dynamics.attach(check, interval=1)
        try:
            dynamics.run(int(options.get("steps", 100)))
        except Exception as error:
            if getattr(error, "step", None) is None:
                error.step = dynamics.nsteps  # type: ignore[attr-defined]
            raise
        return {
            "n_steps": int(dynamics.nsteps),
            "trajectory": {key: np.array(value) for key, value in frames.items()},
        }


def _final_results(atoms: Atoms) -> dict[str, Any]:
    calc = atoms.calc
    assert calc is not None
    periodic = bool(np.all(atoms.pbc))
    calc.get_property("forces_std", atoms)  # one evaluation that also fills the others
    results: dict[str, Any] = {
        "energy": float(calc.get_property("energy", atoms)),
        "forces": np.array(calc.get_property("forces", atoms)),
        "energies": np.array(calc.get_property("energies", atoms)),
        "energy_std": float(calc.get_property("energy_std", atoms)),
        "forces_std": np.array(calc.get_property("forces_std", atoms)),
        "structure": atoms_to_arrays(atoms),
    }
    if not math.isfinite(results["energy"]):
        raise MLPotDivergenceError("the final energy is not finite")
    if periodic:
        results["stress"] = np.array(calc.get_property("stress", atoms))
    return results


class _MLPotJobFactory(JobFactoryCore):
    """``pr.mlpot.job.MLPotJob("name")``."""

    @property
    def _job_class_dict(self) -> dict[str, type]:
        return {"MLPotJob": MLPotJob}


class MLPotTools(Toolkit):
    """The ``pr.mlpot`` toolkit: ``pr.mlpot.job.MLPotJob(name)`` and ``pr.mlpot.models()``.

    Args:
        project: The project the toolkit belongs to.
    """

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        self._job = _MLPotJobFactory(project)

    @property
    def job(self) -> _MLPotJobFactory:
        """Factory of :class:`MLPotJob` in this project."""
        return self._job

    @staticmethod
    def models(*, cached: bool = False) -> list[str]:
        """Names of the zoo's models (no network).

        Args:
            cached: Only models usable offline.
        """
        import ase_mlpot

        return list(ase_mlpot.list_models(cached=cached))


JOB_CLASS_DICT["MLPotJob"] = __name__
if not hasattr(Project, "mlpot"):
    Project.register_tools("mlpot", MLPotTools)
