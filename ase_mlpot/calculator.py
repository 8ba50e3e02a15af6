"""``MLPotCalculator``: any ase_mlpot model as an ASE calculator (eV, Å).

Results: ``energy`` and ``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt order
xx yy zz yz xz xy, ASE sign; fully periodic structures only), ``energies`` (per atom, eV; the
ensemble mean with reference energies), ``energy_std`` (eV, unbiased spread of ensemble members;
0 for a single model) and, on request, ``forces_std`` (eV/Å). Conversion from the model's native
units happens here and nowhere else. The calculator never changes torch's global state
(default dtype, threads, TF32 flags) nor environment variables.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from ase_mlpot import keys
from ase_mlpot.data.batch import DEFAULT_MIN_DISTANCE, atoms_to_batch, batch_to_device, collate
from ase_mlpot.errors import DeviceUnavailableError
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.units import ENERGY_UNITS_TO_EV, LENGTH_UNITS_TO_A

__all__ = ["EVALUATION_DTYPES", "MLPotCalculator", "resolve_device", "resolve_dtype"]

_FULL_TO_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/``None`` → CUDA if available else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device={str(device)!r} was requested but CUDA is not available on this machine "
            "(torch was built without CUDA or no GPU is visible); use device='cpu' or 'auto'")
    return resolved


#: Evaluation dtypes by name (``dtype="float32"`` and ``dtype=torch.float32`` are the same).
EVALUATION_DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A floating evaluation dtype from a ``torch.dtype`` or its name (``"float32"``,
    ``"torch.float64"``); ``None`` stays ``None`` (the caller's default).

    Raises:
        ValueError: Anything else, naming the accepted dtypes.
    """
    if dtype is None or dtype in EVALUATION_DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in EVALUATION_DTYPES:
        return EVALUATION_DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype must be one of {sorted(EVALUATION_DTYPES)} (a name or the torch "
                     f"dtype), not {dtype!r}")


