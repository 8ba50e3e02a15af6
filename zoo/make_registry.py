"""Generate ``ase_mlpot/registry/models.json`` from the model cards in ``zoo/cards/*.md``.

Each card is Markdown with YAML front matter; the front matter is the registry entry (plus its
``name``), the Markdown body is the human-readable card. Usage::

    python zoo/make_registry.py           # write ase_mlpot/registry/models.json
    python zoo/make_registry.py --check   # exit 1 when models.json differs from the cards

A test runs the ``--check`` logic, so the cards and the registry cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from ase_mlpot.files import sha256_and_size
from ase_mlpot.registry import Registry, parse_entry, parse_registry, registry_document

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "zoo" / "cards"
REGISTRY = ROOT / "ase_mlpot" / "registry" / "models.json"

logger = logging.getLogger("make_registry")


def read_card(path: Path) -> tuple[str, dict[str, Any], str]:
    """Split a card into (name, front matter, Markdown body).

    Raises:
        ValueError: No front matter, or its name does not match the file name.
    """
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError(f"{path}: a model card starts with YAML front matter ('---')")
    front, _, body = text[4:].partition("\n---\n")
    data = yaml.safe_load(front)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: front matter is not a mapping")
    name = data.pop("name", None)
    if name != path.stem:
        raise ValueError(f"{path}: front matter name {name!r} differs from the file name")
    return name, data, body


BUNDLED_FILES = ("config.json", "model.safetensors")


def bundled_files(package_path: str) -> list[dict[str, Any]]:
    """Size and sha256 of the files of a bundled artifact, read from the package folder (cards
    of bundled models leave ``files`` out, so the registry always matches the shipped weights).

    Raises:
        ValueError: The artifact folder or one of its files is missing.
    """
    folder = ROOT / "ase_mlpot" / package_path
    files = []
    for name in BUNDLED_FILES:
        path = folder / name
        if not path.is_file():
            raise ValueError(f"bundled model file {path} is missing")
        digest, size = sha256_and_size(path)
        files.append({"path": name, "size": size, "sha256": digest})
    return files


def build_registry(cards: Path = CARDS) -> dict[str, Any]:
    """The registry document described by the cards in ``cards``."""
    entries = {}
    for path in sorted(cards.glob("*.md")):
        name, data, _ = read_card(path)
        bundled = data.get("bundled")
        if bundled is not None and "files" not in data:
            if bundled.get("package") != "ase_mlpot":
                raise ValueError(f"{path}: only ase_mlpot's own weights can be bundled")
            data["files"] = bundled_files(bundled["path"])
        entries[name] = parse_entry(name, data, source=str(path))
    Registry(entries)  # cross-entry checks: aliases, successors, parents
    return registry_document(entries)


def render(document: dict[str, Any]) -> str:
    """The exact text written to ``models.json``."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check ``models.json``; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    parser.add_argument("--cards", type=Path, default=CARDS)
    parser.add_argument("--output", type=Path, default=REGISTRY)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    text = render(build_registry(args.cards))
    parse_registry(json.loads(text), source="generated registry")
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if args.check:
        if current != text:
            logger.error("%s is out of date: run python zoo/make_registry.py", args.output)
            return 1
        logger.info("%s matches the cards", args.output)
        return 0
    args.output.write_text(text, encoding="utf-8")
    logger.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
