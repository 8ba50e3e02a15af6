"""Build or extend the zoo's own training corpus under ``zoo/data/`` (resumable at any point).

Steps (see ``zoo/data/README.md``):

1. ``sample``: every molecule of ``zoo/data/molecules.smi`` is embedded (RDKit ETKDG), relaxed
   with GFN2-xTB (tblite) and sampled (minima, ANI-1 normal-mode sampling, Langevin MD), then all
   conformations are written to ``zoo/data/geometries.jsonl`` in labelling order: round-robin over
   the molecules sorted by size, so every prefix of the labelling run covers every molecule, and
   small (CC-eligible, 1–4 heavy atoms) molecules come first in each round.
2. ``label --level dft``: ``wb97x-631gs`` labels in that order into
   ``zoo/data/labels-wb97x-631gs.jsonl`` (skips what is already there).
3. ``label --level cc``: ``ccsd(t)-cbs-composite`` labels of the DFT-labelled geometries of
   molecules with at most 4 heavy atoms (the CC set is a subset of the DFT geometries), at most
   ``--per-molecule`` per molecule, round-robin, into ``zoo/data/labels-ccsdt-cbs.jsonl``.
4. ``merge --level dft|cc OTHER.jsonl ...``: add records labelled elsewhere (new keys only).

Run from the repository root, e.g.
``PYTHONPATH=. OMP_NUM_THREADS=1 nohup nice -n 10 .venv/bin/python zoo/label_corpus.py all``
``>> zoo/data/label.log 2>&1 &``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rdkit import Chem

from ase_mlpot.datasets.runner import label_geometries
from ase_mlpot.datasets.sampling import SamplingPlan, round_robin, sample_molecule, xtb_calculator
from ase_mlpot.datasets.store import GeometryEntry, LabelStore, read_geometries, write_geometries

DATA = Path(__file__).resolve().parent / "data"
POOL = DATA / "molecules.smi"
GEOMETRIES = DATA / "geometries.jsonl"
STORES = {
    "dft": ("wb97x-631gs", DATA / "labels-wb97x-631gs.jsonl"),
    "cc": ("ccsd(t)-cbs-composite", DATA / "labels-ccsdt-cbs.jsonl"),
}
CC_MAX_HEAVY = 4
SEED = 20250101

logger = logging.getLogger("label_corpus")


def read_pool(path: Path = POOL) -> list[tuple[str, str, int, int]]:
    """(smiles, name, heavy atoms, atoms) of every molecule, sorted small first (stable)."""
    pool = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        smiles, name = line.split()[:2]
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        pool.append((smiles, name, mol.GetNumHeavyAtoms(), mol.GetNumAtoms()))
    return sorted(pool, key=lambda m: (m[2], m[3]))


def sample(force: bool = False) -> None:
    """Sample the whole pool once and write the geometry file (deterministic)."""
    if GEOMETRIES.exists() and not force:
        logger.info("%s exists; not resampling (use --force)", GEOMETRIES)
        return
    calc = xtb_calculator("GFN2-xTB")
    plan = SamplingPlan()
    per_molecule = []
    for smiles, name, heavy, _ in read_pool():
        entries = sample_molecule(smiles, name, calc, plan, seed=SEED, sampler="GFN2-xTB (tblite)")
        for entry in entries:
            entry.source["heavy_atoms"] = heavy
        per_molecule.append(entries)
        logger.info("sampled %-24s %3d conformations", name, len(entries))
    count = write_geometries(GEOMETRIES, round_robin(per_molecule))
    logger.info("wrote %d conformations of %d molecules to %s",
                count, len(per_molecule), GEOMETRIES)


def cc_entries(per_molecule: int) -> list[GeometryEntry]:
    """DFT-labelled (status ok) geometries of molecules with ≤4 heavy atoms, geometry-file order."""
    dft_ok = {r["geometry_hash"] for r in LabelStore(STORES["dft"][1]).latest().values()
              if r["status"] == "ok"}
    counts: dict[str, int] = {}
    out = []
    for entry in read_geometries(GEOMETRIES):
        heavy = int((entry.numbers > 1).sum())
        if heavy > CC_MAX_HEAVY or entry.geometry_hash not in dft_ok:
            continue
        if counts.get(entry.molecule, 0) >= per_molecule:
            continue
        counts[entry.molecule] = counts.get(entry.molecule, 0) + 1
        out.append(entry)
    return out


def label(which: str, workers: int, limit: int | None, per_molecule: int, retry: bool,
          start: int = 0) -> None:
    """Label (or resume labelling) the corpus at one level, beginning at queue position ``start``
    (the queue is rotated, so nothing is skipped; use it to let a second machine work on a
    different part of the queue)."""
    level, store = STORES[which]
    entries = read_geometries(GEOMETRIES) if which == "dft" else cc_entries(per_molecule)
    entries = entries[start:] + entries[:start]
    summary = label_geometries(entries, level, store, n_workers=workers, limit=limit,
                               retry_failed=retry, progress=sys.stderr.isatty())
    logger.info("summary: %s", json.dumps(summary.to_dict()))


def merge(which: str, others: list[Path]) -> None:
    """Merge label stores made elsewhere (e.g. on a larger machine) into the corpus store."""
    _, store = STORES[which]
    with LabelStore(store) as target:
        for other in others:
            added = target.merge(LabelStore(other).records())
            logger.info("merged %d new records from %s into %s", added, other, store)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["sample", "label", "all", "merge"])
    parser.add_argument("stores", nargs="*", type=Path, help="label stores to merge (merge)")
    parser.add_argument("--level", choices=sorted(STORES), default="dft")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="label at most this many now")
    parser.add_argument("--per-molecule", type=int, default=50,
                        help="CC conformations per molecule")
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--start", type=int, default=0,
                        help="begin at this queue position (rotates the queue)")
    parser.add_argument("--force", action="store_true", help="resample even if geometries exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.step in ("sample", "all"):
        sample(force=args.force)
    if args.step == "merge":
        merge(args.level, args.stores)
    if args.step in ("label", "all"):
        label(args.level, args.workers, args.limit, args.per_molecule, args.retry_failed,
              args.start)


if __name__ == "__main__":
    main()
