"""Readers for small public benchmark sets, and the energies they are scored on.

* **HC7/11 + ISOL6 (CHNO part)**: 12 reaction energies of hydrocarbons and isomerisations
  (:func:`read_hc7_isol6`, :func:`reaction_energy`), kcal/mol.
* **S66x10**: 660 noncovalent dimers (66 systems at 10 separations) with benchmark interaction
  energies (:func:`read_s66x10`, :func:`interaction_energy`).

The data are not part of the package: every reader takes the folder or file as an argument
(the project keeps them in ``../shared/data``, each with a README that describes its layout).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.io import read

__all__ = [
    "Reaction",
    "interaction_energy",
    "reaction_energy",
    "read_hc7_isol6",
    "read_s66x10",
]

#: Number of reactions in the HC7/ISOL6 README table (7 HC7 + 5 CHNO ISOL6).
HC7_ISOL6_REACTIONS = 12
#: Number of dimers in S66x10.
S66X10_DIMERS = 660

_REACTION_ID = re.compile(r"(HC7|ISOL6)_\d+")
_TERM = re.compile(r"([+-]?)\s*(\d+\s+)?(\w+)")


@dataclass(frozen=True)
class Reaction:
    """A benchmark reaction: Σ coefficient · E(molecule), with its reference values.

    Attributes:
        id: Reaction id, e.g. ``"HC7_3"`` or ``"ISOL6_1"`` (subset name before the ``_``).
        terms: ``(coefficient, molecule)`` pairs; products positive, reactants negative.
        reference: Benchmark reaction energy (kcal/mol).
        published: Reaction energies of other methods by name (``"ani-1ccx"``, ``"ani-1x"``,
            ``"wb97x-631gs"``), kcal/mol.
    """

    id: str
    terms: tuple[tuple[float, str], ...]
    reference: float
    published: dict[str, float]

    @property
    def subset(self) -> str:
        """The benchmark subset (``"HC7"`` or ``"ISOL6"``)."""
        return self.id.split("_", 1)[0]


def _parse_terms(text: str) -> tuple[tuple[float, str], ...]:
    """Signed terms of a reaction written as ``"3 ethylene + 2 ethyne - adamantane"``."""
    terms = []
    for sign, coefficient, name in _TERM.findall(text.replace(" - ", " -")):
        value = float(coefficient) if coefficient else 1.0
        terms.append((-value if sign == "-" else value, name))
    return tuple(terms)


def _read_reaction_table(readme: Path) -> list[Reaction]:
    """The reactions of the Markdown table in the HC7/ISOL6 README."""
    reactions = []
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not _REACTION_ID.fullmatch(cells[0]):
            continue
        # Columns: id | reaction | ref | wB97X ref | ANI-1ccx | ANI-1x.
        # Products come first in the table: "products - reactants".
        published = {
            "wb97x-631gs": float(cells[3]),
            "ani-1ccx": float(cells[4]),
            "ani-1x": float(cells[5]),
        }
        reactions.append(Reaction(cells[0], _parse_terms(cells[1]), float(cells[2]), published))
    return reactions


def _read_one(path: Path) -> Atoms:
    """The (last) structure of a file."""
    atoms = read(path, index=-1)
    assert isinstance(atoms, Atoms)
    return atoms


def read_hc7_isol6(folder: Path) -> tuple[dict[str, Atoms], list[Reaction]]:
    """Molecules and reactions of the HC7/11 + ISOL6 (CHNO) benchmark.

    Args:
        folder: The benchmark folder, holding ``README.md`` (reaction table) and
            ``<subset>/<molecule>.xyz`` geometries (Å).

    Returns:
        Molecules by file stem, and the 12 reactions of the README table
        (ΔE = products − reactants, kcal/mol).

    Raises:
        ValueError: The README table does not list 12 reactions, or a reaction names a
            molecule without a geometry.
    """
    folder = Path(folder)
    molecules = {path.stem: _read_one(path) for path in sorted(folder.glob("*/*.xyz"))}
    reactions = _read_reaction_table(folder / "README.md")
    if len(reactions) != HC7_ISOL6_REACTIONS:
        raise ValueError(
            f"{folder / 'README.md'} lists {len(reactions)} reactions,"
            f" expected {HC7_ISOL6_REACTIONS}"
        )
    missing = sorted({n for r in reactions for _, n in r.terms} - set(molecules))
    if missing:
        raise ValueError(f"no geometry in {folder} for {missing}")
    return molecules, reactions


def reaction_energy(energies: dict[str, float], reaction: Reaction) -> float:
    """Σ coefficient · E(molecule) of a reaction (in the unit of ``energies``).

    Args:
        energies: Energy of every molecule of the reaction, by name.
        reaction: The reaction.

    Returns:
        The reaction energy ΔE = E(products) − E(reactants).
    """
    return float(sum(c * energies[name] for c, name in reaction.terms))


def read_s66x10(path: Path) -> list[Atoms]:
    """The 660 S66x10 dimers.

    Args:
        path: ``s66x10_dimers.extxyz`` (Å). Each frame's ``info`` carries ``system`` (name),
            ``system_no`` (1–66), ``z`` (separation scale relative to equilibrium),
            ``n_atoms_A`` (the first ``n_atoms_A`` atoms are monomer A, the rest monomer B)
            and ``benchmark_IE_kcal`` (benchmark interaction energy, kcal/mol).

    Returns:
        The dimers in file order, with ``info`` values as plain Python ``str``/``int``/``float``.

    Raises:
        ValueError: A frame lacks one of the ``info`` keys above.
    """
    frames = read(Path(path), index=":", format="extxyz")
    frames = frames if isinstance(frames, Sequence) else [frames]
    converters = {
        "system": str,
        "system_no": int,
        "z": float,
        "n_atoms_A": int,
        "benchmark_IE_kcal": float,
    }
    for index, atoms in enumerate(frames):
        missing = sorted(set(converters) - set(atoms.info))
        if missing:
            raise ValueError(f"{path} frame {index} lacks info {missing}")
        for key, convert in converters.items():
            atoms.info[key] = convert(atoms.info[key])
    return list(frames)


def _energy(calc: Calculator, atoms: Atoms) -> float:
    """Potential energy (eV) of a copy of ``atoms`` with ``calc``."""
    atoms = atoms.copy()
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def interaction_energy(calc: Calculator, atoms: Atoms) -> float:
    """Interaction energy of a dimer, without counterpoise or monomer relaxation.

    Args:
        calc: ASE calculator giving energies in eV.
        atoms: The dimer; ``atoms.info["n_atoms_A"]`` atoms of monomer A first.

    Returns:
        E(dimer) − E(monomer A) − E(monomer B) in eV (negative: bound).
    """
    n_a = int(atoms.info["n_atoms_A"])
    return _energy(calc, atoms) - _energy(calc, atoms[:n_a]) - _energy(calc, atoms[n_a:])
