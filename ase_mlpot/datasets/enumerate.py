"""Random enumeration of small neutral closed-shell CHNO molecules as canonical SMILES.

ANI-1 pretrained on GDB-11 subsets; GDB is not available offline, so this module draws random
heavy-atom graphs instead and keeps the chemically sensible ones. The molecules are meant for
cheap labels (GFN2-xTB) of far more chemistry than a hand-curated pool, not for exhaustive
coverage: the distribution is whatever the random construction below produces.

RDKit (the ``label`` extra) is imported only inside the functions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["heavy_atom_count", "random_molecules"]

#: Valences of the heavy atoms; hydrogens fill whatever valence the heavy-atom graph leaves.
VALENCE: dict[str, int] = {"C": 4, "N": 3, "O": 2}

#: Chance, tried again after each success, of raising a bond's order by one.
_BOND_UPGRADE_PROBABILITY = 0.3
#: Triple bonds are allowed only in rings at least this large.
_MIN_RING_SIZE_TRIPLE = 8
#: Random seed of the ETKDG embedding check, fixed so the accepted set is reproducible.
_EMBED_SEED = 0xF00D
#: Attempts allowed per requested molecule (plus a fixed allowance) before giving up.
_ATTEMPTS_PER_MOLECULE = 200
_ATTEMPTS_BASE = 2000

_Bonds = dict[tuple[int, int], int]


def heavy_atom_count(smiles: str) -> int:
    """Number of non-hydrogen atoms of a molecule.

    Args:
        smiles: A SMILES string.

    Returns:
        The heavy-atom count.

    Raises:
        ValueError: If RDKit cannot parse ``smiles``.
    """
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    with BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    return int(mol.GetNumHeavyAtoms())


def random_molecules(
    n: int,
    *,
    min_heavy: int = 1,
    max_heavy: int = 7,
    elements: tuple[str, ...] = ("C", "N", "O"),
    element_weights: tuple[float, ...] = (0.7, 0.15, 0.15),
    ring_probability: float = 0.3,
    max_ring_size: int = 6,
    min_ring_size: int = 3,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> list[str]:
    """Draw distinct random small neutral closed-shell molecules as canonical SMILES.

    Each attempt builds a random heavy-atom graph and hands it to RDKit:

    1. The heavy-atom count is uniform in ``[min_heavy, max_heavy]`` and each element is drawn
       independently with probabilities ``element_weights``.
    2. A random spanning tree attaches every new atom by a single bond to a uniformly chosen
       earlier atom with free valence (C 4, N 3, O 2); the attempt fails if none has any.
    3. Ring closure: every non-bonded pair of atoms, in random order, whose shortest path would
       close a ring of ``min_ring_size`` to ``max_ring_size`` atoms and that both still have
       free valence is joined by a single bond with probability ``ring_probability``.
    4. Bond upgrades: every bond, in random order, is raised by one order with probability 0.3,
       repeatedly while that succeeds, as long as both atoms have spare valence and the bond
       stays at most triple. No O=O (dioxygen has a triplet ground state), no triple bond in a
       ring smaller than 8 atoms, and a ring atom carries at most one multiple bond (no allenes
       or cumulenes inside rings).
    5. RDKit adds implicit hydrogens and sanitizes (aromaticity perception included).

    A molecule is rejected if sanitization fails, if its canonical SMILES does not parse back,
    if any atom has a formal charge or radical electrons, if it has more than one O–O bond (so
    no O–O–O chain either), an O–O bond in a ring, an N–N–N chain (any bond orders), an atom in
    two or more rings of three or four atoms (fused, bridged or spiro small rings: bicyclobutane,
    bicyclo[1.1.1]pentane, spiropentane), an unsaturated three-membered ring with a heteroatom
    (oxirenes, azirines, antiaromatic or explosive), or if RDKit ETKDG (v3, fixed seed) cannot
    embed it in 3D with explicit hydrogens.

    Duplicates (by RDKit canonical SMILES) and members of ``exclude`` (compared after
    canonicalisation) are skipped. Drawing stops when ``n`` molecules are found; after
    ``2000 + 200 n`` attempts it gives up.

    Args:
        n: Number of molecules wanted.
        min_heavy: Smallest heavy-atom count (at least 1).
        max_heavy: Largest heavy-atom count (at least ``min_heavy``).
        elements: Heavy elements to draw from, a subset of C, N and O.
        element_weights: Relative probabilities of ``elements`` (normalised here).
        ring_probability: Chance of closing each candidate ring, in [0, 1]; 0 gives only
            acyclic molecules.
        max_ring_size: Largest ring (atoms) a closure may form.
        min_ring_size: Smallest ring (atoms) a closure may form (at least 3).
        seed: Seed of :func:`numpy.random.default_rng`; the same seed and library versions
            give the same list.
        exclude: SMILES to leave out (for example an existing curated pool).

    Returns:
        ``n`` distinct canonical SMILES (hydrogens implicit), in the order they were drawn.

    Raises:
        ValueError: If an argument is out of range, an ``exclude`` SMILES does not parse, or
            fewer than ``n`` molecules were found within the attempt limit (the message says
            how many).
    """
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom
    from rdkit.rdBase import BlockLogs

    probabilities = _check_arguments(
        n, min_heavy, max_heavy, elements, element_weights, ring_probability,
        min_ring_size, max_ring_size,
    )
    rng = np.random.default_rng(seed)
    bond_types = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    embed_params = rdDistGeom.ETKDGv3()
    embed_params.randomSeed = _EMBED_SEED  # type: ignore[assignment]  # rdkit stub bug

    found: list[str] = []
    with BlockLogs():
        seen: set[str] = set()  # canonical SMILES already accepted, rejected or excluded
        for smiles in exclude:
            mol = Chem.MolFromSmiles(smiles)
            if mol is None:
                raise ValueError(f"exclude: RDKit cannot parse SMILES {smiles!r}")
            seen.add(Chem.MolToSmiles(mol))

        max_attempts = _ATTEMPTS_BASE + _ATTEMPTS_PER_MOLECULE * n
        attempts = 0
        while len(found) < n and attempts < max_attempts:
            attempts += 1
            n_heavy = int(rng.integers(min_heavy, max_heavy + 1))
            drawn = rng.choice(len(elements), size=n_heavy, p=probabilities)
            symbols = [elements[i] for i in drawn]
            bonds = _random_graph(symbols, rng, ring_probability, min_ring_size, max_ring_size)
            if bonds is None:
                continue
            rw = Chem.RWMol()
            for symbol in symbols:
                rw.AddAtom(Chem.Atom(symbol))
            for (i, j), order in bonds.items():
                rw.AddBond(i, j, bond_types[order])
            mol = rw.GetMol()
            if Chem.SanitizeMol(mol, catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE:
                continue
            parsed = Chem.MolFromSmiles(Chem.MolToSmiles(mol))
            if parsed is None:
                continue
            canonical = Chem.MolToSmiles(parsed)
            if canonical in seen:
                continue
            seen.add(canonical)
            if _acceptable(parsed) and rdDistGeom.EmbedMolecule(
                Chem.AddHs(parsed), embed_params
            ) == 0:
                found.append(canonical)
    if len(found) < n:
        raise ValueError(
            f"found only {len(found)} of {n} molecules in {max_attempts} attempts; "
            "widen the heavy-atom range or elements, or ask for fewer"
        )
    return found


def _check_arguments(
    n: int,
    min_heavy: int,
    max_heavy: int,
    elements: tuple[str, ...],
    element_weights: tuple[float, ...],
    ring_probability: float,
    min_ring_size: int,
    max_ring_size: int,
) -> np.ndarray:
    """Validate the arguments of :func:`random_molecules`; return the normalised weights."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 1 <= min_heavy <= max_heavy:
        raise ValueError(f"need 1 <= min_heavy <= max_heavy, got {min_heavy}, {max_heavy}")
    unknown = sorted(set(elements) - set(VALENCE))
    if not elements or unknown:
        raise ValueError(
            f"elements must be a non-empty subset of {sorted(VALENCE)}, got {elements}"
        )
    weights = np.asarray(element_weights, dtype=float)
    if weights.shape != (len(elements),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"element_weights must be {len(elements)} non-negative numbers with a positive sum, "
            f"got {element_weights}"
        )
    if not 0.0 <= ring_probability <= 1.0:
        raise ValueError(f"ring_probability must be in [0, 1], got {ring_probability}")
    if not 3 <= min_ring_size <= max_ring_size:
        raise ValueError(
            f"need 3 <= min_ring_size <= max_ring_size, got {min_ring_size}, {max_ring_size}"
        )
    return weights / weights.sum()