class MLPotCalculator(Calculator):
    """ASE calculator around a :class:`~ase_mlpot.models.base.PotentialModel`.

    Args:
        model: The potential; the calculator evaluates a copy cast to ``dtype`` on ``device``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
        dtype: Floating dtype of the evaluation, ``torch.float64``/``torch.float32`` or their
            names; default float64 (sums of many atomic energies
            lose kcal/mol in float32).
        provenance: Model name, version, revision, weight sha256 ... recorded in ``parameters``.
        neighbor_backend: Neighbour-list backend (see :mod:`ase_mlpot.data.neighborlist`).
        min_distance: Atom pairs closer than this (Å) are rejected as overlapping.
        **kwargs: Passed to :class:`ase.calculators.calculator.Calculator` (e.g. ``label``).
    """

    default_parameters: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        model: PotentialModel,
        *,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = None,
        provenance: Mapping[str, Any] | None = None,
        neighbor_backend: str = "auto",
        min_distance: float = DEFAULT_MIN_DISTANCE,
        **kwargs: Any,
    ) -> None:
        self.implemented_properties = [
            "energy",
            "free_energy",
            "forces",
            "stress",
            "energies",
            "energy_std",
            "forces_std",
        ]
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype) or torch.float64
        # a copy: the caller's model keeps its dtype, device, mode and trainable parameters
        self.model = copy.deepcopy(model).to(device=self.device, dtype=self.dtype).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.neighbor_backend = neighbor_backend
        self.min_distance = min_distance
        self.energy_to_eV = ENERGY_UNITS_TO_EV[model.energy_unit]
        self.length_to_A = LENGTH_UNITS_TO_A[model.length_unit]
        info = dict(provenance or {})
        self.parameters.update(
            {
                "model": info.get("name"),
                "model_version": info.get("version"),
                "revision": info.get("revision"),
                "weights_sha256": info.get("weights_sha256"),
                "config_sha256": info.get("config_sha256"),
                "pinning": info.get("pinning"),
                "architecture": model.architecture,
                "elements": list(model.elements),
                "ensemble_size": model.ensemble_size,
                "dtype": str(self.dtype).removeprefix("torch."),
                "device": str(self.device),
            }
        )

    @property
    def provenance(self) -> dict[str, Any]:
        """Model name, version, revision and the sha256 of its weights and config (the two
        hashes together identify the results exactly)."""
        return {
            key: self.parameters.get(key)
            for key in ("model", "model_version", "revision", "weights_sha256", "config_sha256")
        }

    def _batch(self, atoms: Atoms) -> dict[str, torch.Tensor]:
        if self.length_to_A != 1.0:
            atoms = atoms.copy()
            atoms.positions /= self.length_to_A
            atoms.cell /= self.length_to_A
        return atoms_to_batch(
            atoms,
            elements=self.model.atomic_numbers,
            cutoff=self.model.cutoff,
            model_name=str(self.parameters.get("model") or type(self.model).__name__),
            neighbor_backend=self.neighbor_backend,
            min_distance=self.min_distance / self.length_to_A,
        )

    def _evaluate(
        self, batch: dict[str, torch.Tensor], *, stress: bool, forces_std: bool
    ) -> dict[str, np.ndarray]:
        batch = batch_to_device(batch, dtype=self.dtype, device=self.device)
        out = compute_outputs(self.model, batch, forces=True, stress=stress, forces_std=forces_std)
        e, length = self.energy_to_eV, self.length_to_A

        def numpy(key: str, scale: float) -> np.ndarray:
            return out[key].detach().double().cpu().numpy() * scale

        results = {
            "energy": numpy(keys.TOTAL_ENERGY, e),
            "energies": numpy(keys.ATOMIC_ENERGIES, e),
            "energy_std": numpy(keys.ENERGY_STD, e),
            "forces": numpy(keys.FORCES, e / length),
        }
        if forces_std:
            results["forces_std"] = numpy(keys.FORCES_STD, e / length)
        if stress:
            results["stress"] = numpy(keys.STRESS, e / length**3)
        return results

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        """Compute energy, forces, per-atom energies, ensemble spread and (with PBC) stress."""
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        periodic = bool(np.all(self.atoms.pbc))
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError(
                "stress needs a fully periodic structure (atoms.pbc = True with a cell)"
            )
        batch = self._batch(self.atoms)
        values = self._evaluate(batch, stress=periodic, forces_std="forces_std" in properties)
        self.results = {
            "energy": float(values["energy"][0]),
            "free_energy": float(values["energy"][0]),
            "energies": values["energies"],
            "energy_std": float(values["energy_std"][0]),
            "forces": values["forces"],
        }
        if "forces_std" in values:
            self.results["forces_std"] = values["forces_std"]
        if periodic:
            full = values["stress"][0]  # (3, 3)
            self.results["stress"] = np.array([full[a, b] for a, b in _FULL_TO_VOIGT])

    def calculate_batch(
        self, structures: Sequence[Atoms], *, stress: bool = False
    ) -> list[dict[str, Any]]:
        """Evaluate many structures in one batched model call.

        Args:
            structures: The structures (any mix of sizes).
            stress: Also compute stresses (all structures must be fully periodic).

        Returns:
            One dict per structure with ``energy``, ``energies``, ``energy_std``, ``forces``
            (and ``stress`` in Voigt order), in eV and Å; an empty list for no structures.

        Raises:
            PropertyNotImplementedError: ``stress`` with a structure that is not fully periodic.
        """
        if not structures:
            return []
        if stress:
            molecular = [i for i, atoms in enumerate(structures) if not np.all(atoms.pbc)]
            if molecular:
                raise PropertyNotImplementedError(
                    f"stress needs fully periodic structures; structures {molecular} are not "
                    "(atoms.pbc = True with a cell)")
        batches = [self._batch(atoms) for atoms in structures]
        values = self._evaluate(collate(batches), stress=stress, forces_std=False)
        results = []
        start = 0
        for index, atoms in enumerate(structures):
            stop = start + len(atoms)
            item: dict[str, Any] = {
                "energy": float(values["energy"][index]),
                "energies": values["energies"][start:stop],
                "energy_std": float(values["energy_std"][index]),
                "forces": values["forces"][start:stop],
            }
            if stress:
                full = values["stress"][index]
                item["stress"] = np.array([full[a, b] for a, b in _FULL_TO_VOIGT])
            results.append(item)
            start = stop
        return results
