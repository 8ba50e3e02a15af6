"""Where a model's files come from: local folders, bundled weights, the Hugging Face hub.

Resolution of ``load(name_or_path, revision=...)``:

1. an existing artifact folder (``config.json`` + ``model.safetensors``);
2. a registry entry with bundled weights (package data, read with :mod:`importlib.resources`);
3. the Hugging Face cache at the entry's commit (no network once a file is cached);
4. ``hf_hub_download`` at the registry's pinned commit, or for unpinned third-party entries at the
   commit recorded in the local lock file, or (first use) at the entry's ``ref``.

Every file is hashed (streaming sha256) before a single byte of it is deserialised: against the
registry (pinned entries), against the lock file (entries pinned on first use), or, on the very
first download of an unpinned entry, hashed and recorded in the lock file (trust on first use). A
mismatch deletes the snapshot file and its blob and raises :class:`ChecksumError`.

Only JSON, safetensors and Markdown are accepted from the hub for artifacts. Third-party ANI
weights are TorchANI state dicts (pickles): after the sha256 check they are read only with
``torch.load(weights_only=True)`` (no code runs) and converted once into a cached safetensors
artifact.

Environment (read at call time, never written): ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``,
``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_ETAG_TIMEOUT``, ``HF_HUB_DOWNLOAD_TIMEOUT``,
``HF_HUB_DISABLE_PROGRESS_BARS`` and ``ASE_MLPOT_CACHE`` (lock file, local registry and converted
artifacts; default ``$HF_HOME/ase_mlpot``, kept out of the hub cache so ``hf cache ls`` stays
clean).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any, TypeVar

from ase_mlpot._version import __version__
from ase_mlpot.errors import (
    BundleError,
    ChecksumError,
    GatedModelError,
    HubUnreachableError,
    IncompatibleModelError,
    MLPotError,
    ModelFormatError,
    ModelNotFoundError,
    OfflineError,
    RegistryError,
    RevisionError,
)
from ase_mlpot.files import atomic_write, sha256_and_size
from ase_mlpot.registry import (
    FileSpec,
    ModelEntry,
    Registry,
    load_package_registry,
    parse_entry,
    parse_registry,
    registry_document,
)

__all__ = [
    "BUNDLED",
    "PINNED_BY_LOCK",
    "PINNED_BY_REGISTRY",
    "UNPINNED",
    "FileCheck",
    "HubSettings",
    "ModelStatus",
    "PushResult",
    "ResolvedModel",
    "cache_paths",
    "current_settings",
    "download",
    "env_report",
    "export_bundle",
    "get_entry",
    "get_registry",
    "import_bundle",
    "list_models",
    "model_status",
    "plan_download",
    "push",
    "remove",
    "resolve_model",
    "verify",
]

logger = logging.getLogger(__name__)

PINNED_BY_REGISTRY = "pinned-by-registry"
PINNED_BY_LOCK = "pinned-by-lock"
UNPINNED = "unpinned"
BUNDLED = "bundled"

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_BLOB = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_TRUE = {"1", "on", "yes", "true"}
_LOCK_VERSION = 1
_BUNDLE_VERSION = 1
_CONVERTER_VERSION = 1
_DEFAULT_TIMEOUT = 10.0
_T = TypeVar("_T")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class HubSettings:
    """Hub configuration, read from the environment at call time.

    Attributes:
        endpoint: Hub URL (``HF_ENDPOINT``, default ``https://huggingface.co``).
        offline: ``HF_HUB_OFFLINE`` is set: only the cache is used.
        token: ``HF_TOKEN`` (``None``: huggingface_hub's stored token, if any).
        hf_home: ``HF_HOME``.
        hub_cache: ``HF_HUB_CACHE`` (default ``$HF_HOME/hub``).
        zoo_dir: ``ASE_MLPOT_CACHE`` (default ``$HF_HOME/ase_mlpot``): lock file, local registry,
            converted artifacts.
        etag_timeout: Seconds to wait for file metadata (``HF_HUB_ETAG_TIMEOUT``, 10).
        download_timeout: Seconds to wait for data (``HF_HUB_DOWNLOAD_TIMEOUT``, 10).
        progress: Show progress bars on stderr (off with ``HF_HUB_DISABLE_PROGRESS_BARS``).
    """

    endpoint: str
    offline: bool
    token: str | None
    hf_home: Path
    hub_cache: Path
    zoo_dir: Path
    etag_timeout: float
    download_timeout: float
    progress: bool

    @property
    def stall_timeout(self) -> float:
        """A transfer that makes no progress for this long is abandoned (seconds)."""
        return self.etag_timeout + self.download_timeout


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise MLPotError(f"{name}={value!r} is not a number of seconds") from None
    if number <= 0:
        raise MLPotError(f"{name}={value!r} must be positive")
    return number


def _path_from_env(value: str) -> Path:
    return Path(os.path.expandvars(value)).expanduser()


def current_settings() -> HubSettings:
    """The hub settings from the environment as it is now (huggingface_hub reads it at import)."""
    from huggingface_hub import constants

    env = os.environ
    hf_home = _path_from_env(
        env.get("HF_HOME")
        or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    )
    hub_cache = _path_from_env(
        env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or str(hf_home / "hub")
    )
    zoo_dir = _path_from_env(env["ASE_MLPOT_CACHE"]) if env.get("ASE_MLPOT_CACHE") else (
        hf_home / "ase_mlpot")
    offline = (
        (env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or "").lower() in _TRUE
        or bool(constants.HF_HUB_OFFLINE)
    )
    return HubSettings(
        endpoint=(env.get("HF_ENDPOINT") or constants._HF_DEFAULT_ENDPOINT).rstrip("/"),
        offline=offline,
        token=env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None,
        hf_home=hf_home,
        hub_cache=hub_cache,
        zoo_dir=zoo_dir,
        etag_timeout=_env_float("HF_HUB_ETAG_TIMEOUT", _DEFAULT_TIMEOUT),
        download_timeout=_env_float("HF_HUB_DOWNLOAD_TIMEOUT", _DEFAULT_TIMEOUT),
        progress=(env.get("HF_HUB_DISABLE_PROGRESS_BARS") or "").lower() not in _TRUE,
    )


def _settings(progress: bool | None) -> HubSettings:
    settings = current_settings()
    return settings if progress is None else replace(settings, progress=progress)


def cache_paths() -> dict[str, Path]:
    """The effective cache locations: hub cache, zoo folder, lock file and local registry."""
    settings = current_settings()
    return {
        "hub_cache": settings.hub_cache,
        "zoo_dir": settings.zoo_dir,
        "lock_file": settings.zoo_dir / "lock.json",
        "local_registry": settings.zoo_dir / "registry.json",
        "converted": settings.zoo_dir / "converted",
    }


# --------------------------------------------------------------------------- small helpers



def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def _storage_folder(settings: HubSettings, repo_id: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return settings.hub_cache.expanduser().resolve() / repo_folder_name(
        repo_id=repo_id, repo_type="model")


def _commit_of(path: Path, storage: Path) -> str:
    try:
        commit = path.relative_to(storage / "snapshots").parts[0]
    except (ValueError, IndexError):
        raise MLPotError(f"{path} is not a snapshot file of {storage}") from None
    if not _HEX40.match(commit):
        raise MLPotError(f"{path}: unexpected snapshot folder {commit!r}")
    return commit


def _delete_cached_file(path: Path) -> None:
    """Delete a snapshot file and the blob it points to (both, when they exist)."""
    blob = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    if blob is not None:
        blob.unlink(missing_ok=True)
    logger.warning("deleted %s%s from the cache", path, f" and blob {blob.name}" if blob else "")


def _offline_message(name: str, what: str) -> str:
    return (
        f"model {name!r} is not in the cache ({what}) and HF_HUB_OFFLINE is set: run"
        f" `mlpot-zoo download {name}` on a machine with network access (same HF_HOME/HF_HUB_CACHE"
        f" or copy it with `mlpot-zoo export {name} -o bundle.tar` / `mlpot-zoo import bundle.tar`)"
    )


# --------------------------------------------------------------------------- registries


def get_registry() -> Registry:
    """The package registry plus entries imported from bundles (local registry file).

    Package entries win over local ones of the same name.

    Raises:
        RegistryError: A registry file does not follow the schema.
    """
    registry = load_package_registry()
    local = cache_paths()["local_registry"]
    if local.is_file():
        try:
            data = json.loads(local.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RegistryError(f"{local}: not valid JSON ({error})") from None
        extra = parse_registry(data, source=str(local))
        for name in extra:
            if name in registry and registry[name].to_dict() != extra[name].to_dict():
                logger.warning("%s: entry %r differs from the package registry; using the"
                               " package's", local, name)
        registry = registry.merged(extra)
    return registry


def _add_local_entries(entries: Sequence[ModelEntry]) -> None:
    """Add entries to the local registry (``<zoo_dir>/registry.json``)."""
    path = cache_paths()["local_registry"]
    with _file_lock(path.with_name(path.name + ".lock")):
        current: dict[str, ModelEntry] = {}
        if path.is_file():
            current = dict(parse_registry(json.loads(path.read_text(encoding="utf-8")),
                                          source=str(path)))
        for entry in entries:
            current[entry.name] = entry
        Registry(current)
        _atomic_write_text(path, json.dumps(registry_document(current), indent=2) + "\n")


def _check_compatible(entry: ModelEntry) -> None:
    from packaging.version import InvalidVersion, Version

    try:
        ours = Version(__version__)
        if entry.min_version is not None and ours < Version(entry.min_version):
            raise IncompatibleModelError(
                f"model {entry.name!r} needs ase_mlpot >= {entry.min_version}, this is"
                f" {__version__}: pip install -U ase_mlpot")
        if entry.max_version is not None and ours > Version(entry.max_version):
            raise IncompatibleModelError(
                f"model {entry.name!r} is supported up to ase_mlpot {entry.max_version} (this is"
                f" {__version__}); install ase_mlpot<={entry.max_version} or use"
                f" {entry.successor or 'a newer model'!r}")
    except InvalidVersion as error:
        raise RegistryError(f"model {entry.name!r}: {error}") from None


def get_entry(name: str, *, allow_deprecated: bool = False) -> ModelEntry:
    """The registry entry of a zoo name or alias.

    Raises:
        ModelNotFoundError: Unknown name (close names suggested).
        DeprecatedModelError: Retired name (the successor is named).
    """
    entry = get_registry().get_entry(name, allow_deprecated=allow_deprecated)
    if entry.name != name:
        logger.info("%r is an alias of %r", name, entry.name)
    return entry


def list_models(*, cached: bool = False) -> list[str]:
    """Names of the zoo's models (no network).

    Args:
        cached: Only models usable offline (bundled, or every file in the cache).
    """
    registry = get_registry()
    names = [name for name in registry if not registry[name].deprecated]
    if cached:
        names = [name for name in names if model_status(name).cached]
    return names


# --------------------------------------------------------------------------- lock file


class _LockFile:
    """The trust-on-first-use lock: resolved commits and file hashes of unpinned entries.

    Layout: ``{"lock_version": 1, "models": {name: {"repo_id", "refs": {request: commit},
    "revisions": {commit: {"files": {path: {"sha256", "size"}}, "recorded_at", "source"}}}}}``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"lock_version": _LOCK_VERSION, "models": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise MLPotError(f"lock file {self.path} is not valid JSON ({error}); fix or delete"
                             " it (every unpinned model is then trusted again on first use)"
                             ) from None
        if data.get("lock_version") != _LOCK_VERSION or not isinstance(data.get("models"), dict):
            raise MLPotError(f"lock file {self.path}: unknown layout")
        return data

    def model(self, name: str, repo_id: str) -> dict[str, Any] | None:
        record = self.read()["models"].get(name)
        if record is None:
            return None
        if record.get("repo_id") != repo_id:
            logger.warning("lock file: %r was recorded for %s, the registry now says %s; ignoring"
                           " the lock record", name, record.get("repo_id"), repo_id)
            return None
        return record

    def lookup(self, name: str, repo_id: str, request: str) -> tuple[str, dict[str, FileSpec]
                                                                     ] | None:
        """The locked (commit, files) of a request (ref, tag or commit), if recorded."""
        record = self.model(name, repo_id)
        if record is None:
            return None
        commit = request if _HEX40.match(request) else record.get("refs", {}).get(request)
        files = record.get("revisions", {}).get(commit or "", {}).get("files")
        if commit is None or files is None:
            return None
        return commit, {path: FileSpec(path, spec["size"], spec["sha256"])
                        for path, spec in files.items()}

    def record(self, name: str, repo_id: str, request: str | None, commit: str,
               files: dict[str, FileSpec], *, source: str) -> None:
        """Record a commit and its file hashes (refuses to overwrite different hashes)."""
        with _file_lock(self.path.with_name(self.path.name + ".lock")):
            data = self.read()
            record = data["models"].setdefault(name, {"repo_id": repo_id, "refs": {},
                                                      "revisions": {}})
            if record.get("repo_id") != repo_id:
                record.update({"repo_id": repo_id, "refs": {}, "revisions": {}})
            new = {p: {"sha256": f.sha256, "size": f.size} for p, f in sorted(files.items())}
            old = record["revisions"].get(commit)
            if old is not None:
                for path, spec in new.items():
                    known = old["files"].get(path)
                    if known is not None and known != spec:
                        raise ChecksumError(
                            f"{name}: {path} at {repo_id}@{commit} has sha256 {spec['sha256']},"
                            f" the lock file {self.path} recorded {known['sha256']}")
                old["files"].update(new)
            else:
                record["revisions"][commit] = {"files": new, "recorded_at": _now(),
                                               "source": source}
            if request is not None and not _HEX40.match(request):
                record["refs"].setdefault(request, commit)
            _atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        logger.info("lock file %s: recorded %s at %s@%s", self.path, name, repo_id, commit)

    def forget(self, name: str) -> bool:
        with _file_lock(self.path.with_name(self.path.name + ".lock")):
            data = self.read()
            if data["models"].pop(name, None) is None:
                return False
            _atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
            return True


def _lock(settings: HubSettings) -> _LockFile:
    return _LockFile(settings.zoo_dir / "lock.json")


# --------------------------------------------------------------------------- transfers


class _Clock:
    def __init__(self) -> None:
        self._last = time.monotonic()

    def tick(self) -> None:
        self._last = time.monotonic()

    def idle(self) -> float:
        return time.monotonic() - self._last


def _progress_class(clock: _Clock, show: bool) -> type:
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _Progress(hf_tqdm):  # type: ignore[misc, valid-type]
        """huggingface_hub's progress bar (stderr) that also feeds the stall watchdog."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not show:
                kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            clock.tick()
            return super().update(n)

    return _Progress


def _incomplete_state(storage: Path) -> tuple[tuple[str, int, int], ...]:
    """Sizes of partial downloads: progress made by this or another process."""
    state = []
    with contextlib.suppress(OSError):
        for path in (storage / "blobs").glob("*.incomplete"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                state.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(state))


def _watched(call: Callable[[type], _T], *, settings: HubSettings, storage: Path, what: str,
             timeout: float | None = None) -> _T:
    """Run a hub transfer in a worker thread; give up when it stalls.

    huggingface_hub retries internally (a metadata retry alone may wait 60 s), so the bound is
    enforced here: when neither the progress bar nor a partial file in the cache moves for
    ``timeout`` seconds the call is abandoned with :class:`HubUnreachableError`. The worker is a
    daemon thread that only writes ``.incomplete`` files; anything it might still finish is
    verified before use like every other cached file.
    """
    limit = timeout if timeout is not None else settings.stall_timeout
    clock = _Clock()
    progress = _progress_class(clock, settings.progress)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call(progress)
        except BaseException as error:  # handed to the caller below
            box["error"] = error

    worker = threading.Thread(target=run, name=f"ase_mlpot-download-{what}", daemon=True)
    worker.start()
    seen = _incomplete_state(storage)
    while True:
        worker.join(0.2)
        if not worker.is_alive():
            break
        state = _incomplete_state(storage)
        if state != seen:
            seen = state
            clock.tick()
        if clock.idle() > limit:
            raise HubUnreachableError(
                f"no progress for {limit:g} s while downloading {what} from {settings.endpoint}:"
                " the hub is unreachable or not answering (timeouts: HF_HUB_ETAG_TIMEOUT,"
                " HF_HUB_DOWNLOAD_TIMEOUT); set HF_HUB_OFFLINE=1 to use only the cache")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _hub_error(error: BaseException, *, name: str, url: str) -> MLPotError:
    """Translate a huggingface_hub/httpx error into ours, naming the URL."""
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, GatedRepoError):
        return GatedModelError(f"{url}: access to the gated repository of {name!r} was refused;"
                               " accept its terms on the hub and set HF_TOKEN")
    if isinstance(error, RepositoryNotFoundError):
        return ModelNotFoundError(f"{url}: repository of {name!r} not found (private or gated"
                                  " repositories need HF_TOKEN)")
    if isinstance(error, RevisionNotFoundError):
        return ModelNotFoundError(f"{url}: revision not found for {name!r}")
    if isinstance(error, OfflineModeIsEnabled):
        return OfflineError(_offline_message(name, url))
    if isinstance(error, LocalEntryNotFoundError):
        return HubUnreachableError(f"could not reach the hub for {name!r} ({url}) and the file is"
                                   f" not cached: {error}")
    if isinstance(error, EntryNotFoundError):
        return ModelNotFoundError(f"{url}: file not found in the repository of {name!r}")
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else "?"
        if status in (401, 403):
            return GatedModelError(f"{url}: HTTP {status} for {name!r}; set HF_TOKEN")
        return MLPotError(f"{url}: HTTP {status} for {name!r}: {error}")
    if isinstance(error, (httpx2.HTTPError, ConnectionError, TimeoutError)):
        return HubUnreachableError(f"download of {name!r} from {url} failed: {error}")
    if isinstance(error, OSError) and "Consistency check failed" in str(error):
        return HubUnreachableError(f"download of {name!r} from {url} was incomplete: {error}")
    raise error


def _probe(url: str, settings: HubSettings) -> None:
    """One HEAD request without retries, so a refused or silent hub fails fast and clearly
    (huggingface_hub itself retries with back-off for up to a minute)."""
    import httpx2
    from huggingface_hub import get_hf_file_metadata

    try:
        get_hf_file_metadata(url, token=settings.token, timeout=settings.etag_timeout,
                             endpoint=settings.endpoint, retry_on_errors=False,
                             library_name="ase_mlpot", library_version=__version__)
    except (httpx2.TransportError, ConnectionError, TimeoutError) as error:
        raise HubUnreachableError(
            f"the hub at {settings.endpoint} did not answer ({url}): {error}. Check the network"
            " or HF_ENDPOINT; on machines without network set HF_HUB_OFFLINE=1 and use models"
            " fetched with `mlpot-zoo download` or `mlpot-zoo import`") from None


def _hf_download(name: str, repo_id: str, filename: str, revision: str,
                 settings: HubSettings, *, timeout: float | None = None,
                 dry_run: bool = False) -> Any:
    """``hf_hub_download`` with our endpoint, token, offline flag, timeouts and errors."""
    from huggingface_hub import hf_hub_download, hf_hub_url

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
    kwargs: dict[str, Any] = {
        "repo_id": repo_id, "filename": filename, "revision": revision,
        "cache_dir": str(settings.hub_cache), "endpoint": settings.endpoint,
        "token": settings.token, "etag_timeout": settings.etag_timeout,
        "library_name": "ase_mlpot", "library_version": __version__, "dry_run": dry_run,
    }
    if settings.offline:
        try:
            return hf_hub_download(**kwargs, local_files_only=True)
        except FileNotFoundError:
            raise OfflineError(_offline_message(name, f"{repo_id}@{revision}/{filename}")) from None
    storage = _storage_folder(settings, repo_id)
    try:
        if not dry_run:
            _probe(url, settings)
        return _watched(lambda progress: hf_hub_download(**kwargs, tqdm_class=progress),
                        settings=settings, storage=storage, what=f"{repo_id}/{filename}",
                        timeout=timeout)
    except MLPotError:
        raise
    except Exception as error:
        raise _hub_error(error, name=name, url=url) from error


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ResolvedModel:
    """A model's local artifact folder and its provenance.

    Attributes:
        path: Artifact folder (``config.json`` + ``model.safetensors``).
        name: Zoo name (``None`` for a plain folder).
        version: Entry version.
        revision: Hub commit the files came from (``None``: local folder or bundled only).
        weights_sha256: sha256 of ``model.safetensors`` that loading must find.
        pinning: ``pinned-by-registry``, ``pinned-by-lock``, ``unpinned`` (recorded now) or
            ``bundled``; ``None`` for a plain folder.
    """

    path: Path
    name: str | None = None
    version: str | None = None
    revision: str | None = None
    weights_sha256: str | None = None
    pinning: str | None = None


@dataclass(frozen=True)
class _Plan:
    repo_id: str
    request: str
    target: str
    expected: dict[str, FileSpec] | None
    pinning: str


def _plan(entry: ModelEntry, revision: str | None, settings: HubSettings) -> _Plan:
    hub = entry.hub
    if hub is None:
        raise ModelNotFoundError(f"model {entry.name!r} is bundled only; it has no hub revisions")
    if entry.pinned and revision in (None, hub.revision):
        assert hub.revision is not None
        return _Plan(hub.repo_id, hub.revision, hub.revision,
                     {f.path: f for f in entry.files}, PINNED_BY_REGISTRY)
    request = revision or hub.ref
    locked = _lock(settings).lookup(entry.name, hub.repo_id, request)
    if locked is not None:
        commit, files = locked
        if all(spec.path in files for spec in entry.files):
            return _Plan(hub.repo_id, request, commit, files, PINNED_BY_LOCK)
    return _Plan(hub.repo_id, request, request, None, UNPINNED)


def _cached_file(settings: HubSettings, repo_id: str, path: str, commit: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, path, cache_dir=str(settings.hub_cache),
                                   revision=commit)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def _check_file(entry: ModelEntry, local: Path, spec: FileSpec | None, *, repo_id: str,
                commit: str, source: str) -> FileSpec:
    """Hash a cached file; on mismatch with ``spec`` delete it (and its blob) and raise."""
    digest, size = sha256_and_size(local)
    if spec is not None and (digest != spec.sha256 or size != spec.size):
        _delete_cached_file(local)
        raise ChecksumError(
            f"{entry.name}: {local.name} from {repo_id}@{commit} has sha256 {digest} ({size}"
            f" bytes) but {source} expects {spec.sha256} ({spec.size} bytes); the file was deleted"
            " from the cache. The download was corrupted or the file on the hub was changed.")
    return FileSpec(local.name if spec is None else spec.path, size, digest)


def _fetch_hub_files(entry: ModelEntry, plan: _Plan, settings: HubSettings, *,
                     timeout: float | None = None) -> tuple[str, dict[str, Path], str]:
    """Download (or find in the cache) and verify every file; returns (commit, paths, pinning)."""
    storage = _storage_folder(settings, plan.repo_id)
    commit = plan.target if _HEX40.match(plan.target) else None
    expected = plan.expected
    pinning = plan.pinning
    lock_source = f"the lock file {_lock(settings).path}"
    source = "the registry" if pinning == PINNED_BY_REGISTRY else lock_source
    local_paths: dict[str, Path] = {}
    found: dict[str, FileSpec] = {}
    for spec in entry.files:
        local = _cached_file(settings, plan.repo_id, spec.path, commit) if commit else None
        if local is None:
            local = Path(_hf_download(entry.name, plan.repo_id, spec.path, commit or plan.target,
                                      settings, timeout=timeout))
        file_commit = _commit_of(local, storage)
        if commit is None:  # a ref was resolved: it may point to a commit we already trust
            commit = file_commit
            locked = _lock(settings).lookup(entry.name, plan.repo_id, commit)
            if entry.pinned and entry.hub is not None and commit == entry.hub.revision:
                expected = {f.path: f for f in entry.files}
                pinning, source = PINNED_BY_REGISTRY, "the registry"
            elif locked is not None:
                expected, pinning, source = locked[1], PINNED_BY_LOCK, lock_source
        elif file_commit != commit:
            raise MLPotError(f"{entry.name}: {spec.path} came from commit {file_commit}, expected"
                             f" {commit}")
        wanted = expected.get(spec.path) if expected is not None else None
        checked = _check_file(entry, local, wanted, repo_id=plan.repo_id, commit=commit,
                              source=source)
        found[spec.path] = FileSpec(spec.path, checked.size, checked.sha256)
        local_paths[spec.path] = local
    assert commit is not None
    if pinning == UNPINNED:
        logger.warning(
            "%s is not pinned by the registry: trusting %s@%s on first use and recording its"
            " sha256 in %s", entry.name, plan.repo_id, commit, _lock(settings).path)
        _lock(settings).record(entry.name, plan.repo_id, plan.request, commit, found,
                               source="download")
    return commit, local_paths, pinning


def _converted_artifact(entry: ModelEntry, source: Path, source_sha256: str,
                        settings: HubSettings) -> tuple[Path, str]:
    """Convert a verified TorchANI state dict once into a cached artifact; returns (folder, sha)."""
    recipe = json.dumps({"source_sha256": source_sha256, "converter": _CONVERTER_VERSION,
                         "reference_energies": entry.reference_energies}, sort_keys=True)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    folder = settings.zoo_dir / "converted" / entry.name / key
    marker = folder / "conversion.json"
    with _file_lock(folder.with_name(folder.name + ".lock")):
        if marker.is_file():
            info = json.loads(marker.read_text(encoding="utf-8"))
            return folder, str(info["weights_sha256"])
        from ase_mlpot.io import save_artifact
        from ase_mlpot.models.ani.convert import model_from_published
        from ase_mlpot.models.ani.neurochem import read_torchani_state_dict

        logger.info("converting %s (%s) into an artifact in %s", entry.name, source.name, folder)
        published = read_torchani_state_dict(  # torch.load(weights_only=True): no code runs
            source, self_energies=dict(entry.reference_energies)
            if entry.reference_energies is not None else None)
        model = model_from_published(published)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}."))
        try:
            save_artifact(model, staging, name=entry.name, version=entry.version, overwrite=True,
                          card=f"# {entry.name}\n\nConverted from {source.name} (sha256"
                               f" {source_sha256}).\n",
                          metadata={"converted_from": source.name,
                                    "source_sha256": source_sha256})
            weights_sha256 = json.loads((staging / "config.json").read_text())["weights_sha256"]
            _atomic_write_text(staging / "conversion.json", json.dumps(
                {"source_sha256": source_sha256, "weights_sha256": weights_sha256,
                 "converter": _CONVERTER_VERSION, "ase_mlpot": __version__}, indent=2) + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder, weights_sha256


def _bundled_resource(entry: ModelEntry) -> Traversable:
    """The folder of a bundled model inside its installed package (a real folder, or a
    location inside a zipped install).

    Raises:
        ModelNotFoundError: The package holding the weights is not installed.
    """
    assert entry.bundled is not None
    try:
        root = resources.files(entry.bundled.package)
    except ModuleNotFoundError:
        raise ModelNotFoundError(f"model {entry.name!r}: package {entry.bundled.package!r} with"
                                 " its bundled weights is not installed") from None
    return root.joinpath(*entry.bundled.path.split("/"))


def _bundled_file(entry: ModelEntry, relative: str) -> str | None:
    """Where a bundled file lies in the installed package (``None`` inside a zipped install
    or when the package is missing; :func:`_bundled_folder` then copies the files out)."""
    try:
        path = _bundled_resource(entry).joinpath(*relative.split("/"))
    except ModelNotFoundError:
        return None
    return str(path) if isinstance(path, Path) and path.is_file() else None


def _bundled_folder(entry: ModelEntry, settings: HubSettings) -> Path:
    """The verified folder of bundled weights (copied out of a zip install if needed)."""
    traversable = _bundled_resource(entry)
    if isinstance(traversable, Path):
        folder = traversable
    else:  # zipped install: copy the files out once
        folder = settings.zoo_dir / "bundled" / entry.name
        for spec in entry.files:
            target = folder / spec.path
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                with resources.as_file(traversable.joinpath(*spec.path.split("/"))) as real:
                    shutil.copyfile(real, target)
    for spec in entry.files:
        path = folder / spec.path
        if not path.is_file():
            raise ModelFormatError(f"bundled model {entry.name!r}: {path} is missing; reinstall"
                                   f" {entry.bundled.package}")
        digest, size = sha256_and_size(path)
        if digest != spec.sha256 or size != spec.size:
            raise ChecksumError(f"bundled model {entry.name!r}: {path} has sha256 {digest}, the"
                                f" registry expects {spec.sha256}; reinstall"
                                f" {entry.bundled.package}")
    return folder


def _resolve_entry(entry: ModelEntry, revision: str | None, settings: HubSettings, *,
                   timeout: float | None = None) -> ResolvedModel:
    _check_compatible(entry)
    if entry.bundled is not None and (revision is None or entry.hub is None):
        if revision is not None:
            raise ModelNotFoundError(f"model {entry.name!r} is bundled only; revision"
                                     f" {revision!r} does not exist")
        folder = _bundled_folder(entry, settings)
        return ResolvedModel(path=folder, name=entry.name, version=entry.version,
                             revision=entry.hub.revision if entry.hub else None,
                             weights_sha256=entry.weights_file.sha256, pinning=BUNDLED)
    plan = _plan(entry, revision, settings)
    commit, paths, pinning = _fetch_hub_files(entry, plan, settings, timeout=timeout)
    weights = paths[entry.weights_file.path]
    if entry.format == "artifact":
        digest = sha256_and_size(weights)[0]
        return ResolvedModel(path=paths["config.json"].parent, name=entry.name,
                             version=entry.version, revision=commit, weights_sha256=digest,
                             pinning=pinning)
    folder, digest = _converted_artifact(entry, weights, sha256_and_size(weights)[0], settings)
    return ResolvedModel(path=folder, name=entry.name, version=entry.version, revision=commit,
                         weights_sha256=digest, pinning=pinning)


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))


def resolve_model(name_or_path: str | Path, *, revision: str | None = None,
                  timeout: float | None = None, progress: bool | None = None) -> ResolvedModel:
    """Find the verified artifact folder of a model name or path.

    Args:
        name_or_path: Zoo name or alias, or an artifact folder.
        revision: Hub commit, tag or branch overriding the registry's pin. Commits other than the
            registry's are trusted on first use and recorded in the lock file.
        timeout: Abandon a transfer that makes no progress for this many seconds (default
            ``HF_HUB_ETAG_TIMEOUT + HF_HUB_DOWNLOAD_TIMEOUT``).
        progress: Show progress bars (default: unless ``HF_HUB_DISABLE_PROGRESS_BARS``).

    Returns:
        The folder and its provenance.

    Raises:
        ModelNotFoundError: Unknown name (close names suggested) or missing folder.
        DeprecatedModelError: Retired name.
        OfflineError: Not cached while offline, or the hub is unreachable.
        ChecksumError: A file does not match its recorded sha256 (it was deleted).
        GatedModelError: The hub refused access.
        RevisionError: A revision for an artifact folder.
        TypeError: Neither a string nor a path.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"a model is named by a zoo name (str) or an artifact folder (path), "
                        f"not {type(name_or_path).__name__}")
    if not str(name_or_path).strip():
        raise ModelNotFoundError("empty model name; `mlpot-zoo list` shows the zoo's names")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if revision is not None:
            raise RevisionError(f"revision={revision!r} selects a hub version of a zoo model; "
                                f"{path} is an artifact folder, which has only one version")
        return ResolvedModel(path=path)
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or (_looks_like_path(text) and text not in get_registry()):
        raise ModelNotFoundError(f"no model folder {text!r}")
    entry = get_entry(text)
    return _resolve_entry(entry, revision, _settings(progress), timeout=timeout)


def download(name: str, revision: str | None = None, *,
             timeout: float | None = None, progress: bool | None = None) -> Path:
    """Fetch and verify a zoo model; returns its local artifact folder.

    No network is used when the files are already cached at the resolved commit. Third-party
    TorchANI weights are converted into an artifact the first time.

    Args:
        name: Zoo name or alias.
        revision: Hub commit, tag or branch (default: the registry's or the lock file's commit).
        timeout: Stall timeout in seconds (see :func:`resolve_model`).
        progress: Show progress bars (default: unless ``HF_HUB_DISABLE_PROGRESS_BARS``).

    Returns:
        The artifact folder (``config.json`` + ``model.safetensors``), loadable with
        ``ase_mlpot.load(path)``.
    """
    entry = get_entry(name)
    return _resolve_entry(entry, revision, _settings(progress), timeout=timeout).path


def plan_download(name: str, revision: str | None = None) -> list[dict[str, Any]]:
    """What :func:`download` would transfer (``hf_hub_download(dry_run=True)``), nothing written.

    Returns:
        One dict per file: ``path``, ``size``, ``commit``, ``cached``, ``will_download``,
        ``sha256`` (expected, when pinned).
    """
    entry = get_entry(name)
    _check_compatible(entry)
    settings = current_settings()
    if entry.bundled is not None and revision is None:
        return [{"path": f.path, "size": f.size, "commit": None, "cached": True,
                 "will_download": False, "sha256": f.sha256} for f in entry.files]
    plan = _plan(entry, revision, settings)
    rows = []
    for spec in entry.files:
        info = _hf_download(entry.name, plan.repo_id, spec.path, plan.target, settings,
                            dry_run=True)
        wanted = plan.expected.get(spec.path) if plan.expected else None
        rows.append({"path": spec.path, "size": info.file_size, "commit": info.commit_hash,
                     "cached": bool(info.is_cached), "will_download": bool(info.will_download),
                     "sha256": wanted.sha256 if wanted else None})
    return rows


# --------------------------------------------------------------------------- status, verify


@dataclass(frozen=True)
class ModelStatus:
    """What the zoo knows about a model locally (no network).

    Attributes:
        entry: The registry entry.
        pinning: ``bundled``, ``pinned-by-registry``, ``pinned-by-lock`` or ``unpinned``.
        revision: The commit loads use (``None`` until an unpinned entry is first downloaded).
        files: Per file: ``path``, ``size``, ``sha256`` (expected), ``local_path`` (or ``None``).
        cached: Every file is available without network.
    """

    entry: ModelEntry
    pinning: str
    revision: str | None
    files: list[dict[str, Any]] = field(default_factory=list)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.entry.name, "pinning": self.pinning, "revision": self.revision,
                "cached": self.cached, "files": self.files, "entry": self.entry.to_dict()}


