"""Conformation sampling: SMILES embedding, normal-mode sampling, MD sampling, query by committee.

All functions take any ASE calculator (GFN2-xTB from ``tblite.ase.TBLite`` is cheap and good
enough to explore geometries; labels come later from :mod:`~ase_mlpot.datasets.levels`). Energies
are in eV, lengths in Å, masses in amu, temperatures in K (ASE units throughout). Randomness comes
only from the ``numpy.random.Generator`` passed in, so a seed reproduces a sample exactly on the
same machine and library versions.

Normal-mode sampling (Smith, Isayev, Roitberg, Chem. Sci. 8, 3192 (2017), ANI-1): at a minimum
with N_a atoms and N_f internal normal modes (Cartesian unit vectors q̂_i, force constants
K_i = q̂_iᵀ H q̂_i), draw N_f uniform random numbers c_i scaled so that Σ c_i is uniform in [0, 1],
and displace along every mode by R_i = ±√(3 c_i N_a k_B T / K_i) with a random sign.
The harmonic energy of the displacement is ½ Σ K_i R_i² = (3/2) N_a k_B T Σ c_i.
"""

from __future__ import annotations

import logging
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii

from ase_mlpot.datasets.errors import SamplingError
from ase_mlpot.datasets.store import GeometryEntry

T = TypeVar("T")

__all__ = [
    "NormalModes",
    "SamplingPlan",
    "atoms_from_smiles",
    "has_reasonable_distances",
    "interleave",
    "md_sampling",
    "normal_mode_sampling",
    "normal_modes",
    "numerical_hessian",
    "query_by_committee",
    "relax",
    "round_robin",
    "sample_molecule",
    "xtb_calculator",
]

logger = logging.getLogger(__name__)


def atoms_from_smiles(
    smiles: str, *, n_conformers: int = 1, seed: int = 0, prune_rms: float = 0.3,
    mmff: bool = True,
) -> list[Atoms]:
    """Embed 3D structures of a molecule from SMILES with RDKit ETKDG (v3).

    Hydrogens are added, up to ``n_conformers`` conformers are embedded with a fixed random seed
    (pruned at ``prune_rms`` Å heavy-atom RMSD) and, if ``mmff``, pre-optimised with MMFF94.

    Args:
        smiles: SMILES string of a neutral or charged molecule.
        n_conformers: Conformers to embed (fewer may come back after pruning).
        seed: ETKDG random seed.
        prune_rms: RMSD threshold (Å) for pruning near-duplicate conformers.
        mmff: Pre-optimise with MMFF94 where parameters exist.

    Returns:
        One :class:`ase.Atoms` per conformer, positions in Å, ``info["smiles"]`` set.

    Raises:
        SamplingError: Unparsable SMILES or no conformer could be embedded.
    """
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise SamplingError(f"RDKit cannot parse SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = int(seed)  # type: ignore[assignment]  # rdkit stub bug
    params.pruneRmsThresh = float(prune_rms)  # type: ignore[assignment]
    ids = list(rdDistGeom.EmbedMultipleConfs(mol, numConfs=int(n_conformers), params=params))
    if not ids:
        raise SamplingError(f"ETKDG could not embed {smiles!r} (seed {seed})")
    if mmff and rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
        rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)  # (n_atoms,)
    charge = int(Chem.GetFormalCharge(mol))
    out = []
    for conf_id in ids:
        positions = np.asarray(mol.GetConformer(conf_id).GetPositions(), dtype=np.float64)
        atoms = Atoms(numbers=numbers, positions=positions)  # positions (n_atoms, 3) | Å
        atoms.info.update(smiles=smiles, charge=charge)
        out.append(atoms)
    return out


