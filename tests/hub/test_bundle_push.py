"""Export/import bundles for air-gapped machines, and publishing with push."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ase_mlpot import hub as zoo
from ase_mlpot import load
from ase_mlpot.errors import BundleError, ChecksumError, ModelFormatError
from tests.hub.support import HubEnv, entry_dict, sha256_bytes


def _air_gapped(hub: HubEnv, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """Switch to a fresh, offline cache (another machine)."""
    home = hub.root / name
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def test_export_import_roundtrip_offline(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    locked, _ = hub.publish_tiny("tiny-tofu", tiny_artifact, pinned=False)
    bundle = zoo.export_bundle(["tiny", "tiny-tofu"], hub.root / "bundle.tar")
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert f"files/tiny/{commit}/model.safetensors" in names
    assert [m["pinning"] for m in manifest["models"]] == [zoo.PINNED_BY_REGISTRY, zoo.UNPINNED]

    requests = len(hub.server.log)
    home = _air_gapped(hub, monkeypatch, "cluster")
    assert not (home / "hub").exists()
    assert sorted(zoo.import_bundle(bundle)) == ["tiny", "tiny-tofu"]
    calc = load("tiny", device="cpu")
    assert calc.parameters["revision"] == commit
    assert calc.parameters["weights_sha256"] == sha256_bytes(files["model.safetensors"])
    tofu = zoo.resolve_model("tiny-tofu")
    assert (tofu.revision, tofu.pinning) == (locked, zoo.PINNED_BY_LOCK)
    assert {c.status for c in zoo.verify()} == {"ok"}
    assert len(hub.server.log) == requests, "the air-gapped side must not use the network"


def _evil_bundle(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    manifest = json.dumps({"bundle_version": 1, "models": []}).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../../escaped.txt"),
        _member("files/../../escaped.txt"),
        _member("/tmp/absolute.txt"),
        _member("files/link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("files/hard", tarfile.LNKTYPE, "manifest.json"),
        _member("files/fifo", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo"],
)
def test_unsafe_bundle_is_refused(hub: HubEnv, tmp_path: Path, member: tarfile.TarInfo) -> None:
    (tmp_path / "evil").mkdir()
    bundle = _evil_bundle(tmp_path / "evil" / "bundle.tar", member, b"pwned")
    with pytest.raises(BundleError, match="refusing the bundle"):
        zoo.import_bundle(bundle)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not hub.hub_cache.exists() or not list(hub.hub_cache.rglob("*"))


def test_bundle_with_unlisted_or_tampered_file(
    hub: HubEnv, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commit, _ = hub.publish_tiny("tiny", tiny_artifact)
    bundle = zoo.export_bundle(["tiny"], tmp_path / "good.tar")
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]

    def rewrite(path: Path, contents: dict[str, bytes]) -> Path:
        with tarfile.open(path, "w") as tar:
            for name, data in contents.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    _air_gapped(hub, monkeypatch, "cluster")
    extra = rewrite(tmp_path / "extra.tar", {**members, "files/tiny/notes.txt": b"hi"})
    with pytest.raises(BundleError, match="not in the manifest"):
        zoo.import_bundle(extra)
    weights = f"files/tiny/{commit}/model.safetensors"
    tampered = rewrite(tmp_path / "tampered.tar",
                       {**members, weights: members[weights][:-1] + b"\0"})
    with pytest.raises(ChecksumError, match="manifest"):
        zoo.import_bundle(tampered)
    # a manifest that lies about the hash does not get past the registry's pin either
    manifest = json.loads(members["manifest.json"])
    manifest["models"][0]["files"][1]["sha256"] = sha256_bytes(members[weights][:-1] + b"\0")
    lying = rewrite(tmp_path / "lying.tar", {**members, "manifest.json": json.dumps(
        manifest).encode(), weights: members[weights][:-1] + b"\0"})
    with pytest.raises(ChecksumError, match="registry"):
        zoo.import_bundle(lying)
    assert not list((hub.root / "cluster").rglob("model.safetensors"))


def test_push_publishes_artifact_and_card(hub: HubEnv, tiny_artifact: Path) -> None:
    from huggingface_hub import HfApi, ModelCard

    result = zoo.push(tiny_artifact, "zoo-test/pushed", tag="v1")
    assert result.revision == hub.server.repos.resolve("zoo-test/pushed", "main")
    assert hub.server.repos.resolve("zoo-test/pushed", "v1") == result.revision
    assert {f.path for f in result.files} == {"config.json", "model.safetensors", "README.md"}
    # pushing again into the existing repository works (create_repo exist_ok)
    again = zoo.push(tiny_artifact, "zoo-test/pushed", commit_message="again")
    assert again.revision != result.revision

    api = HfApi(endpoint=hub.server.url)
    assert sorted(api.list_repo_files("zoo-test/pushed", revision="v1")) == [
        "README.md", "config.json", "model.safetensors"]
    files = {f.path: (tiny_artifact / f.path).read_bytes() for f in result.files
             if f.path != "README.md"}
    files["README.md"] = (tiny_artifact / "README.md").read_bytes()
    card = ModelCard((tiny_artifact / "README.md").read_text())
    assert card.data.license == "mit"

    # the push result is exactly what a registry entry pins
    entry = entry_dict("zoo-test/pushed", files, revision=result.revision)
    entry["files"] = [f.to_dict() for f in result.files]
    hub.register("pushed", entry)
    calc = load("pushed", device="cpu")
    assert calc.parameters["revision"] == result.revision
    checks = api.verify_repo_checksums("zoo-test/pushed", revision=result.revision,
                                       cache_dir=hub.hub_cache)
    assert not checks.mismatches


def test_push_refuses_inconsistent_artifact(hub: HubEnv, tiny_artifact: Path,
                                            tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken / name).write_bytes((tiny_artifact / name).read_bytes())
    with pytest.raises(ModelFormatError, match="model card"):
        zoo.push(broken, "zoo-test/broken")
    (broken / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ChecksumError, match="refusing to publish"):
        zoo.push(broken, "zoo-test/broken")
    assert not hub.server.repos.exists("zoo-test/broken")
