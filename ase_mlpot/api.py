"""Public entry points: :func:`load` a model as an ASE calculator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ase_mlpot.calculator import MLPotCalculator, resolve_device, resolve_dtype
from ase_mlpot.io import Artifact, load_artifact

__all__ = ["load", "load_artifact_by_name"]


def load_artifact_by_name(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> tuple[Artifact, dict[str, Any]]:
    """The verified artifact of a zoo model or folder, and its provenance.

    Args:
        name_or_path: Zoo name or artifact folder (resolved as in :func:`load`).
        revision: Hub revision overriding the registry's pin.
        device: Device of the model.
        dtype: Model dtype (default: as stored).

    Returns:
        The artifact and ``{name, version, revision, weights_sha256, config_sha256,
        pinning}``.
    """
    from ase_mlpot.hub import resolve_model

    resolved = resolve_model(name_or_path, revision=revision)
    artifact = load_artifact(
        resolved.path, device=device, dtype=dtype, expected_sha256=resolved.weights_sha256
    )
    provenance = {
        "name": resolved.name or artifact.name,
        "version": resolved.version or artifact.version,
        "revision": resolved.revision,
        "weights_sha256": artifact.weights_sha256,
        "config_sha256": artifact.config_sha256,
        "pinning": resolved.pinning,
    }
    return artifact, provenance


def load(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = None,
    **calculator_kwargs: Any,
) -> MLPotCalculator:
    """Load a zoo model (by name) or an artifact folder (by path) as an ASE calculator.

    Resolution order: an existing local artifact folder; a model bundled inside the package; the
    Hugging Face cache (offline); a hub download at the registry's pinned revision. Weights are
    verified against their sha256 before they are deserialised.

    Args:
        name_or_path: Zoo name (``"ccx-general"``, ``"ani-1ccx"`` ...) or artifact folder.
        revision: Hub revision (commit, tag, branch) overriding the registry's pin.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
        dtype: Evaluation dtype, ``torch.float64``/``torch.float32`` or ``"float64"``/
            ``"float32"`` (default float64).
        **calculator_kwargs: Passed to :class:`MLPotCalculator`.

    Returns:
        The calculator, with the model's name, version, revision and weight hash in its
        ``parameters``.

    Raises:
        ModelNotFoundError: Unknown name (close names are suggested).
        OfflineError: The model is not cached and the hub cannot be used.
        ChecksumError: Weights do not match their recorded sha256.
        ValueError: Unknown dtype.
        RevisionError: A revision for an artifact folder.
        TypeError: ``name_or_path`` neither a string nor a path.
    """
    torch_device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    artifact, provenance = load_artifact_by_name(
        name_or_path, revision=revision, device=torch_device, dtype=dtype or torch.float64
    )
    return MLPotCalculator(
        artifact.model,
        device=torch_device,
        dtype=dtype,
        provenance=provenance,
        **calculator_kwargs,
    )
