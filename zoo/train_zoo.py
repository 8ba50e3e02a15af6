"""Reproduce the zoo's own models from the committed corpus, stage by stage (resumable).

    GFN2-xTB labels of every geometry  →  xtb-pretrain   (zoo/work; a copy in zoo/stages)
    wB97X/6-31G* labels                →  dft-general    (ase_mlpot/weights, bundled)
    CCSD(T)/CBS composite labels       →  ccx-general    (fine-tuned from dft-general, bundled)
                                          cc-only        (control: CC labels alone, zoo/work)
    then zoo/evaluate_zoo.py → zoo/results, zoo/cross_molecule_floor.py → zoo/results (what
    limits the cross-molecule CC metric), zoo/write_zoo_cards.py → zoo/cards,
    zoo/make_registry.py → ase_mlpot/registry/models.json.

Each stage runs ``mlpot-zoo train`` on its recipe in ``zoo/recipes`` with a kept work folder under
``zoo/work/<name>-work``: rerunning after an interruption resumes every member where it stopped.
``--jobs N`` trains N members at once (one single-threaded process each). The xTB stage takes
hours on one core and ``zoo/work`` is not committed, so a trained xTB stage is also copied to
``zoo/stages/<name>`` (committed); a later ``--from dft-general`` on a fresh checkout starts from
that copy.
Usage (repository root)::

    python zoo/train_zoo.py                  # the ANI family, every stage
    python zoo/train_zoo.py --from ccx-general
    python zoo/train_zoo.py --family so3krates
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "zoo"
WORK = ZOO / "work"
#: Committed copies of the xTB stages (the start of every later stage).
STAGES = ZOO / "stages"
WEIGHTS = ROOT / "ase_mlpot" / "weights"
#: (recipe name, output folder) per stage and family; the bundled models go to WEIGHTS.
FAMILIES = {
    family: (
        (f"{prefix}xtb-pretrain", WORK / f"{prefix}xtb-pretrain"),
        (f"{prefix}dft-general", WEIGHTS / f"{prefix}dft-general"),
        (f"{prefix}ccx-general", WEIGHTS / f"{prefix}ccx-general"),
        (f"{prefix}cc-only", WORK / f"{prefix}cc-only"),
    )
    for family, prefix in (("ani", ""), ("so3krates", "so3krates-"))
}

logger = logging.getLogger("train_zoo")


def run(*command: str | Path) -> None:
    """Run a command from the repository root; stop on failure."""
    logger.info("$ %s", " ".join(str(c) for c in command))
    subprocess.run([str(c) for c in command], cwd=ROOT, check=True)


def keep_xtb_stage(output: Path) -> None:
    """Copy a freshly trained xTB stage to ``zoo/stages`` (replacing the old copy)."""
    copy = STAGES / output.name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(output, copy)
    logger.info("copied %s to %s", output, copy)


def restore_xtb_stage(output: Path) -> None:
    """Put the committed xTB stage where the DFT recipe expects it, unless one is there."""
    copy = STAGES / output.name
    if (output / "config.json").is_file() or not (copy / "config.json").is_file():
        return
    shutil.copytree(copy, output, dirs_exist_ok=True)
    logger.info("restored %s from %s", output, copy)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="ani")
    parser.add_argument("--from", dest="start", default="xtb-pretrain",
                        choices=["xtb-pretrain", "dft-general", "ccx-general", "cc-only"],
                        help="first stage to (re)train")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data",
                        help="benchmark data for zoo/evaluate_zoo.py")
    parser.add_argument("--jobs", type=int, default=1, help="members trained at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    python = sys.executable
    stages = FAMILIES[args.family]
    first = [name for name, _ in stages].index(
        args.start if args.family == "ani" else f"so3krates-{args.start}")
    if first == 0:  # the xTB labels feed only the xTB stage (the extra geometries: sample-extra)
        run(python, ZOO / "label_corpus.py", "sample-extra")
        run(python, ZOO / "label_corpus.py", "label", "--level", "xtb")
    else:
        restore_xtb_stage(stages[0][1])
    for index, (name, output) in enumerate(stages[first:], start=first):
        run(Path(python).parent / "mlpot-zoo", "train", ZOO / "recipes" / f"{name}.toml", "-o",
            output, "--workdir", WORK / f"{name}-work", "--force", "-q", "--jobs", str(args.jobs))
        if index == 0:
            keep_xtb_stage(output)
    # a new model invalidates its old work folders' checkpoints for the next run
    for name, _ in stages[first:]:
        shutil.rmtree(WORK / f"{name}-work", ignore_errors=True)
    evaluated = [str(output) for _, output in stages[1:]]
    run(python, ZOO / "evaluate_zoo.py", *evaluated, "--shared", args.shared, "-o",
        ZOO / "results", "--threads", "1")
    run(python, ZOO / "cross_molecule_floor.py", *evaluated, "-o",
        ZOO / "results" / f"cross-molecule-floor-{args.family}.json")
    run(python, ZOO / "write_zoo_cards.py", *(name for name, _ in stages[1:3]))
    run(python, ZOO / "make_registry.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