def model_status(name: str) -> ModelStatus:
    """Pinning, commit and cache state of a model, without network."""
    entry = get_entry(name, allow_deprecated=True)
    settings = current_settings()
    if entry.bundled is not None:
        return ModelStatus(entry, BUNDLED, entry.hub.revision if entry.hub else None,
                           [{**f.to_dict(), "local_path": _bundled_file(entry, f.path)}
                            for f in entry.files], True)
    plan = _plan(entry, None, settings)
    commit = plan.target if _HEX40.match(plan.target) else None
    rows = []
    for spec in entry.files:
        wanted = plan.expected.get(spec.path) if plan.expected else None
        local = _cached_file(settings, plan.repo_id, spec.path, commit) if commit else None
        rows.append({"path": spec.path, "size": wanted.size if wanted else None,
                     "sha256": wanted.sha256 if wanted else None,
                     "local_path": str(local) if local else None})
    cached = commit is not None and all(row["local_path"] for row in rows)
    return ModelStatus(entry, plan.pinning, commit, rows, cached)


@dataclass(frozen=True)
class FileCheck:
    """Result of re-hashing one cached file.

    Attributes:
        name: Zoo name.
        revision: Commit of the file (``None`` for bundled files).
        path: File path in the repository.
        status: ``ok``, ``mismatch``, ``missing`` or ``unverifiable`` (no recorded hash).
        expected: Recorded sha256.
        actual: sha256 found (``None`` when missing).
        local_path: The cached file.
    """

    name: str
    revision: str | None
    path: str
    status: str
    expected: str | None
    actual: str | None
    local_path: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "revision": self.revision, "path": self.path,
                "status": self.status, "expected": self.expected, "actual": self.actual,
                "local_path": self.local_path}


