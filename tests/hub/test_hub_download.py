"""End-to-end loads and downloads through a local hub driven by the real huggingface_hub client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ase_mlpot import hub as zoo
from ase_mlpot import load
from ase_mlpot.errors import (
    ChecksumError,
    DeprecatedModelError,
    HubUnreachableError,
    ModelNotFoundError,
    OfflineError,
)
from ase_mlpot.testing.structures import organic_molecule, water
from tests.hub.support import HubEnv, entry_dict, sha256_bytes


def _go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_pinned_download_load_and_cache_without_network(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    path = zoo.download("tiny")
    assert path.name == commit
    assert (path / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert zoo.model_status("tiny").pinning == zoo.PINNED_BY_REGISTRY
    requests = len(hub.server.log)

    calc = load("tiny", device="cpu")
    assert calc.parameters["revision"] == commit
    assert calc.parameters["weights_sha256"] == sha256_bytes(files["model.safetensors"])
    assert calc.parameters["model"] == "tiny"
    assert len(hub.server.log) == requests, "a cached, verified model must not touch the network"

    _go_offline(monkeypatch)
    atoms = water()
    atoms.calc = load("tiny", device="cpu")
    assert np.isfinite(atoms.get_potential_energy())
    assert len(hub.server.log) == requests


def test_unpinned_entry_is_trusted_on_first_use_then_locked(
    hub: HubEnv, tiny_artifact: Path
) -> None:
    first, files = hub.publish_tiny("tiny", tiny_artifact, pinned=False)
    assert zoo.model_status("tiny").pinning == zoo.UNPINNED
    resolved = zoo.resolve_model("tiny")
    assert resolved.revision == first
    assert resolved.pinning == zoo.UNPINNED
    lock = json.loads((hub.zoo_dir / "lock.json").read_text())["models"]["tiny"]
    assert lock["refs"]["main"] == first
    assert lock["revisions"][first]["files"]["model.safetensors"]["sha256"] == sha256_bytes(
        files["model.safetensors"])
    status = zoo.model_status("tiny")
    assert (status.pinning, status.revision, status.cached) == (zoo.PINNED_BY_LOCK, first, True)

    # main moves on the hub: the lock keeps the commit we trusted
    second = hub.server.repos.commit("zoo-test/tiny", {"model.safetensors": b"other weights"})
    assert second != first
    assert zoo.resolve_model("tiny").revision == first

    # a fresh download (cache emptied) goes to the locked commit, not to the new main
    zoo.remove("tiny")
    assert hub.snapshot_files("zoo-test/tiny") == []
    again = zoo.resolve_model("tiny")
    assert (again.revision, again.pinning) == (first, zoo.PINNED_BY_LOCK)

    # and a server that now serves other bytes for the locked commit is caught
    zoo.remove("tiny")
    hub.server.faults.tamper[("zoo-test/tiny", "model.safetensors")] = b"x" * len(
        files["model.safetensors"])
    with pytest.raises(ChecksumError, match="lock file"):
        zoo.download("tiny")
    assert not any(p.name == "model.safetensors" for p in hub.snapshot_files("zoo-test/tiny"))


def test_explicit_revision_tag_is_resolved_and_recorded(hub: HubEnv, tiny_artifact: Path) -> None:
    commit, _ = hub.publish_tiny("tiny", tiny_artifact)
    hub.server.repos.commit("zoo-test/tiny", {"notes.txt": b"later"})
    hub.server.repos.tag("zoo-test/tiny", "v1", commit)
    resolved = zoo.resolve_model("tiny", revision="v1")
    # the tag points at the registry's commit, so the registry hashes apply
    assert (resolved.revision, resolved.pinning) == (commit, zoo.PINNED_BY_REGISTRY)
    head = hub.server.repos.resolve("zoo-test/tiny", "main")
    other = zoo.resolve_model("tiny", revision=head)
    assert (other.revision, other.pinning) == (head, zoo.UNPINNED)
    assert zoo.resolve_model("tiny", revision=head).pinning == zoo.PINNED_BY_LOCK


def test_ani1ccx_from_hub_matches_neurochem_files(
    hub: HubEnv, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from ase_mlpot.calculator import MLPotCalculator
    from ase_mlpot.io import load_artifact
    from ase_mlpot.models.ani.convert import convert_published_ani

    state_dict = shared_data / "torchani-statedicts" / "StateDicts" / "ani1ccx_state_dict.pt"
    commit = hub.server.add_model("roitberg-group/ani1ccx",
                                  {"ani1ccx_state_dict.pt": state_dict.read_bytes()})
    calc = load("ani-1ccx", device="cpu")
    assert calc.parameters["revision"] == commit
    assert calc.parameters["model"] == "ani-1ccx"
    assert zoo.model_status("ani-1ccx").pinning == zoo.PINNED_BY_LOCK

    reference_dir = convert_published_ani(
        shared_data / "ani-neurochem-weights" / "ani-1ccx_8x.info", tmp_path / "neurochem")
    reference = load_artifact(reference_dir, dtype=torch.float64)
    reference_calc = MLPotCalculator(reference.model, device="cpu")
    for atoms in (water(), organic_molecule()):
        ours = atoms.copy()
        ours.calc = calc
        theirs = atoms.copy()
        theirs.calc = reference_calc
        assert ours.get_potential_energy() == pytest.approx(theirs.get_potential_energy(),
                                                            abs=1e-6)
        np.testing.assert_allclose(ours.get_forces(), theirs.get_forces(), atol=1e-6)
    first = water()
    first.calc = calc
    assert first.get_potential_energy() == pytest.approx(-2078.502897, abs=2e-5)

    # offline: served from the cache and the converted artifact, verified against the lock
    requests = len(hub.server.log)
    _go_offline(monkeypatch)
    again = load("ani-1ccx", device="cpu")
    assert again.parameters["weights_sha256"] == calc.parameters["weights_sha256"]
    assert len(hub.server.log) == requests


def test_tampered_file_is_refused_and_nothing_usable_is_left(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, files = hub.publish_tiny("tiny", tiny_artifact)
    weights = bytearray(files["model.safetensors"])
    weights[-1] ^= 0xFF
    hub.server.faults.tamper[("zoo-test/tiny", "model.safetensors")] = bytes(weights)
    with pytest.raises(ChecksumError, match="deleted"):
        load("tiny", device="cpu")
    assert not any(p.name == "model.safetensors" for p in hub.snapshot_files("zoo-test/tiny"))
    assert sha256_bytes(bytes(weights)) not in {
        sha256_bytes(b.read_bytes()) for b in hub.blobs("zoo-test/tiny") if b.is_file()}
    _go_offline(monkeypatch)
    with pytest.raises(OfflineError, match="mlpot-zoo download tiny"):
        load("tiny", device="cpu")


def test_registry_entry_with_wrong_hash(hub: HubEnv, tiny_artifact: Path) -> None:
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    entry = entry_dict("zoo-test/tiny", files, revision=commit)
    entry["files"][1]["sha256"] = "0" * 64
    hub.register("tiny", entry)
    with pytest.raises(ChecksumError, match="registry"):
        zoo.download("tiny")
    assert not any(p.name == "model.safetensors" for p in hub.snapshot_files("zoo-test/tiny"))


def test_interrupted_download_resumes_and_verifies(hub: HubEnv, tiny_artifact: Path) -> None:
    _, files = hub.publish_tiny("tiny", tiny_artifact)
    hub.server.faults.truncate[("zoo-test/tiny", "model.safetensors")] = 1
    path = zoo.download("tiny")
    assert (path / "model.safetensors").read_bytes() == files["model.safetensors"]
    ranged = [r for r in hub.server.requests_to("model.safetensors") if r[0] == "GET"]
    assert len(ranged) == 2  # the broken transfer and its resumption


def test_truncated_download_fails_cleanly(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.publish_tiny("tiny", tiny_artifact)
    hub.server.faults.truncate[("zoo-test/tiny", "model.safetensors")] = -1
    with pytest.raises(HubUnreachableError):
        zoo.download("tiny")
    assert not any(p.name == "model.safetensors" for p in hub.snapshot_files("zoo-test/tiny"))
    _go_offline(monkeypatch)
    with pytest.raises(OfflineError, match="mlpot-zoo download tiny"):
        load("tiny", device="cpu")


@pytest.mark.parametrize("fault", ["hang", "stall"])
def test_unresponsive_server_gives_bounded_clear_error(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    hub.publish_tiny("tiny", tiny_artifact)
    if fault == "hang":
        hub.server.faults.hang.add("/resolve/")
    else:
        hub.server.faults.stall.add(("zoo-test/tiny", "config.json"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(HubUnreachableError, match=r"127\.0\.0\.1:\d+") as error:
        zoo.download("tiny")
    assert time.monotonic() - start < 8
    expected = "did not answer" if fault == "hang" else "no progress for 2 s"
    assert expected in str(error.value)


def test_two_processes_download_the_same_model(hub: HubEnv, tiny_artifact: Path) -> None:
    _, files = hub.publish_tiny("tiny", tiny_artifact, pinned=False)
    hub.server.faults.throttle = (8192, 0.15)
    script = ("import json, sys; from ase_mlpot import hub; r = hub.resolve_model('tiny');"
              " print(json.dumps([str(r.path), r.revision]))")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    workers = [subprocess.Popen([sys.executable, "-c", script], env=env, cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    results = [json.loads(out) for out, _ in outputs]
    assert results[0] == results[1]
    storage_files = hub.snapshot_files("zoo-test/tiny")
    assert sorted(p.name for p in storage_files) == sorted(files)
    assert not [b for b in hub.blobs("zoo-test/tiny") if b.name.endswith(".incomplete")]
    for path in storage_files:
        assert path.read_bytes() == files[path.name]
    lock = json.loads((hub.zoo_dir / "lock.json").read_text())["models"]["tiny"]
    assert list(lock["revisions"]) == [results[0][1]]
    for name in files:  # the file lock lets one process transfer, the other waits and reuses
        assert [m for m, path in hub.server.requests_to(name) if m == "GET"] == ["GET"]


def test_offline_with_nothing_cached(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.publish_tiny("tiny", tiny_artifact)
    hub.server.log.clear()
    _go_offline(monkeypatch)
    with pytest.raises(OfflineError, match="mlpot-zoo download tiny"):
        load("tiny", device="cpu")
    with pytest.raises(OfflineError, match="mlpot-zoo download ani-1ccx"):
        zoo.download("ani-1ccx")
    assert hub.server.log == []


def test_unreachable_hub_is_not_unknown_model(hub: HubEnv, tiny_artifact: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hub.publish_tiny("tiny", tiny_artifact)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    start = time.monotonic()
    with pytest.raises(HubUnreachableError, match=r"127\.0\.0\.1:9"):
        zoo.download("tiny")
    assert time.monotonic() - start < 5


def test_unknown_and_deprecated_names(hub: HubEnv, tiny_artifact: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="did you mean 'ani-1ccx'"):
        load("ani-1cxx")
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        load("./no/such/folder")
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    hub.register("tiny-old", entry_dict("zoo-test/tiny", files, revision=commit,
                                        deprecated=True, successor="tiny"))
    with pytest.raises(DeprecatedModelError, match="use 'tiny' instead"):
        zoo.download("tiny-old")
    assert "tiny-old" not in zoo.list_models()
    assert "tiny" in zoo.list_models()


def test_missing_repository_and_file(hub: HubEnv, tiny_artifact: Path) -> None:
    _, files = hub.publish_tiny("tiny", tiny_artifact)
    hub.register("ghost", entry_dict("zoo-test/ghost", files, revision=None))
    with pytest.raises(ModelNotFoundError, match="repository of 'ghost' not found"):
        zoo.download("ghost")


def test_bundled_model_needs_no_network(
    hub: HubEnv, tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "tiny_weights_pkg"
    folder = package / "weights" / "tiny-bundled"
    folder.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    files = {}
    for name in ("config.json", "model.safetensors"):
        files[name] = (tiny_artifact / name).read_bytes()
        (folder / name).write_bytes(files[name])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = entry_dict("zoo-test/unused", files, revision=None)
    entry.update(hub=None, bundled={"package": "tiny_weights_pkg", "path": "weights/tiny-bundled"},
                 files=[{"path": n, "size": len(d), "sha256": sha256_bytes(d)}
                        for n, d in files.items()])
    hub.register("tiny-bundled", entry)
    _go_offline(monkeypatch)
    calc = load("tiny-bundled", device="cpu")
    assert calc.parameters["weights_sha256"] == sha256_bytes(files["model.safetensors"])
    assert zoo.model_status("tiny-bundled").pinning == zoo.BUNDLED
    assert hub.server.log == []
    assert [c.status for c in zoo.verify("tiny-bundled")] == ["ok", "ok"]
    (folder / "model.safetensors").write_bytes(files["model.safetensors"][:-1] + b"\0")
    with pytest.raises(ChecksumError, match="reinstall tiny_weights_pkg"):
        load("tiny-bundled", device="cpu")


def test_verify_and_remove(hub: HubEnv, tiny_artifact: Path) -> None:
    hub.publish_tiny("tiny", tiny_artifact)
    path = zoo.download("tiny")
    assert {c.status for c in zoo.verify("tiny")} == {"ok"}
    weights = path / "model.safetensors"
    blob = weights.resolve()
    blob.write_bytes(blob.read_bytes()[:-4] + b"abcd")
    statuses = {c.path: c.status for c in zoo.verify("tiny")}
    assert statuses["model.safetensors"] == "mismatch"
    assert statuses["config.json"] == "ok"
    removed = zoo.remove("tiny")
    assert removed and not weights.exists()
    assert zoo.verify("tiny")[0].status == "missing"
