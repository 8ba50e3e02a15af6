"""Reproduce the zoo's own models from the committed corpus, stage by stage (resumable).

    GFN2-xTB labels of every geometry  →  xtb-pretrain   (zoo/work, not shipped)
    wB97X/6-31G* labels                →  dft-general    (ase_mlpot/weights, bundled)
    CCSD(T)/CBS composite labels       →  ccx-general    (fine-tuned from dft-general, bundled)
                                          cc-only        (control: CC labels alone, zoo/work)
    then zoo/evaluate_zoo.py → zoo/results, zoo/write_zoo_cards.py → zoo/cards,
    zoo/make_registry.py → ase_mlpot/registry/models.json.

Each stage runs ``mlpot-zoo train`` on its recipe in ``zoo/recipes`` with a kept work folder under
``zoo/work/<name>-work``: rerunning after an interruption resumes every member where it stopped.
Usage (repository root)::

    python zoo/train_zoo.py                  # everything
    python zoo/train_zoo.py --from ccx-general
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
STAGES = (
    ("xtb-pretrain", WORK / "xtb-pretrain"),
    ("dft-general", ROOT / "ase_mlpot" / "weights" / "dft-general"),
    ("ccx-general", ROOT / "ase_mlpot" / "weights" / "ccx-general"),
    ("cc-only", WORK / "cc-only"),
)
EVALUATED = ("dft-general", "ccx-general", "cc-only")
BUNDLED = ("dft-general", "ccx-general")

logger = logging.getLogger("train_zoo")


def run(*command: str | Path) -> None:
    """Run a command from the repository root; stop on failure."""
    logger.info("$ %s", " ".join(str(c) for c in command))
    subprocess.run([str(c) for c in command], cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", choices=[name for name, _ in STAGES],
                        default=STAGES[0][0], help="first stage to (re)train")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data",
                        help="benchmark data for zoo/evaluate_zoo.py")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    python = sys.executable
    if not (ZOO / "data" / "labels-gfn2-xtb.jsonl").is_file() or args.start == "xtb-pretrain":
        run(python, ZOO / "label_corpus.py", "label", "--level", "xtb")
    names = [name for name, _ in STAGES]
    for name, output in STAGES[names.index(args.start):]:
        run(Path(python).parent / "mlpot-zoo", "train", ZOO / "recipes" / f"{name}.toml", "-o",
            output, "--workdir", WORK / f"{name}-work", "--force", "-q")
    # a new model invalidates its old work folders' checkpoints for the next run
    for name, _ in STAGES[names.index(args.start):]:
        shutil.rmtree(WORK / f"{name}-work", ignore_errors=True)
    models = [str(output) for name, output in STAGES if name in EVALUATED]
    run(python, ZOO / "evaluate_zoo.py", *models, "--shared", args.shared, "-o",
        ZOO / "results", "--threads", "1")
    run(python, ZOO / "write_zoo_cards.py", *BUNDLED)
    run(python, ZOO / "make_registry.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