def _known_revisions(entry: ModelEntry, settings: HubSettings) -> dict[str, dict[str, FileSpec]]:
    """Commits with recorded hashes: the registry pin and every lock-file revision."""
    known: dict[str, dict[str, FileSpec]] = {}
    if entry.hub is None:
        return known
    if entry.pinned and entry.hub.revision:
        known[entry.hub.revision] = {f.path: f for f in entry.files}
    record = _lock(settings).model(entry.name, entry.hub.repo_id) or {}
    for commit, info in record.get("revisions", {}).items():
        known.setdefault(commit, {p: FileSpec(p, s["size"], s["sha256"])
                                  for p, s in info["files"].items()})
    return known


def verify(name: str | None = None) -> list[FileCheck]:
    """Re-hash cached files against the registry or lock file (no network, nothing deleted).

    Args:
        name: One model; ``None`` checks every model with something in the cache.

    Returns:
        One :class:`FileCheck` per file and known revision. For a single named model, files
        that are not cached are reported as ``missing``.
    """
    settings = current_settings()
    registry = get_registry()
    names = [get_entry(name, allow_deprecated=True).name] if name else list(registry)
    checks: list[FileCheck] = []
    for model in names:
        entry = registry[model]
        if entry.bundled is not None:
            root = resources.files(entry.bundled.package).joinpath(*entry.bundled.path.split("/"))
            for spec in entry.files:
                resource = root.joinpath(*spec.path.split("/"))
                if not isinstance(resource, Path) or not resource.is_file():
                    checks.append(FileCheck(model, None, spec.path, "missing", spec.sha256, None,
                                            None))
                    continue
                digest = sha256_and_size(resource)[0]
                checks.append(FileCheck(model, None, spec.path,
                                        "ok" if digest == spec.sha256 else "mismatch",
                                        spec.sha256, digest, str(resource)))
            continue
        if entry.hub is None:
            continue
        known = _known_revisions(entry, settings)
        storage = _storage_folder(settings, entry.hub.repo_id)
        snapshots = storage / "snapshots"
        cached_commits = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
        for commit in sorted(set(known) | set(cached_commits)):
            specs = known.get(commit)
            for spec in entry.files:
                local = _cached_file(settings, entry.hub.repo_id, spec.path, commit)
                wanted = specs.get(spec.path) if specs else None
                if local is None:
                    if name is not None and commit in known:
                        checks.append(FileCheck(model, commit, spec.path, "missing",
                                                wanted.sha256 if wanted else None, None, None))
                    continue
                digest = sha256_and_size(local)[0]
                if wanted is None:
                    status = "unverifiable"
                else:
                    status = "ok" if digest == wanted.sha256 else "mismatch"
                checks.append(FileCheck(model, commit, spec.path, status,
                                        wanted.sha256 if wanted else None, digest, str(local)))
    return checks