def relax(atoms: Atoms, calculator: Calculator, *, fmax: float = 0.01, steps: int = 1000) -> Atoms:
    """Relax a copy of ``atoms`` with BFGS to max force ``fmax`` (eV/Å).

    Args:
        atoms: Starting structure (unchanged).
        calculator: Any ASE calculator.
        fmax: Convergence threshold on the largest force, eV/Å.
        steps: Maximum BFGS steps.

    Returns:
        The relaxed copy with ``calculator`` attached and ``info["relax_converged"]`` set.
    """
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = calculator
    converged = bool(BFGS(relaxed, logfile=None).run(fmax=fmax, steps=steps))
    relaxed.info["relax_converged"] = converged
    if not converged:
        logger.warning("%s: BFGS not converged to fmax=%g in %d steps",
                       relaxed.get_chemical_formula(), fmax, steps)
    return relaxed


def numerical_hessian(atoms: Atoms, calculator: Calculator, *, delta: float = 0.005) -> np.ndarray:
    """Cartesian Hessian ∂²E/∂r∂r in eV/Å² by central differences of the forces.

    H_ab = −(F_b(r + δ e_a) − F_b(r − δ e_a)) / (2δ), then symmetrised. 6·N_a force calls.

    Args:
        atoms: Structure (a copy is displaced).
        calculator: Any ASE calculator returning forces in eV/Å.
        delta: Displacement in Å.

    Returns:
        Hessian of shape ``(3 n_atoms, 3 n_atoms)``, eV/Å².
    """
    work = atoms.copy()
    work.calc = calculator
    base = work.get_positions()  # (n_atoms, 3) | Å
    n = 3 * len(work)
    hessian = np.zeros((n, n))  # (3 n_atoms, 3 n_atoms) | eV/Å²
    for a in range(n):
        rows = []
        for sign in (1.0, -1.0):
            pos = base.copy()
            pos.reshape(-1)[a] += sign * delta
            work.set_positions(pos)
            rows.append(work.get_forces().reshape(-1))  # (3 n_atoms,) | eV/Å
        hessian[a] = -(rows[0] - rows[1]) / (2.0 * delta)
    return 0.5 * (hessian + hessian.T)


@dataclass(frozen=True)
class NormalModes:
    """Internal normal modes of a molecule at a stationary point.

    Attributes:
        modes: Cartesian unit displacement vectors, shape ``(n_modes, n_atoms, 3)``.
        force_constants: K_i = q̂_iᵀ H q̂_i in eV/Å², shape ``(n_modes,)`` (negative if imaginary).
        reduced_masses: μ_i in amu, shape ``(n_modes,)``.
        frequencies_cm: Harmonic wavenumbers in cm⁻¹ (negative for imaginary), ``(n_modes,)``.
    """

    modes: np.ndarray  # (n_modes, n_atoms, 3)
    force_constants: np.ndarray  # (n_modes,) | eV/Å²
    reduced_masses: np.ndarray  # (n_modes,) | amu
    frequencies_cm: np.ndarray  # (n_modes,) | cm⁻¹


