"""The ANI ensemble model: AEVs → element networks (all members at once) → per-atom energies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch

from ase_mlpot import keys
from ase_mlpot.models.ani.aev import AEVComputer
from ase_mlpot.models.ani.config import ANIConfig
from ase_mlpot.models.ani.networks import EnsembleElementNetwork
from ase_mlpot.models.base import PotentialModel

__all__ = ["ANIEnsemble"]


class ANIEnsemble(PotentialModel):
    """ANI-style ensemble potential (ANI-1x, ANI-1ccx, and new element sets by configuration).

    Physics: E_m = Σ_i NN^m_{Z_i}(G_i) + Σ_i e_{Z_i} for each member m, G_i the AEV of atom i
    (:class:`AEVComputer`); the reported energy is the member mean (Hartree, Å natively).

    Args:
        config: Architecture hyperparameters.
        reference_energies: Per-element self energies e_Z in Hartree (float64).
    """

    architecture: ClassVar[str] = "ani"

    def __init__(
        self, config: ANIConfig, *, reference_energies: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(
            config,
            config.elements,
            reference_energies=reference_energies,
            energy_unit="Hartree",
            length_unit="Angstrom",
        )
        self.aev = AEVComputer(config.aev, len(config.elements))
        self.networks = torch.nn.ModuleDict(
            {
                symbol: EnsembleElementNetwork(
                    (config.aev_length, *config.hidden_layers[symbol], 1),
                    config.ensemble_size,
                    config.celu_alpha,
                )
                for symbol in config.elements
            }
        )

    @property
    def cutoff(self) -> float:
        return float(self.config.aev.radial_cutoff)

    @property
    def ensemble_size(self) -> int:
        return int(self.config.ensemble_size)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw all network weights (see :meth:`EnsembleElementNetwork.reset_parameters`)."""
        for network in self.networks.values():
            network.reset_parameters(generator)

    def zero_output_layer(self) -> None:
        with torch.no_grad():
            for network in self.networks.values():
                network.weights[-1].zero_()
                network.biases[-1].zero_()

    def transfer_learning_frozen(self) -> tuple[str, ...]:
        """The ANI-1ccx recipe read off the published weights: hidden layers 1 and 3 frozen
        (weights and biases), layer 2 and the output layer trained; with other depths, every
        odd-numbered hidden layer (1, 3, 5, …) is frozen."""
        depth = len(next(iter(self.config.hidden_layers.values())))
        return tuple(
            f"networks.*.{kind}.{layer}"
            for layer in range(0, depth, 2)
            for kind in ("weights", "biases")
        )

    def _member_state(self, member: int) -> dict[str, torch.Tensor]:
        # every parameter is stacked over members along dimension 0
        return {k: v[member : member + 1] for k, v in self.state_dict().items()}

    @classmethod
    def _stacked_state(cls, states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {k: torch.cat([s[k] for s in states]) for k in states[0]}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        species = batch[keys.SPECIES]  # (n_atoms,)
        aev = self.aev(species, batch[keys.EDGE_INDEX], batch[keys.EDGE_VECTORS])  # (n_atoms, L)
        energies = torch.zeros(
            (self.ensemble_size, species.shape[0]), dtype=aev.dtype, device=aev.device
        )  # (M, n_atoms)
        for index, network in enumerate(self.networks.values()):
            atoms = torch.nonzero(species == index).squeeze(1)  # (n_X,)
            if atoms.numel():
                energies = energies.index_copy(1, atoms, network(aev[atoms]))
        return energies
