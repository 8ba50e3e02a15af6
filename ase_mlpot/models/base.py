"""Base class of every architecture: per-atom energies from a batch with edge vectors."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from ase.data import atomic_numbers

from ase_mlpot.nn.constants import Float64BufferModule

__all__ = ["PotentialModel"]


class PotentialModel(Float64BufferModule, abc.ABC):
    """A machine-learned potential E = Σ_i E_i(environment of i) + Σ_i e_{Z_i}.

    Subclasses map a batch (see :mod:`ase_mlpot.keys`, including ``edge_vectors`` built by
    :func:`ase_mlpot.models.outputs.compute_outputs`) to per-atom energies E_i in the model's
    native energy unit: shape ``(n_atoms,)``, or ``(n_members, n_atoms)`` for an ensemble. The
    per-element reference energies e_Z are kept in float64 (buffer ``reference_energies``, not part
    of the saved weights: they live in ``config.json``) and added by the output head.

    Attributes:
        architecture: Registry name of the architecture (class attribute).
        config: The frozen dataclass the model was built from.
        elements: Chemical symbols in species order.
        energy_unit: Native energy unit, a key of :data:`ase_mlpot.units.ENERGY_UNITS_TO_EV`.
        length_unit: Native length unit, a key of :data:`ase_mlpot.units.LENGTH_UNITS_TO_A`.
    """

    architecture: ClassVar[str]
    reference_energies: torch.Tensor

    def __init__(
        self,
        config: Any,
        elements: tuple[str, ...],
        *,
        reference_energies: Mapping[str, float] | None = None,
        energy_unit: str = "eV",
        length_unit: str = "Angstrom",
    ) -> None:
        super().__init__()
        self.config = config
        self.elements = tuple(elements)
        self.energy_unit = energy_unit
        self.length_unit = length_unit
        reference = reference_energies or {}
        unknown = set(reference) - set(self.elements)
        if unknown:
            raise ValueError(f"reference energies for elements not in the model: {sorted(unknown)}")
        self.register_buffer(
            "reference_energies",
            torch.tensor(
                [float(reference.get(s, 0.0)) for s in self.elements], dtype=torch.float64
            ),
            persistent=False,
        )

    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        """Atomic numbers in species order."""
        return tuple(atomic_numbers[s] for s in self.elements)

    @property
    @abc.abstractmethod
    def cutoff(self) -> float:
        """Largest interaction cutoff, in the model's length unit."""

    @property
    def ensemble_size(self) -> int:
        """Number of ensemble members (1 for a single model)."""
        return 1

    def reference_energy_dict(self) -> dict[str, float]:
        """Reference energies by chemical symbol, float64, model units."""
        return {
            s: float(v)
            for s, v in zip(self.elements, self.reference_energies.tolist(), strict=True)
        }

    def set_reference_energies(self, values: Mapping[str, float]) -> None:
        """Replace the per-element reference energies (model units)."""
        for symbol, value in values.items():
            if symbol not in self.elements:
                raise ValueError(f"{symbol} is not an element of this model ({self.elements})")
            self.reference_energies[self.elements.index(symbol)] = float(value)

    @abc.abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-atom energies, ``(n_atoms,)`` or ``(n_members, n_atoms)``, model energy unit."""

    def extra_repr(self) -> str:
        return f"elements={self.elements}, cutoff={self.cutoff}"
