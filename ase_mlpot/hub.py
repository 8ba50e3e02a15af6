"""Where a model's files come from: local folders, bundled weights, the Hugging Face hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ase_mlpot.errors import ModelNotFoundError

__all__ = ["ResolvedModel", "resolve_model"]


@dataclass(frozen=True)
class ResolvedModel:
    """A model's local artifact folder and its provenance."""

    path: Path
    name: str | None = None
    version: str | None = None
    revision: str | None = None
    weights_sha256: str | None = None


def resolve_model(name_or_path: str | Path, *, revision: str | None = None) -> ResolvedModel:
    """Find the artifact folder of a model name or path."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return ResolvedModel(path=path)
    raise ModelNotFoundError(f"no model named {str(name_or_path)!r} and no such folder")
