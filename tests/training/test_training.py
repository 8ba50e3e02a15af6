"""Training and transfer learning end to end on tiny models and teacher-labelled data.

A random-weight "teacher" labels perturbed G2 molecules, so the labels are learnable exactly by
a student of the same architecture: training must cut the error well below the best
reference-energy-only fit, fine-tuning must keep frozen parameters bit-identical, and an
interrupted run must resume to the same weights.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ase_mlpot.cli import main
from ase_mlpot.cli_errors import EXIT_UNKNOWN_MODEL
from ase_mlpot.datasets import write_ani_h5
from ase_mlpot.datasets.errors import DatasetError
from ase_mlpot.io import load_artifact
from ase_mlpot.testing import tiny_ani_model, tiny_so3krates
from ase_mlpot.testing.datasets import teacher_dataset
from ase_mlpot.training import (
    RecipeError,
    TrainingResult,
    evaluate_model,
    fit_reference_energies,
    freeze_parameters,
    load_recipe,
    parse_recipe,
    train,
)
from ase_mlpot.training.data import prepare_graphs
from ase_mlpot.training.trainer import claim_member

TINY_ANI = {"hidden_layers": {s: [16, 8, 8] for s in "HCNO"}}


@pytest.fixture(scope="module")
def teacher_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 'DFT' set with forces and a shifted 'CC' set (other teacher, energies only)."""
    folder = tmp_path_factory.mktemp("teacher")
    dft_teacher = tiny_ani_model(seed=11, ensemble_size=1, hidden=(16, 8, 8)).double()
    cc_teacher = tiny_ani_model(seed=11, ensemble_size=1, hidden=(16, 8, 8)).double()
    with torch.no_grad():  # the "CC" labels: other per-element offsets and a changed layer 2
        cc_teacher.set_reference_energies({"H": -0.52, "C": -37.85, "N": -54.55, "O": -75.06})
        for network in cc_teacher.networks.values():
            network.weights[1].mul_(0.5)
    paths = {"dft": folder / "dft.h5", "cc": folder / "cc.h5"}
    write_ani_h5(teacher_dataset(dft_teacher, conformations=6, seed=1), paths["dft"])
    write_ani_h5(teacher_dataset(cc_teacher, conformations=6, seed=2, with_forces=False,
                                 level="teacher-cc"), paths["cc"])
    (folder / "test-molecules.txt").write_text("# held out\nCH3CH2OH\nCH3OCH3\n")
    paths["test"] = folder / "test-molecules.txt"
    return paths


@pytest.fixture(scope="module")
def trained_base(teacher_files: dict[str, Path]) -> TrainingResult:
    """The tiny ANI ensemble trained on the 'DFT' teacher set (shared by several tests)."""
    return train(parse_recipe(_recipe(teacher_files["dft"])))


def _recipe(data: Path, **training: object) -> dict[str, object]:
    options = {"ensemble_size": 2, "max_epochs": 25, "batch_size": 16, "learning_rate": 1e-2,
               "force_weight": 1.0, **training}
    return {"name": "tiny", "model": {"architecture": "ani", "config": TINY_ANI},
            "data": {"train": [str(data)]}, "training": options}


def test_reference_energy_fit_recovers_element_energies() -> None:
    model = tiny_ani_model(ensemble_size=1)
    teacher = tiny_ani_model(seed=3, ensemble_size=1).double()
    graphs, _ = prepare_graphs(teacher_dataset(teacher, conformations=2), model)
    truth = np.array([-13.1, -1030.2, -1480.5, -2040.7])
    for graph in graphs:
        object.__setattr__(graph, "energy", float(graph.counts @ truth))
    fitted = fit_reference_energies(graphs, model.elements)
    np.testing.assert_allclose(list(fitted.values()), truth, rtol=0, atol=1e-8)


