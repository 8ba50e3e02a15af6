"""The JSON-lines stores: hashing, crash tolerance, locking."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ase_mlpot.datasets.errors import StoreLockedError
from ase_mlpot.datasets.store import (
    GeometryEntry,
    LabelStore,
    geometry_hash,
    label_key,
    latest_records,
    read_geometries,
    read_jsonl,
    write_geometries,
)

MakeEntries = Callable[..., list[GeometryEntry]]


def test_geometry_hash_is_content_based(make_entries: MakeEntries) -> None:
    """Same geometry → same hash after a JSON round trip; any change → a different hash."""
    entry = make_entries(1)[0]
    back = GeometryEntry.from_json(json.loads(json.dumps(entry.to_json())))
    assert back.geometry_hash == entry.geometry_hash
    moved = entry.positions.copy()
    moved[0, 0] += 1e-6
    assert geometry_hash(entry.numbers, moved) != entry.geometry_hash
    assert geometry_hash(entry.numbers, entry.positions, charge=1) != entry.geometry_hash
    assert label_key(entry.geometry_hash, "a", 1) != label_key(entry.geometry_hash, "a", 2)


def test_geometry_file_round_trip(tmp_path: Path, make_entries: MakeEntries) -> None:
    """write_geometries/read_geometries keep order, numbers, positions (bitwise) and source."""
    entries = make_entries(5)
    path = tmp_path / "g.jsonl"
    assert write_geometries(path, entries) == 5
    back = read_geometries(path)
    assert [e.molecule for e in back] == [e.molecule for e in entries]
    for a, b in zip(entries, back, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.numbers, b.numbers)
        assert a.source == b.source


def test_truncated_last_line_is_skipped_and_repaired(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial line: readers skip it, the next writer cuts it."""
    path = tmp_path / "labels.jsonl"
    with LabelStore(path) as store:
        store.append({"key": "a", "status": "ok"})
        store.append({"key": "b", "status": "failed"})
    with open(path, "ab") as fh:
        fh.write(b'{"key": "c", "status": "o')  # interrupted write
    assert [r["key"] for r in read_jsonl(path)] == ["a", "b"]
    with LabelStore(path) as store:
        store.append({"key": "c", "status": "ok"})
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(x)["key"] for x in lines[:-1]] == ["a", "b", "c"]
    # a complete JSON object without its newline is also an unfinished write
    with open(path, "ab") as fh:
        fh.write(b'{"key": "d", "status": "ok"}')
    assert [r["key"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_latest_prefers_success_and_done_keys(tmp_path: Path) -> None:
    """A later success replaces a failure; failures count as done unless retried."""
    records = [{"key": "a", "status": "failed", "n": 1}, {"key": "b", "status": "ok", "n": 2},
               {"key": "a", "status": "ok", "n": 3}, {"key": "b", "status": "failed", "n": 4},
               {"key": "c", "status": "failed", "n": 5}]
    latest = latest_records(records)
    assert {k: v["n"] for k, v in latest.items()} == {"a": 3, "b": 2, "c": 5}
    path = tmp_path / "s.jsonl"
    with LabelStore(path) as store:
        for rec in records:
            store.append(rec)
    assert LabelStore(path).done_keys() == {"a", "b", "c"}
    assert LabelStore(path).done_keys(retry_failed=True) == {"a", "b"}


def test_one_writer_per_store(tmp_path: Path) -> None:
    """A second writer on the same store is refused."""
    path = tmp_path / "s.jsonl"
    with LabelStore(path), pytest.raises(StoreLockedError), LabelStore(path):
        pass
    with LabelStore(path) as store:  # released afterwards
        store.append({"key": "x"})


def test_append_needs_open_store(tmp_path: Path) -> None:
    """Appending outside the context manager is an error, and NaN is rejected."""
    store = LabelStore(tmp_path / "s.jsonl")
    with pytest.raises(RuntimeError):
        store.append({"key": "x"})
    with store, pytest.raises(ValueError):
        store.append({"key": "x", "energy": float("nan")})


def test_merge_adds_only_new_keys_and_replaces_failures(tmp_path: Path) -> None:
    """Merging stores made elsewhere: new keys appended, failures upgraded, no duplicates."""
    ours, theirs = LabelStore(tmp_path / "a.jsonl"), LabelStore(tmp_path / "b.jsonl")
    with ours:
        ours.append({"key": "a", "status": "ok", "n": 1})
        ours.append({"key": "b", "status": "failed", "n": 2})
    with theirs:
        for rec in ({"key": "a", "status": "ok", "n": 3}, {"key": "b", "status": "ok", "n": 4},
                    {"key": "c", "status": "failed", "n": 5}):
            theirs.append(rec)
    with ours:
        assert ours.merge(theirs.records()) == 2
        assert ours.merge(theirs.records()) == 0
    assert {k: r["n"] for k, r in ours.latest().items()} == {"a": 1, "b": 4, "c": 5}
