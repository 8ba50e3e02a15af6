"""Resumable, parallel labelling of conformations with single-threaded worker processes.

The parent process owns the label store (:class:`~ase_mlpot.datasets.store.LabelStore`) and is
its only writer; ``n_workers`` spawned worker processes each run one calculation at a time with
one thread (``pyscf.lib.num_threads(1)`` and BLAS limited by ``threadpoolctl`` *inside the
worker*; the calling process's threads and environment are never changed). A result is appended
and ``fsync``'d as soon as it arrives, so an interrupted run loses at most the calculations in
flight. Restarting skips every key already in the store (successful or failed; failed ones are
retried only with ``retry_failed=True``), so the final store holds each conformation once.

A failed SCF/CC is a *result* (status ``"failed"``) and is stored like any other. A worker that
dies (killed, out of memory) is replaced and its conformation is re-queued; after
``max_attempts`` deaths on the same conformation it is recorded as failed.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import logging
import multiprocessing as mp
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from ase_mlpot.datasets.errors import LabellingError
from ase_mlpot.datasets.levels import Geometry, LevelOfTheory, get_level, program_versions
from ase_mlpot.datasets.store import STORE_SCHEMA, GeometryEntry, LabelStore, label_key

__all__ = ["RunSummary", "label_geometries", "make_record"]

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """Counts and costs of one labelling run.

    Attributes:
        level: Versioned level tag, e.g. ``wb97x-631gs@v1``.
        store: Path of the label store.
        requested: Conformations passed in (after de-duplication by key).
        skipped: Already in the store before the run.
        ok: Successful calculations finished in this run.
        failed: Failed calculations recorded in this run.
        worker_deaths: Worker processes that died and were replaced.
        cpu_seconds: CPU seconds of the finished calculations (sum over workers).
        wall_seconds: Wall-clock seconds of the run.
        interrupted: ``True`` if the run stopped before every conformation was labelled.
    """

    level: str
    store: str
    requested: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    worker_deaths: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def make_record(
    entry: GeometryEntry,
    level: LevelOfTheory,
    *,
    status: str,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    components: dict[str, float] | None = None,
    convergence: dict[str, Any] | None = None,
    error: str | None = None,
    timings: dict[str, float] | None = None,
    cpu_time: float = 0.0,
    settings: dict[str, Any] | None = None,
    versions: dict[str, str] | None = None,
    attempt: int = 1,
) -> dict[str, Any]:
    """Build one label-store record (see :mod:`ase_mlpot.datasets.store` for the keys).

    Args:
        entry: The labelled conformation (positions in Å).
        level: The level of theory.
        status: ``"ok"`` or ``"failed"``.
        energy: Total energy in Hartree.
        forces: Forces −∂E/∂r in Hartree/Å, shape ``(n_atoms, 3)``.
        components: Energy components in Hartree.
        convergence: Convergence information of each step.
        error: Failure message.
        timings: Wall-clock seconds per step.
        cpu_time: CPU seconds of the calculation.
        settings: The level's settings.
        versions: Program versions.
        attempt: How many times this conformation was started.

    Returns:
        The JSON-serialisable record.
    """
    ghash = entry.geometry_hash
    return {
        "schema": STORE_SCHEMA,
        "key": label_key(ghash, level.name, level.version),
        "geometry_hash": ghash,
        "level": level.name,
        "level_version": level.version,
        "status": status,
        "molecule": entry.molecule,
        "smiles": entry.smiles,
        "charge": int(entry.charge),
        "multiplicity": int(entry.multiplicity),
        "numbers": [int(z) for z in entry.numbers],
        "positions": np.asarray(entry.positions, dtype=np.float64).tolist(),
        "energy": None if energy is None else float(energy),
        "forces": None if forces is None else np.asarray(forces, dtype=np.float64).tolist(),
        "components": components or {},
        "convergence": convergence or {},
        "error": error,
        "provenance": {
            "settings": settings if settings is not None else level.settings(),
            "programs": versions if versions is not None else program_versions(),
            "timings_s": timings or {},
            "cpu_time_s": float(cpu_time),
            "attempt": attempt,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "source": entry.source,
    }


def _worker_main(conn: Connection, level_name: str, level_options: dict[str, Any]) -> None:
    """Worker process: limit threads to one, then label geometries sent through ``conn``."""
    try:
        from pyscf import lib

        lib.num_threads(1)
    except ImportError:  # pragma: no cover - a level without pyscf
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # stays in force: threadpoolctl restores only on request
    except ImportError:  # pragma: no cover - threadpoolctl is part of the label extra
        logging.getLogger(__name__).warning("threadpoolctl missing: BLAS may use several threads")
    try:
        level = get_level(level_name, **level_options)
        versions = program_versions()
    except Exception as exc:  # reported to the parent, which aborts the run
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    _serve(conn, level, versions)


def _serve(conn: Connection, level: LevelOfTheory, versions: dict[str, str]) -> None:
    """Worker loop: receive ``(geometry JSON, attempt)``, send back the record; stop on None."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # parent gone
            return
        if message is None:
            return
        obj, attempt = message
        entry = GeometryEntry.from_json(obj)
        geometry = Geometry(entry.numbers, entry.positions, entry.charge, entry.multiplicity)
        result = level.compute(geometry)
        record = make_record(
            entry, level, status="ok" if result.ok else "failed", energy=result.energy,
            forces=result.forces, components=result.components, convergence=result.convergence,
            error=result.error, timings=result.timings, cpu_time=result.cpu_time,
            settings=result.settings, versions=versions, attempt=attempt,
        )
        try:
            conn.send(record)
        except (BrokenPipeError, OSError):  # parent gone
            return


