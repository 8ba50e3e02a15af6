"""Helpers for the zoo/hub tests: registry entries for test repositories, cache inspection."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.hub.hub_server import HubServer

__all__ = ["HubEnv", "artifact_files", "entry_dict", "sha256_bytes", "write_local_registry"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