def normal_modes(atoms: Atoms, hessian: np.ndarray) -> NormalModes:
    """Diagonalise the mass-weighted Hessian in the space orthogonal to translations/rotations.

    The 3 translations and 3 (2 if linear) rotations are projected out exactly (Eckart
    conditions in mass-weighted coordinates), so the N_f = 3N−6 (3N−5) modes are clean even at a
    slightly unconverged minimum.

    Args:
        atoms: The structure (masses from ``atoms.get_masses()``, amu).
        hessian: Cartesian Hessian in eV/Å², shape ``(3 n_atoms, 3 n_atoms)``.

    Returns:
        The internal normal modes, sorted by increasing force constant.

    Raises:
        SamplingError: Fewer than two atoms.
    """
    n_atoms = len(atoms)
    if n_atoms < 2:
        raise SamplingError("a single atom has no normal modes")
    masses = atoms.get_masses()  # (n_atoms,) | amu
    sqrt_m = np.repeat(np.sqrt(masses), 3)  # (3 n_atoms,)
    centred = atoms.get_positions() - atoms.get_center_of_mass()  # (n_atoms, 3) | Å
    rigid = []
    for axis in range(3):
        t = np.zeros((n_atoms, 3))  # (n_atoms, 3)
        t[:, axis] = 1.0
        rigid.append(t.reshape(-1) * sqrt_m)
        r = np.cross(np.eye(3)[axis], centred)  # (n_atoms, 3) rotation about axis
        rigid.append(r.reshape(-1) * sqrt_m)
    rigid_m = np.array(rigid).T  # (3 n_atoms, 6)
    u, s, _ = np.linalg.svd(rigid_m, full_matrices=True)
    n_rigid = int(np.sum(s > 1e-6 * s.max()))  # 6, or 5 for linear molecules
    internal = u[:, n_rigid:]  # (3 n_atoms, n_modes) orthonormal basis of internal motions
    h_mw = hessian / np.outer(sqrt_m, sqrt_m)  # (3 n_atoms, 3 n_atoms) | eV/Å²/amu
    eigval, eigvec = np.linalg.eigh(internal.T @ h_mw @ internal)  # (n_modes,), (n_modes, n_modes)
    q_mw = internal @ eigvec  # (3 n_atoms, n_modes) mass-weighted modes
    cart = q_mw / sqrt_m[:, None]  # (3 n_atoms, n_modes) Cartesian displacement directions
    norm2 = np.sum(cart**2, axis=0)  # (n_modes,)
    reduced = 1.0 / norm2  # (n_modes,) | amu
    force_constants = eigval * reduced  # (n_modes,) | eV/Å²
    # ω = √(λ) with λ in eV/(Å² amu); convert to cm⁻¹ (as ase.vibrations does)
    s_factor = units._hbar * 1e10 / np.sqrt(units._e * units._amu)  # √(eV/Å²/amu) → eV
    freq_ev = s_factor * np.sign(eigval) * np.sqrt(np.abs(eigval))  # (n_modes,) | eV
    freq_cm = freq_ev / units.invcm  # (n_modes,) | cm⁻¹
    modes = (cart / np.sqrt(norm2)).T.reshape(-1, n_atoms, 3)  # (n_modes, n_atoms, 3)
    return NormalModes(modes, force_constants, reduced, freq_cm)


def has_reasonable_distances(atoms: Atoms, *, factor: float = 0.6) -> bool:
    """``False`` if two atoms are closer than ``factor`` × the sum of their covalent radii."""
    if len(atoms) < 2:
        return True
    d = atoms.get_all_distances()  # (n_atoms, n_atoms) | Å
    r = covalent_radii[atoms.numbers]  # (n_atoms,) | Å
    limit = factor * (r[:, None] + r[None, :])  # (n_atoms, n_atoms)
    np.fill_diagonal(d, np.inf)
    return bool(np.all(d >= limit))