def test_training_learns_teacher_and_beats_reference_fit(
        teacher_files: dict[str, Path], trained_base: TrainingResult) -> None:
    from ase_mlpot.datasets import read_dataset

    result = trained_base
    model = copy.deepcopy(result.model).double()
    assert model.ensemble_size == 2
    dataset = read_dataset(teacher_files["dft"])
    graphs, _ = prepare_graphs(dataset, model)
    counts = np.stack([g.counts for g in graphs])
    energies = np.array([g.energy for g in graphs])
    molecules = np.array([g.molecule for g in graphs])
    offsets = np.array(list(fit_reference_energies(graphs, model.elements).values()))
    # what reference energies alone achieve (the untrained, zero-output network)
    linear_rmse = np.sqrt(np.mean((energies - counts @ offsets) ** 2))
    spread = np.concatenate([energies[molecules == m] - energies[molecules == m].mean()
                             for m in set(molecules)])
    force_rms = np.sqrt(np.mean(np.concatenate([g.forces.numpy().ravel() for g in graphs])**2))
    metrics = evaluate_model(model, dataset)
    # each member sees only its training folds; absolute energies of a random teacher do not
    # transfer to unseen molecules (measured: 1.004 × the linear fit's error), but they must not
    # get more than 5 % worse than the linear fit
    assert metrics["energy"]["rmse_ev"] < 1.05 * linear_rmse
    assert (metrics["relative_conformer_energy_centred"]["rmse_ev"]
            < np.sqrt(np.mean(spread**2)) / 2)
    assert metrics["forces"]["rmse_ev_per_a"] < force_rms / 2
    assert {"energy_after_element_offset", "ensemble_calibration"} <= set(metrics)
    for member in result.summary["members"]:
        assert member["train_molecules"] + member["valid_molecules"] == 18
        assert member["valid_molecules"] > 0
    assert sum(m["valid_molecules"] for m in result.summary["members"]) == 18  # k-fold


def test_smallest_molecules_train_every_member(teacher_files: dict[str, Path]) -> None:
    """always_train_max_heavy_atoms = 1: water, methane and ammonia are in no validation fold
    and in every member's training set."""
    document = _recipe(teacher_files["dft"], max_epochs=1, always_train_max_heavy_atoms=1)
    summary = train(parse_recipe(document)).summary
    assert summary["always_trained_molecules"] == ["CH4", "H2O", "NH3"]
    members = summary["members"]
    assert sum(m["valid_molecules"] for m in members) == 18 - 3  # k-fold over the others
    for member in members:
        assert member["train_molecules"] + member["valid_molecules"] == 18
    with pytest.raises(RecipeError, match="always_train_max_heavy_atoms"):
        parse_recipe(_recipe(teacher_files["dft"], always_train_max_heavy_atoms=-1))
    everything = _recipe(teacher_files["dft"], max_epochs=1, always_train_max_heavy_atoms=9)
    with pytest.raises(RecipeError, match="18 more in every member's training set"):
        train(parse_recipe(everything))


