"""Base class of every architecture: per-atom energies from a batch with edge vectors."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from ase.data import atomic_numbers

from ase_mlpot.nn.constants import Float64BufferModule

__all__ = ["PotentialModel"]

_Model = TypeVar("_Model", bound="PotentialModel")


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

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh random weights (training from scratch).

        Raises:
            NotImplementedError: The architecture cannot be trained by :mod:`ase_mlpot.training`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support training")

    def zero_output_layer(self) -> None:
        """Zero the last layer of every atomic-energy network, so that E_i = 0 and the model
        predicts its reference energies alone: the starting point of training from scratch
        (the first steps then move only the last layer, and every later layer from there).

        Raises:
            NotImplementedError: The architecture cannot be trained by :mod:`ase_mlpot.training`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support training")

    def transfer_learning_frozen(self) -> tuple[str, ...]:
        """Default parameter-name patterns (:func:`fnmatch.fnmatchcase`) frozen by fine-tuning.

        The base class freezes nothing; architectures override this with their recipe.
        """
        return ()

    def _member_state(self, member: int) -> dict[str, torch.Tensor]:
        """State dict of ensemble member ``member`` as a one-member model of this config.

        Raises:
            NotImplementedError: The architecture cannot split its ensemble.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support member access")

    @classmethod
    def _stacked_state(cls, states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """State dict of an ensemble whose members have the one-member ``states``, in order.

        Raises:
            NotImplementedError: The architecture cannot join members.
        """
        raise NotImplementedError(f"{cls.__name__} does not support joining members")

    def member(self: _Model, member: int) -> _Model:
        """A one-member copy of ensemble member ``member`` (weights and reference energies).

        Ensembles are trained member by member (each on its own fold) and fine-tuned member by
        member (member k of the fine-tuned ensemble starts from member k of the base, as in
        ANI-1ccx); :meth:`from_members` joins them again.

        Raises:
            IndexError: ``member`` outside ``0 … ensemble_size − 1``.
        """
        if not 0 <= member < self.ensemble_size:
            raise IndexError(f"member {member} of an ensemble of {self.ensemble_size}")
        config = dataclasses.replace(self.config, ensemble_size=1)
        single = type(self)(config, reference_energies=self.reference_energy_dict())
        reference = next(iter(self.parameters()))
        single = single.to(dtype=reference.dtype, device=reference.device)
        single.load_state_dict({k: v.clone() for k, v in self._member_state(member).items()})
        return single

    @classmethod
    def from_members(
        cls: type[_Model],
        members: Sequence[_Model],
        *,
        reference_energies: Mapping[str, float] | None = None,
    ) -> _Model:
        """Join one-member models of one configuration into an ensemble (members in order).

        Args:
            members: One-member models of this architecture, equal configs but ``ensemble_size``.
            reference_energies: The ensemble's e_Z (default: the first member's).

        Raises:
            ValueError: No members, members that are ensembles, or different configurations.
        """
        if not members:
            raise ValueError("from_members needs at least one member")
        first_config = dataclasses.replace(members[0].config, ensemble_size=1)
        if any(m.ensemble_size != 1 or dataclasses.replace(m.config, ensemble_size=1)
               != first_config for m in members):
            raise ValueError("members must be one-member models of one configuration")
        config = dataclasses.replace(members[0].config, ensemble_size=len(members))
        reference = reference_energies or members[0].reference_energy_dict()
        ensemble = cls(config, reference_energies=reference)
        first = next(iter(members[0].parameters()))
        ensemble = ensemble.to(dtype=first.dtype, device=first.device)
        ensemble.load_state_dict(cls._stacked_state([m.state_dict() for m in members]))
        return ensemble

    @abc.abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-atom energies, ``(n_atoms,)`` or ``(n_members, n_atoms)``, model energy unit."""

    def extra_repr(self) -> str:
        return f"elements={self.elements}, cutoff={self.cutoff}"
