"""Readers of published ANI weights: NeuroChem model folders and TorchANI 2.x state dicts.

Both return a :class:`PublishedANI`: the :class:`ANIConfig`, a state dict in ase_mlpot's parameter
names (float32, as published) and the per-element self energies in Hartree (float64). These readers
run at conversion time only (``mlpot-zoo convert``); artifacts are then loaded from safetensors.

NeuroChem layout (paths relative to the folder holding the ``.info`` file)::

    model.info                   4 lines: AEV .params file, SAE file, ensemble prefix, size
    <dir>/*.params               key = value lines (Rcr, Rca, EtaR, ShfR, Zeta, ShfZ, ..., Atyp)
    <dir>/sae_linfit.dat         Symbol,index=value (Hartree)
    <prefix>{k}/networks/ANN-X.nnf        "<bytes>=" line, then bz2 text: layers, sizes, files
    <prefix>{k}/networks/ANN-X.nnf-lN.{w,b}param   raw little-endian float32, (out, in) row-major
"""

from __future__ import annotations

import bz2
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ase_mlpot.errors import ModelFormatError
from ase_mlpot.models.ani.config import AEVConfig, ANIConfig

__all__ = ["PublishedANI", "read_neurochem", "read_torchani_state_dict"]

_ACTIVATION_CELU = 9
_ACTIVATION_LINEAR = 6


@dataclass(frozen=True)
class PublishedANI:
    """Published ANI weights in ase_mlpot form."""

    config: ANIConfig
    state_dict: dict[str, torch.Tensor]
    reference_energies: dict[str, float]


def _parse_params(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" not in line:
            continue
        key, _, raw = (part.strip() for part in line.partition("="))
        raw = raw.strip("[]")
        values[key] = [item.strip() for item in raw.split(",") if item.strip()]
    required = {"Rcr", "Rca", "EtaR", "ShfR", "Zeta", "ShfZ", "EtaA", "ShfA", "Atyp"}
    missing = required - set(values)
    if missing:
        raise ModelFormatError(f"{path}: missing AEV parameters {sorted(missing)}")
    return values


def _parse_sae(path: Path) -> dict[str, float]:
    energies: dict[str, float] = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"\s*([A-Z][a-z]?)\s*,\s*\d+\s*=\s*(\S+)\s*", line)
        if match:
            energies[match.group(1)] = float(match.group(2))
    if not energies:
        raise ModelFormatError(f"{path}: no self energies found")
    return energies