def remove(name: str, *, forget: bool = False, dry_run: bool = False) -> list[Path]:
    """Delete every cached revision of a model's hub repository and its converted artifacts.

    Args:
        name: Zoo name or alias.
        forget: Also drop the model's lock-file record (the next download is trusted anew).
        dry_run: Only report what would be deleted.

    Returns:
        The deleted (or to-be-deleted) paths.
    """
    from huggingface_hub import scan_cache_dir

    entry = get_entry(name, allow_deprecated=True)
    settings = current_settings()
    removed: list[Path] = []
    if entry.hub is not None and settings.hub_cache.is_dir():
        info = scan_cache_dir(settings.hub_cache)
        for repo in info.repos:
            if repo.repo_id == entry.hub.repo_id and repo.repo_type == "model":
                commits = [revision.commit_hash for revision in repo.revisions]
                strategy = info.delete_revisions(*commits)
                removed.extend(sorted(strategy.repos) or sorted(strategy.snapshots))
                if not dry_run:
                    strategy.execute()
    converted = settings.zoo_dir / "converted" / entry.name
    if converted.exists():
        removed.append(converted)
        if not dry_run:
            shutil.rmtree(converted)
    if forget and not dry_run:
        _lock(settings).forget(entry.name)
    return removed


# --------------------------------------------------------------------------- bundles


