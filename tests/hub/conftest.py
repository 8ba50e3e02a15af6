"""Fixtures for the zoo/hub tests: a local hub server, isolated caches, tiny models."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight ANI artifact (2 members, one 8-wide hidden layer per element)."""
    import torch

    from ase_mlpot.io import save_artifact
    from ase_mlpot.models.ani.config import ANIConfig
    from ase_mlpot.models.ani.model import ANIEnsemble

    elements = ("H", "C", "N", "O")
    config = ANIConfig(elements=elements, hidden_layers={e: (8,) for e in elements},
                       ensemble_size=2)
    model = ANIEnsemble(config, reference_energies={"H": -0.5, "C": -38.0, "N": -54.6,
                                                    "O": -75.0})
    model.reset_parameters(torch.Generator().manual_seed(7))
    folder = tmp_path_factory.mktemp("tiny") / "tiny"
    card = "---\nlicense: mit\n---\n# tiny\n\nRandom weights for tests.\n"
    return save_artifact(model, folder, name="tiny", version="1", card=card)


def artifact_files(folder: Path) -> dict[str, bytes]:
    """The files of an artifact folder by name."""
    return {name: (folder / name).read_bytes()
            for name in ("config.json", "model.safetensors", "README.md")}


def entry_dict(repo_id: str, files: dict[str, bytes], *, revision: str | None,
               fmt: str = "artifact", **extra: Any) -> dict[str, Any]:
    """A registry entry (JSON form) for test repositories."""
    pinned = revision is not None
    entry: dict[str, Any] = {
        "version": "1", "description": "test model", "aliases": [], "architecture": "ani",
        "format": fmt, "third_party": False, "elements": ["H", "C", "N", "O"],
        "level_of_theory": {"pretraining": "random"},
        "units": {"energy": "Hartree", "length": "Angstrom"}, "training_data": "none",
        "metrics": {}, "license": "MIT", "citations": [{"text": "test", "doi": None}],
        "parent": None, "gated": False, "bundled": None,
        "hub": {"repo_id": repo_id, "revision": revision, "ref": "main"},
        "files": [{"path": name, "size": len(data) if pinned else None,
                   "sha256": sha256_bytes(data) if pinned else None}
                  for name, data in files.items()],
        "reference_energies": None, "min_version": None, "max_version": None,
        "deprecated": False, "successor": None,
    }
    entry.update(extra)
    return entry


def write_local_registry(zoo_dir: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Write the local registry file (``<ASE_MLPOT_CACHE>/registry.json``)."""
    zoo_dir.mkdir(parents=True, exist_ok=True)
    path = zoo_dir / "registry.json"
    path.write_text(json.dumps({"registry_version": 1, "models": entries}, indent=2))
    return path


class HubEnv:
    """The running hub plus the isolated cache locations of one test."""

    def __init__(self, server: HubServer, root: Path) -> None:
        self.server = server
        self.root = root
        self.hf_home = root / "hf"
        self.hub_cache = self.hf_home / "hub"
        self.zoo_dir = self.hf_home / "ase_mlpot"

    def register(self, name: str, entry: dict[str, Any]) -> None:
        path = self.zoo_dir / "registry.json"
        current = json.loads(path.read_text())["models"] if path.exists() else {}
        current[name] = entry
        write_local_registry(self.zoo_dir, current)

    def publish_tiny(self, name: str, folder: Path, *, pinned: bool = True,
                     repo_id: str | None = None) -> tuple[str, dict[str, bytes]]:
        """Commit an artifact to the hub and register it; returns (commit, files)."""
        repo_id = repo_id or f"zoo-test/{name}"
        files = artifact_files(folder)
        commit = self.server.add_model(repo_id, files)
        self.register(name, entry_dict(repo_id, files, revision=commit if pinned else None))
        return commit, files

    def snapshot_files(self, repo_id: str) -> list[Path]:
        storage = self.hub_cache / ("models--" + repo_id.replace("/", "--"))
        return sorted(p for p in (storage / "snapshots").rglob("*") if p.is_file())

    def blobs(self, repo_id: str) -> list[Path]:
        storage = self.hub_cache / ("models--" + repo_id.replace("/", "--"))
        return sorted((storage / "blobs").glob("*")) if (storage / "blobs").exists() else []


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    """A local hub on 127.0.0.1 with HF_HOME/HF_HUB_CACHE in tmp_path and the network switched
    to it (HF_ENDPOINT); nothing reaches the internet."""
    import huggingface_hub.constants

    with HubServer(tmp_path / "repos") as server:
        env = HubEnv(server, tmp_path)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(env.hf_home))
        monkeypatch.setenv("HF_HUB_CACHE", str(env.hub_cache))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ASE_MLPOT_CACHE", "HF_TOKEN",
                     "HUGGING_FACE_HUB_TOKEN", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
                     "XDG_CACHE_HOME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        yield env
