"""``mlpot-zoo data``: sample, label, inspect, convert and split datasets.

Human output goes to stdout, progress bars and logs to stderr; ``--json`` prints one JSON
document instead. Units: Hartree, Å and Hartree/Å in stores and HDF5 files; eV and eV/Å in
extxyz / ASE db files.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from ase_mlpot.cli_errors import command_errors
from ase_mlpot.datasets.errors import DatasetError, DatasetFormatError
from ase_mlpot.datasets.hdf5 import (
    ConformerDataset,
    read_dataset,
    write_ani_h5,
    write_ase,
)
from ase_mlpot.datasets.levels import LEVELS
from ase_mlpot.datasets.store import GeometryEntry, read_jsonl, write_geometries

__all__ = ["data"]

logger = logging.getLogger(__name__)


def _emit(payload: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    """Print either the JSON document or the human-readable lines."""
    if as_json:
        click.echo(json.dumps(payload, indent=2, sort_keys=False))
    else:
        for line in lines:
            click.echo(line)


@click.group(name="data", context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Make and handle labelled datasets (extra ``label`` for sample/label)."""


# ----------------------------------------------------------------------------- sample
def _read_smiles_file(path: Path) -> list[tuple[str, str]]:
    """(smiles, name) pairs of a ``.smi`` file: ``SMILES [name]``, ``#`` comments."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        out.append((parts[0], parts[1] if len(parts) > 1 else f"mol{number:05d}"))
    return out


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from exc


@data.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Geometry file to write (*.jsonl).")
@click.option("--calculator", type=click.Choice(["gfn2-xtb", "gfn1-xtb"]), default="gfn2-xtb",
              show_default=True, help="Calculator for relaxation, Hessian and MD (tblite).")
@click.option("--conformers", default=3, show_default=True, help="ETKDG conformers per SMILES.")
@click.option("--normal-mode", "n_normal_mode", default=48, show_default=True,
              help="Normal-mode samples per molecule.")
@click.option("--temperatures", default="300,600,1000", show_default=True,
              help="Normal-mode sampling temperatures in K (cycled).")
@click.option("--md", "n_md", default=15, show_default=True, help="MD snapshots per molecule.")
@click.option("--md-temperatures", default="500", show_default=True,
              help="Langevin MD temperatures in K.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def sample(source: Path, output: Path, calculator: str, conformers: int, n_normal_mode: int,
           temperatures: str, n_md: int, md_temperatures: str, seed: int, as_json: bool) -> None:
    """Sample conformations of the molecules in SOURCE into a geometry file.

    SOURCE is a SMILES file (``*.smi``: ``SMILES [name]`` per line; RDKit ETKDG embedding) or
    any structure file ASE reads (each structure is a starting point, named by its formula or
    ``info["molecule"]``). Every molecule is relaxed, then normal-mode and MD sampled; the
    output lists the conformations round-robin over molecules, ready for ``data label``.
    """
    from tqdm import tqdm

    from ase_mlpot.datasets.sampling import (
        SamplingPlan,
        round_robin,
        sample_molecule,
        xtb_calculator,
    )

    calc = xtb_calculator("GFN2-xTB" if calculator == "gfn2-xtb" else "GFN1-xTB")
    plan = SamplingPlan(
        n_conformers=conformers, n_normal_mode=n_normal_mode,
        normal_mode_temperatures=_floats(temperatures), n_md=n_md,
        md_temperatures=_floats(md_temperatures),
    )
    jobs: list[tuple[str, str, Any]] = []
    if source.suffix.lower() == ".smi":
        jobs = [(smi, name, None) for smi, name in _read_smiles_file(source)]
    else:
        from ase.io import read

        for atoms in read(str(source), index=":"):
            name = str(atoms.info.get("molecule", atoms.get_chemical_formula()))
            jobs.append((str(atoms.info.get("smiles", "")), name, [atoms]))
    per_molecule = []
    failures = []
    for smiles, name, starts in tqdm(jobs, file=sys.stderr, unit="mol", desc="sample"):
        try:
            per_molecule.append(sample_molecule(smiles, name, calc, plan, seed=seed,
                                                sampler=calculator, starts=starts))
        except DatasetError as exc:
            failures.append(f"{name}: {exc}")
            logger.warning("sampling %s failed: %s", name, exc)
    count = write_geometries(output, round_robin(per_molecule))
    payload = {"output": str(output), "molecules": len(per_molecule), "conformations": count,
               "failed": failures}
    _emit(payload, as_json, [f"wrote {count} conformations of {len(per_molecule)} molecules "
                             f"to {output}"] + [f"failed: {f}" for f in failures])


# ----------------------------------------------------------------------------- label
def _entries_from_file(path: Path) -> list[GeometryEntry]:
    """Geometries to label from a geometry/label ``.jsonl``, an ANI HDF5 or an ASE file."""
    if path.suffix.lower() == ".jsonl":
        return [GeometryEntry.from_json(obj) for obj in read_jsonl(path)]
    dataset = read_dataset(path)
    entries = []
    for name, group in dataset.groups.items():
        smiles = group.extra.get("smiles")
        for i in range(len(group)):
            entries.append(GeometryEntry(
                molecule=str(group.molecule[i]) if group.molecule is not None else name,
                numbers=np.asarray(group.atomic_numbers, dtype=np.int64),
                positions=group.coordinates[i],  # (n_atoms, 3) | Å
                smiles=str(smiles[i]) if smiles is not None and smiles[i] else None,
                source={"file": str(path), "group": name, "index": i},
            ))
    return entries


@data.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", "level", type=click.Choice(sorted(LEVELS)), default="wb97x-631gs",
              show_default=True, help="Level of theory.")
@click.option("-s", "--store", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Label store (*.jsonl) to create or resume.")
@click.option("-j", "--workers", default=1, show_default=True,
              help="Worker processes, one thread each.")
@click.option("--limit", type=int, default=None, help="Label at most this many new conformations.")
@click.option("--retry-failed", is_flag=True, help="Recompute conformations stored as failed.")
@click.option("--no-density-fitting", is_flag=True,
              help="wb97x-631gs with exact integrals (slower).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def label(source: Path, level: str, store: Path, workers: int, limit: int | None,
          retry_failed: bool, no_density_fitting: bool, as_json: bool) -> None:
    """Label the conformations of SOURCE at a level of theory, resuming STORE.

    SOURCE is a geometry file from ``data sample``, a label store, an ANI HDF5 file or any
    structure file ASE reads. Each result (or failure) is appended to STORE as one
    ``fsync``'d line; interrupt at any time and rerun the same command to continue.
    """
    from ase_mlpot.datasets.runner import label_geometries

    options: dict[str, Any] = {}
    if no_density_fitting:
        if level != "wb97x-631gs":
            raise click.UsageError("--no-density-fitting applies to wb97x-631gs only")
        options["density_fitting"] = False
    entries = _entries_from_file(source)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        summary = label_geometries(entries, level, store, n_workers=workers, limit=limit,
                                   retry_failed=retry_failed, level_options=options)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    payload = summary.to_dict()
    lines = [
        f"level {summary.level}: {summary.requested} conformations, {summary.skipped} already "
        f"stored, {summary.ok} labelled, {summary.failed} failed"
        + (" (interrupted; rerun to resume)" if summary.interrupted else ""),
        f"CPU time {summary.cpu_seconds:.1f} s, wall time {summary.wall_seconds:.1f} s, "
        f"worker deaths {summary.worker_deaths}",
    ] + [f"failed: {f}" for f in summary.failures]
    _emit(payload, as_json, lines)
    if summary.interrupted:
        sys.exit(130)


# ----------------------------------------------------------------------------- select
@data.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-m", "--model", "model_name", required=True,
              help="Ensemble model (zoo name or artifact folder) whose members must agree.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Geometry file (*.jsonl) of the selected conformations, most uncertain first.")
@click.option("--threshold", default=0.23, show_default=True,
              help="Select where ρ = σ_E/√N_atoms exceeds this (kcal/mol/√atom; ANI-1x: 0.23).")
@click.option("--max", "max_selected", type=click.IntRange(min=1), default=None,
              help="Keep at most this many (the largest ρ).")
@click.option("--exclude", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              multiple=True, help="Label store or geometry file whose conformations are skipped "
                                  "(e.g. those already labelled); repeatable.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@command_errors()
def select(source: Path, model_name: str, output: Path, threshold: float,
           max_selected: int | None, exclude: tuple[Path, ...], device: str,
           as_json: bool) -> None:
    """Active learning: keep the conformations of SOURCE on which MODEL's ensemble disagrees.

    Query by committee as in ANI-1x: each conformation is scored by ρ = σ_E/√N_atoms, the
    spread of the ensemble members' energies per √atom in kcal/mol, and those above
    ``--threshold`` are written to OUTPUT (largest ρ first, ρ recorded in each entry's
    ``source``), ready for ``data label``. SOURCE is anything ``data label`` reads.
    """
    from ase import Atoms

    from ase_mlpot.api import load
    from ase_mlpot.datasets.sampling import query_by_committee

    calc = load(model_name, device=device)
    if calc.parameters["ensemble_size"] < 2:
        raise click.UsageError(f"{model_name} is a single model; query by committee needs an "
                               "ensemble (ensemble_size >= 2)")
    known: set[str] = set()
    for path in exclude:
        hashes = {obj["geometry_hash"] for obj in read_jsonl(path) if "geometry_hash" in obj}
        if not hashes:
            raise click.UsageError(f"--exclude {path}: no geometries (expected a label store "
                                   "or geometry file, *.jsonl)")
        known |= hashes
    unique: dict[str, GeometryEntry] = {}
    for entry in _entries_from_file(source):  # a label store may hold a geometry repeatedly
        unique.setdefault(entry.geometry_hash, entry)
    supported = set(calc.model.atomic_numbers)
    entries, unsupported, excluded = [], [], 0
    for entry in unique.values():
        if not set(entry.numbers.tolist()) <= supported:
            unsupported.append(entry)
        elif entry.geometry_hash in known:
            excluded += 1
        else:
            entries.append(entry)
    candidates = [Atoms(numbers=e.numbers, positions=e.positions) for e in entries]
    chosen, rho = query_by_committee(candidates, calc, threshold=threshold,
                                     max_selected=max_selected, progress=not as_json)
    selected = []
    for index in chosen:
        entry = entries[index]
        entry.source = {**entry.source, "committee": {"model": calc.parameters["model"],
                                                      "rho": float(rho[index])}}
        selected.append(entry)
    write_geometries(output, selected)
    quantiles = np.quantile(rho, [0.5, 0.95, 1.0]).tolist() if len(rho) else [0.0, 0.0, 0.0]
    payload = {"output": str(output), "model": calc.parameters["model"],
               "candidates": len(entries), "excluded": excluded,
               "unsupported_elements": len(unsupported), "selected": len(selected),
               "threshold": threshold, "rho_median": quantiles[0], "rho_p95": quantiles[1],
               "rho_max": quantiles[2]}
    _emit(payload, as_json, [
        f"scored {len(entries)} conformations with {payload['model']} "
        f"({calc.parameters['ensemble_size']} members; {excluded} excluded, "
        f"{len(unsupported)} with elements it lacks); ρ median {quantiles[0]:.3f}, "
        f"95th percentile {quantiles[1]:.3f}, max {quantiles[2]:.3f} kcal/mol/√atom",
        f"selected {len(selected)} above {threshold} → {output}",
    ])


# ----------------------------------------------------------------------------- info
def _store_info(path: Path) -> dict[str, Any]:
    """Counts of a label store (per level) or of a geometry file."""
    from ase_mlpot.datasets.store import latest_records

    objects = list(read_jsonl(path))
    if objects and "key" not in objects[0]:
        molecules = {o.get("molecule") for o in objects}
        return {"path": str(path), "kind": "geometries", "conformations": len(objects),
                "molecules": len(molecules)}
    latest = latest_records(objects)
    levels: dict[str, dict[str, Any]] = {}
    for rec in latest.values():
        tag = f"{rec['level']}@v{rec['level_version']}"
        info = levels.setdefault(tag, {"ok": 0, "failed": 0, "cpu_seconds": 0.0,
                                       "molecules": set(), "by_heavy_atoms": {}})
        info["cpu_seconds"] += float(rec.get("provenance", {}).get("cpu_time_s", 0.0))
        if rec.get("status") != "ok":
            info["failed"] += 1
            continue
        info["ok"] += 1
        info["molecules"].add(rec["molecule"])
        heavy = str(sum(1 for z in rec["numbers"] if z > 1))
        slot = info["by_heavy_atoms"].setdefault(heavy, {"molecules": set(), "conformations": 0})
        slot["molecules"].add(rec["molecule"])
        slot["conformations"] += 1
    for info in levels.values():
        info["molecules"] = len(info["molecules"])
        info["cpu_seconds"] = round(info["cpu_seconds"], 1)
        info["seconds_per_conformation"] = round(
            info["cpu_seconds"] / max(1, info["ok"] + info["failed"]), 2)
        info["by_heavy_atoms"] = {
            h: {"molecules": len(v["molecules"]), "conformations": v["conformations"]}
            for h, v in sorted(info["by_heavy_atoms"].items(), key=lambda kv: int(kv[0]))
        }
    return {"path": str(path), "kind": "labels", "records": len(objects), "levels": levels}


def _heavy_lines(by_heavy: dict[str, dict[str, int]]) -> Iterator[str]:
    for heavy, v in by_heavy.items():
        yield f"  {heavy} heavy atoms: {v['molecules']:4d} molecules {v['conformations']:6d} conf."


@data.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--forces-kind", type=click.Choice(["forces", "gradients"]), default=None,
              help="Sign convention of a third-party HDF5 file without a forces_kind attribute.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def info(path: Path, forces_kind: str | None, as_json: bool) -> None:
    """Counts of a dataset: conformations, molecules, failures, CPU time, by heavy atoms.

    PATH is a label store or geometry file (``*.jsonl``), an ANI HDF5 file or any file ASE
    reads.
    """
    try:
        if path.suffix.lower() == ".jsonl":
            payload = _store_info(path)
            if payload["kind"] == "geometries":
                lines = [f"{path}: geometry file, {payload['conformations']} conformations of "
                         f"{payload['molecules']} molecules"]
            else:
                lines = [f"{path}: label store, {payload['records']} records"]
                for tag, v in payload["levels"].items():
                    lines.append(
                        f"{tag}: {v['ok']} labelled conformations of {v['molecules']} molecules, "
                        f"{v['failed']} failed, CPU {v['cpu_seconds'] / 3600:.2f} h "
                        f"({v['seconds_per_conformation']} s/conformation)")
                    lines.extend(_heavy_lines(v["by_heavy_atoms"]))
        else:
            dataset = read_dataset(path, forces_kind=forces_kind)  # type: ignore[arg-type]
            payload = {"path": str(path), "kind": "dataset", **dataset.summary()}
            lines = [
                f"{path}: {payload['conformations']} conformations of {payload['molecules']} "
                f"molecules in {payload['groups']} groups, level {payload['level_of_theory']}, "
                f"elements {' '.join(payload['elements'])}, forces: {payload['has_forces']}",
                *_heavy_lines(payload["by_heavy_atoms"]),
            ]
    except DatasetFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(payload, as_json, lines)


# ----------------------------------------------------------------------------- convert
def _write(dataset: ConformerDataset, path: Path, forces_kind: str) -> None:
    if path.suffix.lower() in (".h5", ".hdf5"):
        write_ani_h5(dataset, path, forces_kind=forces_kind)  # type: ignore[arg-type]
    else:
        write_ase(dataset, path)


@data.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--forces-kind", "in_kind", type=click.Choice(["forces", "gradients"]),
              default=None, help="Sign convention of a third-party input HDF5 file.")
@click.option("--write-gradients", is_flag=True,
              help="Store +dE/dr under 'forces' in an HDF5 output (COMP6 convention).")
@click.option("--level", default=None, help="Level to take from a label store with several.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def convert(source: Path, destination: Path, in_kind: str | None, write_gradients: bool,
            level: str | None, as_json: bool) -> None:
    """Convert between label stores, ANI HDF5 (``.h5``) and ASE formats (``.xyz``, ``.db``).

    Only successful labels are converted. HDF5 keeps Hartree, Å and Hartree/Å with explicit
    attributes; ASE formats get eV and eV/Å.
    """
    from ase_mlpot.datasets.hdf5 import dataset_from_records
    from ase_mlpot.datasets.store import LabelStore

    try:
        if source.suffix.lower() == ".jsonl" and level is not None:
            dataset = dataset_from_records(LabelStore(source).latest().values(), level=level)
        else:
            dataset = read_dataset(source, forces_kind=in_kind)  # type: ignore[arg-type]
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    _write(dataset, destination, "gradients" if write_gradients else "forces")
    payload = {"source": str(source), "destination": str(destination), **dataset.summary()}
    _emit(payload, as_json, [f"wrote {dataset.n_conformations} conformations of "
                             f"{len(dataset.molecules())} molecules to {destination}"])


# ----------------------------------------------------------------------------- split
def _fractions(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise click.BadParameter(f"expected name=fraction pairs, got {part!r}")
        out[name.strip()] = float(value)
    return out


@data.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the splits.")
@click.option("--fractions", default="train=0.8,valid=0.1,test=0.1", show_default=True,
              help="Fractions of molecules per split.")
@click.option("--seed", default=0, show_default=True, help="Shuffle seed.")
@click.option("--format", "fmt", type=click.Choice(["h5", "xyz", "db"]), default="h5",
              show_default=True, help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def split(source: Path, output: Path, fractions: str, seed: int, fmt: str,
          as_json: bool) -> None:
    """Split SOURCE by molecule (never by conformation) into OUTPUT/<split>.<format>."""
    from ase_mlpot.datasets.splits import split_by_molecule

    try:
        dataset = read_dataset(source)
        parts = split_by_molecule(dataset, _fractions(fractions), seed=seed)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    output.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"source": str(source), "seed": seed, "splits": {}}
    lines = []
    for name, part in parts.items():
        path = output / f"{name}.{fmt}"
        _write(part, path, "forces")
        payload["splits"][name] = {"path": str(path), "molecules": len(part.molecules()),
                                   "conformations": part.n_conformations}
        lines.append(f"{name}: {len(part.molecules())} molecules, {part.n_conformations} "
                     f"conformations -> {path}")
    _emit(payload, as_json, lines)
