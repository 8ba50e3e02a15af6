"""`zoo/label_corpus.py`: which geometries it queues for labelling, and its command line."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ase_mlpot.datasets.store import GeometryEntry, write_geometries
from tests.zoo_scripts import load_zoo_script


@pytest.fixture(scope="module")
def label_corpus() -> ModuleType:
    return load_zoo_script("label_corpus")


def _chain(heavy: int, shift: float) -> GeometryEntry:
    """A carbon chain with ``heavy`` atoms and one hydrogen, displaced by ``shift`` Å."""
    numbers = np.array([6] * heavy + [1])
    positions = np.array([[1.5 * i + shift, 0.0, 0.0] for i in range(heavy + 1)])
    return GeometryEntry(molecule=f"chain-{heavy}", numbers=numbers, positions=positions)


@pytest.fixture()
def geometry_file(tmp_path: Path) -> Path:
    """Round-robin order over molecules with 1, 3, 5 and 7 heavy atoms, three rounds."""
    path = tmp_path / "geometries.jsonl"
    write_geometries(path, [_chain(heavy, 0.01 * round_)
                            for round_ in range(3) for heavy in (1, 3, 5, 7)])
    return path


def test_default_queue_is_cc_eligible(label_corpus: ModuleType, geometry_file: Path) -> None:
    queue = label_corpus.first_conformations(geometry_file, per_molecule=2)
    assert [e.molecule for e in queue] == ["chain-1", "chain-3"] * 2


def test_dft_queue_of_larger_extra_molecules(label_corpus: ModuleType,
                                             geometry_file: Path) -> None:
    queue = label_corpus.first_conformations(geometry_file, per_molecule=1, max_heavy=7)
    assert [e.molecule for e in queue] == ["chain-1", "chain-3", "chain-5", "chain-7"]
    assert [e.molecule for e in label_corpus.first_conformations(
        geometry_file, per_molecule=5, max_heavy=5)] == ["chain-1", "chain-3", "chain-5"] * 3


def test_merge_takes_options_before_the_stores(label_corpus: ModuleType) -> None:
    args = label_corpus.parse_arguments(["merge", "--level", "dft", "a.jsonl", "b.jsonl"])
    assert (args.step, args.level, args.stores) == ("merge", "dft",
                                                    [Path("a.jsonl"), Path("b.jsonl")])
    assert label_corpus.parse_arguments(["merge", "a.jsonl", "--level", "cc"]).level == "cc"


def test_cc_coverage_queue_takes_named_dft_labelled_molecules_of_any_size(
        label_corpus: ModuleType, tmp_path: Path) -> None:
    entries = [_chain(heavy, 0.01 * round_) for round_ in range(3) for heavy in (3, 5, 7)]
    store = tmp_path / "dft.jsonl"
    with store.open("w") as handle:
        for index, entry in enumerate(entries):
            failed = entry.molecule == "chain-5" and index < 3  # its first conformation failed
            record = {**entry.to_json(), "key": f"k{index}", "level": "dft", "level_version": 1,
                      "status": "failed" if failed else "ok"}
            handle.write(json.dumps(record) + "\n")
    with store.open("a") as handle:  # one more chain-7 at the end: the queue stays round-robin
        extra = _chain(7, 0.5)
        handle.write(json.dumps({**extra.to_json(), "key": "late", "level": "dft",
                                 "level_version": 1, "status": "ok"}) + "\n")
    queue = label_corpus.labelled_conformations(store, frozenset({"chain-5", "chain-7"}), 3)
    assert [e.molecule for e in queue] == ["chain-7", "chain-5"] * 2 + ["chain-7"]
    expected = [entries[2], entries[4], entries[5], entries[7], entries[8]]  # chain-5: round 1 on
    assert [e.geometry_hash for e in queue] == [e.geometry_hash for e in expected]
    args = label_corpus.parse_arguments(["label", "--level", "cc", "--molecules", "a,b"])
    assert args.molecules == frozenset({"a", "b"})
