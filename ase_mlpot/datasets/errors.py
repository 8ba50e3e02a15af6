"""Named exceptions of :mod:`ase_mlpot.datasets`."""

from __future__ import annotations

from ase_mlpot.errors import MLPotError

__all__ = [
    "DatasetError",
    "DatasetFormatError",
    "LabellingError",
    "SamplingError",
    "StoreLockedError",
    "UnknownLevelError",
]


class DatasetError(MLPotError):
    """Base class of every error raised by the dataset tools."""


class DatasetFormatError(DatasetError, ValueError):
    """A file that cannot be read as a dataset (layout, missing keys, shapes, unit attributes)."""


class UnknownLevelError(DatasetError, LookupError):
    """No level of theory of that name; the message lists the known names."""


class LabellingError(DatasetError):
    """A quantum-chemistry calculation failed (SCF or CC not converged, program error).

    The labelling runner catches it and records the conformation as failed; it never ends a run.
    """


class StoreLockedError(DatasetError):
    """Another process is writing the same label store (one writer per store)."""


class SamplingError(DatasetError):
    """A structure could not be generated or sampled (bad SMILES, embedding or Hessian failure)."""