def _blob_id(local: Path) -> str:
    if local.is_symlink() and _BLOB.match(local.resolve().name):
        return local.resolve().name
    return sha256_and_size(local)[0]


def export_bundle(names: Sequence[str], output: str | Path, *,
                  revision: str | None = None, progress: bool | None = None) -> Path:
    """Write a tar bundle with the models' registry entries, lock records and verified files.

    Models are downloaded first if needed (and verified like every load). Bundled-only models
    ship inside the package and are skipped.

    Args:
        names: Zoo names or aliases.
        output: The ``.tar`` file to write.
        revision: Revision for every model (default: pinned/locked ones).
        progress: Show progress bars for downloads.

    Returns:
        The bundle path.
    """
    settings = _settings(progress)
    output = Path(output)
    models = []
    members: list[tuple[str, Path]] = []
    for name in names:
        entry = get_entry(name)
        if entry.hub is None:
            logger.warning("%s is bundled with the package; nothing to export", entry.name)
            continue
        resolved = _resolve_entry(entry, revision, settings)
        commit = str(resolved.revision)
        files = []
        for spec in entry.files:
            local = _cached_file(settings, entry.hub.repo_id, spec.path, commit)
            if local is None:
                raise MLPotError(f"{entry.name}: {spec.path} vanished from the cache")
            digest, size = sha256_and_size(local)
            member = f"files/{entry.name}/{commit}/{spec.path}"
            files.append({"path": spec.path, "sha256": digest, "size": size,
                          "blob": _blob_id(local), "member": member})
            members.append((member, local))
        models.append({"name": entry.name, "entry": entry.to_dict(), "repo_id": entry.hub.repo_id,
                       "commit": commit, "request": revision or entry.hub.ref,
                       "pinning": resolved.pinning, "files": files})
    manifest = {"bundle_version": _BUNDLE_VERSION, "created": _now(),
                "ase_mlpot": __version__, "models": models}
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    os.close(handle)
    try:
        with tarfile.open(temporary, "w") as tar:
            data = (json.dumps(manifest, indent=2) + "\n").encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, _BytesReader(data))
            for member, local in members:
                info = tarfile.TarInfo(member)
                info.size, info.mtime, info.mode = local.stat().st_size, int(time.time()), 0o644
                with open(local, "rb") as stream:
                    tar.addfile(info, stream)
        os.replace(temporary, output)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return output


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._offset + size
        chunk = self._data[self._offset:end]
        self._offset += len(chunk)
        return chunk


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in parts or (
            parts and ":" in parts[0]):
        raise BundleError(f"bundle entry {name!r} points outside the bundle; refusing the bundle")
    if member.issym() or member.islnk():
        raise BundleError(f"bundle entry {name!r} is a link ({member.linkname!r}); refusing the"
                          " bundle")
    if not (member.isfile() or member.isdir()):
        raise BundleError(f"bundle entry {name!r} is not a regular file; refusing the bundle")


