"""The model registry: one schema-checked :class:`ModelEntry` per zoo name.

The registry ships as package data (``ase_mlpot/registry/models.json``), generated from the model
cards in ``zoo/cards/`` by ``python zoo/make_registry.py``. Entries imported from an export bundle
live in a local registry file beside the download cache (see :mod:`ase_mlpot.hub`) and use the
same schema.

Where weights live:

* ``bundled``: inside an installed package (``{"package": "ase_mlpot", "path": "weights/<name>"}``),
  read with :mod:`importlib.resources`; every file must carry its sha256.
* ``hub``: a Hugging Face repository ``repo_id`` at a 40-hex commit ``revision``. Entries whose
  commit and file hashes cannot be known in advance (third-party repositories) set
  ``revision: null`` and name the ``ref`` to resolve at the first download; the resolved commit and
  hashes are then recorded in a local lock file (trust on first use).

Formats: ``artifact`` (``config.json`` + ``model.safetensors`` [+ ``README.md``], see
:mod:`ase_mlpot.io`) or ``torchani-state-dict`` (one TorchANI ``.pt`` state dict, read only with
``torch.load(weights_only=True)`` after its sha256 is checked, converted once into an artifact).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ase_mlpot.errors import DeprecatedModelError, ModelNotFoundError, RegistryError

__all__ = [
    "FORMATS",
    "NAME_PATTERN",
    "REGISTRY_VERSION",
    "BundledSource",
    "Citation",
    "FileSpec",
    "HubSource",
    "ModelEntry",
    "Registry",
    "load_package_registry",
    "parse_entry",
    "parse_registry",
    "registry_document",
]

REGISTRY_VERSION = 1
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FORMATS = ("artifact", "torchani-state-dict")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_ARTIFACT_SUFFIXES = (".json", ".safetensors", ".md")
_FIELDS = {
    "version", "description", "aliases", "architecture", "format", "third_party", "elements",
    "level_of_theory", "units", "training_data", "metrics", "license", "citations", "parent",
    "gated", "bundled", "hub", "files", "reference_energies", "min_version", "max_version",
    "deprecated", "successor",
}
_REQUIRED = {"version", "architecture", "format", "elements", "level_of_theory", "units",
             "training_data", "license", "citations", "files"}


@dataclass(frozen=True)
class FileSpec:
    """One weight file: its path (in the repository or bundled folder), size and sha256.

    ``size``/``sha256`` are ``None`` only in unpinned hub entries (resolved on first use).
    """

    path: str
    size: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class HubSource:
    """Where a model lives on the hub: ``repo_id`` at ``revision`` (or ``ref`` when unpinned)."""

    repo_id: str
    revision: str | None = None
    ref: str = "main"

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "ref": self.ref}


@dataclass(frozen=True)
class BundledSource:
    """Weights shipped inside an installed package: ``files(package) / path``."""

    package: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"package": self.package, "path": self.path}


@dataclass(frozen=True)
class Citation:
    """A reference to cite when the model is used."""

    text: str
    doi: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "doi": self.doi}


@dataclass(frozen=True)
class ModelEntry:
    """A zoo model: what it is, who made it, under which licence, and where its weights live.

    Attributes:
        name: Immutable zoo name (``^[a-z][a-z0-9]*(-[a-z0-9]+)*$``).
        version: Version of the entry (new weights get a new name, not a new version).
        architecture: Key of :data:`ase_mlpot.models.registry.ARCHITECTURES`.
        format: ``"artifact"`` or ``"torchani-state-dict"``.
        elements: Chemical symbols the model was trained on.
        level_of_theory: ``pretraining`` and, for transfer-learned models, ``fine_tuning``.
        units: Native ``energy`` and ``length`` units.
        training_data: Short summary of the training data.
        license: SPDX licence identifier of the weights.
        citations: What to cite.
        files: Weight files with size and sha256 (``None`` until resolved, unpinned hub entries).
        description: One-line description.
        aliases: Other names that resolve to this entry.
        third_party: Weights published by others, served from their repository.
        metrics: Reported accuracy numbers (free-form, with units in the keys).
        parent: Zoo name of the model this one was transfer-learned from.
        gated: The hub repository needs ``HF_TOKEN``.
        bundled: Package location of bundled weights.
        hub: Hub repository of the weights.
        reference_energies: float64 per-element self energies (native energy unit) that replace
            rounded values stored in third-party weight files.
        min_version: Oldest ase_mlpot that reads this entry.
        max_version: Newest ase_mlpot that reads this entry.
        deprecated: Retired name; loading it raises and points to ``successor``.
        successor: Replacement of a deprecated entry.
    """

    name: str
    version: str
    architecture: str
    format: str
    elements: tuple[str, ...]
    level_of_theory: Mapping[str, str]
    units: Mapping[str, str]
    training_data: str
    license: str
    citations: tuple[Citation, ...]
    files: tuple[FileSpec, ...]
    description: str = ""
    aliases: tuple[str, ...] = ()
    third_party: bool = False
    metrics: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None
    gated: bool = False
    bundled: BundledSource | None = None
    hub: HubSource | None = None
    reference_energies: Mapping[str, float] | None = None
    min_version: str | None = None
    max_version: str | None = None
    deprecated: bool = False
    successor: str | None = None

    @property
    def pinned(self) -> bool:
        """The registry pins a hub commit and the sha256 and size of every file."""
        return (
            self.hub is not None and self.hub.revision is not None
            and all(f.sha256 is not None and f.size is not None for f in self.files)
        )

    @property
    def weights_file(self) -> FileSpec:
        """The file holding the weights (``model.safetensors`` or the ``.pt`` state dict)."""
        suffix = ".safetensors" if self.format == "artifact" else ".pt"
        for spec in self.files:
            if spec.path.endswith(suffix):
                return spec
        raise RegistryError(f"{self.name}: no {suffix} file listed")  # prevented by validation

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used in ``models.json`` (without the name, which is the key)."""
        return {
            "version": self.version,
            "description": self.description,
            "aliases": list(self.aliases),
            "architecture": self.architecture,
            "format": self.format,
            "third_party": self.third_party,
            "elements": list(self.elements),
            "level_of_theory": dict(self.level_of_theory),
            "units": dict(self.units),
            "training_data": self.training_data,
            "metrics": dict(self.metrics),
            "license": self.license,
            "citations": [c.to_dict() for c in self.citations],
            "parent": self.parent,
            "gated": self.gated,
            "bundled": self.bundled.to_dict() if self.bundled else None,
            "hub": self.hub.to_dict() if self.hub else None,
            "files": [f.to_dict() for f in self.files],
            "reference_energies": (dict(self.reference_energies)
                                   if self.reference_energies is not None else None),
            "min_version": self.min_version,
            "max_version": self.max_version,
            "deprecated": self.deprecated,
            "successor": self.successor,
        }


