"""Datasets of labelled conformations and their files: ANI HDF5, extxyz / ASE db, label stores.

In memory a :class:`ConformerDataset` holds :class:`ConformerGroup` objects, each a set of
conformations sharing one atom list (the ANI layout: one group per formula). Units are fixed in
memory: energies in Hartree, coordinates in Å, **forces** (−∂E/∂r, never gradients) in Hartree/Å.

ANI HDF5 layout (as the ANI-1x release and COMP6; written by :func:`write_ani_h5`)::

    /                        attrs: format="ani-h5", format_version=1, energy_unit="Hartree",
                                    length_unit="Angstrom", force_unit="Hartree/Angstrom",
                                    forces_kind="forces" | "gradients", level_of_theory,
                                    level_version
    /<group>/                one group per formula (Hill order), same attrs as the root
        atomic_numbers       (n_atoms,)              int64
        species              (n_atoms,)              bytes, element symbols
        coordinates          (n_conf, n_atoms, 3)    float64, Å
        energies             (n_conf,)               float64, Hartree
        forces               (n_conf, n_atoms, 3)    float64, Hartree/Å (sign: see forces_kind)
        molecule, smiles, geometry_hash (n_conf,)    bytes, per conformation (optional)
        <component>          (n_conf,)               float64, Hartree (e.g. hf_qz, mp2_corr_cbs)

Conformations of different molecules with the same formula share a group; their atoms are put
in one canonical order (stable sort by decreasing Z, which keeps each molecule's own order
within an element) and ``molecule`` tells them apart, so splits by molecule stay possible.

Reading files without ``forces_kind`` (third-party files) needs the convention stated: COMP6
(recognised by its per-group ``lot`` dataset) stores the energy *gradient* under ``forces`` (found
by comparing with ANI-1x and with our own wB97X/6-31G* gradients), so it is read as
``"gradients"`` and negated; any other file without the attribute raises unless ``forces_kind`` is
passed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers as _symbol_to_z
from ase.data import chemical_symbols

from ase_mlpot.datasets.errors import DatasetFormatError
from ase_mlpot.units import HARTREE_TO_EV

__all__ = [
    "FORMAT_VERSION",
    "ConformerDataset",
    "ConformerGroup",
    "ForcesKind",
    "dataset_from_records",
    "hill_formula",
    "read_ani_h5",
    "read_ase",
    "read_dataset",
    "write_ani_h5",
    "write_ase",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ForcesKind = Literal["forces", "gradients"]
_STRING_KEYS = ("molecule", "smiles", "geometry_hash")
_CORE_KEYS = ("atomic_numbers", "species", "coordinates", "energies", "forces")


def hill_formula(numbers: Sequence[int] | np.ndarray) -> str:
    """Hill formula (C, H first, then alphabetical), e.g. ``C2H6O``."""
    symbols = [chemical_symbols[int(z)] for z in numbers]
    counts = {s: symbols.count(s) for s in set(symbols)}
    first = [s for s in ("C", "H") if s in counts] if "C" in counts else []
    order = first + sorted(s for s in counts if s not in first)
    return "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order)


@dataclass
class ConformerGroup:
    """Conformations sharing one atom list.

    Attributes:
        atomic_numbers: Z of each atom, shape ``(n_atoms,)``.
        coordinates: Positions in Å, shape ``(n_conf, n_atoms, 3)``.
        energies: Total energies in Hartree, shape ``(n_conf,)`` (``None`` if unlabelled).
        forces: Forces −∂E/∂r in Hartree/Å, shape ``(n_conf, n_atoms, 3)`` (``None`` if absent;
            rows of NaN for conformations without forces in an otherwise labelled group, as
            :func:`ase_mlpot.training.trainer.attach_forces` leaves them).
        molecule: Molecule identifier of each conformation, shape ``(n_conf,)``.
        extra: Further per-conformation arrays (energy components in Hartree, SMILES, hashes),
            each with leading dimension ``n_conf``.
    """

    atomic_numbers: np.ndarray  # (n_atoms,) int64
    coordinates: np.ndarray  # (n_conf, n_atoms, 3) float64 | Å
    energies: np.ndarray | None = None  # (n_conf,) float64 | Hartree
    forces: np.ndarray | None = None  # (n_conf, n_atoms, 3) float64 | Hartree/Å
    molecule: np.ndarray | None = None  # (n_conf,) str
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.coordinates.shape[0])

    def select(self, index: np.ndarray) -> ConformerGroup:
        """The conformations at ``index`` (integer or boolean array over conformations)."""
        return ConformerGroup(
            atomic_numbers=self.atomic_numbers,
            coordinates=self.coordinates[index],
            energies=None if self.energies is None else self.energies[index],
            forces=None if self.forces is None else self.forces[index],
            molecule=None if self.molecule is None else self.molecule[index],
            extra={k: v[index] for k, v in self.extra.items()},
        )


@dataclass
class ConformerDataset:
    """Groups of conformations at one level of theory (Hartree, Å, forces in Hartree/Å).

    Attributes:
        groups: Group name → conformations.
        level_of_theory: Name of the labelling level, e.g. ``wb97x-631gs``.
        level_version: Its version (0 if unknown, e.g. third-party files).
        attrs: Further file attributes.
    """

    groups: dict[str, ConformerGroup] = field(default_factory=dict)
    level_of_theory: str = "unknown"
    level_version: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_conformations(self) -> int:
        """Number of conformations over all groups."""
        return sum(len(g) for g in self.groups.values())

    def molecules(self) -> dict[str, int]:
        """Molecule identifier → number of conformations (group name if none stored)."""
        counts: dict[str, int] = {}
        for name, group in self.groups.items():
            ids = group.molecule if group.molecule is not None else np.full(len(group), name)
            for mol in ids:
                counts[str(mol)] = counts.get(str(mol), 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        """Counts for ``mlpot-zoo data info``: conformations, molecules, groups, by heavy atoms."""
        by_heavy: dict[int, set[str]] = {}
        conf_by_heavy: dict[int, int] = {}
        for name, group in self.groups.items():
            heavy = int(np.sum(group.atomic_numbers > 1))
            ids = group.molecule if group.molecule is not None else np.full(len(group), name)
            by_heavy.setdefault(heavy, set()).update(str(m) for m in ids)
            conf_by_heavy[heavy] = conf_by_heavy.get(heavy, 0) + len(group)
        elements = sorted({chemical_symbols[int(z)] for g in self.groups.values()
                           for z in g.atomic_numbers})
        return {
            "level_of_theory": self.level_of_theory,
            "level_version": self.level_version,
            "conformations": self.n_conformations,
            "molecules": len(self.molecules()),
            "groups": len(self.groups),
            "elements": elements,
            "has_forces": all(g.forces is not None for g in self.groups.values()),
            "by_heavy_atoms": {
                str(h): {"molecules": len(by_heavy[h]), "conformations": conf_by_heavy[h]}
                for h in sorted(by_heavy)
            },
        }

    def to_atoms(self) -> list[Atoms]:
        """One :class:`ase.Atoms` per conformation, results in eV and eV/Å.

        ``info`` holds ``molecule``, ``group``, ``level_of_theory``, ``energy_hartree`` and the
        components (Hartree); the attached :class:`SinglePointCalculator` holds ``energy`` (eV)
        and ``forces`` (eV/Å).
        """
        images = []
        for name, group in self.groups.items():
            for i in range(len(group)):
                atoms = Atoms(numbers=group.atomic_numbers, positions=group.coordinates[i])
                atoms.info["group"] = name
                atoms.info["level_of_theory"] = self.level_of_theory
                if group.molecule is not None:
                    atoms.info["molecule"] = str(group.molecule[i])
                results: dict[str, Any] = {}
                if group.energies is not None:
                    atoms.info["energy_hartree"] = float(group.energies[i])
                    results["energy"] = float(group.energies[i]) * HARTREE_TO_EV
                if group.forces is not None:
                    results["forces"] = group.forces[i] * HARTREE_TO_EV  # (n_atoms, 3) | eV/Å
                for key, values in group.extra.items():
                    value = values[i]
                    atoms.info[key] = value.item() if isinstance(value, np.generic) else value
                if results:
                    atoms.calc = SinglePointCalculator(atoms, **results)
                images.append(atoms)
        return images


def _canonical_order(numbers: np.ndarray) -> np.ndarray:
    """Stable permutation putting atoms in decreasing Z (heavy atoms first)."""
    return np.argsort(-np.asarray(numbers), kind="stable")  # (n_atoms,)


class _GroupBuilder:
    """Collects conformations of one formula and stacks them into a ConformerGroup."""

    def __init__(self, numbers: np.ndarray) -> None:
        self.numbers = numbers
        self.rows: list[dict[str, Any]] = []

    def build(self) -> ConformerGroup:
        rows = self.rows
        energies = [r["energy"] for r in rows]
        forces = [r["forces"] for r in rows]
        extra_keys = sorted(set().union(*(r["extra"].keys() for r in rows)))
        extra = {}
        for key in extra_keys:
            values = [r["extra"].get(key, np.nan) for r in rows]
            extra[key] = np.asarray(values, dtype=np.float64)  # (n_conf,) | Hartree
        strings = {k: np.asarray([r.get(k) or "" for r in rows])
                   for k in ("smiles", "geometry_hash")}
        extra.update({k: v for k, v in strings.items() if any(v)})
        return ConformerGroup(
            atomic_numbers=self.numbers,
            coordinates=np.stack([r["positions"] for r in rows]),  # (n_conf, n_atoms, 3)
            energies=None if any(e is None for e in energies) else np.asarray(energies),
            forces=None if any(f is None for f in forces) else np.stack(forces),
            molecule=np.asarray([r["molecule"] for r in rows]),
            extra=extra,
        )


def dataset_from_records(
    records: Iterable[Mapping[str, Any]], *, level: str | None = None,
    components: bool = True,
) -> ConformerDataset:
    """Build a dataset from label-store records (successful ones only, one per key).

    Args:
        records: Label records (e.g. ``LabelStore(path).latest().values()``).
        level: Keep only this level (default: the level of the first record); records of other
            levels are skipped.
        components: Store the energy components as extra per-conformation arrays.

    Returns:
        The dataset, groups by Hill formula in order of first appearance.

    Raises:
        DatasetFormatError: Records of the kept level at different versions.
    """
    builders: dict[str, _GroupBuilder] = {}
    seen: set[str] = set()
    version: int | None = None
    for rec in records:
        if level is None:
            level = str(rec["level"])
        if rec["level"] != level:
            continue
        if version is None:
            version = int(rec["level_version"])
        elif int(rec["level_version"]) != version:
            raise DatasetFormatError(
                f"records of {level} at versions v{version} and v{rec['level_version']}")
        if rec.get("status") != "ok" or rec["key"] in seen:
            continue
        seen.add(rec["key"])
        numbers = np.asarray(rec["numbers"], dtype=np.int64)  # (n_atoms,)
        order = _canonical_order(numbers)
        name = hill_formula(numbers)
        builder = builders.setdefault(name, _GroupBuilder(numbers[order]))
        positions = np.asarray(rec["positions"], dtype=np.float64)[order]  # (n_atoms, 3) | Å
        forces = rec.get("forces")
        comps = {k: v for k, v in rec.get("components", {}).items() if k != "total"}
        builder.rows.append({
            "positions": positions,
            "energy": rec.get("energy"),
            "forces": None if forces is None else np.asarray(forces, dtype=np.float64)[order],
            "molecule": rec["molecule"],
            "smiles": rec.get("smiles"),
            "geometry_hash": rec.get("geometry_hash"),
            "extra": comps if components else {},
        })
    return ConformerDataset(
        groups={name: b.build() for name, b in builders.items()},
        level_of_theory=level or "unknown", level_version=version or 0,
    )


def write_ani_h5(
    dataset: ConformerDataset, path: str | Path, *, forces_kind: ForcesKind = "forces"
) -> None:
    """Write a dataset in the ANI HDF5 layout with explicit unit and sign attributes.

    Args:
        dataset: The dataset (forces in memory are −∂E/∂r).
        path: Output file (replaced).
        forces_kind: Store ``"forces"`` (−∂E/∂r, default) or ``"gradients"`` (+∂E/∂r, as COMP6)
            under the ``forces`` key; recorded in the ``forces_kind`` attribute.
    """
    import h5py

    from ase_mlpot._version import __version__

    attrs = {
        "format": "ani-h5",
        "format_version": FORMAT_VERSION,
        "energy_unit": "Hartree",
        "length_unit": "Angstrom",
        "force_unit": "Hartree/Angstrom",
        "forces_kind": forces_kind,
        "level_of_theory": dataset.level_of_theory,
        "level_version": dataset.level_version,
        "created_by": f"ase_mlpot {__version__}",
    }
    sign = 1.0 if forces_kind == "forces" else -1.0
    tmp = Path(str(path) + ".tmp")
    with h5py.File(tmp, "w") as fh:
        fh.attrs.update(attrs)
        for name, group in dataset.groups.items():
            g = fh.create_group(name)
            g.attrs.update(attrs)
            g["atomic_numbers"] = np.asarray(group.atomic_numbers, dtype=np.int64)
            g["species"] = np.array([chemical_symbols[int(z)] for z in group.atomic_numbers],
                                    dtype="S2")
            g["coordinates"] = np.asarray(group.coordinates, dtype=np.float64)
            if group.energies is not None:
                g["energies"] = np.asarray(group.energies, dtype=np.float64)
            if group.forces is not None:
                g["forces"] = sign * np.asarray(group.forces, dtype=np.float64)
            if group.molecule is not None:
                g["molecule"] = _encode(group.molecule)
            for key, values in group.extra.items():
                g[key] = _encode(values) if values.dtype.kind in "USO" else values
    tmp.replace(path)


def _encode(values: np.ndarray) -> np.ndarray:
    """str → UTF-8 bytes arrays (HDF5 fixed-length strings)."""
    return np.asarray([str(v).encode("utf-8") for v in values], dtype=np.bytes_)


def _decode(values: np.ndarray) -> np.ndarray:
    """bytes → str arrays."""
    return np.asarray([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values])


def _iter_groups(fh: Any) -> Iterator[tuple[str, Any]]:
    """Yield (path, group) of every HDF5 group holding ``coordinates``."""
    import h5py

    found: list[tuple[str, Any]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "coordinates" in obj:
            found.append((name, obj))

    fh.visititems(visit)
    yield from found


def read_ani_h5(
    path: str | Path,
    *,
    forces_kind: ForcesKind | None = None,
    energy_key: str = "energies",
    forces_key: str = "forces",
) -> ConformerDataset:
    """Read an ANI-layout HDF5 file (ours, ANI-1x-style or COMP6) into Hartree/Å/forces.

    Args:
        path: The file.
        forces_kind: Convention of the stored ``forces_key`` array when the file does not
            record it: ``"forces"`` (−∂E/∂r) or ``"gradients"`` (+∂E/∂r, negated on reading).
            ``None``: use the file's ``forces_kind`` attribute; COMP6 files (per-group ``lot``
            dataset, no attribute) are read as gradients.
        energy_key: Dataset name of the energies (e.g. ``wb97x_dz.energy`` in ANI-1x).
        forces_key: Dataset name of the forces/gradients.

    Returns:
        The dataset; forces are always −∂E/∂r in Hartree/Å.

    Raises:
        DatasetFormatError: Not an ANI-layout file, non-Hartree/Å units, or forces of unknown
            sign.
    """
    import h5py

    path = Path(path)
    groups: dict[str, ConformerGroup] = {}
    levels: set[str] = set()
    version = 0
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFormatError(f"{path}: not an HDF5 file ({exc})") from exc
    with fh:
        for name, g in _iter_groups(fh):
            attrs = {**dict(fh.attrs), **dict(g.attrs)}
            for key, expected in (("energy_unit", "Hartree"), ("length_unit", "Angstrom")):
                unit = attrs.get(key, expected)
                unit = unit.decode() if isinstance(unit, bytes) else str(unit)
                if unit != expected:
                    raise DatasetFormatError(
                        f"{path}/{name}: {key} is {unit!r}, expected {expected}")
            if "atomic_numbers" in g:
                numbers = np.asarray(g["atomic_numbers"][()], dtype=np.int64)  # (n_atoms,)
            elif "species" in g:
                numbers = np.asarray([_symbol_to_z[s] for s in _decode(g["species"][()])])
            else:
                raise DatasetFormatError(f"{path}/{name}: neither atomic_numbers nor species")
            coords = np.asarray(g["coordinates"][()], dtype=np.float64)  # (n_conf, n_atoms, 3)
            if coords.ndim != 3 or coords.shape[1:] != (len(numbers), 3):
                raise DatasetFormatError(
                    f"{path}/{name}: coordinates of shape {coords.shape} for {len(numbers)} atoms")
            energies = (np.asarray(g[energy_key][()], dtype=np.float64)
                        if energy_key in g else None)  # (n_conf,) | Hartree
            forces = None
            if forces_key in g:
                kind = attrs.get("forces_kind")
                kind = kind.decode() if isinstance(kind, bytes) else kind
                if kind is None:
                    # third-party file: the caller's convention, else COMP6's (gradients)
                    kind = forces_kind if forces_kind is not None else (
                        "gradients" if "lot" in g else None)
                elif forces_kind is not None and forces_kind != kind:
                    logger.warning("%s/%s records forces_kind=%r; ignoring forces_kind=%r",
                                   path, name, kind, forces_kind)
                if kind not in ("forces", "gradients"):
                    raise DatasetFormatError(
                        f"{path}/{name}: the file does not say whether {forces_key!r} holds "
                        "forces or gradients; pass forces_kind='forces' or 'gradients'")
                raw = np.asarray(g[forces_key][()], dtype=np.float64)  # (n_conf, n_atoms, 3)
                forces = raw if kind == "forces" else -raw  # (n_conf, n_atoms, 3) | Ha/Å
            molecule = _decode(g["molecule"][()]) if "molecule" in g else None
            extra: dict[str, np.ndarray] = {}
            for key in g:
                if key in _CORE_KEYS or key in (energy_key, forces_key, "molecule", "lot"):
                    continue
                data = g[key]
                if not isinstance(data, h5py.Dataset) or data.shape[:1] != (coords.shape[0],):
                    continue
                values = data[()]
                extra[key] = _decode(values) if values.dtype.kind in "SO" else values
            level = attrs.get("level_of_theory")
            if level is None and "lot" in g:
                level = g["lot"][()][0]
            if level is not None:
                levels.add(level.decode() if isinstance(level, bytes) else str(level))
            version = int(attrs.get("level_version", version))
            groups[name] = ConformerGroup(numbers, coords, energies, forces, molecule, extra)
    if not groups:
        raise DatasetFormatError(f"{path}: no group with 'coordinates' (not an ANI-layout file)")
    return ConformerDataset(
        groups=groups, level_of_theory="+".join(sorted(levels)) or "unknown",
        level_version=version, attrs={"source": str(path)},
    )


def write_ase(dataset: ConformerDataset, path: str | Path, *, format: str | None = None) -> None:
    """Write every conformation through :func:`ase.io.write` (extxyz, ...), eV and eV/Å.

    ASE databases (``.db``) are written with :mod:`ase.db` directly so that ``Atoms.info``
    (molecule, level, Hartree energy, components) is kept as key-value pairs.

    Args:
        dataset: The dataset.
        path: Output file; the format follows the suffix (``.xyz``/``.extxyz``, ``.db``) unless
            ``format`` is given.
        format: An :mod:`ase.io` format name.
    """
    from ase.io import write

    images = dataset.to_atoms()
    if _is_ase_db(path, format):
        # ase.io's db writer drops Atoms.info; keep it as key-value pairs
        import ase.db

        Path(path).unlink(missing_ok=True)
        with ase.db.connect(str(path), append=False) as con:
            for atoms in images:
                pairs = {k: v for k, v in atoms.info.items()
                         if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
                con.write(atoms, key_value_pairs=pairs)
        return
    write(str(path), images, format=format)


def _is_ase_db(path: str | Path, format: str | None) -> bool:
    """``True`` for an ASE SQLite database (``.db`` suffix or ``format="db"``)."""
    return format == "db" or (format is None and Path(path).suffix.lower() == ".db")


def read_ase(
    path: str | Path, *, level_of_theory: str = "unknown", index: str = ":",
    format: str | None = None,
) -> ConformerDataset:
    """Read labelled structures through :func:`ase.io.read` (energies eV → Hartree).

    Molecules are identified by ``info["molecule"]`` (else the formula); structures without an
    energy are kept unlabelled only if no structure has one.

    Args:
        path: Any file ASE reads (extxyz, ASE db, ...).
        level_of_theory: Level name to record (the file's ``info["level_of_theory"]`` wins).
        index: ASE index string.
        format: An :mod:`ase.io` format name (default: from the suffix).

    Returns:
        The dataset (energies in Hartree, forces in Hartree/Å).
    """
    from ase.io import read

    if _is_ase_db(path, format):
        import ase.db

        images = []
        with ase.db.connect(str(path)) as con:
            for row in con.select():
                atoms = row.toatoms()
                atoms.info.update(row.key_value_pairs)
                images.append(atoms)
    else:
        raw = read(str(path), index=index, format=format)
        images = [raw] if isinstance(raw, Atoms) else list(raw)
    records: list[dict[str, Any]] = []
    for i, atoms in enumerate(images):
        energy = forces = None
        if atoms.calc is not None:
            results = atoms.calc.results
            if "energy" in results:
                energy = float(results["energy"]) / HARTREE_TO_EV
            if "forces" in results:
                forces = np.asarray(results["forces"]) / HARTREE_TO_EV  # (n_atoms, 3) | Ha/Å
        level_of_theory = str(atoms.info.get("level_of_theory", level_of_theory))
        records.append({
            "key": str(i), "level": "file", "level_version": 0, "status": "ok",
            "numbers": atoms.numbers.tolist(), "positions": atoms.get_positions(),
            "energy": energy, "forces": forces,
            "molecule": str(atoms.info.get("molecule", atoms.get_chemical_formula())),
            "smiles": atoms.info.get("smiles"),
        })
    dataset = dataset_from_records(records, level="file", components=False)
    dataset.level_of_theory = level_of_theory
    return dataset


def read_dataset(path: str | Path, *, forces_kind: ForcesKind | None = None) -> ConformerDataset:
    """Read a dataset from an ANI HDF5 file, a label store (``.jsonl``) or any ASE format.

    Args:
        path: ``*.h5``/``*.hdf5``, ``*.jsonl`` (label store) or anything :mod:`ase.io` reads.
        forces_kind: See :func:`read_ani_h5`.

    Returns:
        The dataset in Hartree, Å and forces (Hartree/Å).
    """
    from ase_mlpot.datasets.store import LabelStore

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return read_ani_h5(path, forces_kind=forces_kind)
    if suffix == ".jsonl":
        return dataset_from_records(LabelStore(path).latest().values())
    return read_ase(path)