def _copy_verified(stream: IO[bytes], target: Path, spec: dict[str, Any], where: str) -> None:
    """Stream a bundle member to ``target`` (atomically) if its sha256 and size match."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if digest.hexdigest() != spec["sha256"] or size != spec["size"]:
            raise ChecksumError(f"{where}: sha256 {digest.hexdigest()} ({size} bytes) does not"
                                f" match the manifest's {spec['sha256']} ({spec['size']} bytes)")
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _place_in_cache(storage: Path, commit: str, path: str, blob: Path) -> None:
    pointer = storage / "snapshots" / commit / path
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.exists() or pointer.is_symlink():
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:  # no symlinks (some HPC and Windows file systems): plain copy
        shutil.copyfile(blob, pointer)


def import_bundle(bundle: str | Path) -> list[str]:
    """Import a bundle made by :func:`export_bundle` into the cache, verifying everything.

    Every member must be ``manifest.json`` or a file listed in it: absolute paths, ``..``, links
    and devices are refused before anything is written. Each file is streamed into the cache
    only if its sha256 and size match the manifest, and the manifest must agree with the package
    registry (pinned entries) and with the local lock file. Unknown entries go to the local
    registry; unpinned entries are recorded in the lock file (the bundle is their first use).

    Returns:
        The imported model names.

    Raises:
        BundleError: Unsafe or inconsistent bundle.
        ChecksumError: A file does not match the manifest, the registry or the lock file.
    """
    settings = current_settings()
    package = load_package_registry()
    try:
        tar = tarfile.open(bundle, "r:*")  # noqa: SIM115 - closed by the with block below
    except (tarfile.TarError, OSError) as error:
        raise BundleError(f"{bundle}: not a readable tar bundle ({error})") from None
    with tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member)
        by_name = {m.name: m for m in members if m.isfile()}
        if "manifest.json" not in by_name:
            raise BundleError(f"{bundle}: no manifest.json")
        manifest_stream = tar.extractfile(by_name["manifest.json"])
        assert manifest_stream is not None
        try:
            manifest = json.loads(manifest_stream.read())
        except json.JSONDecodeError as error:
            raise BundleError(f"{bundle}: manifest.json is not valid JSON ({error})") from None
        if manifest.get("bundle_version") != _BUNDLE_VERSION:
            raise BundleError(f"{bundle}: unknown bundle_version {manifest.get('bundle_version')}")
        listed = {"manifest.json"}
        plans = []
        for model in manifest.get("models", []):
            entry = parse_entry(model["name"], model["entry"], source=f"{bundle} manifest")
            known = package.get(entry.name)
            if known is not None:
                if known.hub is None or known.hub.repo_id != model["repo_id"]:
                    raise BundleError(f"{bundle}: {entry.name} comes from {model['repo_id']}, the"
                                      " registry says otherwise")
                entry = known
            if entry.hub is None or entry.hub.repo_id != model["repo_id"]:
                raise BundleError(f"{bundle}: {entry.name} has no hub repository"
                                  f" {model['repo_id']}")
            commit = model["commit"]
            if not isinstance(commit, str) or not _HEX40.match(commit):
                raise BundleError(f"{bundle}: {entry.name}: invalid commit {commit!r}")
            files = {f["path"]: f for f in model["files"]}
            if set(files) != {f.path for f in entry.files}:
                raise BundleError(f"{bundle}: {entry.name}: files {sorted(files)} do not match the"
                                  " registry entry")
            reference = (
                {f.path: f for f in entry.files} if entry.pinned and commit == entry.hub.revision
                else None)
            if reference is None:
                locked = _lock(settings).lookup(entry.name, entry.hub.repo_id, commit)
                reference = locked[1] if locked else None
            for spec in files.values():
                expected_member = f"files/{entry.name}/{commit}/{spec['path']}"
                if spec.get("member") != expected_member or expected_member not in by_name:
                    raise BundleError(f"{bundle}: {entry.name}: {spec['path']} is missing or"
                                      " misplaced")
                if not _BLOB.match(str(spec.get("blob"))):
                    raise BundleError(f"{bundle}: {entry.name}: invalid blob id"
                                      f" {spec.get('blob')!r}")
                if reference is not None:
                    want = reference[spec["path"]]
                    if (spec["sha256"], spec["size"]) != (want.sha256, want.size):
                        raise ChecksumError(
                            f"{bundle}: {entry.name} {spec['path']} at {commit} has sha256"
                            f" {spec['sha256']}, the registry/lock file expects {want.sha256}")
                listed.add(expected_member)
            plans.append((entry, model, commit, files, known is None))
        extra = set(by_name) - listed
        if extra:
            raise BundleError(f"{bundle}: files not in the manifest: {sorted(extra)[:5]}")
        imported = []
        for entry, model, commit, files, is_new in plans:
            assert entry.hub is not None
            storage = _storage_folder(settings, entry.hub.repo_id)
            for spec in files.values():
                stream = tar.extractfile(by_name[spec["member"]])
                assert stream is not None
                blob = storage / "blobs" / spec["blob"]
                _copy_verified(stream, blob, spec, f"{bundle}:{spec['member']}")
                _place_in_cache(storage, commit, spec["path"], blob)
            if is_new:
                _add_local_entries([entry])
            if not (entry.pinned and commit == entry.hub.revision):
                _lock(settings).record(
                    entry.name, entry.hub.repo_id, model.get("request"), commit,
                    {p: FileSpec(p, f["size"], f["sha256"]) for p, f in files.items()},
                    source=f"import {Path(bundle).name}")
            imported.append(entry.name)
    return imported


# --------------------------------------------------------------------------- publishing


@dataclass(frozen=True)
class PushResult:
    """A published artifact: the commit to pin in the registry and the files' hashes.

    Attributes:
        repo_id: Hub repository.
        revision: The 40-hex commit SHA created by the upload.
        tag: Tag created on that commit, if any.
        files: Uploaded files with size and sha256 (ready for the registry).
        commit_url: URL of the commit.
    """

    repo_id: str
    revision: str
    tag: str | None
    files: tuple[FileSpec, ...]
    commit_url: str

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "tag": self.tag,
                "commit_url": self.commit_url, "files": [f.to_dict() for f in self.files]}


def _card_for(folder: Path, metadata: dict[str, Any], repo_id: str) -> str:
    from huggingface_hub import ModelCard, ModelCardData

    existing = folder / "README.md"
    if existing.is_file():
        text = existing.read_text(encoding="utf-8")
        card = ModelCard(text, ignore_metadata_errors=False)
        if card.data.get("license") is None:
            raise ModelFormatError(f"{existing}: the model card needs a 'license' in its YAML"
                                   " front matter")
        return text
    model = metadata.get("model") or {}
    license_id = model.get("license")
    if not license_id:
        raise ModelFormatError(
            f"{folder} has no README.md model card and config.json names no model.license;"
            " write a card (YAML front matter with at least 'license') before pushing")
    data = ModelCardData(
        license=license_id, library_name="ase_mlpot",
        tags=["ase_mlpot", "interatomic-potential", str(metadata.get("architecture"))],
        elements=metadata.get("elements"), units=metadata.get("units"),
        weights_sha256=metadata.get("weights_sha256"),
        level_of_theory=model.get("level_of_theory"),
    )
    elements = ", ".join(metadata.get("elements") or [])
    title = str(model.get("name") or folder.name)
    body = (f"# {title}\n\nase_mlpot artifact"
            f" ({metadata.get('architecture')}, elements {elements}).\n\n"
            f"```python\nfrom ase_mlpot import load\ncalc = load({title!r})\n```\n")
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def push(directory: str | Path, repo_id: str, *, tag: str | None = None, private: bool = False,
         commit_message: str | None = None) -> PushResult:
    """Publish an artifact folder with its model card to the hub.

    ``create_repo(exist_ok=True)``, ``upload_folder`` (``config.json``, ``model.safetensors``,
    ``README.md``), then ``create_tag`` on the new commit. The weights are checked against
    ``config.json`` first.

    Args:
        directory: Artifact folder.
        repo_id: ``org/name``.
        tag: Tag to create on the commit (e.g. ``v1``).
        private: Create the repository as private.
        commit_message: Commit message.

    Returns:
        The commit SHA and file hashes to put into the registry.
    """
    from huggingface_hub import HfApi

    settings = current_settings()
    if settings.offline:
        raise OfflineError("cannot push while HF_HUB_OFFLINE is set")
    folder = Path(directory)
    try:
        metadata = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelFormatError(f"{folder} is not an artifact folder: {error}") from None
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFormatError(f"{folder} has no model.safetensors")
    digest = sha256_and_size(weights)[0]
    if digest != metadata.get("weights_sha256"):
        raise ChecksumError(f"{weights}: sha256 {digest} differs from config.json's"
                            f" {metadata.get('weights_sha256')}; refusing to publish")
    card = _card_for(folder, metadata, repo_id)
    api = HfApi(endpoint=settings.endpoint, token=settings.token,
                library_name="ase_mlpot", library_version=__version__)
    url = f"{settings.endpoint}/{repo_id}"
    with tempfile.TemporaryDirectory(prefix="ase_mlpot-push-") as staging:
        stage = Path(staging)
        shutil.copyfile(folder / "config.json", stage / "config.json")
        shutil.copyfile(weights, stage / "model.safetensors")
        (stage / "README.md").write_text(card, encoding="utf-8")
        hashes = {p.name: sha256_and_size(p) for p in sorted(stage.iterdir())}
        files = tuple(FileSpec(path, size, digest) for path, (digest, size) in hashes.items())
        name = metadata.get("model", {}).get("name") or folder.name
        try:
            api.create_repo(repo_id, exist_ok=True, private=private)
            info = api.upload_folder(
                folder_path=stage, repo_id=repo_id,
                commit_message=commit_message or f"Upload {name} with ase_mlpot {__version__}")
            commit = str(info.oid)
            if tag:
                api.create_tag(repo_id, tag=tag, revision=commit)
        except Exception as error:
            raise _hub_error(error, name=repo_id, url=url) from error
    return PushResult(repo_id=repo_id, revision=commit, tag=tag, files=files,
                      commit_url=str(info.commit_url))


# --------------------------------------------------------------------------- environment


def env_report() -> dict[str, Any]:
    """Versions, cache paths, endpoint, offline flag and devices (for bug reports)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    settings = current_settings()
    versions: dict[str, str] = {"python": sys.version.split()[0]}
    for package in ("ase_mlpot", "huggingface_hub", "torch", "safetensors", "ase", "click",
                    "torchani"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    devices: dict[str, Any] = {"cuda_available": False, "cuda_devices": []}
    with contextlib.suppress(ImportError):
        import torch

        devices["cuda_available"] = bool(torch.cuda.is_available())
        if devices["cuda_available"]:
            devices["cuda_devices"] = [torch.cuda.get_device_name(i)
                                       for i in range(torch.cuda.device_count())]
    return {
        "versions": versions,
        "platform": platform.platform(),
        "endpoint": settings.endpoint,
        "offline": settings.offline,
        "token": "set" if settings.token else "not set",
        "progress_bars": settings.progress,
        "etag_timeout_s": settings.etag_timeout,
        "download_timeout_s": settings.download_timeout,
        "paths": {key: str(value) for key, value in cache_paths().items()},
        **devices,
    }