def normal_mode_sampling(
    atoms: Atoms,
    modes: NormalModes,
    n_samples: int,
    temperature: float | Sequence[float],
    rng: np.random.Generator,
    *,
    min_force_constant: float = 2.0,
    max_tries: int = 100,
) -> list[Atoms]:
    """ANI-1 normal-mode sampling around a minimum.

    For each sample: c = u·s/Σu with u ~ U(0,1)^{N_f} and s ~ U(0,1) (so Σc is uniform in
    [0, 1]); R_i = ±√(3 c_i N_a k_B T / K_i) Å with random signs; r = r₀ + Σ_i R_i q̂_i.
    Force constants below ``min_force_constant`` (soft torsions, imaginary modes) are raised to
    it so that displacements stay finite. Samples with atoms closer than 0.6 × the sum of
    covalent radii are redrawn.

    Args:
        atoms: The minimum-energy structure (Å).
        modes: Its normal modes (:func:`normal_modes`).
        n_samples: Number of structures.
        temperature: T in K, or one per sample (cycled).
        rng: Random generator.
        min_force_constant: Lower bound of K_i in eV/Å².
        max_tries: Redraws allowed per sample.

    Returns:
        ``n_samples`` displaced copies (no calculator), ``info["temperature"]`` set.

    Raises:
        SamplingError: A sample kept failing the distance check.
    """
    temps = np.atleast_1d(np.asarray(temperature, dtype=np.float64))  # (n_temps,) | K
    k = np.maximum(modes.force_constants, min_force_constant)  # (n_modes,) | eV/Å²
    n_atoms, n_modes = len(atoms), len(k)
    base = atoms.get_positions()  # (n_atoms, 3) | Å
    out = []
    for index in range(n_samples):
        kt = units.kB * temps[index % len(temps)]  # eV
        for _ in range(max_tries):
            u = rng.uniform(size=n_modes)  # (n_modes,)
            c = u / u.sum() * rng.uniform()  # (n_modes,), Σc ~ U(0, 1)
            sign = rng.choice([-1.0, 1.0], size=n_modes)  # (n_modes,)
            amp = sign * np.sqrt(3.0 * c * n_atoms * kt / k)  # (n_modes,) | Å
            new = atoms.copy()
            new.calc = None
            new.set_positions(base + np.einsum("m,mad->ad", amp, modes.modes))  # (n_atoms, 3)
            if has_reasonable_distances(new):
                new.info["temperature"] = float(temps[index % len(temps)])
                out.append(new)
                break
        else:
            raise SamplingError(
                f"{atoms.get_chemical_formula()}: no acceptable normal-mode sample "
                f"in {max_tries} tries"
            )
    return out


