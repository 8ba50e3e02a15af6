"""Fixtures for the zoo/hub tests: a local hub server, isolated caches, a tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.hub_server import HubServer
from tests.hub.support import HubEnv


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight ANI artifact folder (2 members, one 8-wide hidden layer)."""
    from ase_mlpot.io import save_artifact
    from ase_mlpot.testing.factories import tiny_ani_model

    model = tiny_ani_model(seed=7, ensemble_size=2, hidden=(8,))
    folder = tmp_path_factory.mktemp("tiny") / "tiny"
    card = "---\nlicense: mit\n---\n# tiny\n\nRandom weights for tests.\n"
    return save_artifact(model, folder, name="tiny", version="1", card=card)


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
