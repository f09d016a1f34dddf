"""hepgen fit phi4-flow (no DATA) and hepgen sample RUN -n N --mcmc."""

import h5py
import numpy as np

from hepgen.cli import main


def test_fit_and_sample_a_chain_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "phi4-flow", "--L", "4", "--m2", "-4", "--lam", "6.975", "--layers", "2", "--channels", "4",
                 "--steps-per-epoch", "5", "--epochs", "1", "--batch-size", "64", "--out", str(run), "-q"]) == 0
    out = tmp_path / "chain.h5"
    assert main(["sample", str(run), "-n", "500", "--mcmc", "-o", str(out), "--seed", "3"]) == 0
    assert "acceptance" in capsys.readouterr().err
    with h5py.File(out) as f:
        configs, acc, accepted = f["configs"][()], float(f["acceptance"][()]), f["accepted"][()]
        assert configs.shape == (500, 4, 4) and f["tau_int"][()] >= 1.0
        np.testing.assert_allclose(f["magnetisation"][()], configs.mean((1, 2)), rtol=1e-5, atol=1e-6)
    assert 0.0 < acc <= 1.0 and acc == np.mean(accepted[1:])
    # rejected steps repeat the previous configuration
    repeat = ~accepted[1:]
    assert np.array_equal(configs[1:][repeat], configs[:-1][repeat])
    # weighted samples: configurations with their log-weights
    weighted = tmp_path / "w.h5"
    assert main(["sample", str(run), "-n", "10", "-o", str(weighted), "-q"]) == 0
    with h5py.File(weighted) as f:
        assert f["samples"].shape == (10, 4, 4) and f["log_weight"].shape == (10,)


def test_bad_options_exit_2_naming_them(tmp_path, capsys):
    assert main(["fit", "phi4-flow", "--lam", "-2", "--steps-per-epoch", "2", "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "'lam'" in capsys.readouterr().err and not (tmp_path / "r").exists()
    run = tmp_path / "ok"
    assert main(["fit", "phi4-flow", "--L", "4", "--layers", "2", "--channels", "4", "--steps-per-epoch", "1",
                 "--epochs", "1", "--batch-size", "8", "--out", str(run), "-q"]) == 0
    assert main(["sample", str(run), "-n", "10", "--mcmc", "-o", str(tmp_path / "c.csv")]) == 2
    assert "-o must be .h5" in capsys.readouterr().err
    assert main(["sample", str(run), "-n", "10", "--unweighted", "-o", str(tmp_path / "c.h5")]) == 2
    assert "--unweighted needs" in capsys.readouterr().err and not (tmp_path / "c.h5").exists()


def test_mcmc_of_a_non_lattice_model_and_a_too_small_lattice_exit_2(tmp_path, capsys):
    events = tmp_path / "x.npy"
    np.save(events, np.random.default_rng(0).normal(size=(200, 2)))
    run = tmp_path / "gauss"
    assert main(["fit", "gaussian", str(events), "--epochs", "1", "--out", str(run), "-q"]) == 0
    capsys.readouterr()
    out = tmp_path / "c.h5"
    assert main(["sample", str(run), "-n", "10", "--mcmc", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--mcmc needs a model trained on a lattice action" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["fit", "phi4-flow", "--L", "1", "--steps-per-epoch", "2", "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "'L'" in err and "Traceback" not in err and not (tmp_path / "r").exists()
