"""Named, versioned levels of theory used to label conformations with pyscf.

Every level maps a closed-shell geometry (atomic numbers, Cartesian positions in Å, total charge)
to a total electronic energy in Hartree and, where implemented, the physical forces
F = −∂E/∂r in Hartree/Å. A level is identified by ``name`` and an integer ``version``; any change
that can alter a label (basis, functional, grid, fitting basis, frozen core, convergence thresholds)
gets a new version, and both are stored with every label.

Levels:

* ``wb97x-631gs`` (v1) — wB97X/6-31G* as used for ANI-1x and COMP6: the wB97X range-separated
  hybrid (Chai & Head-Gordon 2008, libxc ``HYB_GGA_XC_WB97X``) with 6-31G* in **Cartesian** d
  functions (6d, as Gaussian uses for 6-31G*), restricted Kohn–Sham, pyscf grid level 3, density
  fitting of the Coulomb and exchange integrals with def2-universal-JKFIT (offset from exact
  integrals ≈ 0.01–0.1 mEh, well below the wB97X error). Energies and analytic forces.
* ``ccsd(t)-cbs-composite`` (v1) — the ANI-1ccx-style extrapolation, energies only::

      E = E_HF/cc-pVQZ + E_corr,MP2/CBS[TZ,QZ] + (E_corr,CCSD(T) − E_corr,MP2)/cc-pVDZ
      E_corr,MP2/CBS = (64·E_corr,MP2(QZ) − 27·E_corr,MP2(TZ)) / 37     (Helgaker X⁻³, X = 3, 4)

  with frozen 1s cores (pyscf ``chemcore``), density-fitted RHF (cc-pVXZ-JKFIT) and density-fitted
  MP2 (cc-pVXZ-RI) in the TZ and QZ bases, canonical RHF, MP2 and CCSD(T) in cc-pVDZ (spherical
  basis functions throughout). Every component is stored.
* ``gfn2-xtb`` (v1) — GFN2-xTB (Bannwarth, Ehlert, Grimme 2019) through tblite, energies and
  analytic forces in milliseconds: labels for every sampled geometry, used to pre-pretrain
  networks before the DFT stage (xTB → DFT → CC), never as a training target of a zoo model.
* ``hf-sto3g`` (v1) — canonical RHF/STO-3G energies and forces: a cheap level for tests and
  demonstrations of the pipeline, not for training.

pyscf and tblite are imported only when a calculation runs (extra ``label``). Nothing here touches
thread
settings; the labelling worker sets ``pyscf.lib.num_threads`` in its own process.
"""

from __future__ import annotations

import abc
import functools
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from ase.units import Bohr

from ase_mlpot.datasets.errors import LabellingError, UnknownLevelError

