"""Named exceptions of ase_mlpot.

Every message names what is at fault: the element, the atoms, the model, the revision or the URL.
"""

__all__ = [
    "BundleError",
    "ChecksumError",
    "DeprecatedModelError",
    "DeviceUnavailableError",
    "GatedModelError",
    "HubUnreachableError",
    "IncompatibleModelError",
    "InvalidStructureError",
    "MLPotError",
    "MixedPBCError",
    "ModelFormatError",
    "ModelNotFoundError",
    "OfflineError",
    "RegistryError",
    "RevisionError",
    "UnsupportedElementError",
    "ZeroCellError",
]


class MLPotError(Exception):
    """Base class of every error raised by ase_mlpot."""


class InvalidStructureError(MLPotError, ValueError):
    """The structure cannot be evaluated: non-finite positions or overlapping atoms."""


class UnsupportedElementError(InvalidStructureError):
    """The structure holds an element the model was not trained on."""


class MixedPBCError(InvalidStructureError):
    """Periodic in some directions but not all; add vacuum and use full PBC instead."""


class ZeroCellError(InvalidStructureError):
    """A periodic structure whose cell has (near) zero volume."""


class ModelNotFoundError(MLPotError, LookupError):
    """No model of that name or path; the message suggests close names."""


class ModelFormatError(MLPotError):
    """An artifact that this version of ase_mlpot cannot read (format version, keys, shapes)."""


class ChecksumError(MLPotError):
    """A downloaded or cached file does not match its recorded sha256; the file is deleted."""


class OfflineError(MLPotError):
    """A model is needed that is not cached while offline (or the hub cannot be reached)."""


class GatedModelError(MLPotError):
    """The hub refused access to a gated or private repository (set ``HF_TOKEN``)."""


class DeprecatedModelError(ModelNotFoundError):
    """A retired zoo name; the message names its successor."""


class IncompatibleModelError(ModelFormatError):
    """A registry entry that needs another ase_mlpot version (``min_version``/``max_version``)."""


class HubUnreachableError(OfflineError):
    """The hub did not answer in time, the connection failed, or a transfer stayed incomplete."""


class RegistryError(MLPotError, ValueError):
    """A model registry (package, local or bundle manifest) that does not follow the schema."""


class BundleError(MLPotError):
    """An export bundle that fails verification: unsafe paths, links, files not in its manifest."""


class DeviceUnavailableError(MLPotError, RuntimeError):
    """A device was requested (e.g. ``device="cuda"``) that this machine does not have."""


class RevisionError(MLPotError, ValueError):
    """A revision that cannot apply, e.g. one given for an artifact folder."""
