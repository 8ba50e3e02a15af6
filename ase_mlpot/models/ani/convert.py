"""Conversion of published ANI weights (NeuroChem, TorchANI) into ase_mlpot artifacts."""

from __future__ import annotations

from pathlib import Path

from ase_mlpot.errors import ModelFormatError
from ase_mlpot.io import save_artifact
from ase_mlpot.models.ani.model import ANIEnsemble
from ase_mlpot.models.ani.neurochem import (
    PublishedANI,
    read_neurochem,
    read_torchani_state_dict,
)

__all__ = ["convert_published_ani", "model_from_published", "read_published_ani"]


def read_published_ani(source: str | Path) -> PublishedANI:
    """Read a NeuroChem ``.info`` file or folder, or a TorchANI state dict (``.pt``/``.pth``)."""
    source = Path(source)
    if source.is_dir() or source.suffix == ".info":
        return read_neurochem(source)
    if source.suffix in {".pt", ".pth"}:
        return read_torchani_state_dict(source)
    raise ModelFormatError(
        f"{source}: expected a NeuroChem .info file (or its folder) or a TorchANI state dict (.pt)"
    )


def model_from_published(published: PublishedANI) -> ANIEnsemble:
    """Build an :class:`ANIEnsemble` holding the published weights (float32)."""
    model = ANIEnsemble(published.config, reference_energies=published.reference_energies)
    model.load_state_dict(published.state_dict, strict=True)
    return model


def convert_published_ani(
    source: str | Path,
    destination: str | Path,
    *,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert published ANI weights into an artifact folder (weights float32 as published).

    Args:
        source: NeuroChem ``.info`` file/folder or TorchANI state dict.
        destination: Artifact folder to write.
        name: Model name recorded in the artifact (default: the source's stem).
        overwrite: Replace an existing artifact.

    Returns:
        The artifact folder.
    """
    source = Path(source)
    published = read_published_ani(source)
    model = model_from_published(published)
    return save_artifact(
        model,
        destination,
        name=name or source.stem,
        overwrite=overwrite,
        metadata={"converted_from": source.name},
    )