def test_interrupted_training_resumes_to_identical_weights(teacher_files: dict[str, Path],
                                                           tmp_path: Path) -> None:
    document = _recipe(teacher_files["dft"], ensemble_size=1, max_epochs=4)
    straight = train(parse_recipe(document), workdir=tmp_path / "straight").model
    first = _recipe(teacher_files["dft"], ensemble_size=1, max_epochs=2)
    train(parse_recipe(first), workdir=tmp_path / "resumed")
    metrics = (tmp_path / "resumed" / "member-0" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 3  # epoch 0 (the starting model), 1, 2
    resumed = train(parse_recipe(document), workdir=tmp_path / "resumed").model
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    epochs = [json.loads(line)["epoch"] for line in
              (tmp_path / "resumed" / "member-0" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2, 3, 4]
    changed = _recipe(teacher_files["dft"], ensemble_size=1, max_epochs=4, learning_rate=1e-3)
    with pytest.raises(RecipeError, match="other options or data"):
        train(parse_recipe(changed), workdir=tmp_path / "resumed")


def test_members_held_elsewhere_are_trained_last_with_the_same_result(
        teacher_files: dict[str, Path], tmp_path: Path) -> None:
    """A member claimed by another process is skipped, then taken (or resumed) once free."""
    document = _recipe(teacher_files["dft"], ensemble_size=2, max_epochs=2)
    straight = train(parse_recipe(document)).model
    work = tmp_path / "shared"
    holder = contextlib.ExitStack()
    holder.enter_context(claim_member(work, 0, wait=True))  # "another process" holds member 0
    order: list[int] = []

    def finished(member: int, report: dict[str, object]) -> None:
        order.append(member)
        holder.close()  # it lets go once this process has finished member 1

    with contextlib.ExitStack() as probe:
        assert not probe.enter_context(claim_member(work, 0, wait=False))
    shared = train(parse_recipe(document), workdir=work, on_member=finished).model
    assert order == [1, 0]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, shared.state_dict()[key]), key


def test_parallel_members_equal_a_sequential_run(teacher_files: dict[str, Path],
                                                 tmp_path: Path) -> None:
    document = _recipe(teacher_files["dft"], ensemble_size=2, max_epochs=2)
    straight = train(parse_recipe(document)).model
    with pytest.raises(RecipeError, match="needs a work folder"):
        train(parse_recipe(document), jobs=2)
    parallel = train(parse_recipe(document), workdir=tmp_path / "work", jobs=2).model
    for key, value in straight.state_dict().items():
        assert torch.equal(value, parallel.state_dict()[key]), key
    # each member was trained once: by this process or by the helper, never by both
    for member in range(2):
        metrics = (tmp_path / "work" / f"member-{member}" / "metrics.jsonl").read_text()
        assert [json.loads(line)["epoch"] for line in metrics.splitlines()] == [0, 1, 2]


def test_moving_average_of_the_weights(teacher_files: dict[str, Path], tmp_path: Path) -> None:
    """With ``ema_decay`` d, the validated weights are θ̄ ← d θ̄ + (1 − d) θ after every step
    (one step per epoch here), the returned model is the best θ̄, and resuming restores θ̄."""
    from ase_mlpot.datasets import read_dataset
    from ase_mlpot.training import TrainingOptions, train_member

    graphs, _ = prepare_graphs(read_dataset(teacher_files["dft"]), tiny_ani_model(ensemble_size=1))
    train_graphs, valid_graphs = graphs[::2], graphs[1::2]

    def run(epochs: int, folder: str) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        options = TrainingOptions(ensemble_size=1, max_epochs=epochs, force_weight=0.1,
                                  batch_size=len(train_graphs), ema_decay=0.75, dtype="float64")
        model = tiny_ani_model(ensemble_size=1).double()
        trained, _ = train_member(model, train_graphs, valid_graphs, options, seed=0,
                                  workdir=tmp_path / folder)
        saved = torch.load(tmp_path / folder / "checkpoint.pt", weights_only=True)
        return trained.state_dict(), saved

    start = tiny_ani_model(ensemble_size=1).double().state_dict()
    _, one = run(1, "resumed")
    trained, two = run(2, "straight")
    resumed, again = run(2, "resumed")  # continues the one-epoch run
    assert again["state"]["history"][1] == one["state"]["history"][1]  # epoch 1 was not rerun
    trainable = [k for k in start if k.startswith("networks.")]
    assert trainable
    for key in trainable:
        torch.testing.assert_close(one["averaged"][key],
                                   0.75 * start[key] + 0.25 * one["model"][key])
        torch.testing.assert_close(two["averaged"][key],
                                   0.75 * one["averaged"][key] + 0.25 * two["model"][key])
        assert not torch.equal(two["averaged"][key], two["model"][key])
        assert torch.equal(again["averaged"][key], two["averaged"][key]), key  # θ̄ was restored
    best = {0: start, 1: one["averaged"], 2: two["averaged"]}[two["state"]["best_epoch"]]
    for key, value in trained.items():
        assert torch.equal(value, two["state"]["best_model"][key]), key
        torch.testing.assert_close(value, best[key])
        assert torch.equal(value, resumed[key]), key
    with pytest.raises(ValueError, match="ema_decay"):
        TrainingOptions(ema_decay=1.0)


def test_finetuning_keeps_frozen_layers_bit_identical(teacher_files: dict[str, Path]) -> None:
    """Transfer learning from the 'DFT' teacher itself to the 'CC' labels (same layers 1 and 3,
    layer 2 halved, other reference energies): training layer 2 and the output layer can
    reach the new labels, while layers 1 and 3 stay bit-identical."""
    base = tiny_ani_model(seed=11, ensemble_size=1, hidden=(16, 8, 8)).double()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    document = {"name": "tiny-cc", "data": {"train": [str(teacher_files["cc"])],
                                            "test_molecules": str(teacher_files["test"])},
                "finetune": {"base": "unused"},
                "training": {"ensemble_size": 2, "max_epochs": 30, "batch_size": 8,
                             "learning_rate": 5e-4, "force_weight": 0.0, "dtype": "float64"}}
    result = train(parse_recipe(document), base_model=base,
                   base_provenance={"name": "teacher", "weights_sha256": "0" * 64})
    tuned = result.model
    frozen = set(result.summary["frozen_parameters"])
    assert frozen == {f"networks.{s}.{k}.{layer}" for s in "HCNO"
                      for k in ("weights", "biases") for layer in (0, 2)}
    for key, value in tuned.state_dict().items():
        layer = int(key.rsplit(".", 1)[1])
        for member in range(2):
            unchanged = torch.equal(value[member], base_state[key][0])
            assert unchanged == (layer in (0, 2)), (key, member)
    # the held-out molecules are gone from training and validation: 16 of 18 molecules remain
    assert result.summary["conformations"] == 16 * 6 and result.summary["molecules"] == 16
    assert result.summary["force_labelled"] == 0
    assert result.summary["parent"]["name"] == "teacher"
    # both members start from the base's only member, and the record says so
    assert [m["parent_member"] for m in result.summary["members"]] == [0, 0]
    for key, value in base.state_dict().items():  # the caller's base model is not modified
        assert torch.equal(value, base_state[key]), key
    from ase_mlpot.datasets import read_dataset

    cc = read_dataset(teacher_files["cc"])
    refit_only = copy.deepcopy(base)  # what the reference-energy refit alone achieves
    refit_only.set_reference_energies(tuned.reference_energy_dict())
    before = evaluate_model(refit_only, cc, molecules=["CH3CH2OH", "CH3OCH3"])
    after = evaluate_model(tuned, cc, molecules=["CH3CH2OH", "CH3OCH3"])  # held out
    for metric in ("energy", "relative_conformer_energy"):
        assert after[metric]["rmse_ev"] < before[metric]["rmse_ev"] / 1.5, metric


def test_so3krates_finetunes_with_its_default_freeze() -> None:
    teacher = tiny_so3krates(seed=5).double()
    dataset = teacher_dataset(teacher, conformations=4, seed=3)
    base = tiny_so3krates(seed=6, ensemble_size=2)
    graphs, _ = prepare_graphs(dataset, base)
    from ase_mlpot.training import TrainingOptions, train_member

    member = base.member(1)
    before = {k: v.clone() for k, v in member.state_dict().items()}
    fixed = {n for n, p in member.named_parameters() if not p.requires_grad}  # head scale/shift
    assert fixed == {"members.0.head.scale", "members.0.head.shift"}
    frozen = freeze_parameters(member, member.transfer_learning_frozen())
    assert frozen and all(n.startswith(("members.0.embedding", "members.0.layers.0"))
                          for n in frozen)
    options = TrainingOptions(ensemble_size=1, max_epochs=3, batch_size=8, force_weight=0.1)
    trained, report = train_member(member, graphs[::2], graphs[1::2], options, seed=0)
    assert report["epochs"] == 3
    for name, value in trained.state_dict().items():
        assert torch.equal(value, before[name]) == (name in frozen or name in fixed), name


def test_recipe_errors_are_named(tmp_path: Path, teacher_files: dict[str, Path]) -> None:
    with pytest.raises(RecipeError, match="unknown keys"):
        parse_recipe({**_recipe(teacher_files["dft"]), "training": {"learning_rat": 1e-3}})
    with pytest.raises(RecipeError, match="exactly one"):
        parse_recipe({**_recipe(teacher_files["dft"]), "finetune": {"base": "x"}})
    with pytest.raises(RecipeError, match="lr_factor"):
        parse_recipe(_recipe(teacher_files["dft"], lr_factor=2.0))
    model = tiny_ani_model(ensemble_size=1)
    with pytest.raises(RecipeError, match="matches no parameter"):
        freeze_parameters(model, ["networks.*.weight.0"])
    (tmp_path / "bad.toml").write_text("name = 'x'\n[data\n")
    with pytest.raises(RecipeError, match=r"bad\.toml"):
        load_recipe(tmp_path / "bad.toml")
    (tmp_path / "bad.yaml").write_text("name: x\ndata: [unclosed\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml"):
        load_recipe(tmp_path / "bad.yaml")
    (tmp_path / "list.yml").write_text("- name\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(tmp_path / "list.yml")
    # the architecture's own validation runs when the recipe is read, not at training time
    so3 = {**_recipe(teacher_files["dft"]),
           "model": {"architecture": "so3krates", "config": {"num_features": 64,
                                                             "degrees": [1, 2, 3]}}}
    with pytest.raises(RecipeError, match=r"\[model.config\].*divisible"):
        parse_recipe(so3)
    with pytest.raises(RecipeError, match="unknown architecture 'mace'"):
        parse_recipe({**so3, "model": {"architecture": "mace"}})
    # YAML can give sections that TOML cannot: empty ones are empty, scalars are errors
    assert parse_recipe({**_recipe(teacher_files["dft"]), "training": None}).training.max_epochs
    with pytest.raises(RecipeError, match=r"\[model\] must be a table"):
        parse_recipe({**_recipe(teacher_files["dft"]), "model": "ani"})
    one_file = {**_recipe(teacher_files["dft"]),
                "data": {"train": "cc.jsonl", "forces_from": "dft.jsonl"}}
    data = parse_recipe(one_file).data  # a single file needs no list
    assert (data.train, data.forces_from) == (("cc.jsonl",), ("dft.jsonl",))


def test_forces_from_another_level_reach_the_same_geometries(
        teacher_files: dict[str, Path], tmp_path: Path) -> None:
    """Energy-only labels borrow the forces of identical geometries from another file (the
    zoo's CC fine-tuning with wB97X forces); geometries the donor lacks stay energy-only."""
    from ase_mlpot.datasets import read_dataset
    from ase_mlpot.training import attach_forces

    dft = read_dataset(teacher_files["dft"])
    energy_only = dataclasses.replace(dft, level_of_theory="teacher-cc", groups={
        name: dataclasses.replace(group, forces=None, energies=group.energies + 0.01)
        for name, group in dft.groups.items()})
    donor_groups = {name: group.select(np.arange(len(group)) % 2 == 0)
                    for name, group in dft.groups.items()}  # every other conformation
    write_ani_h5(energy_only, tmp_path / "cc.h5")
    write_ani_h5(dataclasses.replace(dft, groups=donor_groups), tmp_path / "donor.h5")

    target = read_dataset(tmp_path / "cc.h5")
    needing, attached, levels = attach_forces(target, [read_dataset(tmp_path / "donor.h5")])
    donated = sum(len(g) for g in donor_groups.values())
    assert (needing, attached, levels) == (dft.n_conformations, donated, {"teacher"})
    own = read_dataset(teacher_files["dft"])  # groups with their own forces stay as they are
    assert attach_forces(own, [energy_only])[:2] == (0, 0)
    for name, group in own.groups.items():
        np.testing.assert_array_equal(group.forces, dft.groups[name].forces)
    for name, group in target.groups.items():
        np.testing.assert_array_equal(group.forces[::2], dft.groups[name].forces[::2])
        assert np.isnan(group.forces[1::2]).all()
    graphs, _ = prepare_graphs(target, tiny_ani_model(ensemble_size=1))
    assert sum(g.forces is not None for g in graphs) == donated

    def summary(**changes: object) -> dict[str, object]:
        document = _recipe(tmp_path / "cc.h5", ensemble_size=1, max_epochs=1, **changes)
        document["data"]["forces_from"] = [str(tmp_path / "donor.h5")]
        return train(parse_recipe(document)).summary

    anchored = summary()
    assert anchored["force_labelled"] == donated
    # validation scores the level's own labels: energies only here
    assert all("force_rmse" not in member["best"] for member in anchored["members"])
    assert anchored["forces_level_of_theory"] == "teacher"
    assert anchored["forces_borrowed"] == donated
    assert anchored["level_of_theory"] == "teacher-cc"
    energies_only = summary(force_weight=0.0)  # forces_from ignored, with a warning
    assert energies_only["force_labelled"] == 0
    assert energies_only["forces_level_of_theory"] is None
    assert energies_only["data_sha256"] != anchored["data_sha256"]
    teacher = tiny_ani_model(seed=11, ensemble_size=1, hidden=(16, 8, 8)).double()
    write_ani_h5(teacher_dataset(teacher, conformations=2, seed=7), tmp_path / "unrelated.h5")
    document = _recipe(tmp_path / "cc.h5", ensemble_size=1, max_epochs=1)
    document["data"]["forces_from"] = [str(tmp_path / "missing.h5")]
    with pytest.raises(DatasetError, match=r"missing\.h5"):
        train(parse_recipe(document))
    document["data"]["forces_from"] = [str(tmp_path / "unrelated.h5")]
    with pytest.raises(RecipeError, match="none of the 108 training geometries without forces"):
        train(parse_recipe(document))


def test_weight_decay_groups(teacher_files: dict[str, Path]) -> None:
    from ase_mlpot.training import parameter_groups

    recipe = parse_recipe(_recipe(teacher_files["dft"], weight_decay=0.0, weight_decay_groups={
        "networks.*.weights.0": 1e-4, "networks.*.weights.*": 1e-6}))
    options = recipe.training
    assert options.weight_decay_groups == (("networks.*.weights.0", 1e-4),
                                           ("networks.*.weights.*", 1e-6))
    model = tiny_ani_model(ensemble_size=1)
    model.get_parameter("networks.H.weights.1").requires_grad_(False)  # frozen: in no group
    decays = {id(p): group["weight_decay"] for group in parameter_groups(model, options)
              for p in group["params"]}
    for name, parameter in model.named_parameters():
        expected = (None if not parameter.requires_grad else 1e-4 if name.endswith("weights.0")
                    else 1e-6 if ".weights." in name else 0.0)  # first match wins; biases: 0
        assert decays.get(id(parameter)) == expected, name
    with pytest.raises(RecipeError, match=r"weight_decay_groups pattern 'networks\.\*\.weight\.0'"):
        parameter_groups(model, dataclasses.replace(
            options, weight_decay_groups=(("networks.*.weight.0", 1e-4),)))
    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(RecipeError, match="decays >= 0"):
            parse_recipe(_recipe(teacher_files["dft"], weight_decay_groups={"networks.*": bad}))
    for bad in (None, ["networks.*"], 3):
        with pytest.raises(RecipeError, match="weight_decay_groups must map"):
            parse_recipe(_recipe(teacher_files["dft"], weight_decay_groups=bad))
    # the list-of-pairs form that training.json stores reads back to the same options
    as_pairs = parse_recipe(_recipe(teacher_files["dft"], weight_decay=0.0, weight_decay_groups=[
        ["networks.*.weights.0", 1e-4], ["networks.*.weights.*", 1e-6]])).training
    assert as_pairs == options and hash(as_pairs) == hash(options)


def test_yaml_recipe_equals_toml(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(
        'name = "r"\n[model]\narchitecture = "ani"\n[model.config.hidden_layers]\n'
        'H = [16, 8]\nC = [16, 8]\nN = [16, 8]\nO = [16, 8]\n'
        '[data]\ntrain = ["a.jsonl"]\n[training]\nmax_epochs = 7\nlearning_rate = 1e-3\n')
    (tmp_path / "r.yaml").write_text(
        "name: r\nmodel:\n  architecture: ani\n  config:\n    hidden_layers:\n"
        "      {H: [16, 8], C: [16, 8], N: [16, 8], O: [16, 8]}\n"
        "data:\n  train: a.jsonl\ntraining:\n  max_epochs: 7\n  learning_rate: 1.0e-3\n")
    assert load_recipe(tmp_path / "r.yaml") == load_recipe(tmp_path / "r.toml")


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "zoo" / "recipes")
                                        .glob("*.toml")), ids=lambda p: p.stem)