class _Worker:
    """A worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any, level_name: str, level_options: dict[str, Any]) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_main, args=(child, level_name, level_options), daemon=True
        )
        self.process.start()
        child.close()
        self.task: tuple[GeometryEntry, int] | None = None
        self._handshake()

    def _handshake(self, timeout: float = 600.0) -> None:
        """Wait for the worker's ``ready``; a worker that cannot start aborts the run."""
        wait([self.conn, self.process.sentinel], timeout)
        message: Any = None
        try:
            if self.conn.poll():
                message = self.conn.recv()
        except (EOFError, OSError):
            message = None
        if isinstance(message, tuple) and message[0] == "ready":
            return
        self.stop()
        detail = message[1] if isinstance(message, tuple) else (
            f"exit code {self.process.exitcode}; is the calling module guarded by "
            "if __name__ == '__main__'?")
        raise LabellingError(f"labelling worker could not start: {detail}")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send(None)
            self.process.join(timeout if self.task is None else 0.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.conn.close()


def label_geometries(
    entries: Iterable[GeometryEntry],
    level: str,
    store: str | Path,
    *,
    n_workers: int = 1,
    retry_failed: bool = False,
    limit: int | None = None,
    max_attempts: int = 2,
    level_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> RunSummary:
    """Label conformations at one level of theory, resuming from what the store already holds.

    Args:
        entries: Conformations in the order to label them.
        level: Level name (see :data:`~ase_mlpot.datasets.levels.LEVELS`), optionally ``@vN``.
        store: Label store (``*.jsonl``); created if missing, appended to otherwise.
        n_workers: Worker processes, each single-threaded.
        retry_failed: Recompute conformations whose stored result is a failure.
        limit: Label at most this many new conformations, then stop.
        max_attempts: Worker deaths tolerated per conformation before it is recorded as failed.
        level_options: Keyword options of the level's constructor.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        The run summary (``interrupted=True`` if it stopped on KeyboardInterrupt/SIGTERM).

    Raises:
        StoreLockedError: Another process is writing the store.
        UnknownLevelError: Unknown level name.
        LabellingError: A worker process could not start (nothing is recorded for it).
    """
    from tqdm import tqdm

    options = dict(level_options or {})
    lot = get_level(level, **options)
    summary = RunSummary(level=lot.tag, store=str(store))
    start = time.perf_counter()
    label_store = LabelStore(store)
    with label_store:
        done = label_store.done_keys(retry_failed=retry_failed)
        queue: collections.deque[tuple[GeometryEntry, int]] = collections.deque()
        seen: set[str] = set()
        for entry in entries:
            key = label_key(entry.geometry_hash, lot.name, lot.version)
            if key in seen:
                continue
            seen.add(key)
            if key in done:
                summary.skipped += 1
            elif limit is None or len(queue) < limit:
                queue.append((entry, 1))
        summary.requested = len(seen)
        logger.info(
            "%s: %d conformations, %d already in %s, %d to label with %d worker(s)",
            lot.tag, len(seen), summary.skipped, store, len(queue), n_workers,
        )
        if not queue:
            summary.wall_seconds = time.perf_counter() - start
            return summary
        ctx = mp.get_context("spawn")
        workers: list[_Worker] = []
        bar = tqdm(total=len(queue), file=sys.stderr, disable=not progress, unit="conf",
                   desc=lot.name, dynamic_ncols=True)
        try:
            workers = [_Worker(ctx, lot.name, options) for _ in range(min(n_workers, len(queue)))]
            _run_loop(workers, queue, lot, label_store, summary, bar, ctx, options, max_attempts)
        except KeyboardInterrupt:
            summary.interrupted = True
            logger.warning("interrupted; %d results are in %s, rerun to resume", summary.ok
                           + summary.failed, store)
        finally:
            bar.close()
            for worker in workers:
                worker.stop()
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _run_loop(
    workers: list[_Worker],
    queue: collections.deque[tuple[GeometryEntry, int]],
    lot: LevelOfTheory,
    label_store: LabelStore,
    summary: RunSummary,
    bar: Any,
    ctx: Any,
    options: dict[str, Any],
    max_attempts: int,
) -> None:
    """Feed idle workers, store results as they arrive, replace dead workers."""
    while True:
        for worker in workers:
            if worker.task is None and queue:
                entry, attempt = queue.popleft()
                worker.task = (entry, attempt)
                worker.conn.send((entry.to_json(), attempt))
        busy = [w for w in workers if w.task is not None]
        if not busy:
            return
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
        for index, worker in enumerate(workers):
            if worker.task is None or (worker.conn not in ready
                                       and worker.process.sentinel not in ready):
                continue
            entry, attempt = worker.task
            record: dict[str, Any] | None = None
            try:
                if worker.conn.poll():
                    record = worker.conn.recv()
            except (EOFError, OSError):
                record = None
            if record is not None:
                worker.task = None
                _store_result(record, label_store, summary, bar)
                continue
            if worker.process.is_alive():
                continue
            # the worker died while labelling this conformation
            code = worker.process.exitcode
            summary.worker_deaths += 1
            logger.warning("worker %d died (exit code %s) on %s (attempt %d)",
                           worker.process.pid, code, entry.molecule, attempt)
            worker.task = None
            worker.stop()
            workers[index] = _Worker(ctx, lot.name, options)
            if attempt < max_attempts:
                queue.appendleft((entry, attempt + 1))
            else:
                record = make_record(
                    entry, lot, status="failed", attempt=attempt,
                    error=f"worker process died (exit code {code}) {attempt} times",
                )
                _store_result(record, label_store, summary, bar)


def _store_result(
    record: dict[str, Any], label_store: LabelStore, summary: RunSummary, bar: Any
) -> None:
    """Append a record and update the counters."""
    label_store.append(record)
    logger.info("%s %-24s %s cpu %.1f s", record["status"], record["molecule"], record["key"],
                record["provenance"].get("cpu_time_s", 0.0))
    if record["status"] == "ok":
        summary.ok += 1
    else:
        summary.failed += 1
        summary.failures.append(f"{record['molecule']} {record['key']}: {record['error']}")
    summary.cpu_seconds += float(record["provenance"].get("cpu_time_s", 0.0))
    bar.update(1)