def _read_nnf(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    start = raw.find(b"BZh")
    if start < 0:
        raise ModelFormatError(f"{path}: no bz2 stream after the size header")
    text = bz2.decompress(raw[start:]).decode()
    layers = [
        dict(re.findall(r"(\w+)=([^;]*);", block))
        for block in re.findall(r"layer\s*\[(.*?)^\s*\]", text, flags=re.S | re.M)
    ]
    if not layers:
        raise ModelFormatError(f"{path}: no layers found")
    return layers


def _read_float32(path: Path, count: int) -> np.ndarray:
    size = path.stat().st_size
    if size != 4 * count:
        raise ModelFormatError(f"{path}: {size} bytes, expected {4 * count} ({count} float32)")
    return np.fromfile(path, dtype="<f4")


def read_neurochem(info_file: Path) -> PublishedANI:
    """Read a NeuroChem ensemble from its ``.info`` file (or the folder holding one).

    Raises:
        ModelFormatError: Missing files, wrong byte sizes, unknown activation codes or
            inconsistent layer sizes.
    """
    info_file = Path(info_file)
    if info_file.is_dir():
        candidates = sorted(info_file.glob("*.info"))
        if len(candidates) != 1:
            raise ModelFormatError(
                f"{info_file}: expected exactly one .info file, found {candidates}"
            )
        info_file = candidates[0]
    lines = [line.strip() for line in info_file.read_text().splitlines() if line.strip()]
    if len(lines) < 4:
        raise ModelFormatError(f"{info_file}: expected 4 lines (params, sae, prefix, size)")
    root = info_file.parent
    params = _parse_params(root / lines[0])
    self_energies = _parse_sae(root / lines[1])
    prefix, ensemble_size = root / lines[2], int(lines[3])
    elements = tuple(params["Atyp"])
    aev = AEVConfig(
        radial_cutoff=float(params["Rcr"][0]),
        angular_cutoff=float(params["Rca"][0]),
        radial_eta=float(params["EtaR"][0]),
        radial_shifts=tuple(map(float, params["ShfR"])),
        angular_eta=float(params["EtaA"][0]),
        angular_zeta=float(params["Zeta"][0]),
        angular_shifts=tuple(map(float, params["ShfA"])),
        angle_sections=tuple(map(float, params["ShfZ"])),
    )
    hidden: dict[str, tuple[int, ...]] = {}
    state: dict[str, torch.Tensor] = {}
    for symbol in elements:
        member_layers: list[list[tuple[np.ndarray, np.ndarray]]] = []
        for member in range(ensemble_size):
            folder = Path(f"{prefix}{member}") / "networks"
            layers = _read_nnf(folder / f"ANN-{symbol}.nnf")
            arrays = []
            for position, layer in enumerate(layers):
                code = int(layer["activation"])
                expected = _ACTIVATION_LINEAR if position == len(layers) - 1 else _ACTIVATION_CELU
                if code != expected:
                    raise ModelFormatError(
                        f"{folder}/ANN-{symbol}.nnf layer {position + 1}: activation code {code},"
                        f" expected {expected} (9 = CELU(0.1) hidden, 6 = linear output)"
                    )
                n_out, n_in = int(layer["nodes"]), int(layer["blocksize"])
                weight_file = layer["weights"].split(":", 1)[1].split("[")[0]
                bias_file = layer["biases"].split(":", 1)[1].split("[")[0]
                weight = _read_float32(folder / weight_file, n_out * n_in).reshape(n_out, n_in)
                bias = _read_float32(folder / bias_file, n_out)
                arrays.append((weight, bias))
            member_layers.append(arrays)
        sizes = [member_layers[0][0][0].shape[1]] + [w.shape[0] for w, _ in member_layers[0]]
        hidden[symbol] = tuple(sizes[1:-1])
        for layer in range(len(sizes) - 1):
            state[f"networks.{symbol}.weights.{layer}"] = torch.from_numpy(
                np.stack([m[layer][0] for m in member_layers])
            )
            state[f"networks.{symbol}.biases.{layer}"] = torch.from_numpy(
                np.stack([m[layer][1] for m in member_layers])
            )
    config = ANIConfig(
        elements=elements, aev=aev, hidden_layers=hidden, ensemble_size=ensemble_size
    )
    _check_input_width(config, state)
    return PublishedANI(config, state, {s: self_energies[s] for s in elements})


# TorchANI does not store the cutoffs in its state dicts; they follow from the model family.
_TORCHANI_CUTOFFS = {
    ("H", "C", "N", "O"): (5.2, 3.5),
    ("H", "C", "N", "O", "S", "F", "Cl"): (5.1, 3.5),
}


def read_torchani_state_dict(
    path: Path,
    *,
    cutoffs: tuple[float, float] | None = None,
    self_energies: dict[str, float] | None = None,
) -> PublishedANI:
    """Read a TorchANI 2.x state dict (``torch.load(..., weights_only=True)``).

    Args:
        path: The ``.pt`` file (a trusted, pinned input: it is a pickle, read without code).
        cutoffs: (radial, angular) cutoffs in Å; TorchANI does not store them. Defaults: 5.2/3.5
            for H, C, N, O (ANI-1x, ANI-1ccx) and 5.1/3.5 for ANI-2x's seven elements.
        self_energies: float64 self energies (Hartree) to use instead of the state dict's float32
            ``energy_shifter.self_energies``, which are rounded (up to 3e-6 Ha per atom).

    Raises:
        ModelFormatError: Missing keys or an element set with unknown cutoffs.
    """
    from ase.data import chemical_symbols

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    try:
        numbers = state["atomic_numbers"].tolist()
        prefix = "potentials.nnp."
        radial_shifts = state[prefix + "aev_computer.radial.shifts"].double().tolist()
        aev_values = {
            "radial_eta": state[prefix + "aev_computer.radial.eta"],
            "angular_eta": state[prefix + "aev_computer.angular.eta"],
            "angular_zeta": state[prefix + "aev_computer.angular.zeta"],
        }
        angular_shifts = state[prefix + "aev_computer.angular.shifts"].double().tolist()
        sections = state[prefix + "aev_computer.angular.sections"].double().tolist()
        stored_self_energies = state["energy_shifter.self_energies"].double().tolist()
    except KeyError as error:
        raise ModelFormatError(
            f"{path}: not a TorchANI 2.x ANI state dict (missing {error})"
        ) from None
    elements = tuple(chemical_symbols[z] for z in numbers)
    if cutoffs is None:
        if elements not in _TORCHANI_CUTOFFS:
            raise ModelFormatError(
                f"{path}: cutoffs of a TorchANI model with elements {elements} are unknown; pass"
                " cutoffs=(radial, angular)"
            )
        cutoffs = _TORCHANI_CUTOFFS[elements]
    aev = AEVConfig(
        radial_cutoff=cutoffs[0],
        angular_cutoff=cutoffs[1],
        radial_eta=float(aev_values["radial_eta"].item()),
        radial_shifts=tuple(radial_shifts),
        angular_eta=float(aev_values["angular_eta"].item()),
        angular_zeta=float(aev_values["angular_zeta"].item()),
        angular_shifts=tuple(angular_shifts),
        angle_sections=tuple(sections),
    )
    member_keys = [k for k in state if ".neural_networks.members." in k]
    members = sorted({int(k.split(".members.")[1].split(".")[0]) for k in member_keys})
    ours: dict[str, torch.Tensor] = {}
    hidden: dict[str, tuple[int, ...]] = {}
    for symbol in elements:
        base = prefix + "neural_networks.members.{m}.atomics." + symbol
        n_hidden = len({k for k in state if k.startswith(base.format(m=0) + ".layers.")}) // 2
        names = [f".layers.{layer}" for layer in range(n_hidden)] + [".final_layer"]
        for layer, name in enumerate(names):
            ours[f"networks.{symbol}.weights.{layer}"] = torch.stack(
                [state[base.format(m=m) + name + ".weight"].float() for m in members]
            )
            ours[f"networks.{symbol}.biases.{layer}"] = torch.stack(
                [state[base.format(m=m) + name + ".bias"].float() for m in members]
            )
        hidden[symbol] = tuple(
            ours[f"networks.{symbol}.weights.{k}"].shape[1] for k in range(n_hidden)
        )
    config = ANIConfig(elements=elements, aev=aev, hidden_layers=hidden, ensemble_size=len(members))
    _check_input_width(config, ours)
    energies = self_energies or dict(zip(elements, stored_self_energies, strict=True))
    return PublishedANI(config, ours, {s: float(energies[s]) for s in elements})


def _check_input_width(config: ANIConfig, state: dict[str, torch.Tensor]) -> None:
    for symbol in config.elements:
        width = state[f"networks.{symbol}.weights.0"].shape[2]
        if width != config.aev_length:
            raise ModelFormatError(
                f"network {symbol} expects {width} inputs but the AEV has {config.aev_length}"
            )
