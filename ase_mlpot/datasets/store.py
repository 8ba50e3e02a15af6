"""Append-only JSON-lines stores of geometries and of labels, safe against interruption.

Two line formats (UTF-8, one JSON object per line, ``\\n``-terminated):

* **Geometry file** (``*.geometries.jsonl``): conformations to label, as written by sampling.
  Keys: ``geometry_hash``, ``molecule``, ``smiles``, ``numbers``, ``positions`` (Å),
  ``charge``, ``multiplicity``, ``source`` (how the geometry was made).
* **Label store** (``*.labels.jsonl``): one line per finished calculation, successful or failed.
  Keys: ``schema``, ``key`` (content hash of geometry and level), ``geometry_hash``, ``level``,
  ``level_version``, ``status`` (``"ok"`` | ``"failed"``), ``molecule``, ``smiles``, ``charge``,
  ``multiplicity``, ``numbers``, ``positions`` (Å), ``energy`` (Hartree), ``forces``
  (−∂E/∂r, Hartree/Å; ``null`` if the level has none), ``components`` (Hartree), ``convergence``,
  ``error``, ``provenance`` (settings, program versions, timings, CPU seconds, finish time),
  ``source``.

Each record is written with a single ``write`` on an ``O_APPEND`` descriptor and ``fsync``'d,
so after a crash the file holds whole records plus at most one truncated last line. Readers skip
that line; a writer truncates it before appending. One writer per store is enforced with
``fcntl.flock``. Positions are hashed after rounding to 1e-8 Å, so a geometry written to JSON and
read back hashes to the same key.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ase_mlpot.datasets.errors import DatasetFormatError, StoreLockedError

__all__ = [
    "STORE_SCHEMA",
    "GeometryEntry",
    "LabelStore",
    "geometry_hash",
    "label_key",
    "latest_records",
    "read_geometries",
    "read_jsonl",
    "write_geometries",
]

logger = logging.getLogger(__name__)

#: Version of the label-record layout.
STORE_SCHEMA = 1
#: Positions are rounded to this many decimals (Å) before hashing.
_HASH_DECIMALS = 8


def geometry_hash(
    numbers: np.ndarray, positions: np.ndarray, charge: int = 0, multiplicity: int = 1
) -> str:
    """Content hash of a geometry (independent of the level of theory).

    Args:
        numbers: Atomic numbers, shape ``(n_atoms,)``.
        positions: Positions in Å, shape ``(n_atoms, 3)``.
        charge: Total charge in e.
        multiplicity: Spin multiplicity.

    Returns:
        32 hex digits of the SHA-256 of atomic numbers, positions rounded to 1e-8 Å, charge
        and multiplicity.
    """
    z = np.ascontiguousarray(numbers, dtype="<i8")  # (n_atoms,)
    fixed = np.rint(np.asarray(positions, dtype=np.float64) * 10**_HASH_DECIMALS)  # (n_atoms, 3)
    digest = hashlib.sha256()
    digest.update(z.tobytes())
    digest.update(np.ascontiguousarray(fixed, dtype="<i8").tobytes())
    digest.update(f"|{int(charge)}|{int(multiplicity)}".encode())
    return digest.hexdigest()[:32]


def label_key(geom_hash: str, level: str, level_version: int) -> str:
    """Key of one label: hash of the geometry hash and the versioned level name."""
    return hashlib.sha256(f"{geom_hash}|{level}@v{level_version}".encode()).hexdigest()[:32]


@dataclass
class GeometryEntry:
    """One conformation to label.

    Attributes:
        molecule: Molecule identifier (splits are made over these).
        numbers: Atomic numbers, shape ``(n_atoms,)``.
        positions: Positions in Å, shape ``(n_atoms, 3)``, float64.
        smiles: SMILES of the molecule, if known.
        charge: Total charge in e.
        multiplicity: Spin multiplicity.
        source: How the geometry was made (method, temperature, seed, ...).
    """

    molecule: str
    numbers: np.ndarray  # (n_atoms,) int64
    positions: np.ndarray  # (n_atoms, 3) float64 | Å
    smiles: str | None = None
    charge: int = 0
    multiplicity: int = 1
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def geometry_hash(self) -> str:
        """Content hash of numbers, positions, charge and multiplicity."""
        return geometry_hash(self.numbers, self.positions, self.charge, self.multiplicity)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of a geometry-file line."""
        return {
            "geometry_hash": self.geometry_hash,
            "molecule": self.molecule,
            "smiles": self.smiles,
            "charge": int(self.charge),
            "multiplicity": int(self.multiplicity),
            "numbers": [int(z) for z in self.numbers],
            "positions": np.asarray(self.positions, dtype=np.float64).tolist(),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> GeometryEntry:
        """Build from a geometry-file line (or a label record, which has the same keys)."""
        try:
            numbers = np.asarray(obj["numbers"], dtype=np.int64)  # (n_atoms,)
            positions = np.asarray(obj["positions"], dtype=np.float64)  # (n_atoms, 3) | Å
            positions = positions.reshape(-1, 3)
            return cls(
                molecule=str(obj["molecule"]), numbers=numbers, positions=positions,
                smiles=obj.get("smiles"), charge=int(obj.get("charge", 0)),
                multiplicity=int(obj.get("multiplicity", 1)), source=dict(obj.get("source", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetFormatError(f"not a geometry record: {exc}") from exc


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSON-lines file, skipping a truncated or corrupt line.

    A last line without ``\\n`` (an interrupted write) is skipped silently at debug level; any
    other unreadable line is skipped with a warning naming the file and line number.

    Args:
        path: The file.

    Yields:
        One dict per intact line.
    """
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - 1  # the piece after the final newline: b"" when the file is intact
    for number, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number == last:
                logger.debug("%s: skipping truncated last line", path)
            else:
                logger.warning("%s: skipping unreadable line %d", path, number + 1)
            continue
        if number == last:  # complete JSON but no newline yet: still an unfinished write
            logger.debug("%s: skipping unterminated last line", path)
            continue
        if isinstance(obj, dict):
            yield obj


def write_geometries(path: str | Path, entries: Iterable[GeometryEntry]) -> int:
    """Write a geometry file atomically (temporary file, fsync, rename).

    Args:
        path: Destination ``*.jsonl`` file (replaced if it exists).
        entries: Conformations in labelling order.

    Returns:
        Number of lines written.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(json.dumps(entry.to_json(), separators=(",", ":"), allow_nan=False) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return count


def read_geometries(path: str | Path) -> list[GeometryEntry]:
    """Read a geometry file (or the geometries of a label store) in file order."""
    return [GeometryEntry.from_json(obj) for obj in read_jsonl(path)]


def latest_records(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """One record per key: the last successful one, else the last failed one.

    Args:
        records: Label records in file order.

    Returns:
        Key → record, in order of first appearance.
    """
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        key = rec.get("key")
        if not isinstance(key, str):
            continue
        old = out.get(key)
        if old is None or rec.get("status") == "ok" or old.get("status") != "ok":
            out[key] = dict(rec)
    return out


class LabelStore:
    """An append-only label store with one ``fsync``'d JSON line per calculation.

    Use as a context manager to write: it takes an exclusive ``flock`` (a second writer gets
    :class:`~ase_mlpot.datasets.errors.StoreLockedError`) and truncates a partial last line
    left by a crash. Reading needs no lock.

    Args:
        path: The ``*.jsonl`` file (created on first write).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def records(self) -> list[dict[str, Any]]:
        """All intact records in file order (empty if the file does not exist)."""
        if not self.path.exists():
            return []
        return list(read_jsonl(self.path))

    def latest(self) -> dict[str, dict[str, Any]]:
        """One record per key (see :func:`latest_records`)."""
        return latest_records(self.records())

    def done_keys(self, *, retry_failed: bool = False) -> set[str]:
        """Keys that need no new calculation: all recorded, or only successful ones."""
        latest = self.latest()
        if retry_failed:
            return {k for k, r in latest.items() if r.get("status") == "ok"}
        return set(latest)

    def __enter__(self) -> LabelStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StoreLockedError(f"{self.path} is being written by another process") from exc
            raise
        self._fd = fd
        self._repair_tail()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _repair_tail(self) -> None:
        """Cut a partial last line (no trailing newline) left by an interrupted write."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as fh:
            block = 1 << 16
            end = size
            while end > 0:
                start = max(0, end - block)
                fh.seek(start)
                chunk = fh.read(end - start)
                if start + len(chunk) == size and chunk.endswith(b"\n"):
                    return
                pos = chunk.rfind(b"\n")
                if pos >= 0:
                    keep = start + pos + 1
                    break
                end = start
            else:
                keep = 0
        logger.warning("%s: removing %d bytes of an interrupted write", self.path, size - keep)
        os.ftruncate(self._fd, keep)
        os.fsync(self._fd)

    def merge(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append the records whose key is not yet stored (labels made elsewhere).

        A successful record also replaces a stored failure of the same key (readers keep the
        latest success). Must be called on an open store.

        Args:
            records: Label records, e.g. ``LabelStore(other).records()``.

        Returns:
            Number of records appended.
        """
        latest = self.latest()
        added = 0
        for rec in latest_records(records).values():
            old = latest.get(rec["key"])
            if old is None or (old.get("status") != "ok" and rec.get("status") == "ok"):
                self.append(rec)
                latest[rec["key"]] = dict(rec)
                added += 1
        return added

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record as a single line and ``fsync`` it.

        Args:
            record: JSON-serialisable mapping with at least ``key``; NaN/inf are rejected.

        Raises:
            RuntimeError: The store is not open for writing (use ``with store:``).
        """
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not open for writing; use 'with LabelStore(...)'")
        data = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