def _fail(where: str, message: str) -> RegistryError:
    return RegistryError(f"{where}: {message}")


def _str(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _str_map(value: Any, key: str, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(where, f"{key!r} must map strings to strings, got {value!r}")
    return dict(value)


def _parse_files(value: Any, where: str, fmt: str) -> tuple[FileSpec, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, "'files' must be a non-empty list")
    specs = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"path", "size", "sha256"}:
            raise _fail(where, f"file entries take path, size, sha256; got {item!r}")
        path = item.get("path")
        if not isinstance(path, str) or not _SAFE_PATH.match(path) or ".." in path.split("/"):
            raise _fail(where, f"unsafe or invalid file path {path!r}")
        size, sha256 = item.get("size"), item.get("sha256")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise _fail(where, f"{path}: size must be a non-negative integer, got {size!r}")
        if sha256 is not None and (not isinstance(sha256, str) or not _HEX64.match(sha256)):
            raise _fail(where, f"{path}: sha256 must be 64 lowercase hex digits, got {sha256!r}")
        specs.append(FileSpec(path=path, size=size, sha256=sha256))
    paths = [s.path for s in specs]
    if len(set(paths)) != len(paths):
        raise _fail(where, f"duplicate file paths in {paths}")
    if fmt == "artifact":
        missing = {"config.json", "model.safetensors"} - set(paths)
        if missing:
            raise _fail(where, f"artifact entries need files {sorted(missing)}")
        odd = [p for p in paths if not p.endswith(_ARTIFACT_SUFFIXES)]
        if odd:
            raise _fail(where, f"artifact entries accept only json/safetensors/md files, got {odd}")
    elif [p.endswith(".pt") for p in paths] != [True]:
        raise _fail(where, f"torchani-state-dict entries list exactly one .pt file, got {paths}")
    return tuple(specs)


def parse_entry(name: str, data: Mapping[str, Any], *, source: str = "registry") -> ModelEntry:
    """Validate one registry entry and build its :class:`ModelEntry`.

    Args:
        name: The zoo name (the key of the entry).
        data: The entry's JSON object.
        source: Where the entry comes from, used in error messages.

    Returns:
        The entry.

    Raises:
        RegistryError: The entry does not follow the schema.
    """
    from ase.data import chemical_symbols

    where = f"{source}: model {name!r}"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _fail(where, f"name must match {NAME_PATTERN.pattern}")
    if not isinstance(data, Mapping):
        raise _fail(where, "entry must be a JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    missing = _REQUIRED - set(data)
    if missing:
        raise _fail(where, f"missing keys {sorted(missing)}")
    fmt = _str(data, "format", where)
    if fmt not in FORMATS:
        raise _fail(where, f"format must be one of {FORMATS}, got {fmt!r}")
    elements = data["elements"]
    if (not isinstance(elements, list) or not elements
            or not all(isinstance(e, str) and e in chemical_symbols[1:] for e in elements)
            or len(set(elements)) != len(elements)):
        raise _fail(where, f"'elements' must list distinct chemical symbols, got {elements!r}")
    level = _str_map(data["level_of_theory"], "level_of_theory", where)
    if "pretraining" not in level or set(level) - {"pretraining", "fine_tuning"}:
        raise _fail(where, "level_of_theory takes 'pretraining' and optionally 'fine_tuning'")
    units = _str_map(data["units"], "units", where)
    if set(units) != {"energy", "length"}:
        raise _fail(where, "units must give exactly 'energy' and 'length'")
    citations_raw = data["citations"]
    if not isinstance(citations_raw, list) or not citations_raw:
        raise _fail(where, "'citations' must be a non-empty list")
    citations = []
    for item in citations_raw:
        if not isinstance(item, Mapping) or set(item) - {"text", "doi"}:
            raise _fail(where, f"citations take text and doi, got {item!r}")
        citations.append(Citation(text=str(_str(item, "text", where)),
                                  doi=_str(item, "doi", where, optional=True)))
    files = _parse_files(data["files"], where, fmt)
    bundled = hub = None
    if data.get("bundled") is not None:
        raw = data["bundled"]
        if not isinstance(raw, Mapping) or set(raw) != {"package", "path"}:
            raise _fail(where, "'bundled' takes exactly package and path")
        bundled = BundledSource(package=str(_str(raw, "package", where)),
                                path=str(_str(raw, "path", where)))
        unhashed = [f.path for f in files if f.sha256 is None or f.size is None]
        if unhashed:
            raise _fail(where, f"bundled files need size and sha256: {unhashed}")
    if data.get("hub") is not None:
        raw = data["hub"]
        if not isinstance(raw, Mapping) or set(raw) - {"repo_id", "revision", "ref"}:
            raise _fail(where, "'hub' takes repo_id, revision and ref")
        repo_id = _str(raw, "repo_id", where)
        if not _REPO_ID.match(str(repo_id)):
            raise _fail(where, f"invalid repo_id {repo_id!r}")
        revision = raw.get("revision")
        if revision is not None and (not isinstance(revision, str) or not _HEX40.match(revision)):
            raise _fail(where, f"hub revision must be a 40-hex commit SHA or null: {revision!r}")
        hashed = [f.sha256 is not None for f in files]
        if revision is None and any(hashed) and bundled is None:
            raise _fail(where, "an unpinned hub entry (revision null) cannot list file hashes:"
                               " they would not belong to a known commit")
        if revision is not None and not all(hashed):
            raise _fail(where, "a pinned hub entry needs the sha256 and size of every file")
        hub = HubSource(repo_id=str(repo_id), revision=revision,
                        ref=str(_str(raw, "ref", where, optional=True) or "main"))
    if bundled is None and hub is None:
        raise _fail(where, "needs 'bundled', 'hub' or both")
    if bundled is not None and fmt != "artifact":
        raise _fail(where, "bundled weights must be artifacts (safetensors), not pickles")
    reference = data.get("reference_energies")
    if reference is not None and (
        not isinstance(reference, Mapping)
        or set(reference) != set(elements)
        or not all(isinstance(v, float) for v in reference.values())
    ):
        raise _fail(where, "reference_energies must give a float for every element")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and NAME_PATTERN.match(a) for a in aliases
    ):
        raise _fail(where, f"aliases must be valid zoo names, got {aliases!r}")
    deprecated = data.get("deprecated", False)
    successor = _str(data, "successor", where, optional=True)
    if not isinstance(deprecated, bool) or (deprecated and successor is None):
        raise _fail(where, "deprecated must be a boolean; deprecated entries name a successor")
    for flag in ("third_party", "gated"):
        if not isinstance(data.get(flag, False), bool):
            raise _fail(where, f"{flag!r} must be a boolean")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise _fail(where, "'metrics' must be an object")
    return ModelEntry(
        name=name,
        version=str(_str(data, "version", where)),
        architecture=str(_str(data, "architecture", where)),
        format=fmt,
        elements=tuple(elements),
        level_of_theory=level,
        units=units,
        training_data=str(_str(data, "training_data", where)),
        license=str(_str(data, "license", where)),
        citations=tuple(citations),
        files=files,
        description=str(data.get("description") or ""),
        aliases=tuple(aliases),
        third_party=bool(data.get("third_party", False)),
        metrics=dict(metrics),
        parent=_str(data, "parent", where, optional=True),
        gated=bool(data.get("gated", False)),
        bundled=bundled,
        hub=hub,
        reference_energies=dict(reference) if reference is not None else None,
        min_version=_str(data, "min_version", where, optional=True),
        max_version=_str(data, "max_version", where, optional=True),
        deprecated=deprecated,
        successor=successor,
    )


class Registry(Mapping[str, ModelEntry]):
    """Zoo names (and aliases) → entries; lookups suggest close names.

    Args:
        entries: The entries by name.
    """

    def __init__(self, entries: Mapping[str, ModelEntry]) -> None:
        self._entries = dict(sorted(entries.items()))
        self._aliases: dict[str, str] = {}
        for entry in self._entries.values():
            for alias in entry.aliases:
                if alias in self._entries or alias in self._aliases:
                    raise RegistryError(f"alias {alias!r} of {entry.name!r} is already a name")
                self._aliases[alias] = entry.name
        for entry in self._entries.values():
            if entry.successor is not None and entry.successor not in self._entries:
                raise RegistryError(f"{entry.name!r}: successor {entry.successor!r} is unknown")
            if entry.parent is not None and entry.parent not in self._entries:
                raise RegistryError(f"{entry.name!r}: parent {entry.parent!r} is unknown")

    def __getitem__(self, name: str) -> ModelEntry:
        return self._entries[self._aliases.get(name, name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def get_entry(self, name: str, *, allow_deprecated: bool = False) -> ModelEntry:
        """The entry of a name or alias.

        Raises:
            ModelNotFoundError: Unknown name; the message lists close names.
            DeprecatedModelError: A retired name (unless ``allow_deprecated``).
        """
        if name not in self:
            candidates = [*self._entries, *self._aliases]
            close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ModelNotFoundError(
                f"no model named {name!r} in the zoo{hint} (`mlpot-zoo list` shows all names)"
            )
        entry = self[name]
        if entry.deprecated and not allow_deprecated:
            raise DeprecatedModelError(
                f"model {entry.name!r} is retired; use {entry.successor!r} instead"
                f" (`mlpot-zoo info {entry.successor}`)"
            )
        return entry

    def merged(self, other: Registry) -> Registry:
        """This registry plus the entries of ``other`` whose names are new here."""
        entries = dict(self._entries)
        for name, entry in other._entries.items():
            entries.setdefault(name, entry)
        return Registry(entries)


def parse_registry(data: Any, *, source: str = "registry") -> Registry:
    """Validate a registry document ``{"registry_version": 1, "models": {name: entry}}``.

    Raises:
        RegistryError: Wrong version or an invalid entry.
    """
    if not isinstance(data, Mapping) or data.get("registry_version") != REGISTRY_VERSION:
        raise RegistryError(f"{source}: expected registry_version {REGISTRY_VERSION}")
    models = data.get("models")
    if not isinstance(models, Mapping) or set(data) - {"registry_version", "models"}:
        raise RegistryError(f"{source}: expected only registry_version and models")
    return Registry({name: parse_entry(name, entry, source=source)
                     for name, entry in models.items()})


def load_package_registry() -> Registry:
    """The registry shipped with the package (``ase_mlpot/registry/models.json``)."""
    text = resources.files(__name__).joinpath("models.json").read_text(encoding="utf-8")
    return parse_registry(json.loads(text), source="ase_mlpot/registry/models.json")


def registry_document(entries: Mapping[str, ModelEntry]) -> dict[str, Any]:
    """The JSON document of a set of entries (sorted by name)."""
    return {
        "registry_version": REGISTRY_VERSION,
        "models": {name: entries[name].to_dict() for name in sorted(entries)},
    }

