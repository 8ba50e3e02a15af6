"""Typed configuration of the ANI family (AEV hyperparameters and network sizes)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["AEVConfig", "ANIConfig"]

_ANI1X_RADIAL_SHIFTS = tuple(0.9 + 0.26875 * k for k in range(16))
_ANI1X_ANGLE_SECTIONS = tuple(math.pi / 16 + k * math.pi / 8 for k in range(8))


def _reject_unknown(cls: type, data: dict[str, Any]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")


@dataclass(frozen=True, kw_only=True)
class AEVConfig:
    """Atomic environment vector (AEV) hyperparameters; defaults are ANI-1x/ANI-1ccx.

    Attributes:
        radial_cutoff: R_cr, Å.
        angular_cutoff: R_ca, Å.
        radial_eta: η_R, Å⁻².
        radial_shifts: R_s, Å.
        angular_eta: η_A, Å⁻².
        angular_zeta: ζ (dimensionless).
        angular_shifts: R_a, Å.
        angle_sections: θ_s, rad.
        cosine_scale: θ' = acos(cosine_scale · cos θ); 0.95 in NeuroChem/TorchANI.
        radial_prefactor: 0.25 in NeuroChem/TorchANI (not in the paper).
    """

    radial_cutoff: float = 5.2
    angular_cutoff: float = 3.5
    radial_eta: float = 16.0
    radial_shifts: tuple[float, ...] = _ANI1X_RADIAL_SHIFTS
    angular_eta: float = 8.0
    angular_zeta: float = 32.0
    angular_shifts: tuple[float, ...] = (0.9, 1.55, 2.2, 2.85)
    angle_sections: tuple[float, ...] = _ANI1X_ANGLE_SECTIONS
    cosine_scale: float = 0.95
    radial_prefactor: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.angular_cutoff <= self.radial_cutoff:
            raise ValueError("need 0 < angular_cutoff <= radial_cutoff")
        if not 0 < self.cosine_scale < 1:
            raise ValueError("cosine_scale must lie in (0, 1) to keep acos differentiable")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AEVConfig:
        _reject_unknown(cls, data)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True, kw_only=True)
class ANIConfig:
    """An ANI ensemble: AEV + one MLP per element per member, CELU(α) hidden layers.

    Attributes:
        elements: Chemical symbols in species order (the AEV block order follows it).
        aev: AEV hyperparameters.
        hidden_layers: Hidden-layer widths per element, e.g. ``{"H": (160, 128, 96)}``.
        celu_alpha: α of CELU(x) = max(0, x) + min(0, α(exp(x/α) − 1)).
        ensemble_size: Number of members, evaluated together in one batched computation.
    """

    elements: tuple[str, ...] = ("H", "C", "N", "O")
    aev: AEVConfig = field(default_factory=AEVConfig)
    hidden_layers: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {
            "H": (160, 128, 96),
            "C": (144, 112, 96),
            "N": (128, 112, 96),
            "O": (128, 112, 96),
        }
    )
    celu_alpha: float = 0.1
    ensemble_size: int = 8

    def __post_init__(self) -> None:
        if set(self.hidden_layers) != set(self.elements):
            raise ValueError(
                f"hidden_layers must name exactly the elements {self.elements},"
                f" got {sorted(self.hidden_layers)}"
            )
        if self.ensemble_size < 1:
            raise ValueError("ensemble_size must be >= 1")
        if len(set(self.elements)) != len(self.elements):
            raise ValueError(f"duplicate elements in {self.elements}")

    @property
    def aev_length(self) -> int:
        """Radial part n_s·n_R plus angular part n_pairs·n_A·n_θ (384 for ANI-1x)."""
        n = len(self.elements)
        radial = n * len(self.aev.radial_shifts)
        angular = n * (n + 1) // 2 * len(self.aev.angular_shifts) * len(self.aev.angle_sections)
        return radial + angular

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elements"] = list(self.elements)
        data["hidden_layers"] = {k: list(v) for k, v in self.hidden_layers.items()}
        data["aev"] = {k: list(v) if isinstance(v, tuple) else v for k, v in data["aev"].items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ANIConfig:
        _reject_unknown(cls, data)
        values = dict(data)
        if "aev" in values:
            values["aev"] = AEVConfig.from_dict(values["aev"])
        if "elements" in values:
            values["elements"] = tuple(values["elements"])
        if "hidden_layers" in values:
            values["hidden_layers"] = {k: tuple(v) for k, v in values["hidden_layers"].items()}
        return cls(**values)
