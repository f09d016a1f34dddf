"""``hepgen fit`` on a physicist's own files: columns, weights and jagged branches chosen on the command line."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

import hepgen
from hepgen.cli import main
from hepgen.data import io
from tests.helpers import run_cli, run_cli_for_error


@pytest.fixture
def tree(tmp_path):
    """A TTree 'events': flat a, b, c, a per-event weight and a jagged jet_pt[nJet] (with its counter)."""
    rng = np.random.default_rng(5)
    n = 3000
    abc = rng.normal([1.0, -1.0, 0.5], [1.0, 0.5, 2.0], size=(n, 3))
    weight = np.where(abc[:, 0] > 1.0, 3.0, 0.5)  # shifts the weighted mean of a well away from the plain one
    counts = rng.integers(0, 4, n)
    jet_pt = ak.unflatten(rng.uniform(20, 100, int(counts.sum())), counts)
    path = tmp_path / "tree.root"
    with uproot.recreate(path) as handle:
        t = handle.mktree("events", {"a": "f8", "b": "f8", "c": "f8", "weight": "f8", "jet_pt": jet_pt.type},
                          counter_name=lambda name: "nJet")
        t.extend({"a": abc[:, 0], "b": abc[:, 1], "c": abc[:, 2], "weight": weight, "jet_pt": jet_pt})
    padded = ak.to_numpy(ak.fill_none(ak.pad_none(jet_pt, 2, axis=1, clip=True), 0.0))
    return path, abc, weight, padded


def _fitted(run):
    return yaml.safe_load((run / "config.yaml").read_text())


GAUSS = ["--epochs", "40", "--lr", "0.05", "--preprocess", "none", "--val-fraction", "0", "-q"]


def test_weight_branch_and_jagged_branch_need_a_selection(tmp_path, tree, capsys):
    path, *_ = tree
    code, _, err = run_cli(capsys, "fit", "nsf", f"{path}:events", "--weights", "weight", "--out", tmp_path / "r")
    assert code == 2 and "'jet_pt'" in err and "--jagged-length" in err and "--columns" in err
    assert not (tmp_path / "r").exists()


def test_fit_nsf_on_chosen_branches_of_a_tree_with_a_weight_branch(tmp_path, tree, capsys):
    path, *_ = tree
    run = tmp_path / "nsf"
    code, _, err = run_cli(capsys, "fit", "nsf", f"{path}:events", "--weights", "weight", "--columns", "a,b,c",
                           "--out", run, "--epochs", 1, "--transforms", 1, "--hidden", "8,8", "-q")
    assert code == 0, err
    assert _fitted(run)["fitted"]["columns"] == ["a", "b", "c"]
    assert hepgen.load(run).sample(5).shape == (5, 3)


def test_weights_follow_the_columns_and_reach_the_loss(tmp_path, tree, capsys):
    """Weighted maximum likelihood of a Gaussian is the weighted mean: independent check with np.average."""
    path, abc, weight, _ = tree
    run = tmp_path / "g"
    code, _, err = run_cli(capsys, "fit", "gaussian", f"{path}:events", "--weights", "weight", "--columns", "a,b",
                           "--out", run, *GAUSS)
    assert code == 0, err
    mean = hepgen.load(run).mean_.detach().numpy()
    expected = np.average(abc[:, :2], weights=weight, axis=0)
    assert abs(expected[0] - abc[:, 0].mean()) > 0.5  # the weights matter here
    np.testing.assert_allclose(mean, expected, atol=0.05)


def test_branch_level_key_selects_like_columns(tmp_path, tree, capsys):
    path, abc, weight, _ = tree
    run = tmp_path / "g"
    code, _, err = run_cli(capsys, "fit", "gaussian", f"{path}:events/b,a", "--weights", "weight", "--out", run,
                           *GAUSS)
    assert code == 0, err
    assert _fitted(run)["fitted"]["columns"] == ["b", "a"]
    np.testing.assert_allclose(hepgen.load(run).mean_.detach().numpy(),
                               np.average(abc[:, [1, 0]], weights=weight, axis=0), atol=0.05)


def test_jagged_length_makes_the_jagged_branch_usable(tmp_path, tree, capsys):
    path, abc, weight, padded = tree
    run = tmp_path / "g"
    code, _, err = run_cli(capsys, "fit", "gaussian", f"{path}:events", "--weights", "weight", "--exclude", "b,c",
                           "--jagged-length", 2, "--out", run, "--epochs", 40, "--lr", 0.05, "--val-fraction", 0,
                           "-q")  # standard preprocessing: jet pT of ~50 GeV
    assert code == 0, err
    assert _fitted(run)["fitted"]["columns"] == ["a", "jet_pt[0]", "jet_pt[1]"]  # the counter nJet is left out
    features = np.column_stack([abc[:, 0], padded])
    expected = np.average(features, weights=weight, axis=0)
    spread = np.sqrt(np.average((features - expected) ** 2, weights=weight, axis=0))
    error = np.abs(hepgen.load(run).mean_.detach().numpy() - expected) / spread
    assert np.all(error < 0.05), error  # within 5% of a standard deviation (SGD noise; ~0.03 measured)


def test_columns_in_a_config_file_and_on_hdf5(tmp_path, capsys):
    x = np.random.default_rng(2).normal(size=(500, 4)).astype(np.float32)
    data = io.write(tmp_path / "d.h5:jets", x, columns=["pt", "eta", "phi", "m"])
    (tmp_path / "c.yaml").write_text("columns: [pt, m]\nepochs: 1\n")
    run = tmp_path / "r"
    code, _, err = run_cli(capsys, "fit", "gaussian", f"{data}:jets", "-c", tmp_path / "c.yaml", "--out", run, "-q")
    assert code == 0, err
    assert _fitted(run)["fitted"]["columns"] == ["pt", "m"]
    code, _, err = run_cli(capsys, "fit", "gaussian", f"{data}:jets", "--exclude", "eta", "--out", tmp_path / "r2",
                           "--epochs", 1, "-q", "--val", f"{data}:jets")
    assert code == 0, err  # the validation file gets the same selection
    assert _fitted(tmp_path / "r2")["fitted"]["columns"] == ["pt", "phi", "m"]


def _help_lines(capsys, name: str) -> dict[str, str]:
    """flag -> its (unwrapped) help text, from 'hepgen fit NAME --help'."""
    assert main(["fit", name, "--help"]) == 0
    out = capsys.readouterr().out
    section = out.split(f"hyper-parameters of {name}", 1)[1].splitlines()[1:]
    flags: dict[str, str] = {}
    current = None
    for line in section:
        if line.startswith("  --"):
            current, _, text = line.strip().partition(" ")
            flags[current] = text.strip()
        elif current and line.strip():
            flags[current] += " " + line.strip()
    return flags


@pytest.mark.parametrize("name, expected", [
    ("nsf", {"--bins": "spline bins K (default: 8)", "--transforms": "number of coupling layers (default: 5)",
             "--hidden": "conditioner MLP hidden sizes (default: 128,128; a comma-separated list)",
             "--tail-bound": "B (in preprocessed units) (default: 5.0)",
             "--coupling": "instead of autoregressive ones (one-pass density) (default: false)"}),
    ("wgan-gp", {"--gp-weight": "(10 was the default before issue 25) (default: 5.0)",
                 "--critic-steps": "critic steps per generator step (k) (default: 5)",
                 "--betas": "Adam betas of both players ((0.5, 0.9) as in WGAN-GP) (default: 0.5,0.9",
                 "--lr-critic": "learning rates of the two players (None: the fit lr) (default: null)",
                 "--latent": "size of the noise vector z (default: 8)"}),
])
def test_fit_model_help_describes_each_hyper_parameter_from_the_docstrings(capsys, name, expected):
    from hepgen.cli.fit import SHAPE_KEYS
    from hepgen.models import model_class

    flags = _help_lines(capsys, name)
    wanted = {f"--{k.replace('_', '-')}" for k in model_class(name).hyperparameters() if k not in SHAPE_KEYS}
    assert set(flags) == wanted
    for flag, text in flags.items():  # every flag has a description before its default
        assert not text.startswith("(default:"), (flag, text)
    for flag, text in expected.items():
        assert text in flags[flag], (flag, flags[flag])


def test_docstring_args_parser_splits_shared_lines_and_follows_pointers():
    from hepgen.cli.fit import _args_entries

    doc = """Title.

    Args:
        a, b: shared text. c: own text
            continued here.
        d: see :class:`Other`.

    Returns:
        e: not an argument.
    """
    assert _args_entries(doc, {"a", "b", "c", "d", "e"}) == {
        "a": "shared text.", "b": "shared text.", "c": "own text continued here.", "d": "see :class:`Other`."}


def test_config_yaml_records_the_command_and_the_config_file(tmp_path, capsys, monkeypatch):
    import shlex

    monkeypatch.chdir(tmp_path)
    np.save("d.npy", np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32))
    (tmp_path / "c.yaml").write_text("epochs: 1\nlr: 0.01\n")
    argv = ["fit", "gaussian", "d.npy", "-c", "c.yaml", "--out", "my run", "--seed", "3", "-q"]
    assert main(argv) == 0, capsys.readouterr().err
    command = _fitted(tmp_path / "my run")["command"]
    assert shlex.split(command["line"]) == ["hepgen", *argv]  # quoted: 'my run' survives
    assert command["cwd"] == str(tmp_path)
    assert command["config_file"] == str(tmp_path / "c.yaml") and command["config"] == {"epochs": 1, "lr": 0.01}
    (tmp_path / "c.yaml").write_text("epochs: 2\n")
    resume = ["fit", "gaussian", "d.npy", "-c", "c.yaml", "--out", "my run", "--seed", "3", "--resume", "-q"]
    assert main(resume) == 0, capsys.readouterr().err
    config = _fitted(tmp_path / "my run")
    assert config["command"]["line"] == command["line"] and config["command"]["config"] == {"epochs": 1, "lr": 0.01}
    assert [shlex.split(line) for line in config["command"]["resumed"]] == [["hepgen", *resume]]
    assert config["model"] == "gaussian" and config["train"]["seed"] == 3
    assert hepgen.load(tmp_path / "my run").sample(3).shape == (3, 2)


@pytest.mark.parametrize("model", ["style-gan", "big-gan", "stack-gan", "pixel-cnn", "conv-vae", "conv-gan"])
def test_an_image_model_given_a_table_names_the_file_and_writes_no_run(tmp_path, capsys, model):
    """The family refuses events of shape (10,) without knowing where they came from; the message named neither
    file nor key ("this data has events of shape (10,)"), so the CLI puts DATA in front of it."""
    from tests.helpers import run_cli_for_error

    import h5py

    with h5py.File(tmp_path / "table.h5", "w") as f:
        f["showers/flat"] = np.random.default_rng(0).uniform(size=(40, 10)).astype(np.float32)
        f["showers/energy"] = np.ones(40, dtype=np.float32)
    argv = ["fit", model, f"{tmp_path / 'table.h5'}:showers/flat", "-o", tmp_path / "run", "--epochs", 1, "-q"]
    if model == "big-gan":
        argv += ["--context", f"{tmp_path / 'table.h5'}:showers/energy"]
    code, err = run_cli_for_error(capsys, argv)
    assert code == 2 and "Traceback" not in err, err
    assert f"{tmp_path / 'table.h5'}:showers/flat: " in err and "(10,)" in err, err
    assert not (tmp_path / "run").exists()
    # a group of two layers: the names were read as image sides ("bad hyper-parameters ... invalid literal for int()")
    with h5py.File(tmp_path / "layers.h5", "w") as f:
        f["showers/layer_1"] = np.ones((40, 12, 12), dtype=np.float32)
        f["showers/layer_2"] = np.ones((40, 12, 6), dtype=np.float32)
    argv[2] = f"{tmp_path / 'layers.h5'}:showers"
    code, err = run_cli_for_error(capsys, argv)
    assert code == 2 and "Traceback" not in err and "hyper-parameters" not in err, err
    assert f"{tmp_path / 'layers.h5'}:showers: " in err and "layer_1 (12, 12), layer_2 (12, 6)" in err, err
    assert not (tmp_path / "run").exists()
    # a refusal of a hyper-parameter does not blame DATA
    io.write(tmp_path / "img.h5:images", np.ones((40, 8, 8), dtype=np.float32))
    code, err = run_cli_for_error(capsys, ["fit", "stack-gan", f"{tmp_path / 'img.h5'}:images", "-o", tmp_path / "r2",
                                           "--coarse-factor", 0, "-q"])
    assert code == 2 and "img.h5" not in err and "coarse_factor" in err, err


def test_conv_vae_help_says_what_latent_channels_and_beta_are(capsys):
    """Issue 25's β-VAE is trained as 'hepgen fit conv-vae --beta B'; its --help gave '--latent (default: 16)' with no
    words and '--beta as for VAE' (the docstring's shared Args line was not read as one per option)."""
    assert main(["fit", "conv-vae", "--help"]) == 0
    lines = capsys.readouterr().out.split("hyper-parameters of conv-vae")[1]
    described = {line.split()[0]: line for line in lines.splitlines() if line.strip().startswith("--")}
    assert "size of z" in described["--latent"] and "channels" in described["--channels"]
    assert "KL" in described["--beta"] and "as for VAE" not in described["--beta"]


def test_a_runs_own_config_yaml_and_a_flat_data_key_are_config_files(tmp_path, capsys):
    """-c RUN/config.yaml repeats a run (its record-only entries, user_code, fitted, data, are skipped); a flat 'data:'
    key names the training events."""
    np.save(tmp_path / "d.npy", np.random.default_rng(1).normal(size=(300, 2)).astype(np.float32))
    (tmp_path / "c.yaml").write_text(f"data: {tmp_path / 'd.npy'}\nepochs: 1\nlr: 0.02\n")
    code, _, err = run_cli(capsys, "fit", "gaussian", "-c", tmp_path / "c.yaml", "--out", tmp_path / "a", "-q")
    assert code == 0, err
    assert _fitted(tmp_path / "a")["train"]["lr"] == 0.02
    code, _, err = run_cli(capsys, "fit", "gaussian", tmp_path / "d.npy", "-c", tmp_path / "a" / "config.yaml",
                           "--out", tmp_path / "b", "-q")
    assert code == 0, err
    assert _fitted(tmp_path / "b")["train"] == _fitted(tmp_path / "a")["train"]


def test_data_may_follow_the_flags(tmp_path, capsys, monkeypatch):
    """argparse takes DATA only right after MODEL; written after flags (training or the model's own, boolean or
    not) it is still the training data, the same run as in the usual order; a second DATA is refused."""
    monkeypatch.chdir(tmp_path)
    np.save("d.npy", np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32))
    usual = ["fit", "vae", "d.npy", "--epochs", "1", "--latent", "3", "--seed", "2", "-q", "-o", "a"]
    later = ["fit", "vae", "--epochs", "1", "--latent", "3", "d.npy", "--seed", "2", "-q", "-o", "b"]
    assert main(usual) == 0 and main(later) == 0, capsys.readouterr().err
    a, b = _fitted(tmp_path / "a"), _fitted(tmp_path / "b")
    assert a["data"] == b["data"] and a["params"] == b["params"] and b["params"]["latent"] == 3 and b["train"]["epochs"] == 1
    wa, wb = (hepgen.load(tmp_path / r).state_dict() for r in "ab")  # the same training, weight for weight
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa)
    code, err = run_cli_for_error(capsys, ["fit", "vae", "--epochs", "1", "d.npy", "e.npy", "-o", "c"])
    assert code == 2 and "'e.npy'" in err and "one DATA" in err and not (tmp_path / "c").exists()
    code, err = run_cli_for_error(capsys, ["fit", "vae", "d.npy", "--epochs", "1", "e.npy", "-o", "c"])
    assert code == 2 and "'e.npy'" in err and not (tmp_path / "c").exists()
