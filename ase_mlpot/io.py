"""Model artifacts: a folder with ``config.json`` + ``model.safetensors`` (+ ``README.md`` card).

``config.json`` holds ``format_version``, ``architecture``, ``config`` (the typed config as JSON),
``elements``, ``reference_energies`` (float64 JSON numbers by symbol, model units), ``units``,
``dtype`` of the stored weights, ``ensemble_size``, ``versions`` (ase_mlpot, torch, e3nn,
safetensors), ``weights_sha256`` and optional ``model`` metadata (name, version, parent).
Weights are never pickled; loading checks the sha256 of the weights before deserialising them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from ase_mlpot.errors import ChecksumError, ModelFormatError
from ase_mlpot.files import atomic_write, sha256_and_size
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.registry import get_architecture

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "Artifact",
    "build_model",
    "load_artifact",
    "read_artifact_metadata",
    "save_artifact",
    "sha256_of_file",
]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Artifact:
    """A model loaded from an artifact folder with its metadata."""

    model: PotentialModel
    metadata: dict[str, Any] = field(repr=False)
    path: Path
    #: sha256 of ``config.json`` (architecture, hyperparameters, reference energies and the
    #: weights' sha256): with it, the results of the artifact are identified exactly.
    config_sha256: str | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("model", {}).get("name") or self.path.name)

    @property
    def version(self) -> str | None:
        return self.metadata.get("model", {}).get("version")

    @property
    def weights_sha256(self) -> str:
        return str(self.metadata["weights_sha256"])


def sha256_of_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return sha256_and_size(path)[0]


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in ("ase_mlpot", "torch", "e3nn", "safetensors", "ase"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def save_artifact(
    model: PotentialModel,
    directory: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    card: str | None = None,
    metadata: dict[str, Any] | None = None,
    weights_dtype: torch.dtype | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as an artifact folder.

    Args:
        model: The model; its state dict is stored as safetensors (contiguous CPU tensors).
        directory: Target folder (created).
        name: Model name recorded under ``model.name``.
        version: Model version recorded under ``model.version``.
        card: Markdown model card written to ``README.md``.
        metadata: Extra entries merged into ``config.json["model"]``.
        weights_dtype: Store weights in this dtype (default: as they are).
        overwrite: Replace existing files.

    Returns:
        The artifact folder.
    """
    directory = Path(directory)
    if (directory / CONFIG_FILE).exists() and not overwrite:
        raise FileExistsError(f"{directory} already holds an artifact (use overwrite=True)")
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        key: (
            value.detach().to("cpu", weights_dtype)
            if weights_dtype and value.is_floating_point()
            else value.detach().to("cpu")
        ).contiguous()
        for key, value in model.state_dict().items()
    }
    stored_dtypes = {
        str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()
    }
    weights = safetensors.torch.save(tensors, metadata={"format": "pt"})
    atomic_write(directory / WEIGHTS_FILE, weights)
    model_info = {"name": name, "version": version, **(metadata or {})}
    config = {
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "config": model.config.to_dict(),
        "elements": list(model.elements),
        "reference_energies": model.reference_energy_dict(),
        "units": {"energy": model.energy_unit, "length": model.length_unit},
        "dtype": stored_dtypes.pop() if len(stored_dtypes) == 1 else "mixed",
        "ensemble_size": model.ensemble_size,
        "versions": _package_versions(),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "model": model_info,
    }
    atomic_write(directory / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    if card is not None:
        atomic_write(directory / CARD_FILE, card.encode())
    return directory


def read_artifact_metadata(directory: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of an artifact folder.

    Raises:
        ModelFormatError: Missing or unreadable file, or a format version newer than supported.
    """
    path = Path(directory) / CONFIG_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFormatError(f"{directory} is not a model artifact: no {CONFIG_FILE}") from None
    except json.JSONDecodeError as error:
        raise ModelFormatError(f"{path} is not valid JSON: {error}") from None
    format_version = metadata.get("format_version")
    if not isinstance(format_version, int) or format_version < 1:
        raise ModelFormatError(f"{path}: missing or invalid format_version {format_version!r}")
    if format_version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has format_version {format_version}, this ase_mlpot reads up to"
            f" {FORMAT_VERSION}: upgrade ase_mlpot (pip install -U ase_mlpot)"
        )
    for required in ("architecture", "config", "reference_energies", "weights_sha256"):
        if required not in metadata:
            raise ModelFormatError(f"{path}: missing key {required!r}")
    return metadata


def build_model(metadata: dict[str, Any]) -> PotentialModel:
    """Build the (randomly initialised) model described by artifact metadata."""
    try:
        model_class, config_class = get_architecture(metadata["architecture"])
    except KeyError as error:
        raise ModelFormatError(str(error)) from None
    config = config_class.from_dict(metadata["config"])
    return model_class(config, reference_energies=metadata["reference_energies"])


def load_artifact(
    directory: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    expected_sha256: str | None = None,
) -> Artifact:
    """Load an artifact folder.

    The weights file is hashed and compared with ``config.json`` (and ``expected_sha256`` if
    given, e.g. from the registry) before it is deserialised; the state dict is loaded strictly.

    Args:
        directory: The artifact folder.
        device: Device of the returned model.
        dtype: Floating dtype of the model (default: the stored dtype).
        expected_sha256: sha256 the weights must have.

    Raises:
        ModelFormatError: Unreadable or incompatible artifact.
        ChecksumError: The weights do not match their recorded sha256.
    """
    directory = Path(directory)
    metadata = read_artifact_metadata(directory)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelFormatError(f"{directory} has no {WEIGHTS_FILE}")
    digest = sha256_of_file(weights_path)
    for expected, source in (
        (metadata["weights_sha256"], CONFIG_FILE),
        (expected_sha256, "the registry"),
    ):
        if expected is not None and digest != expected:
            raise ChecksumError(
                f"{weights_path}: sha256 {digest} does not match {expected} recorded in {source};"
                " the file is corrupt or was modified"
            )
    model = build_model(metadata)
    state = safetensors.torch.load_file(str(weights_path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ModelFormatError(f"{weights_path} does not fit its config: {error}") from None
    stored = _DTYPES.get(metadata.get("dtype", ""), torch.float32)
    model = model.to(device=device, dtype=dtype or stored)
    model.eval()
    return Artifact(model=model, metadata=metadata, path=directory,
                    config_sha256=sha256_of_file(directory / CONFIG_FILE))