def _random_graph(
    symbols: list[str],
    rng: np.random.Generator,
    ring_probability: float,
    min_ring_size: int,
    max_ring_size: int,
) -> _Bonds | None:
    """Random bonded heavy-atom graph (steps 2–4 of :func:`random_molecules`), or None."""
    n_atoms = len(symbols)
    free = [VALENCE[s] for s in symbols]
    adjacency: list[set[int]] = [set() for _ in range(n_atoms)]
    bonds: _Bonds = {}

    def add_bond(i: int, j: int) -> None:
        bonds[(min(i, j), max(i, j))] = 1
        adjacency[i].add(j)
        adjacency[j].add(i)
        free[i] -= 1
        free[j] -= 1

    for i in range(1, n_atoms):
        candidates = [j for j in range(i) if free[j] > 0]
        if not candidates:
            return None
        add_bond(i, candidates[int(rng.integers(len(candidates)))])

    pairs = [(i, j) for i in range(n_atoms) for j in range(i + 1, n_atoms) if j not in adjacency[i]]
    for k in rng.permutation(len(pairs)):
        i, j = pairs[k]
        if free[i] > 0 and free[j] > 0 and rng.random() < ring_probability:
            path = _path_length(adjacency, i, j)
            if path is not None and min_ring_size <= path + 1 <= max_ring_size:
                add_bond(i, j)

    keys = sorted(bonds)
    smallest_ring = {
        (i, j): (None if (p := _path_length(adjacency, i, j, skip=(i, j))) is None else p + 1)
        for i, j in keys
    }
    in_ring = [
        any(smallest_ring[(min(a, b), max(a, b))] for b in adjacency[a]) for a in range(n_atoms)
    ]
    multiple = [0] * n_atoms  # number of multiple bonds on each atom
    for k in rng.permutation(len(keys)):
        i, j = keys[k]
        while rng.random() < _BOND_UPGRADE_PROBABILITY:
            order = bonds[(i, j)]
            ring = smallest_ring[(i, j)]
            if (
                order == 3
                or free[i] == 0
                or free[j] == 0
                or symbols[i] == symbols[j] == "O"
                or (order == 2 and ring is not None and ring < _MIN_RING_SIZE_TRIPLE)
                or (order == 1 and any(in_ring[a] and multiple[a] for a in (i, j)))
            ):
                break
            bonds[(i, j)] = order + 1
            free[i] -= 1
            free[j] -= 1
            if order == 1:
                multiple[i] += 1
                multiple[j] += 1
    return bonds


