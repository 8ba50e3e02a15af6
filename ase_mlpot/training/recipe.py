"""Typed training recipes, read from TOML or YAML: what to train, on which data, and how.

A recipe file has up to four tables (paths are relative to the recipe file); in TOML::

    name = "dft-general"
    description = "ANI ensemble trained on the zoo's wB97X/6-31G* corpus"

    [model]                      # from scratch: architecture + config fields
    architecture = "ani"
    config = { hidden_layers = { H = [128, 96, 64], C = [128, 96, 64], ... } }

    [data]
    train = ["data/labels-wb97x-631gs.jsonl"]
    test_molecules = "recipes/test-molecules.txt"   # held out of training entirely
    # forces_from = ["data/labels-wb97x-631gs.jsonl"]  # forces for energy-only geometries

    [training]
    ensemble_size = 4            # k members on k folds by molecule
    force_weight = 0.1
    max_epochs = 300

    [finetune]                   # instead of [model]: transfer learning from a base model
    base = "dft-general"         # zoo name or artifact folder
    freeze = "default"           # or a list of parameter-name patterns

The same recipe in YAML (``.yaml``/``.yml``) is the same nesting of mappings and lists
(``model: {architecture: ani, config: {...}}``, ``training: {max_epochs: 300}``, ...).

Units: the loss is in eV, w_E·⟨ΔE²/N⟩ + w_F·⟨ΔF²⟩ (eV², eV²/Å²); learning rates are AdamW's.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ase_mlpot.errors import MLPotError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DataSpec",
    "FinetuneSpec",
    "ModelSpec",
    "RecipeError",
    "TrainingOptions",
    "TrainingRecipe",
    "load_recipe",
    "parse_recipe",
]


class RecipeError(ValueError):
    """A recipe that cannot be used (unknown keys, wrong types, missing sections)."""


def _decay_groups(groups: Any, where: str) -> tuple[tuple[str, float], ...]:
    """(pattern, decay) pairs from a mapping (file order) or a list of pairs (training.json)."""
    pairs = groups.items() if isinstance(groups, dict) else groups
    try:
        result = tuple((pattern, decay) for pattern, decay in pairs)
    except (TypeError, ValueError):
        raise RecipeError(f"[{where}]: weight_decay_groups must map parameter-name patterns to"
                          f" decays, got {groups!r}") from None
    return result


def _from_table(cls: type, table: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys with their names."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise RecipeError(f"[{where}]: unknown keys {unknown}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    if "weight_decay_groups" in values:
        values["weight_decay_groups"] = _decay_groups(values["weight_decay_groups"], where)
    if values.get("max_grad_norm") == 0:  # TOML has no null: 0 switches clipping off
        values["max_grad_norm"] = None
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"[{where}]: {error}") from None


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model trained from scratch.

    Attributes:
        architecture: Registry name (``"ani"``, ``"so3krates"``).
        config: Fields of the architecture's config (``ensemble_size`` is set by training).
    """

    architecture: str
    config: dict[str, Any] = field(default_factory=dict)

    def build_config(self) -> Any:
        """The architecture's typed config of one member (validated).

        Raises:
            RecipeError: Unknown architecture, unknown config fields or invalid values.
        """
        from ase_mlpot.models.registry import get_architecture

        try:
            _, config_class = get_architecture(self.architecture)
            return config_class.from_dict({**self.config, "ensemble_size": 1})
        except (KeyError, TypeError, ValueError, MLPotError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise RecipeError(f"[model.config]: {message}") from None


@dataclass(frozen=True, kw_only=True)
class FinetuneSpec:
    """Transfer learning from a trained model.

    Attributes:
        base: Zoo model name or artifact folder (relative paths: from the recipe file).
        freeze: ``"default"`` (the architecture's recipe, e.g. ANI-1ccx: hidden layers 1 and 3),
            ``"none"``, or parameter-name patterns (:func:`fnmatch.fnmatchcase`) of a
            one-member model, e.g. ``["networks.*.weights.0", "networks.*.biases.0"]``.
        refit_reference_energies: Refit e_Z by least squares to the residual between the new
            labels and the base model's network energies before training (absorbs the constant
            per-element offset between levels of theory, e.g. 6-31G* → CBS).
    """

    base: str
    freeze: str | tuple[str, ...] = "default"
    refit_reference_energies: bool = True


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Training data and the held-out molecules.

    Attributes:
        train: Dataset files (label store ``.jsonl``, ANI ``.h5``, or any ASE format).
        test_molecules: File with one molecule name per line (``#`` comments) held out of
            training and validation entirely; ``None`` to hold out none.
        min_heavy_atoms: Keep molecules with at least this many heavy atoms.
        max_heavy_atoms: Keep molecules with at most this many heavy atoms (``None``: all).
        forces_from: Labelled files (possibly at another level of theory) whose forces are
            given to the training conformations that have none, matched by identical geometry
            (atomic numbers and positions). The zoo's CC fine-tuning uses the wB97X forces of its
            CC geometries (the CC set is a subset of the DFT geometries): the composite's
            energies set the level across molecules, the DFT forces keep the fine-tuned surface
            DFT-shaped between the few CC points of each molecule (wB97X/6-31G* is ~0.5
            kcal/mol from the composite in relative conformer energies). Only used with
            ``force_weight > 0``; validation scores the training level's own labels only (the
            borrowed forces are not what the model is fitted to reproduce); the model card
            names both levels.
    """

    train: tuple[str, ...]
    test_molecules: str | None = None
    min_heavy_atoms: int = 0
    max_heavy_atoms: int | None = None
    forces_from: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TrainingOptions:
    """Optimisation settings.

    Attributes:
        ensemble_size: k members; with k ≥ 2 the training molecules are cut into k folds and
            member m validates on fold m and trains on the others (k-fold by molecule); with
            k = 1, ``valid_fraction`` of the molecules validate.
        valid_fraction: Fraction of molecules for validation when ``ensemble_size == 1``.
        always_train_max_heavy_atoms: Molecules with at most this many heavy atoms go into
            every member's training set and no validation set (``None``: none). In a k-fold
            ensemble each molecule is unseen by the member that validates on it, and that
            member's guess enters the ensemble mean; for the smallest molecules, each the only
            carrier of its functional group (water, ammonia, N₂, hydrogen peroxide), the guess
            is far off: the zoo's ANI member that never saw water put its angle at 142° and the
            ensemble at 116° (the others 104°).
        energy_weight: w_E of the energy term ⟨ΔE²/N⟩ (eV², N atoms per conformation).
        force_weight: w_F of the force term ⟨ΔF²⟩ (eV²/Å², per component; 0: energy-only).
        batch_size: Conformations per optimisation step.
        learning_rate: Initial AdamW learning rate.
        weight_decay: AdamW decoupled weight decay (of every parameter no group names).
        weight_decay_groups: Per-parameter decay as (pattern, decay) pairs, patterns
            (:func:`fnmatch.fnmatchcase`) over the parameter names of a one-member model, the
            first match wins; in a recipe a table, e.g. ANI-1x-like decays falling with depth
            and none on biases: ``[training.weight_decay_groups]``
            ``"networks.*.weights.0" = 1e-4``, ``"networks.*.weights.1" = 1e-5``,
            ``"networks.*.weights.2" = 1e-6`` with ``weight_decay = 0``.
        lr_factor: Learning-rate factor on a validation plateau.
        lr_patience: Epochs without improvement before the learning rate drops.
        min_learning_rate: Training stops when the learning rate falls below this.
        early_stopping_patience: Epochs without improvement before training stops.
        max_epochs: Upper limit on epochs.
        max_grad_norm: Gradient-norm clip (``None``, or 0 in a recipe: no clipping).
        ema_decay: Exponential moving average of the weights, θ̄ ← d θ̄ + (1 − d) θ after every
            optimisation step, with a fixed d (no warm-up); validation, best-model selection and
            the returned model use θ̄, which averages out the step-to-step noise of the weights
            (horizon ≈ 1/(1 − d) steps). θ̄ starts at the starting weights and lags θ by about
            that horizon: in fine-tuning it stays near the pretrained model early on; from
            scratch, choose d with a horizon of an epoch or two. 0: no averaging.
        seed: Seed of initialisation and shuffling (member m uses ``seed + m``).
        split_seed: Seed of the assignment of molecules to folds.
        dtype: ``"float32"`` or ``"float64"``.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    """

    ensemble_size: int = 4
    valid_fraction: float = 0.1
    always_train_max_heavy_atoms: int | None = None
    energy_weight: float = 1.0
    force_weight: float = 0.1
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    weight_decay_groups: tuple[tuple[str, float], ...] = ()
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_learning_rate: float = 1e-5
    early_stopping_patience: int = 30
    max_epochs: int = 500
    max_grad_norm: float | None = 10.0
    ema_decay: float = 0.0
    seed: int = 0
    split_seed: int = 0
    dtype: str = "float32"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {self.ensemble_size}")
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must lie in (0, 1), got {self.valid_fraction}")
        if self.energy_weight < 0 or self.force_weight < 0 or (
                self.energy_weight == 0 and self.force_weight == 0):
            raise ValueError("loss weights must be >= 0 and not both zero")
        for name in ("ensemble_size", "batch_size", "max_epochs", "lr_patience",
                     "early_stopping_patience", "seed", "split_seed"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("valid_fraction", "energy_weight", "force_weight", "learning_rate",
                     "weight_decay", "lr_factor", "min_learning_rate", "ema_decay"):
            if not isinstance(getattr(self, name), (int, float)):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        if self.always_train_max_heavy_atoms is not None and (
                not isinstance(self.always_train_max_heavy_atoms, int)
                or isinstance(self.always_train_max_heavy_atoms, bool)
                or self.always_train_max_heavy_atoms < 0):
            raise ValueError("always_train_max_heavy_atoms must be an integer >= 0, got"
                             f" {self.always_train_max_heavy_atoms!r}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.early_stopping_patience < 1:
            raise ValueError("batch_size, max_epochs and early_stopping_patience must be >= 1")
        if self.lr_patience < 0 or self.weight_decay < 0:
            raise ValueError("lr_patience and weight_decay must be >= 0")
        if not 0 < self.min_learning_rate <= self.learning_rate:
            raise ValueError("need 0 < min_learning_rate <= learning_rate")
        if isinstance(self.ema_decay, bool) or not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError("max_grad_norm must be > 0 (leave it out to switch clipping off:"
                             " use max_grad_norm = 0 in a recipe)")
        for group in self.weight_decay_groups:
            if (len(group) != 2 or not isinstance(group[0], str) or isinstance(group[1], bool)
                    or not isinstance(group[1], (int, float)) or not 0 <= group[1] < math.inf):
                raise ValueError("weight_decay_groups must map parameter-name patterns to"
                                 f" decays >= 0, got {group!r}")
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"lr_factor must lie in (0, 1), got {self.lr_factor}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")


@dataclass(frozen=True, kw_only=True)
class TrainingRecipe:
    """Everything that determines a trained model.

    Attributes:
        name: Name of the resulting model (also its artifact name).
        version: Version recorded in the artifact.
        description: One line for the model card and ``mlpot-zoo info``.
        data: Training data.
        training: Optimisation settings.
        model: Architecture trained from scratch (exactly one of ``model`` and ``finetune``).
        finetune: Base model to transfer-learn from.
        root: Folder relative paths are resolved against (the recipe file's folder).
    """

    name: str
    data: DataSpec
    training: TrainingOptions = field(default_factory=TrainingOptions)
    description: str = ""
    version: str = "1"
    model: ModelSpec | None = None
    finetune: FinetuneSpec | None = None
    root: Path = Path(".")

    def __post_init__(self) -> None:
        if (self.model is None) == (self.finetune is None):
            raise RecipeError("a recipe needs exactly one of [model] and [finetune]")

    def resolve(self, path: str) -> Path:
        """A recipe path resolved against :attr:`root`."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def replace(self, **changes: Any) -> TrainingRecipe:
        """A copy with top-level fields changed."""
        return dataclasses.replace(self, **changes)

    def with_training(self, **changes: Any) -> TrainingRecipe:
        """A copy with training options changed."""
        return dataclasses.replace(self, training=dataclasses.replace(self.training, **changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored with the trained model)."""
        out = dataclasses.asdict(self)
        out["root"] = self.root.name  # the recipe's folder; absolute paths do not travel
        return out


def parse_recipe(document: dict[str, Any], *, root: Path = Path(".")) -> TrainingRecipe:
    """A recipe from a parsed TOML document.

    Raises:
        RecipeError: Unknown tables or keys, invalid values, or not exactly one of
            ``[model]`` and ``[finetune]``.
    """
    document = dict(document)
    known = {"name", "version", "description", "model", "finetune", "data", "training"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise RecipeError(f"unknown recipe keys {unknown}; known: {sorted(known)}")
    for required in ("name", "data"):
        if required not in document:
            raise RecipeError(f"the recipe has no {required!r}")
    data_table = _section(document, "data")
    for key in ("train", "forces_from"):  # one file may be given without a list
        if isinstance(data_table.get(key), str):
            data_table[key] = [data_table[key]]
    model = None if document.get("model") is None else _from_table(
        ModelSpec, _section(document, "model"), "model")
    if model is not None:
        model.build_config()  # fail at parse time, not after hours of data preparation
    return TrainingRecipe(
        name=str(document["name"]),
        description=str(document.get("description", "")),
        version=str(document.get("version", "1")),
        data=_from_table(DataSpec, data_table, "data"),
        training=_from_table(TrainingOptions, _section(document, "training"), "training"),
        model=model,
        finetune=None if document.get("finetune") is None else _from_table(
            FinetuneSpec, _section(document, "finetune"), "finetune"),
        root=root,
    )


def _section(document: dict[str, Any], key: str) -> dict[str, Any]:
    """A table of the recipe as a dict (absent or empty: {}); anything else is a RecipeError."""
    table = document.get(key)
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise RecipeError(f"[{key}] must be a table (mapping), got {table!r}")
    return dict(table)


def load_recipe(path: str | Path) -> TrainingRecipe:
    """Read a TOML recipe (or YAML, for a ``.yaml``/``.yml`` file); relative paths in it are
    resolved against its folder.

    Raises:
        RecipeError: An unreadable or unparsable file, a document that is not a mapping, or an
            invalid recipe (see :func:`parse_recipe`).
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            document = yaml.safe_load(text)
        else:
            document = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise RecipeError(f"{path}: {error}") from None
    if not isinstance(document, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of tables, got {type(document).__name__}")
    return parse_recipe(document, root=path.resolve().parent)