__all__ = [
    "GFN2XTB",
    "HFSTO3G",
    "LEVELS",
    "WB97X631GS",
    "CCSDTCBSComposite",
    "Geometry",
    "LabelResult",
    "LevelOfTheory",
    "get_level",
    "mp2_cbs_extrapolation",
    "program_versions",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Geometry:
    """A molecular geometry to label.

    Attributes:
        numbers: Atomic numbers, shape ``(n_atoms,)``.
        positions: Cartesian positions in Å, shape ``(n_atoms, 3)``, float64.
        charge: Total charge in units of e.
        multiplicity: Spin multiplicity 2S + 1 (only 1, closed shell, is supported by the levels).
    """

    numbers: np.ndarray  # (n_atoms,) int
    positions: np.ndarray  # (n_atoms, 3) float64 | Å
    charge: int = 0
    multiplicity: int = 1


@dataclass
class LabelResult:
    """The outcome of one calculation, successful or not.

    Attributes:
        ok: ``True`` if every SCF/CC step converged and the label is usable.
        energy: Total energy in Hartree (``None`` if failed).
        forces: Forces −∂E/∂r in Hartree/Å, shape ``(n_atoms, 3)`` (``None`` if not computed).
        components: Named energy components in Hartree (composite levels store every term).
        convergence: Convergence flags and iteration counts of every SCF/CC step.
        timings: Wall-clock seconds of each step and ``"total"``.
        cpu_time: CPU seconds of the whole calculation in the computing process.
        error: Error message of a failed calculation.
        settings: Method, basis and numerical settings used (the level's description).
    """

    ok: bool
    energy: float | None = None
    forces: np.ndarray | None = None  # (n_atoms, 3) | Hartree/Å
    components: dict[str, float] = field(default_factory=dict)
    convergence: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_time: float = 0.0
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def program_versions() -> dict[str, str]:
    """Versions of the programs that determine a label (recorded with every result).

    Returns:
        Mapping program name → version string (pyscf, libxc, numpy, scipy, ase, ase_mlpot,
        python).
    """
    import ase
    import scipy

    from ase_mlpot._version import __version__

    versions = {
        "ase_mlpot": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "ase": ase.__version__,
        "python": platform.python_version(),
    }
    try:
        import pyscf
        from pyscf.dft import libxc

        versions["pyscf"] = pyscf.__version__
        versions["libxc"] = str(getattr(libxc, "__version__", "unknown"))
    except ImportError:  # pragma: no cover - labelling needs the extra
        pass
    try:
        from importlib.metadata import version

        versions["tblite"] = version("tblite")
    except Exception:  # pragma: no cover - tblite is optional
        pass
    return versions


def mp2_cbs_extrapolation(corr_tz: float, corr_qz: float) -> float:
    """Two-point X⁻³ extrapolation of the MP2 correlation energy to the basis-set limit.

    E_corr(X) = E_corr(∞) + A·X⁻³ with X = 3 (TZ) and X = 4 (QZ) gives
    E_corr(∞) = (4³·E_corr(QZ) − 3³·E_corr(TZ)) / (4³ − 3³) = (64·E_QZ − 27·E_TZ) / 37.

    Args:
        corr_tz: MP2 correlation energy with cc-pVTZ, Hartree.
        corr_qz: MP2 correlation energy with cc-pVQZ, Hartree.

    Returns:
        Extrapolated correlation energy in Hartree.
    """
    return (64.0 * corr_qz - 27.0 * corr_tz) / 37.0


class _Timer:
    """Collects wall-clock seconds per named step."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, name: str, func: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return func()
        finally:
            self.timings[name] = time.perf_counter() - start


class LevelOfTheory(abc.ABC):
    """A named, versioned electronic-structure method that labels closed-shell molecules.

    Subclasses set ``name``, ``version``, ``properties`` and implement :meth:`_calculate`, which
    returns the energy (Hartree), the forces (Hartree/Å, or ``None``) and the components, and
    raises :class:`~ase_mlpot.datasets.errors.LabellingError` when a step does not converge.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    properties: ClassVar[tuple[str, ...]]

    @property
    def tag(self) -> str:
        """``name@version``, the identifier stored with every label."""
        return f"{self.name}@v{self.version}"

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """Method, basis sets and numerical settings (JSON-serialisable)."""

    @abc.abstractmethod
    def _calculate(
        self, geometry: Geometry, timer: _Timer, convergence: dict[str, Any]
    ) -> tuple[float, np.ndarray | None, dict[str, float]]:
        """Run the calculation; fill ``timer`` and ``convergence`` as steps finish."""

    def compute(self, geometry: Geometry) -> LabelResult:
        """Label one geometry; never raises for a failed calculation.

        Args:
            geometry: The closed-shell geometry (positions in Å).

        Returns:
            A :class:`LabelResult`; ``ok=False`` with ``error`` set if any SCF/CC step failed
            to converge or the program raised.
        """
        timer = _Timer()
        convergence: dict[str, Any] = {}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = LabelResult(ok=False, settings=self.settings())
        try:
            if geometry.multiplicity != 1:
                raise LabellingError(
                    f"{self.tag}: only closed-shell molecules (multiplicity 1) are supported, "
                    f"got multiplicity {geometry.multiplicity}"
                )
            energy, forces, components = self._calculate(geometry, timer, convergence)
            result.ok, result.energy, result.forces = True, float(energy), forces
            result.components = {k: float(v) for k, v in components.items()}
        except LabellingError as exc:
            result.error = str(exc)
            logger.warning("%s failed: %s", self.tag, exc)
        except Exception as exc:  # program errors are recorded, never end a run
            result.error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s raised %s", self.tag, result.error)
        result.convergence = convergence
        result.timings = dict(timer.timings, total=time.perf_counter() - wall0)
        result.cpu_time = time.process_time() - cpu0
        return result


def _build_molecule(geometry: Geometry, basis: str, *, cart: bool) -> Any:
    """A pyscf ``Mole`` from a geometry (Å), quiet, with the given basis."""
    from pyscf import gto

    numbers = np.asarray(geometry.numbers, dtype=np.int64)  # (n_atoms,)
    positions = np.asarray(geometry.positions, dtype=np.float64)  # (n_atoms, 3) | Å
    atom = [(int(z), tuple(float(x) for x in xyz))
            for z, xyz in zip(numbers, positions, strict=True)]
    return gto.M(
        atom=atom, basis=basis, cart=cart, unit="Angstrom", charge=int(geometry.charge),
        spin=int(geometry.multiplicity) - 1, verbose=0,
    )


def _converge_scf(mf: Any, label: str, convergence: dict[str, Any]) -> float:
    """Run an SCF; fall back once to second-order (Newton) SCF; raise if still unconverged."""
    cycles: list[int] = [0]

    def count(envs: dict[str, Any]) -> None:
        cycles[0] = int(envs.get("cycle", cycles[0])) + 1

    mf.callback = count
    energy = mf.kernel()
    info: dict[str, Any] = {"converged": bool(mf.converged), "cycles": cycles[0]}
    if not mf.converged:
        logger.info("%s: SCF not converged in %d cycles, trying second-order SCF", label, cycles[0])
        newton = mf.newton()
        energy = newton.kernel(mf.make_rdm1())
        info = {"converged": bool(newton.converged), "cycles": cycles[0], "newton": True}
        mf.mo_coeff, mf.mo_occ, mf.mo_energy = newton.mo_coeff, newton.mo_occ, newton.mo_energy
        mf.e_tot, mf.converged = newton.e_tot, newton.converged
    convergence[label] = info
    if not mf.converged:
        raise LabellingError(
            f"SCF {label} did not converge (max_cycle={mf.max_cycle}, then Newton)")
    return float(energy)


class WB97X631GS(LevelOfTheory):
    """wB97X/6-31G* (Cartesian d) with density fitting: energy (Hartree) and forces (Hartree/Å).

    This is the level of ANI-1x and COMP6 (computed there with Gaussian 09, whose 6-31G* uses six
    Cartesian d functions). Forces are the analytic RKS gradient converted from Hartree/Bohr:
    F = −(∂E/∂r)/a₀ with a₀ = 0.52917721 Å. With density fitting (default) energies differ from
    exact four-centre integrals by ≈0.01–0.1 mEh; pass ``density_fitting=False`` for exact
    integrals (≈1.3× slower for small molecules, much slower for large ones).

    Args:
        density_fitting: Fit J and K with ``auxbasis`` (default ``True``).
        auxbasis: Fitting basis for J/K (default def2-universal-JKFIT).
        grid_level: pyscf integration grid level (default 3).
        conv_tol: SCF energy convergence threshold in Hartree.
        max_cycle: SCF iterations before the second-order fallback.
    """

    name = "wb97x-631gs"
    version = 1
    properties = ("energy", "forces")

    def __init__(
        self,
        *,
        density_fitting: bool = True,
        auxbasis: str = "def2-universal-jkfit",
        grid_level: int = 3,
        conv_tol: float = 1e-10,
        max_cycle: int = 100,
    ) -> None:
        self.density_fitting = density_fitting
        self.auxbasis = auxbasis
        self.grid_level = grid_level
        self.conv_tol = conv_tol
        self.max_cycle = max_cycle

    def settings(self) -> dict[str, Any]:
        """Method, basis and numerical settings."""
        return {
            "method": "RKS wB97X",
            "xc": "wb97x",
            "basis": "6-31G*",
            "cartesian": True,
            "density_fitting": self.density_fitting,
            "auxbasis": self.auxbasis if self.density_fitting else None,
            "grid_level": self.grid_level,
            "conv_tol": self.conv_tol,
            "forces": "analytic",
        }

    def _calculate(
        self, geometry: Geometry, timer: _Timer, convergence: dict[str, Any]
    ) -> tuple[float, np.ndarray | None, dict[str, float]]:
        from pyscf import dft

        mol = _build_molecule(geometry, "6-31g*", cart=True)
        mf = dft.RKS(mol, xc="wb97x")
        mf.grids.level = self.grid_level
        mf.conv_tol, mf.max_cycle = self.conv_tol, self.max_cycle
        if self.density_fitting:
            mf = mf.density_fit(auxbasis=self.auxbasis)
        energy = timer.run("scf", lambda: _converge_scf(mf, "scf", convergence))
        gradient = timer.run("gradient", lambda: mf.nuc_grad_method().kernel())  # Ha/Bohr
        forces = -np.asarray(gradient, dtype=np.float64) / Bohr  # (n_atoms, 3) | Ha/Å
        return energy, forces, {"total": energy}


class HFSTO3G(LevelOfTheory):
    """Canonical RHF/STO-3G energy (Hartree) and analytic forces (Hartree/Å).

    A cheap level (≈0.1 s for water) for tests and demonstrations of the labelling pipeline.

    Args:
        conv_tol: SCF energy convergence threshold in Hartree.
        max_cycle: SCF iterations before the second-order fallback.
    """

    name = "hf-sto3g"
    version = 1
    properties = ("energy", "forces")

    def __init__(self, *, conv_tol: float = 1e-10, max_cycle: int = 100) -> None:
        self.conv_tol = conv_tol
        self.max_cycle = max_cycle

    def settings(self) -> dict[str, Any]:
        """Method, basis and numerical settings."""
        return {"method": "RHF", "basis": "STO-3G", "cartesian": False, "conv_tol": self.conv_tol,
                "forces": "analytic"}

    def _calculate(
        self, geometry: Geometry, timer: _Timer, convergence: dict[str, Any]
    ) -> tuple[float, np.ndarray | None, dict[str, float]]:
        from pyscf import scf

        mol = _build_molecule(geometry, "sto-3g", cart=False)
        mf = scf.RHF(mol)
        mf.conv_tol, mf.max_cycle = self.conv_tol, self.max_cycle
        energy = timer.run("scf", lambda: _converge_scf(mf, "scf", convergence))
        gradient = timer.run("gradient", lambda: mf.nuc_grad_method().kernel())  # Ha/Bohr
        forces = -np.asarray(gradient, dtype=np.float64) / Bohr  # (n_atoms, 3) | Ha/Å
        return energy, forces, {"total": energy}


class CCSDTCBSComposite(LevelOfTheory):
    """CCSD(T)/CBS composite energy in Hartree (ANI-1ccx-style extrapolation), energies only.

    E = E_HF/QZ + (64·E_corr,MP2/QZ − 27·E_corr,MP2/TZ)/37 + (E_corr,CCSD(T) − E_corr,MP2)/DZ

    TZ/QZ: density-fitted RHF with cc-pVXZ-JKFIT, then density-fitted MP2 with cc-pVXZ-RI (the MP2
    fitting basis is set explicitly: pyscf's ``DFMP2`` would otherwise reuse the JK fitting basis
    of a density-fitted reference). DZ: canonical RHF, MP2, CCSD and (T). All correlated steps
    freeze the 1s cores of C, N, O (pyscf ``chemcore``). Components stored (Hartree):
    ``hf_dz``, ``mp2_corr_dz``, ``ccsd_corr_dz``, ``ccsd_t_corr_dz`` ((T) triples only),
    ``cc_minus_mp2_dz``, ``hf_tz``, ``mp2_corr_tz``, ``hf_qz``, ``mp2_corr_qz``, ``mp2_corr_cbs``,
    ``total``.

    Args:
        conv_tol: SCF energy convergence threshold in Hartree.
        cc_conv_tol: CCSD energy convergence threshold in Hartree.
        max_cycle: SCF iterations before the second-order fallback; also CCSD iterations.
    """

    name = "ccsd(t)-cbs-composite"
    version = 1
    properties = ("energy",)

    def __init__(
        self, *, conv_tol: float = 1e-10, cc_conv_tol: float = 1e-8, max_cycle: int = 100
    ) -> None:
        self.conv_tol = conv_tol
        self.cc_conv_tol = cc_conv_tol
        self.max_cycle = max_cycle

    def settings(self) -> dict[str, Any]:
        """Method, basis sets and numerical settings."""
        return {
            "method": "HF/QZ + MP2/CBS[TZ,QZ] + (CCSD(T)-MP2)/DZ",
            "cbs_formula": "(64*E_corr(QZ) - 27*E_corr(TZ))/37",
            "basis": {"hf": "cc-pVQZ", "mp2": ["cc-pVTZ", "cc-pVQZ"], "ccsd(t)": "cc-pVDZ"},
            "auxbasis": {
                "hf": ["cc-pVTZ-JKFIT", "cc-pVQZ-JKFIT"], "mp2": ["cc-pVTZ-RI", "cc-pVQZ-RI"],
            },
            "frozen_core": "1s (pyscf chemcore)",
            "cartesian": False,
            "conv_tol": self.conv_tol,
            "cc_conv_tol": self.cc_conv_tol,
        }

    def _calculate(
        self, geometry: Geometry, timer: _Timer, convergence: dict[str, Any]
    ) -> tuple[float, np.ndarray | None, dict[str, float]]:
        from pyscf import cc, df, mp, scf
        from pyscf.data.elements import chemcore
        from pyscf.mp.dfmp2 import DFMP2

        c: dict[str, float] = {}
        mol = _build_molecule(geometry, "cc-pvdz", cart=False)
        n_frozen = int(chemcore(mol))

        # canonical RHF, MP2, CCSD(T) in cc-pVDZ
        mf = scf.RHF(mol)
        mf.conv_tol, mf.max_cycle = self.conv_tol, self.max_cycle
        c["hf_dz"] = timer.run("hf_dz", lambda: _converge_scf(mf, "hf_dz", convergence))
        mp2 = mp.MP2(mf, frozen=n_frozen)
        c["mp2_corr_dz"] = float(timer.run("mp2_dz", lambda: mp2.kernel()[0]))
        ccsd = cc.CCSD(mf, frozen=n_frozen)
        ccsd.conv_tol, ccsd.max_cycle = self.cc_conv_tol, self.max_cycle
        c["ccsd_corr_dz"] = float(timer.run("ccsd_dz", lambda: ccsd.kernel()[0]))
        convergence["ccsd_dz"] = {"converged": bool(ccsd.converged)}
        if not ccsd.converged:
            raise LabellingError(f"CCSD/cc-pVDZ did not converge in {ccsd.max_cycle} iterations")
        c["ccsd_t_corr_dz"] = float(timer.run("ccsd_t_dz", ccsd.ccsd_t))
        c["cc_minus_mp2_dz"] = c["ccsd_corr_dz"] + c["ccsd_t_corr_dz"] - c["mp2_corr_dz"]

        # density-fitted RHF and MP2 in cc-pVTZ and cc-pVQZ
        for tag, basis in (("tz", "cc-pvtz"), ("qz", "cc-pvqz")):
            mol_x = _build_molecule(geometry, basis, cart=False)
            mf_x = scf.RHF(mol_x).density_fit(auxbasis=f"{basis}-jkfit")
            mf_x.conv_tol, mf_x.max_cycle = self.conv_tol, self.max_cycle
            c[f"hf_{tag}"] = timer.run(
                f"hf_{tag}", functools.partial(_converge_scf, mf_x, f"hf_{tag}", convergence)
            )
            dfmp2 = DFMP2(mf_x, frozen=n_frozen)
            dfmp2.with_df = df.DF(mol_x, auxbasis=f"{basis}-ri")
            c[f"mp2_corr_{tag}"] = float(timer.run(f"mp2_{tag}", dfmp2.kernel)[0])

        c["mp2_corr_cbs"] = mp2_cbs_extrapolation(c["mp2_corr_tz"], c["mp2_corr_qz"])
        c["total"] = c["hf_qz"] + c["mp2_corr_cbs"] + c["cc_minus_mp2_dz"]
        return c["total"], None, c


#: Level name → class; written out by hand (no registering decorators).
class GFN2XTB(LevelOfTheory):
    """GFN2-xTB energy (Hartree) and analytic forces (Hartree/Å) from tblite.

    Args:
        accuracy: tblite numerical accuracy (lower is tighter; tblite's default 1.0).
        max_iterations: SCC iterations before the calculation counts as failed.
    """

    name = "gfn2-xtb"
    version = 1
    properties = ("energy", "forces")

    def __init__(self, *, accuracy: float = 1.0, max_iterations: int = 250) -> None:
        self.accuracy = accuracy
        self.max_iterations = max_iterations

    def settings(self) -> dict[str, Any]:
        """Method and numerical settings."""
        return {"method": "GFN2-xTB", "program": "tblite", "accuracy": self.accuracy,
                "max_iterations": self.max_iterations, "forces": "analytic"}

    def _calculate(
        self, geometry: Geometry, timer: _Timer, convergence: dict[str, Any]
    ) -> tuple[float, np.ndarray | None, dict[str, float]]:
        from tblite.interface import Calculator

        positions = np.asarray(geometry.positions, dtype=np.float64) / Bohr  # (n_atoms, 3) | Bohr
        calculator = Calculator("GFN2-xTB", np.asarray(geometry.numbers), positions,
                                charge=float(geometry.charge),
                                uhf=int(geometry.multiplicity) - 1)
        calculator.set("accuracy", self.accuracy)
        calculator.set("max-iter", self.max_iterations)
        calculator.set("verbosity", 0)
        try:
            result = timer.run("scc", calculator.singlepoint)
        except RuntimeError as error:  # tblite raises when the SCC does not converge
            raise LabellingError(f"GFN2-xTB: {error}") from None
        convergence["scc"] = {"converged": True}
        energy = float(result.get("energy"))  # Hartree
        forces = -np.asarray(result.get("gradient"), dtype=np.float64) / Bohr  # (n_atoms, 3)
        return energy, forces, {"total": energy}


LEVELS: dict[str, type[LevelOfTheory]] = {
    WB97X631GS.name: WB97X631GS,
    GFN2XTB.name: GFN2XTB,
    CCSDTCBSComposite.name: CCSDTCBSComposite,
    HFSTO3G.name: HFSTO3G,
}


def get_level(name: str, **options: Any) -> LevelOfTheory:
    """Instantiate a level of theory by name.

    Args:
        name: One of :data:`LEVELS` (``wb97x-631gs``, ``ccsd(t)-cbs-composite``, ``gfn2-xtb``,
            ``hf-sto3g``);
            an optional ``@vN`` suffix must match the implemented version.
        **options: Keyword options of the level's constructor.

    Returns:
        The level instance.

    Raises:
        UnknownLevelError: Unknown name or version.
    """
    base, _, version = name.partition("@")
    if base not in LEVELS:
        raise UnknownLevelError(f"unknown level of theory {name!r}; known: {', '.join(LEVELS)}")
    cls = LEVELS[base]
    if version and version.lstrip("v") != str(cls.version):
        raise UnknownLevelError(
            f"level {base!r} is implemented at version v{cls.version}, not {version!r}"
        )
    return cls(**options)