def test_zoo_recipes_are_valid(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    if recipe.finetune is None:
        assert recipe.model is not None and recipe.model.build_config() is not None


def test_cli_train_evaluate_finetune(teacher_files: dict[str, Path], tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'name = "tiny-dft"\ndescription = "tiny test model"\n'
        '[model]\narchitecture = "ani"\n'
        '[model.config.hidden_layers]\nH = [16, 8, 8]\nC = [16, 8, 8]\nN = [16, 8, 8]\n'
        'O = [16, 8, 8]\n'
        f'[data]\ntrain = ["{teacher_files["dft"]}"]\ntest_molecules = "{teacher_files["test"]}"\n'
        '[training]\nensemble_size = 2\nmax_epochs = 6\nbatch_size = 16\n')
    runner = CliRunner()
    out = tmp_path / "tiny-dft"
    result = runner.invoke(main, ["train", str(recipe), "-o", str(out), "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == str(out)
    artifact = load_artifact(out)
    assert artifact.model.ensemble_size == 2 and artifact.name == "tiny-dft"
    summary = json.loads((out / "training.json").read_text())
    assert summary["held_out_molecules"] == ["CH3CH2OH", "CH3OCH3"]
    assert not (tmp_path / ".tiny-dft.training").exists()
    result = runner.invoke(main, ["evaluate", str(out), str(teacher_files["dft"]),
                                  "--molecules", str(teacher_files["test"]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["molecules"] == 2 and report["conformations"] == 12
    assert report["isomerization_energy"]["count"] == 1  # ethanol / dimethyl ether
    result = runner.invoke(main, ["evaluate", str(out), str(teacher_files["dft"])])
    assert result.exit_code == 0 and "relative conformer energies" in result.output
    result = runner.invoke(main, ["evaluate", str(out), str(teacher_files["dft"]),
                                  "--out-of-fold", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the two held-out molecules are left out
    assert report["molecules"] == 16 and sum(report["folds"]) == report["conformations"] == 96
    summary = json.loads((out / "training.json").read_text())  # and so are always-trained ones
    summary["always_trained_molecules"] = ["H2O"]
    (out / "training.json").write_text(json.dumps(summary))
    result = runner.invoke(main, ["evaluate", str(out), str(teacher_files["dft"]),
                                  "--out-of-fold", "--json"])
    assert json.loads(result.stdout)["molecules"] == 15
    assert "ensemble_calibration" not in report
    result = runner.invoke(main, ["evaluate", str(out), str(teacher_files["dft"]),
                                  "--out-of-fold", "--molecules", str(teacher_files["test"])])
    assert result.exit_code == 2 and "exclude each other" in result.output
    tuned = tmp_path / "tiny-cc"
    result = runner.invoke(main, ["finetune", str(out), str(teacher_files["cc"]), "-o",
                                  str(tuned), "--max-epochs", "3", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tuned / "training.json").read_text())
    assert summary["parent"]["weights_sha256"] == artifact.weights_sha256
    assert len(summary["frozen_parameters"]) == 16
    result = runner.invoke(main, ["finetune", str(out), str(teacher_files["cc"]), "-o",
                                  str(tuned), "--max-epochs", "1"])
    assert result.exit_code == 1 and "already holds a model" in result.output
    result = runner.invoke(main, ["finetune", str(out), str(teacher_files["cc"]), "-o",
                                  str(tmp_path / "other"), "--freeze", "networks.*.nope"])
    assert result.exit_code == 1 and "matches no parameter" in result.output
    result = runner.invoke(main, ["evaluate", "ccx-genral", str(teacher_files["dft"])])
    assert result.exit_code == EXIT_UNKNOWN_MODEL and "ccx-general" in result.output


@pytest.mark.parametrize("factory", [tiny_ani_model, tiny_so3krates])
def test_members_split_and_join_exactly(factory: object) -> None:
    from ase_mlpot import keys
    from ase_mlpot.data.batch import atoms_to_batch, batch_to_device
    from ase_mlpot.models.outputs import compute_outputs
    from ase_mlpot.testing import organic_molecule

    ensemble = factory(ensemble_size=3).double()  # type: ignore[operator]
    members = [ensemble.member(k) for k in range(3)]
    joined = type(ensemble).from_members(members)
    for key, value in ensemble.state_dict().items():
        assert torch.equal(value, joined.state_dict()[key]), key
    batch = batch_to_device(
        atoms_to_batch(organic_molecule(), elements=ensemble.atomic_numbers,
                       cutoff=ensemble.cutoff), dtype=torch.float64, device="cpu")
    member_energies = compute_outputs(ensemble, batch, forces=False)[keys.MEMBER_ENERGIES]
    for k, member in enumerate(members):
        single = compute_outputs(member, batch, forces=False)[keys.TOTAL_ENERGY]
        torch.testing.assert_close(member_energies[k], single, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="one configuration"):
        type(ensemble).from_members([members[0], ensemble])
    with pytest.raises(IndexError):
        ensemble.member(3)


def test_evaluation_metrics_on_designed_errors() -> None:
    """Errors built to be pure per-element offsets, or per-molecule constants, land in the
    metrics that must (and must not) see them."""
    from ase_mlpot.training import evaluate_graphs

    teacher = tiny_ani_model(seed=3, ensemble_size=1).double()
    graphs, _ = prepare_graphs(teacher_dataset(teacher, conformations=3, seed=4), teacher)
    predicted = evaluate_graphs(teacher, graphs)
    assert predicted["energy"]["rmse_ev"] < 1e-9  # the teacher reproduces its own labels
    delta = np.array([0.01, -0.2, 0.05, 0.3])  # eV per H, C, N, O
    offset = [dataclasses.replace(g, energy=g.energy - float(g.counts @ delta)) for g in graphs]
    metrics = evaluate_graphs(teacher, offset)
    assert metrics["energy"]["rmse_ev"] > 0.1
    assert metrics["energy_after_element_offset"]["rmse_ev"] < 1e-9
    assert metrics["relative_conformer_energy"]["rmse_ev"] < 1e-9
    assert metrics["isomerization_energy"]["rmse_ev"] < 1e-9
    shift = {"CH3CH2OH": 0.3, "CH3OCH3": -0.1}  # isomers; every other molecule unshifted
    shifted = [dataclasses.replace(g, energy=g.energy - shift.get(g.molecule, 0.0))
               for g in graphs]
    metrics = evaluate_graphs(teacher, shifted)
    assert metrics["relative_conformer_energy"]["rmse_ev"] < 1e-9
    assert metrics["isomer_pairs"] == ["CH3CH2OH/CH3OCH3", "CH3COOH/HCOOCH3"]
    assert metrics["isomerization_energy"]["mae_ev"] == pytest.approx(0.2, abs=1e-9)  # 0.4, 0
    assert metrics["energy_after_element_offset"]["rmse_ev"] > 0.01
    pairs = [g for g in graphs if g.molecule == "H2O"]
    noisy = [dataclasses.replace(g, energy=g.energy - 0.1 * i) for i, g in enumerate(pairs)]
    water = evaluate_graphs(teacher, noisy)["relative_conformer_energy"]
    # errors 0, 0.1, 0.2: pair differences 0.1, 0.2, 0.1
    assert water["rmse_ev"] == pytest.approx(np.sqrt((0.01 + 0.04 + 0.01) / 3), abs=1e-9)


def test_out_of_fold_errors_come_from_each_molecules_own_fold_member() -> None:
    """Member 0 is the labelling teacher, member 1 another network: out of fold, exactly the
    molecules of fold 0 are predicted without error."""
    from ase_mlpot.datasets.splits import molecule_fold
    from ase_mlpot.training import evaluate_out_of_fold

    teacher = tiny_ani_model(seed=3, ensemble_size=1).double()
    other = tiny_ani_model(seed=5, ensemble_size=1).double()
    other.set_reference_energies(teacher.reference_energy_dict())
    ensemble = type(teacher).from_members([teacher, other])
    dataset = teacher_dataset(teacher, conformations=3, seed=4)
    metrics = evaluate_out_of_fold(ensemble, dataset, split_seed=7, exclude_molecules=["H2O"])
    per_molecule = metrics["relative_conformer_energy_per_molecule"]
    assert "H2O" not in per_molecule and len(per_molecule) == metrics["molecules"]
    folds = {m: molecule_fold(m, 2, 7) for m in per_molecule}
    assert set(folds.values()) == {0, 1}
    for molecule, stats in per_molecule.items():
        assert (stats["rmse_ev"] < 1e-9) == (folds[molecule] == 0), molecule
    assert metrics["folds"] == [3 * list(folds.values()).count(f) for f in (0, 1)]
    assert "forces" in metrics and "ensemble_calibration" not in metrics
    with pytest.raises(ValueError, match="one member"):
        evaluate_out_of_fold(teacher, dataset, split_seed=7)


def test_out_of_fold_settings_come_from_the_training_record(tmp_path: Path) -> None:
    from ase_mlpot.training.evaluate import out_of_fold_settings

    record = tmp_path / "training.json"
    with pytest.raises(ValueError, match="folds of the model's members are unknown"):
        out_of_fold_settings(record)
    record.write_text(json.dumps({"recipe": {"training": {}}}))
    with pytest.raises(ValueError, match="names no split seed"):
        out_of_fold_settings(record)
    record.write_text(json.dumps({"recipe": {"training": {"split_seed": 3}},
                                  "held_out_molecules": ["A"],
                                  "always_trained_molecules": ["H2O"]}))
    assert out_of_fold_settings(record) == (3, ["A", "H2O"])


def test_so3krates_recipe_trains_an_ensemble(teacher_files: dict[str, Path]) -> None:
    document = {"name": "tiny-so3", "model": {"architecture": "so3krates", "config": {
        "num_features": 16, "num_heads": 2, "num_layers": 2, "degrees": [1, 2],
        "num_radial_basis": 8, "energy_regression_dim": 16, "cutoff": 4.0}},
        "data": {"train": [str(teacher_files["dft"])]},
        "training": {"ensemble_size": 2, "max_epochs": 3, "batch_size": 16,
                     "learning_rate": 3e-3, "force_weight": 1.0}}
    result = train(parse_recipe(document))
    assert result.model.architecture == "so3krates" and result.model.ensemble_size == 2
    for member in result.summary["members"]:
        history = member["history"]
        assert [h["epoch"] for h in history] == [0, 1, 2, 3]
        assert member["best"]["loss"] < history[0]["valid_loss"]  # better than the start