def _path_length(
    adjacency: list[set[int]], start: int, end: int, skip: tuple[int, int] | None = None
) -> int | None:
    """Bonds on a shortest path from ``start`` to ``end`` (optionally without the bond ``skip``)."""
    distance = {start: 0}
    queue = deque([start])
    while queue:
        a = queue.popleft()
        for b in adjacency[a]:
            if b in distance or (skip is not None and {a, b} == set(skip)):
                continue
            if b == end:
                return distance[a] + 1
            distance[b] = distance[a] + 1
            queue.append(b)
    return None


def _acceptable(mol: Any) -> bool:
    """Whether a sanitized RDKit molecule passes the charge, radical and strain rules."""
    if any(a.GetFormalCharge() or a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return False
    oo_bonds = [
        b for b in mol.GetBonds()
        if b.GetBeginAtom().GetSymbol() == b.GetEndAtom().GetSymbol() == "O"
    ]
    if len(oo_bonds) > 1 or any(b.IsInRing() for b in oo_bonds):
        return False
    for atom in mol.GetAtoms():
        if atom.GetSymbol() == "N" and sum(n.GetSymbol() == "N" for n in atom.GetNeighbors()) > 1:
            return False
    ring_info = mol.GetRingInfo()
    for ring_atoms, ring_bonds in zip(ring_info.AtomRings(), ring_info.BondRings(), strict=True):
        if len(ring_atoms) != 3:
            continue
        hetero = any(mol.GetAtomWithIdx(i).GetSymbol() != "C" for i in ring_atoms)
        unsaturated = any(mol.GetBondWithIdx(i).GetBondTypeAsDouble() > 1 for i in ring_bonds)
        if hetero and unsaturated:
            return False
    small_rings = [set(r) for r in ring_info.AtomRings() if len(r) <= 4]
    return all(
        sum(a.GetIdx() in r for r in small_rings) < 2 for a in mol.GetAtoms()
    )