def md_sampling(
    atoms: Atoms,
    calculator: Calculator,
    temperature: float,
    n_samples: int,
    rng: np.random.Generator,
    *,
    interval: int = 20,
    equilibration: int = 100,
    timestep: float = 0.5,
    friction: float = 0.02,
) -> list[Atoms]:
    """Snapshots of Langevin molecular dynamics at temperature T with any ASE calculator.

    Velocities are drawn from Maxwell–Boltzmann at T (zero total momentum and angular
    momentum), ``equilibration`` steps are discarded, then a frame is kept every ``interval``
    steps.

    Args:
        atoms: Starting structure (unchanged).
        calculator: Any ASE calculator.
        temperature: Thermostat temperature in K.
        n_samples: Frames to return.
        rng: Random generator (velocities and Langevin noise).
        interval: MD steps between kept frames.
        equilibration: MD steps discarded first.
        timestep: Time step in fs.
        friction: Langevin friction in 1/fs.

    Returns:
        ``n_samples`` copies without calculator, ``info["temperature"]`` set.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation

    work = atoms.copy()
    work.calc = calculator
    masses = work.get_masses()  # (n_atoms,) | amu
    sigma = np.sqrt(masses * units.kB * temperature)  # (n_atoms,) momentum std, ASE units
    work.set_momenta(rng.normal(size=(len(work), 3)) * sigma[:, None])  # (n_atoms, 3)
    Stationary(work)
    if len(work) > 2:
        ZeroRotation(work)
    dyn = Langevin(work, timestep=timestep * units.fs, temperature_K=temperature,
                   friction=friction / units.fs, fixcm=False, rng=rng, logfile=None)
    dyn.run(equilibration)
    frames = []
    for _ in range(n_samples):
        dyn.run(interval)
        frame = Atoms(numbers=work.numbers, positions=work.get_positions())
        frame.info.update({k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))})
        frame.info["temperature"] = float(temperature)
        frames.append(frame)
    return frames


def query_by_committee(
    candidates: Sequence[Atoms],
    calculator: Calculator,
    *,
    threshold: float = 0.23,
    max_selected: int | None = None,
    progress: bool = False,
) -> tuple[list[int], np.ndarray]:
    """Select structures on which an ensemble disagrees (ANI-1x active learning).

    The disagreement is ρ = σ_E / √N_a with σ_E the ensemble's energy standard deviation
    (``calculator.results["energy_std"]``, eV) converted to kcal/mol; structures with
    ρ > ``threshold`` (kcal/mol/√atom; ANI-1x used 0.23) are selected, largest ρ first.

    Args:
        candidates: Structures to score.
        calculator: An ASE calculator reporting ``energy_std`` in eV (e.g. an ensemble
            :class:`~ase_mlpot.calculator.MLPotCalculator`).
        threshold: Selection threshold on ρ in kcal/mol/√atom.
        max_selected: Keep at most this many (the most uncertain).
        progress: Show a progress bar on stderr.

    Returns:
        Selected indices into ``candidates`` (by decreasing ρ) and ρ of every candidate,
        shape ``(n_candidates,)``.

    Raises:
        SamplingError: The calculator does not report ``energy_std``.
    """
    from tqdm import tqdm

    from ase_mlpot.units import EV_TO_KCAL_PER_MOL

    rho = np.zeros(len(candidates))  # (n_candidates,) | kcal/mol/√atom
    for i, atoms in enumerate(tqdm(candidates, file=sys.stderr, unit="conf", desc="committee",
                                   disable=not progress)):
        work = atoms.copy()
        work.calc = calculator
        work.get_potential_energy()
        std = calculator.results.get("energy_std")
        if std is None:
            raise SamplingError(
                f"{type(calculator).__name__} reports no 'energy_std'; query by committee needs "
                "an ensemble calculator"
            )
        rho[i] = float(np.asarray(std).reshape(-1)[0]) * EV_TO_KCAL_PER_MOL / np.sqrt(len(work))
    order = np.argsort(-rho, kind="stable")  # (n_candidates,)
    selected = [int(i) for i in order if rho[i] > threshold]
    if max_selected is not None:
        selected = selected[:max_selected]
    return selected, rho


def xtb_calculator(method: str = "GFN2-xTB") -> Calculator:
    """A quiet tblite calculator (``GFN2-xTB`` or ``GFN1-xTB``; extra ``label``)."""
    from tblite.ase import TBLite

    return TBLite(method=method, verbosity=0)


@dataclass(frozen=True)
class SamplingPlan:
    """How many conformations of each kind :func:`sample_molecule` makes per molecule.

    Attributes:
        n_conformers: ETKDG conformers embedded (then relaxed and de-duplicated).
        n_normal_mode: Normal-mode samples, spread over the distinct minima.
        normal_mode_temperatures: Temperatures (K) cycled over the normal-mode samples.
        n_md: MD snapshots, spread over ``md_temperatures``.
        md_temperatures: Langevin temperatures (K).
        include_minima: Also keep each relaxed minimum.
        decimals: Positions are rounded to this many decimals (Å) before storing, so that the
            stored geometry is exactly the one labelled.
    """

    n_conformers: int = 3
    n_normal_mode: int = 48
    normal_mode_temperatures: tuple[float, ...] = (300.0, 600.0, 1000.0)
    n_md: int = 15
    md_temperatures: tuple[float, ...] = (500.0,)
    include_minima: bool = True
    decimals: int = 6
    extra: dict[str, Any] = field(default_factory=dict)


def interleave(lists: Sequence[Sequence[T]]) -> list[T]:
    """Merge lists so that each is spread evenly over the result (item j of a list of n sits at
    fractional position (j + ½)/n); ties keep list order."""
    keyed: list[tuple[float, int, int, T]] = []
    for li, items in enumerate(lists):
        n = len(items)
        keyed.extend(((j + 0.5) / n, li, j, item) for j, item in enumerate(items))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in keyed]


def round_robin(groups: Sequence[Sequence[T]]) -> list[T]:
    """Item 0 of every group, then item 1 of every group, ... (groups in the order given)."""
    out: list[T] = []
    longest = max((len(g) for g in groups), default=0)
    for k in range(longest):
        out.extend(g[k] for g in groups if k < len(g))
    return out


def sample_molecule(
    smiles: str,
    name: str,
    calculator: Calculator,
    plan: SamplingPlan | None = None,
    *,
    seed: int = 0,
    sampler: str = "GFN2-xTB",
    starts: Sequence[Atoms] | None = None,
) -> list[GeometryEntry]:
    """Sample conformations of one molecule: minima, normal-mode samples and MD snapshots.

    ETKDG conformers are relaxed with ``calculator`` (BFGS, fmax 0.01 eV/Å) and de-duplicated
    (relaxed energies within 1 meV are the same minimum); the Hessian of each minimum gives the
    normal modes for :func:`normal_mode_sampling`; :func:`md_sampling` runs from the lowest
    minimum. The kinds are interleaved so that any prefix of the list is a balanced sample.

    Args:
        smiles: SMILES of the molecule.
        name: Molecule identifier stored with every conformation.
        calculator: ASE calculator used for relaxation, Hessian and MD (energies in eV).
        plan: Counts and temperatures (default :class:`SamplingPlan`).
        seed: Seed; the generator is seeded with ``(seed, crc32(smiles))``.
        sampler: Name of the sampling method stored in ``source``.
        starts: Starting structures (Å) used instead of ETKDG conformers (``smiles`` is then
            only recorded; it may be empty).

    Returns:
        The conformations, positions in Å rounded to ``plan.decimals``.
    """
    plan = plan or SamplingPlan()
    rng = np.random.default_rng([seed, zlib.crc32(smiles.encode())])
    if starts is None:
        starts = atoms_from_smiles(smiles, n_conformers=plan.n_conformers, seed=seed)
    if not starts:
        raise SamplingError(f"{name}: no starting structure")
    charge = int(starts[0].info.get("charge", 0))
    minima: list[Atoms] = []
    energies: list[float] = []
    for start in starts:
        relaxed = relax(start, calculator)
        energy = float(relaxed.get_potential_energy())  # eV
        if all(abs(energy - e) > 1e-3 for e in energies):
            minima.append(relaxed)
            energies.append(energy)
    order = np.argsort(energies)  # lowest minimum first
    minima = [minima[i] for i in order]
    base_source = {"sampler": sampler, "seed": seed}

    def entry(atoms: Atoms, **source: Any) -> GeometryEntry:
        positions = np.round(atoms.get_positions(), plan.decimals)  # (n_atoms, 3) | Å
        return GeometryEntry(
            molecule=name, numbers=np.asarray(atoms.numbers, dtype=np.int64),
            positions=positions, smiles=smiles or None, charge=charge,
            source={**base_source, **source},
        )

    kinds: list[list[GeometryEntry]] = []
    if plan.include_minima:
        kinds.append([entry(m, method="minimum", conformer=i) for i, m in enumerate(minima)])
    nms: list[list[GeometryEntry]] = []
    if plan.n_normal_mode and len(minima[0]) > 1:
        for i, minimum in enumerate(minima):
            count = plan.n_normal_mode // len(minima) + (i < plan.n_normal_mode % len(minima))
            modes = normal_modes(minimum, numerical_hessian(minimum, calculator))
            temps = plan.normal_mode_temperatures
            samples = normal_mode_sampling(minimum, modes, count, temps, rng)
            nms.append([entry(a, method="normal_mode", conformer=i,
                              temperature=a.info["temperature"]) for a in samples])
        kinds.append(interleave(nms))
    if plan.n_md and len(minima[0]) > 1:
        md: list[list[GeometryEntry]] = []
        for t_index, temperature in enumerate(plan.md_temperatures):
            count = plan.n_md // len(plan.md_temperatures) + (
                t_index < plan.n_md % len(plan.md_temperatures))
            frames = md_sampling(minima[0], calculator, temperature, count, rng)
            md.append([entry(a, method="md", conformer=0, temperature=temperature)
                       for a in frames])
        kinds.append(interleave(md))
    out = kinds[0] + interleave(kinds[1:]) if plan.include_minima else interleave(kinds)
    logger.info("%s: %d minima, %d conformations", name, len(minima), len(out))
    return out
