"""The labelling runner: resumability, killed workers, killed runs, recorded failures."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ase_mlpot.datasets.runner import label_geometries
from ase_mlpot.datasets.store import GeometryEntry, LabelStore, read_jsonl, write_geometries

N_CONF = 10
REPO = Path(__file__).resolve().parents[2]


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _energies(path: Path) -> dict[str, float]:
    """Key → energy of a store; fails on duplicated keys or failed records."""
    records = list(read_jsonl(path))
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)), "duplicate conformations in the store"
    assert all(r["status"] == "ok" for r in records)
    return {r["key"]: r["energy"] for r in records}


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory: pytest.TempPathFactory, make_entries: MakeEntries) -> Path:
    """An uninterrupted run over the test conformations."""
    path = tmp_path_factory.mktemp("ref") / "labels.jsonl"
    summary = label_geometries(make_entries(N_CONF), "hf-sto3g", path, progress=False)
    assert summary.ok == N_CONF and summary.failed == 0 and not summary.interrupted
    return path


def test_uninterrupted_run_and_resume_is_a_no_op(
    reference_store: Path, make_entries: MakeEntries
) -> None:
    """Every conformation once, with provenance; a rerun labels nothing."""
    records = list(read_jsonl(reference_store))
    assert len(records) == N_CONF
    rec = records[0]
    prov = rec["provenance"]
    assert prov["programs"]["pyscf"] and prov["settings"]["basis"] == "STO-3G"
    assert prov["timings_s"]["scf"] > 0 and prov["cpu_time_s"] > 0
    assert rec["convergence"]["scf"]["converged"] is True
    assert rec["level"] == "hf-sto3g" and rec["level_version"] == 1
    assert np.asarray(rec["forces"]).shape == (len(rec["numbers"]), 3)
    before = reference_store.read_bytes()
    summary = label_geometries(make_entries(N_CONF), "hf-sto3g", reference_store,
                               progress=False)
    assert summary.skipped == N_CONF and summary.ok == 0
    assert reference_store.read_bytes() == before


def _worker_pids() -> list[int]:
    """PIDs of this process's live multiprocessing children (the labelling workers)."""
    return [p.pid for p in multiprocessing.active_children() if p.pid is not None]


def test_killed_worker_is_replaced_and_nothing_is_lost(
    tmp_path: Path, reference_store: Path, make_entries: MakeEntries
) -> None:
    """SIGKILL a worker mid-run: it is replaced, its conformation redone; same dataset."""
    path = tmp_path / "labels.jsonl"
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count_lines(path) < 3:
            time.sleep(0.02)
        pids = _worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    thread = threading.Thread(target=killer)
    thread.start()
    summary = label_geometries(make_entries(N_CONF), "hf-sto3g", path, progress=False)
    thread.join()
    assert killed, "no worker was found to kill"
    assert summary.worker_deaths >= 1
    assert summary.ok == N_CONF and summary.failed == 0
    ours, ref = _energies(path), _energies(reference_store)
    assert ours.keys() == ref.keys()
    for key, energy in ref.items():
        assert ours[key] == pytest.approx(energy, abs=1e-9)


_RUN_SCRIPT = """
import sys
from ase_mlpot.datasets.runner import label_geometries
from ase_mlpot.datasets.store import read_geometries
if __name__ == "__main__":
    label_geometries(read_geometries(sys.argv[1]), "hf-sto3g", sys.argv[2], progress=False)
"""

MakeEntries = Callable[..., list[GeometryEntry]]


def test_killed_run_resumes_to_the_same_dataset(
    tmp_path: Path, reference_store: Path, make_entries: MakeEntries
) -> None:
    """SIGKILL the whole run (parent and worker) mid-run, restart: no duplicates, none lost."""
    geometries = tmp_path / "geometries.jsonl"
    write_geometries(geometries, make_entries(N_CONF))
    path = tmp_path / "labels.jsonl"
    script = tmp_path / "run.py"
    script.write_text(_RUN_SCRIPT)
    path_env = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path_env)
    proc = subprocess.Popen([sys.executable, str(script), str(geometries), str(path)], env=env,
                            start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count_lines(path) < 3 and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    done = _count_lines(path)
    assert 3 <= done < N_CONF, "the run was not interrupted mid-way"
    with open(path, "ab") as fh:  # as if the kill had hit a write
        fh.write(b'{"schema":1,"key":"partial')
    summary = label_geometries(make_entries(N_CONF), "hf-sto3g", path, progress=False)
    assert summary.skipped == done and summary.ok == N_CONF - done
    ours, ref = _energies(path), _energies(reference_store)
    assert ours.keys() == ref.keys()
    for key, energy in ref.items():
        assert ours[key] == pytest.approx(energy, abs=1e-9)


def test_failed_scf_is_recorded_and_the_run_goes_on(
    tmp_path: Path, make_entries: MakeEntries
) -> None:
    """Unconvergeable SCFs are stored as failed (with the reason); retry_failed redoes them."""
    path = tmp_path / "labels.jsonl"
    entries = make_entries(3)
    summary = label_geometries(entries, "hf-sto3g", path, progress=False,
                               level_options={"conv_tol": 1e-30, "max_cycle": 2})
    assert summary.failed == 3 and summary.ok == 0 and len(summary.failures) == 3
    records = list(read_jsonl(path))
    assert [r["status"] for r in records] == ["failed"] * 3
    assert all("did not converge" in r["error"] for r in records)
    assert all(r["energy"] is None and r["positions"] for r in records)
    # failed conformations are not silently redone ...
    again = label_geometries(entries, "hf-sto3g", path, progress=False)
    assert again.skipped == 3 and again.ok == 0
    # ... unless asked; the successes then supersede the failures
    retried = label_geometries(entries, "hf-sto3g", path, progress=False, retry_failed=True)
    assert retried.ok == 3
    latest = LabelStore(path).latest()
    assert len(latest) == 3 and all(r["status"] == "ok" for r in latest.values())
    assert len(list(read_jsonl(path))) == 6


def test_limit_and_parallel_workers(
    tmp_path: Path, reference_store: Path, make_entries: MakeEntries
) -> None:
    """--limit stops early; two workers give the same labels as one."""
    path = tmp_path / "labels.jsonl"
    first = label_geometries(make_entries(N_CONF), "hf-sto3g", path, progress=False,
                             limit=4, n_workers=2)
    assert first.ok == 4
    rest = label_geometries(make_entries(N_CONF), "hf-sto3g", path, progress=False,
                            n_workers=2)
    assert rest.skipped == 4 and rest.ok == N_CONF - 4
    ours, ref = _energies(path), _energies(reference_store)
    assert ours.keys() == ref.keys()
    assert max(abs(ours[k] - ref[k]) for k in ref) < 1e-9
    assert json.loads(path.read_text().splitlines()[0])["status"] == "ok"
