"""Import So3krates weights from a so3krates-torch (PyPI ``so3krates-torch``) ``So3krates`` module.

The mapping is by parameter meaning (no code of so3krates-torch is used here; it is not imported
by this module). so3krates-torch embeds and shifts over all 118 elements (one-hot index Z − 1);
the columns of the model's elements are taken. Its two filter networks per layer become the
stacked first layers of :class:`~ase_mlpot.models.so3krates.layers.FilterNetworks`; its
per-head matrices ``W (heads, d_in, d_out)`` (q = x W) keep their layout.

Only the So3krates trunk is converted (no charge/spin embeddings, no SO3LR long-range terms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from ase.data import atomic_numbers

from ase_mlpot.models.so3krates.config import So3kratesConfig
from ase_mlpot.models.so3krates.model import So3krates

__all__ = [
    "config_from_so3krates_torch",
    "from_so3krates_torch",
    "so3krates_torch_inputs",
    "state_dict_from_so3krates_torch",
]

_CUTOFF_NAMES = {"cosine": "cosine", "phys": "physnet", "exponential": "exponential",
                 "polynomial": "polynomial"}
_NORMALIZATIONS = {"sqrt_num_features": "sqrt_head_dim", "avg_num_neighbors": "avg_num_neighbors",
                   "identity": "identity"}


def config_from_so3krates_torch(
    reference: Any, elements: Sequence[str], **overrides: Any
) -> So3kratesConfig:
    """The :class:`So3kratesConfig` of a so3krates-torch ``So3krates`` instance.

    Args:
        reference: The so3krates-torch model (its constructor arguments are read back from its
            attributes).
        elements: Chemical symbols of our model, in species order.
        **overrides: Fields to set explicitly (e.g. ``energy_unit``).

    Raises:
        ValueError: A setting without an equivalent here (charge/spin embeddings, trainable or
            Bessel radial bases, identity-like initialisation, more than two head layers).
    """
    if getattr(reference, "use_charge_embed", False) or getattr(reference, "use_spin_embed", False):
        raise ValueError("charge/spin embeddings are not supported")
    if reference.final_mlp_layers != 2:
        raise ValueError("only a two-layer energy head is supported")
    basis = reference.radial_basis_fn.lower()
    if basis not in ("gaussian", "bernstein") or reference.trainable_rbf:
        raise ValueError(
            f"radial basis {basis!r} (trainable={reference.trainable_rbf}) is not supported"
        )
    config = {
        "elements": tuple(elements),
        "num_features": int(reference.num_features),
        "num_heads": int(reference.num_heads),
        "num_layers": int(reference.num_layers),
        "degrees": tuple(int(degree) for degree in reference.degrees),
        "cutoff": float(reference.r_max),
        "radial_basis": basis,
        "num_radial_basis": int(reference.num_radial_basis_fn),
        "cutoff_function": _CUTOFF_NAMES[reference.cutoff_fn_name],
        "polynomial_cutoff_p": int(reference.cutoff_p),
        "activation": reference.activation_fn_name,
        "attention_normalization": _NORMALIZATIONS[reference.message_normalization],
        "avg_num_neighbors": (None if reference.avg_num_neighbors_param is None
                              else float(reference.avg_num_neighbors_param)),
        "chi_init": "zeros" if reference.initialize_ev_to_zeros else "neighbors",
        "qk_non_linearity": reference.qk_non_linearity,
        "residual_mlp_1": bool(reference.residual_mlp_1),
        "residual_mlp_2": bool(reference.residual_mlp_2),
        "layer_norm_1": bool(reference.layer_normalization_1),
        "layer_norm_2": bool(reference.layer_normalization_2),
        "exchange_bias": bool(reference.interaction_bias),
        "energy_regression_dim": int(reference.energy_regression_dim or reference.num_features),
        "energy_activation": reference.energy_activation_fn_name,
        "learn_atomic_scales": bool(reference.energy_learn_atomic_type_scales),
        "learn_atomic_shifts": bool(reference.energy_learn_atomic_type_shifts),
    }
    config.update(overrides)
    return So3kratesConfig(**config)


def state_dict_from_so3krates_torch(
    state: Mapping[str, torch.Tensor], config: So3kratesConfig, member: int = 0
) -> dict[str, torch.Tensor]:
    """Our state dict (keys ``members.{member}.…``) from a so3krates-torch state dict.

    Args:
        state: ``reference.state_dict()``.
        config: The target architecture (see :func:`config_from_so3krates_torch`).
        member: Committee slot the weights go to.
    """
    columns = torch.tensor([atomic_numbers[s] - 1 for s in config.elements])  # (n_elements,)
    out: dict[str, torch.Tensor] = {}
    prefix = f"members.{member}."

    def put(key: str, value: torch.Tensor) -> None:
        out[prefix + key] = value.detach().clone()

    put("embedding.weight", state["inv_feature_embedding.embedding.weight"][:, columns].t())
    for t in range(config.num_layers):
        src = f"euclidean_transformers.{t}."
        dst = f"layers.{t}."
        for part, ours in (("mlp_rbf.0", "radial_hidden"), ("mlp_ev.0", "sphc_hidden")):
            for kind in ("weight", "bias"):
                put(f"{dst}filters.{ours}.{kind}", torch.cat([
                    state[f"{src}filter_net_inv.{part}.{kind}"],
                    state[f"{src}filter_net_ev.{part}.{kind}"],
                ]))
        for branch in ("inv", "ev"):
            for part, ours in (("mlp_rbf.mlp_rbf_layer_1.0", "radial_out"),
                               ("mlp_ev.mlp_ev_layer_1.0", "sphc_out")):
                for kind in ("weight", "bias"):
                    put(f"{dst}filters.{ours}_{branch}.{kind}",
                        state[f"{src}filter_net_{branch}.{part}.{kind}"])
        attention = f"{src}euclidean_attention_block."
        for theirs, ours in (("W_q_inv", "query_inv"), ("W_k_inv", "key_inv"),
                             ("W_v_inv", "value_inv"), ("W_q_ev", "query_ev"),
                             ("W_k_ev", "key_ev")):
            put(f"{dst}attention.{ours}", state[attention + theirs])
        put(f"{dst}exchange.dense.weight", state[f"{src}interaction_block.linear_layer.weight"])
        if config.exchange_bias:
            put(f"{dst}exchange.dense.bias", state[f"{src}interaction_block.linear_layer.bias"])
        for n in (1, 2):
            if getattr(config, f"layer_norm_{n}"):
                for kind in ("weight", "bias"):
                    put(f"{dst}layer_norm_{n}.{kind}", state[f"{src}layer_norm_inv_{n}.{kind}"])
            if getattr(config, f"residual_mlp_{n}"):
                for index, ours in ((1, "first"), (3, "second")):
                    for kind in ("weight", "bias"):
                        put(f"{dst}mlp_{n}.{ours}.{kind}", state[f"{src}mlp_{n}.{index}.{kind}"])
    head = "atomic_energy_output_block."
    for theirs, ours in (("layers.0", "hidden"), ("final_layer", "out")):
        for kind in ("weight", "bias"):
            put(f"head.{ours}.{kind}", state[f"{head}{theirs}.{kind}"])
    put("head.scale", state[f"{head}energy_scales.weight"][0, columns])
    put("head.shift", state[f"{head}energy_shifts"][columns])
    return out


def from_so3krates_torch(
    references: Any | Sequence[Any], elements: Sequence[str], *,
    reference_energies: Mapping[str, float] | None = None, **overrides: Any,
) -> So3krates:
    """Our :class:`So3krates` (a committee for several references) with imported weights.

    Args:
        references: One so3krates-torch ``So3krates`` or a list of identically configured ones.
        elements: Chemical symbols of the model, in species order.
        reference_energies: Per-element reference energies (model energy unit).
        **overrides: Config fields to set explicitly.

    Returns:
        The model in the dtype of the references' weights, in eval mode.
    """
    members = list(references) if isinstance(references, Sequence) else [references]
    config = config_from_so3krates_torch(members[0], elements, ensemble_size=len(members),
                                         **overrides)
    dtype = next(members[0].parameters()).dtype
    model = So3krates(config, reference_energies=reference_energies).to(dtype)
    state: dict[str, torch.Tensor] = {}
    for index, reference in enumerate(members):
        if config_from_so3krates_torch(reference, elements, ensemble_size=len(members),
                                       **overrides) != config:
            raise ValueError("committee members must share one configuration")
        state.update(state_dict_from_so3krates_torch(reference.state_dict(), config, index))
    model.load_state_dict(state, strict=True)
    return model.eval()


def so3krates_torch_inputs(
    atoms: Any, cutoff: float, *, dtype: torch.dtype = torch.float64, device: str = "cpu"
) -> dict[str, Any]:
    """The input dict a so3krates-torch model expects for one ``ase.Atoms`` (needs the package).

    Built with so3krates-torch's own data pipeline (matscipy neighbour list, torch-geometric
    batch), as its ASE calculator does, then cast to ``dtype``; for parity tests and benchmarks.
    """
    from so3krates_torch.data.atomic_data import AtomicData
    from so3krates_torch.data.utils import KeySpecification, config_from_atoms
    from so3krates_torch.tools import torch_geometric, utils

    specification = KeySpecification(
        info_keys={"energy": "REF_energy", "stress": "REF_stress", "total_charge": "charge",
                   "total_spin": "total_spin"},
        arrays_keys={"forces": "REF_forces", "charges": "Qs"},
    )
    data = AtomicData.from_config(
        config_from_atoms(atoms, key_specification=specification),
        z_table=utils.AtomicNumberTable(list(range(1, 119))), cutoff=cutoff, cutoff_lr=None,
    )
    loader = torch_geometric.dataloader.DataLoader(dataset=[data], batch_size=1, shuffle=False)
    inputs = next(iter(loader)).to(device).to_dict()
    inputs = {key: value.to(dtype) if torch.is_tensor(value) and value.is_floating_point()
              else value for key, value in inputs.items()}
    # The pipeline stores geometry in torch's default dtype (float32 usually): restore the exact
    # positions, cell and shift vectors from the structure.
    inputs["positions"] = torch.tensor(atoms.positions, dtype=dtype, device=device)  # (n, 3)
    if any(atoms.pbc):
        inputs["cell"] = torch.tensor(atoms.cell.array, dtype=dtype, device=device).reshape(
            inputs["cell"].shape)  # (3, 3)
    inputs["shifts"] = inputs["unit_shifts"].to(dtype) @ inputs["cell"].reshape(3, 3)  # (E, 3)
    return inputs
