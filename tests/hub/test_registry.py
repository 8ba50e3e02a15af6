"""The model registry: schema, package data, model cards, third-party entries."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ase_mlpot import hub as zoo
from ase_mlpot.errors import IncompatibleModelError, RegistryError
from ase_mlpot.registry import NAME_PATTERN, load_package_registry, parse_entry, parse_registry
from tests.hub.support import HubEnv, entry_dict

ROOT = Path(__file__).resolve().parents[2]


def _make_registry_module() -> ModuleType:
    path = ROOT / "zoo" / "make_registry.py"
    spec = importlib.util.spec_from_file_location("make_registry", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_registry_is_valid_and_matches_the_cards() -> None:
    registry = load_package_registry()
    assert {"ani-1x", "ani-1ccx", "ani-2x"} <= set(registry)
    for name in registry:
        assert NAME_PATTERN.match(name)
    make_registry = _make_registry_module()
    assert make_registry.main(["--check"]) == 0
    packaged = (ROOT / "ase_mlpot" / "registry" / "models.json").read_text()
    assert make_registry.render(make_registry.build_registry()) == packaged


def test_changed_card_is_detected(tmp_path: Path) -> None:
    make_registry = _make_registry_module()
    cards = tmp_path / "cards"
    shutil.copytree(ROOT / "zoo" / "cards", cards)
    card = cards / "ani-1x.md"
    card.write_text(card.read_text().replace("license: MIT", "license: Apache-2.0"))
    assert make_registry.main(["--check", "--cards", str(cards)]) == 1


def test_third_party_entries_are_honest() -> None:
    spec = importlib.util.find_spec("torchani")  # read its source, do not import it
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    models_source = (package / "models.py").read_text()
    arch_source = (package / "arch.py").read_text()
    registry = load_package_registry()
    assert 'repo_id = "roitberg-group"' in arch_source
    for name, filename in (("ani-1x", "ani1x_state_dict.pt"),
                           ("ani-1ccx", "ani1ccx_state_dict.pt"),
                           ("ani-2x", "ani2x_state_dict.pt")):
        entry = registry.get_entry(name)
        assert entry.third_party and entry.license == "MIT"
        assert entry.citations and all(c.doi for c in entry.citations)
        assert entry.format == "torchani-state-dict"
        assert [f.path for f in entry.files] == [filename]
        assert f'"{filename}"' in models_source  # the file TorchANI 2.9 downloads
        assert entry.hub is not None
        assert entry.hub.repo_id == "roitberg-group/" + filename.removesuffix("_state_dict.pt")
        # commits and hashes of third-party repositories are never invented
        assert not entry.pinned and entry.hub.revision is None
        assert all(f.sha256 is None and f.size is None for f in entry.files)
    assert registry.get_entry("ani1ccx").name == "ani-1ccx"


def _valid() -> dict[str, Any]:
    return entry_dict("org/model", {"config.json": b"{}", "model.safetensors": b"w"},
                      revision="a" * 40)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda entry: entry.__setitem__(key, value)


#: mutation of a valid entry → (the change, what the error must say)
MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown key": (_set("weights_url", "http://example.org"), "unknown keys"),
    "missing licence": (lambda e: e.pop("license"), "missing keys"),
    "bad element": (_set("elements", ["H", "Xx"]), "distinct chemical symbols"),
    "bad format": (_set("format", "pickle"), "format must be one of"),
    "short revision": (lambda e: e["hub"].__setitem__("revision", "main"), "40-hex commit"),
    "pinned without hash": (lambda e: e["files"][0].__setitem__("sha256", None),
                            "pinned hub entry needs"),
    "unpinned with hash": (lambda e: e["hub"].__setitem__("revision", None), "unpinned hub entry"),
    "bad sha256": (lambda e: e["files"][0].__setitem__("sha256", "xyz"), "64 lowercase hex"),
    "path traversal": (lambda e: e["files"].append({"path": "../x.json", "size": 1,
                                                   "sha256": "0" * 64}),
                       "unsafe or invalid file path"),
    "pickle in artifact": (lambda e: e["files"].append({"path": "model.pt", "size": 1,
                                                       "sha256": "0" * 64}), "accept only json"),
    "no weights": (lambda e: e["files"].pop(1), "need files"),
    "no source": (_set("hub", None), "needs 'bundled'"),
    "deprecated without successor": (_set("deprecated", True), "name a successor"),
    "bad repo id": (lambda e: e["hub"].__setitem__("repo_id", "no-slash"), "invalid repo_id"),
    "reference energies incomplete": (_set("reference_energies", {"H": -0.5}), "for every element"),
    "bad level of theory": (_set("level_of_theory", {"method": "DFT"}), "level_of_theory takes"),
}


def test_valid_entry_parses() -> None:
    entry = parse_entry("model", _valid())
    assert entry.pinned and entry.weights_file.path == "model.safetensors"
    assert parse_entry("model", entry.to_dict()) == entry


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_schema_rejects(mutation: str) -> None:
    data = copy.deepcopy(_valid())
    change, message = MUTATIONS[mutation]
    change(data)
    with pytest.raises(RegistryError, match=re.escape(message)):
        parse_entry("model", data)


def test_registry_level_checks() -> None:
    good = _valid()
    with pytest.raises(RegistryError, match="name must match"):
        parse_registry({"registry_version": 1, "models": {"Bad_Name": good}})
    with pytest.raises(RegistryError, match="registry_version"):
        parse_registry({"registry_version": 2, "models": {}})
    with pytest.raises(RegistryError, match="successor"):
        parse_registry({"registry_version": 1, "models": {
            "old": {**good, "deprecated": True, "successor": "missing"}}})
    with pytest.raises(RegistryError, match="alias"):
        parse_registry({"registry_version": 1, "models": {
            "one": {**good, "aliases": ["two"]}, "two": good}})


def test_torchani_entry_needs_one_pt_file() -> None:
    data = entry_dict("org/x", {"x.pt": b"", "y.pt": b""}, revision=None,
                      fmt="torchani-state-dict")
    with pytest.raises(RegistryError, match=r"exactly one \.pt"):
        parse_entry("x", data)


def test_version_bounds_refuse(hub: HubEnv, tiny_artifact: Path) -> None:
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    hub.register("tiny", entry_dict("zoo-test/tiny", files, revision=commit,
                                    min_version="999.0"))
    with pytest.raises(IncompatibleModelError, match="pip install -U ase_mlpot"):
        zoo.download("tiny")
    hub.register("tiny", entry_dict("zoo-test/tiny", files, revision=commit,
                                    max_version="0.0.1"))
    with pytest.raises(IncompatibleModelError, match="supported up to"):
        zoo.download("tiny")
    assert hub.server.log == []


def test_broken_local_registry_is_reported(hub: HubEnv) -> None:
    hub.zoo_dir.mkdir(parents=True)
    (hub.zoo_dir / "registry.json").write_text(json.dumps({"registry_version": 1, "models": {
        "x": {"version": "1"}}}))
    with pytest.raises(RegistryError, match=r"registry\.json"):
        zoo.list_models()
