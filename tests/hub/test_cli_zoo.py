"""Every ``mlpot-zoo`` zoo subcommand through click's CliRunner, with ``--json`` parsed back."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ase_mlpot.cli import main
from ase_mlpot.cli_errors import EXIT_OFFLINE, EXIT_UNKNOWN_MODEL, EXIT_USAGE, EXIT_VERIFICATION
from tests.hub.support import HubEnv, sha256_bytes


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_list_info_download_verify_remove(hub: HubEnv, tiny_artifact: Path) -> None:
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    rows = {row["name"]: row for row in run_json("list")}
    assert {"ani-1ccx", "ani-1x", "ani-2x", "tiny"} <= set(rows)
    assert rows["ani-1ccx"]["pinning"] == "unpinned" and rows["ani-1ccx"]["license"] == "MIT"
    assert rows["tiny"]["cached"] is False
    bundled = {row["name"] for row in run_json("list") if row["pinning"] == "bundled"}
    assert bundled == {"dft-general", "ccx-general", "so3krates-dft-general",
                       "so3krates-ccx-general"}  # shipped inside the package
    assert {row["name"] for row in run_json("list", "--cached")} == bundled
    shipped = run_json("info", "ccx-general")["files"]
    assert shipped and all(Path(f["local_path"]).is_file() for f in shipped)

    plan = run_json("download", "tiny", "--dry-run")
    assert {f["path"] for f in plan["files"]} == set(files)
    assert all(f["will_download"] for f in plan["files"])
    assert not hub.snapshot_files("zoo-test/tiny")

    done = run_json("download", "tiny", "--quiet")
    assert (done["revision"], done["pinning"]) == (commit, "pinned-by-registry")
    assert done["weights_sha256"] == sha256_bytes(files["model.safetensors"])
    plain = run("download", "tiny")
    assert plain.exit_code == 0 and plain.stdout.strip() == done["path"]
    assert {row["name"] for row in run_json("list", "--cached")} == bundled | {"tiny"}

    card = run_json("info", "tiny")
    assert card["revision"] == commit and card["cached"] is True
    assert card["entry"]["license"] == "MIT"
    human = run("info", "ani-1ccx")
    assert "10.1038/s41467-019-10827-4" in human.stdout and "unpinned" in human.stdout

    report = run_json("verify", "tiny")
    assert report["ok"] and {c["status"] for c in report["checks"]} == {"ok"}
    blob = (Path(done["path"]) / "model.safetensors").resolve()
    blob.write_bytes(b"corrupted")
    bad = run("verify", "tiny", "--json")
    assert bad.exit_code == EXIT_VERIFICATION
    assert not json.loads(bad.stdout)["ok"]
    assert "failed verification" in json.loads(bad.stdout)["error"]
    assert "failed verification" in bad.stderr

    preview = run_json("remove", "tiny", "--dry-run")
    assert preview["removed"] and hub.snapshot_files("zoo-test/tiny")
    aborted = run("remove", "tiny", input="n\n")
    assert aborted.exit_code == 1 and hub.snapshot_files("zoo-test/tiny")
    assert run("remove", "tiny", "-y").exit_code == 0
    assert not hub.snapshot_files("zoo-test/tiny")
    missing = run("verify", "tiny")
    assert missing.exit_code == EXIT_OFFLINE and "mlpot-zoo download tiny" in missing.stderr
    assert missing.stdout == ""  # no empty table
    missing = run("verify", "tiny", "--json")
    assert missing.exit_code == EXIT_OFFLINE
    payload = json.loads(missing.stdout)
    assert payload["ok"] is False and {c["status"] for c in payload["checks"]} == {"missing"}
    assert payload["error"] == missing.stderr.removeprefix("Error: ").strip()


def test_exit_codes_and_messages(hub: HubEnv, tiny_artifact: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = run("info", "ani-1cxx")
    assert unknown.exit_code == EXIT_UNKNOWN_MODEL
    assert "did you mean 'ani-1ccx'" in unknown.stderr and unknown.stdout == ""
    assert run("download").exit_code == EXIT_USAGE
    assert run("download", "tiny", "--no-such-flag").exit_code == EXIT_USAGE

    hub.publish_tiny("tiny", tiny_artifact)
    hub.server.faults.tamper[("zoo-test/tiny", "config.json")] = b"{}"
    tampered = run("download", "tiny", "-q")
    assert tampered.exit_code == EXIT_VERIFICATION and "sha256" in tampered.stderr

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = run("download", "tiny")
    assert offline.exit_code == EXIT_OFFLINE
    assert "mlpot-zoo download tiny" in offline.stderr


def test_cache_dir_env_export_import_push(
    hub: HubEnv, tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = run_json("cache", "dir")
    assert paths["hub_cache"] == str(hub.hub_cache)
    assert paths["lock_file"] == str(hub.zoo_dir / "lock.json")
    assert run("cache", "dir").stdout.strip() == str(hub.hub_cache)

    report = run_json("env")
    assert report["endpoint"] == hub.server.url
    assert report["offline"] is False and report["token"] == "not set"
    assert report["versions"]["huggingface_hub"]
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    assert "hf_secret_value" not in run("env").stdout
    monkeypatch.delenv("HF_TOKEN")

    pushed = run_json("push", str(tiny_artifact), "zoo-test/cli", "--tag", "v1")
    assert pushed["revision"] == hub.server.repos.resolve("zoo-test/cli", "v1")
    assert run("push", str(tiny_artifact), "zoo-test/cli").stdout.strip() == (
        hub.server.repos.resolve("zoo-test/cli", "main"))

    commit, _ = hub.publish_tiny("tiny", tiny_artifact)
    bundle = tmp_path / "out" / "bundle.tar"
    exported = run_json("export", "tiny", "-o", str(bundle), "-q")
    assert exported["bundle"] == str(bundle) and bundle.is_file()

    monkeypatch.setenv("HF_HOME", str(tmp_path / "cluster"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cluster" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run_json("import", str(bundle))["imported"] == ["tiny"]
    assert run_json("download", "tiny")["revision"] == commit

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../../outside")
        tar.addfile(info)
    refused = run("import", str(evil))
    assert refused.exit_code == EXIT_VERIFICATION and "refusing" in refused.stderr
