"""The user's own integrand and matrix element through the CLI: fit, sample --unweighted (.h5, .lhe), bad inputs."""

import math
import textwrap

import h5py
import numpy as np
import pytest

from hepgen.cli import main as _main
from tests.helpers import run_cli_for_error


def main(argv):
    return _main([str(a) for a in argv])

SMALL = ["--transforms", "2", "--hidden", "16", "--bins", "8", "--batch-size", "256", "-q"]

USER_FILE = textwrap.dedent('''
    import math
    import numpy as np
    import torch

    def product(x):  # prod_i 2 x_i on [0, 1]^d: integral 1
        return np.prod(2.0 * np.asarray(x), axis=1)

    def with_nan(x):
        v = (2.0 * x).prod(1)
        v[7] = float("nan")
        return v

    def negative(x):
        v = (2.0 * x).prod(1)
        v[4] = -1.0
        return v

    def wrong_shape(x):
        return x

    def wrong_dimension(x):
        return x[:, 5] + 1.0

    def qqg(p):  # (1/sigma0) dsigma/dx1dx2 of e+e- -> q qbar g over dPhi_3 = (pi^2 s / 4) dx1 dx2
        s = p[:, :, 0].sum(1) ** 2
        x1, x2 = 2 * p[:, 0, 0] / s.sqrt(), 2 * p[:, 1, 0] / s.sqrt()
        return 4 / 3 * 0.118 / (2 * math.pi) * (x1**2 + x2**2) / ((1 - x1) * (1 - x2)) / (math.pi**2 * s / 4)
''')


@pytest.fixture()
def user_file(tmp_path):
    path = tmp_path / "my_f.py"
    path.write_text(USER_FILE)
    return path


def test_a_user_integrand_with_a_known_integral_through_the_cli(tmp_path, user_file, capsys):
    run = tmp_path / "run"
    assert main(["fit", "hypercube-flow", "--integrand", f"{user_file}:product", "--dims", "3",
                 "--steps-per-epoch", "150", "--epochs", "1", "--lr", "3e-3", "-o", run, *SMALL]) == 0
    config = (run / "config.yaml").read_text()
    assert f"path: {user_file.resolve()}" in config and "sha256: " in config and "integrand: null" in config
    out = tmp_path / "events.h5"
    assert main(["sample", run, "-n", "2000", "--unweighted", "--integrand", f"{user_file}:product", "-o", out,
                 "--block-size", "20000", "-q"]) == 0
    with h5py.File(out) as f:
        x, integral, error = f["samples"][()], float(f["integral"][()]), float(f["integral_error"][()])
    assert abs(integral - 1.0) < 4 * error and error < 0.02
    # the unweighted events follow f: each x_i has density 2x (mean 2/3, CDF x^2)
    assert x.shape == (2000, 3) and abs(x.mean() - 2 / 3) < 4 * math.sqrt(1 / 18 / x.size)
    # a copy of the same file (same sha256) is accepted; the run never imports code by itself
    copy = tmp_path / "copy.py"
    copy.write_bytes(user_file.read_bytes())
    assert main(["sample", run, "-n", "10", "--unweighted", "--integrand", f"{copy}:product", "-o",
                 tmp_path / "e2.h5", "--block-size", "5000", "-q"]) == 0
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", "10", "--unweighted", "-o", tmp_path / "e3.h5"])
    assert code == 2 and f"--integrand {user_file.resolve()}:product" in err and "never imports" in err
    import hepgen

    with pytest.raises(hepgen.ConfigError, match=r"hepgen.load\(run, integrand="):
        hepgen.load(run)
    model = hepgen.load(run, integrand=f"{user_file}:product")
    assert abs(model.integrate(20_000, seed=0)["integral"] - 1.0) < 0.05
    # a changed file: refused, naming both files and their sha256, before its code runs
    user_file.write_text(USER_FILE + "\nraise SystemExit('imported!')\n")
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", "10", "--unweighted", "--integrand",
                                           f"{user_file}:product", "-o", tmp_path / "e4.h5"])
    assert code == 2 and "is not the file the run" in err and err.count("sha256") == 2 and str(user_file) in err
    assert not (tmp_path / "e3.h5").exists() and not (tmp_path / "e4.h5").exists()
    # info describes the run from its files, without the user's code (which would now exit if imported)
    capsys.readouterr()
    assert main(["info", run]) == 0
    out = capsys.readouterr().out
    assert "hypercube-flow" in out and f"{user_file.resolve()}:product" in out and "not loaded" in out


def test_a_matrix_element_through_the_cli_to_lhe_and_hdf5(tmp_path, user_file, capsys):
    pylhe = pytest.importorskip("pylhe")
    from hepgen.targets import three_jet_rate

    run = tmp_path / "ps"
    me = f"{user_file}:qqg"
    assert main(["fit", "phase-space-flow", "--matrix-element", me, "--sqrt-s", "91.2", "--particles", "3",
                 "--cut", "ymin=0.05", "--cut", "ptmin=0.5", "--steps-per-epoch", "40", "--epochs", "1", "--lr", "3e-3",
                 "-o", run, *SMALL]) == 0
    config = (run / "config.yaml").read_text()
    assert "- ptmin=0.5" in config and "- ymin=0.05" in config and "matrix_element: null" in config
    lhe, h5 = tmp_path / "events.lhe", tmp_path / "events.h5"
    common = ["-n", "200", "--unweighted", "--matrix-element", me, "--block-size", "20000", "-q"]
    assert main(["sample", run, *common, "-o", lhe]) == 0
    assert main(["sample", run, *common, "-o", h5]) == 0
    with h5py.File(h5) as f:
        p, integral, error = f["momenta"][()], float(f["integral"][()]), float(f["integral_error"][()])
        sigma, sigma_err = float(f["cross_section_pb"][()]), float(f["cross_section_error_pb"][()])
    assert p.shape == (200, 3, 4)
    assert integral < three_jet_rate(0.05) + 4 * error  # ptmin only removes events
    assert abs(integral - three_jet_rate(0.05)) < 0.05 * three_jet_rate(0.05)
    factor = (2 * math.pi) ** -5 / (2 * 91.2**2) * 0.3894e9
    assert sigma == pytest.approx(integral * factor, rel=1e-12) and sigma_err == pytest.approx(error * factor, rel=1e-12)
    file = pylhe.LHEFile.fromfile(str(lhe))
    assert float(file.init.procInfo[0].xSection) == pytest.approx(sigma, rel=1e-9)
    assert float(file.init.procInfo[0].error) == pytest.approx(sigma_err, rel=1e-9)
    events = list(file.events)
    assert len(events) == 200
    momenta = np.array([[[q.e, q.px, q.py, q.pz] for q in e.particles if q.status == 1] for e in events])
    np.testing.assert_allclose(momenta, p, rtol=1e-9, atol=1e-8)  # same seed: the same events as the HDF5 file
    np.testing.assert_allclose(momenta.sum(1), np.tile([91.2, 0, 0, 0], (200, 1)), atol=1e-8)
    assert (np.hypot(momenta[..., 1], momenta[..., 2]) > 0.5).all()
    # weighted events (no --unweighted): momenta and weights, E[w] = the integral
    weighted = tmp_path / "weighted.h5"
    assert main(["sample", run, "-n", "4000", "--matrix-element", me, "-o", weighted, "--block-size", "1500", "-q"]) == 0
    with h5py.File(weighted) as f:
        pw, w = f["momenta"][()], f["weight"][()]
    assert pw.shape == (4000, 3, 4) and abs(w.mean() - integral) < 4 * (w.std() / math.sqrt(len(w)) + error)
    np.testing.assert_allclose(pw.sum(1), np.tile([91.2, 0, 0, 0], (4000, 1)), atol=1e-8)
    # an LHE file is for momenta: a hypercube-flow is told to write .h5
    flat = tmp_path / "flat"
    assert main(["fit", "hypercube-flow", "--steps-per-epoch", "2", "--epochs", "1", "-o", flat, *SMALL]) == 0
    code, err = run_cli_for_error(capsys, ["sample", flat, "-n", "10", "--unweighted", "-o", tmp_path / "x.lhe"])
    assert code == 2 and "phase-space-flow" in err and not (tmp_path / "x.lhe").exists()
    code, err = run_cli_for_error(capsys, ["sample", flat, "-n", "10", "--unweighted", "--integrand",
                                           f"{user_file}:product", "-o", tmp_path / "x.h5"])
    assert code == 2 and "not trained on the user's own code" in err


@pytest.mark.parametrize(("spec", "dims", "named"), [
    ("{f}:with_nan", "2", ["integrand {f}:with_nan returned nan (not finite) at row 7 of a batch of 256 (input ["]),
    ("{f}:negative", "2", ["integrand {f}:negative returned -1.0 (negative) at row 4"]),
    ("{f}:wrong_shape", "2", ["integrand {f}:wrong_shape returned shape (256, 2) for input of shape (256, 2)"]),
    ("{f}:wrong_dimension", "3", ["integrand {f}:wrong_dimension raised IndexError on a batch of shape (256, 3)"]),
    ("{f}:missing", "2", ["--integrand", "{f} does not define 'missing'; it defines product, with_nan"]),
    ("{d}/nowhere.py:f", "2", ["--integrand", "the file {d}/nowhere.py does not exist"]),
    ("{f}", "2", ["--integrand", "expected FILE.py:NAME"]),
])
def test_bad_user_integrands_exit_2_naming_the_file_and_the_row(tmp_path, user_file, capsys, spec, dims, named):
    f, d = str(user_file.resolve()), str(tmp_path.resolve())
    code, err = run_cli_for_error(capsys, ["fit", "hypercube-flow", "--integrand", spec.format(f=f, d=d), "--dims",
                                           dims, "--steps-per-epoch", "2", "--epochs", "1", "-o", tmp_path / "run",
                                           *SMALL])
    assert code == 2 and "Traceback" not in err
    flat = " ".join(err.split())
    for phrase in named:
        assert phrase.format(f=f, d=d) in flat, err
    assert not (tmp_path / "run").exists()


def test_bad_matrix_element_options_exit_2(tmp_path, user_file, capsys):
    base = ["fit", "phase-space-flow", "--steps-per-epoch", "2", "--epochs", "1", "-o", tmp_path / "run", *SMALL]
    code, err = run_cli_for_error(capsys, base)
    assert code == 2 and "--matrix-element FILE.py:NAME" in err
    me = ["--matrix-element", f"{user_file}:qqg"]
    code, err = run_cli_for_error(capsys, [*base, *me, "--cut", "ptmn=3"])
    assert code == 2 and "'ptmn'" in err and "did you mean 'ptmin'" in err
    code, err = run_cli_for_error(capsys, [*base, *me, "--pdg", "1,-1"])
    assert code == 2 and "2 ids for 3 particles" in err
    code, err = run_cli_for_error(capsys, [*base, "--matrix-element", f"{user_file}:with_nan", "--particles", "3"])
    assert code == 2 and f"matrix element {user_file.resolve()}:with_nan returned shape (256, 4) for input of shape " \
                         "(256, 3, 4)" in " ".join(err.split())
    assert not (tmp_path / "run").exists()


def test_resume_and_pdg_check_the_users_file_and_ids(tmp_path, user_file, capsys):
    pylhe = pytest.importorskip("pylhe")
    run = tmp_path / "ps"
    me = ["--matrix-element", f"{user_file}:qqg"]
    fit = ["fit", "phase-space-flow", *me, "--cut", "ymin=0.1", "--steps-per-epoch", "5", "-o", run, *SMALL]
    assert main([*fit, "--epochs", "1"]) == 0
    other = tmp_path / "other.py"
    other.write_text(USER_FILE.replace("0.118", "0.12"))
    code, err = run_cli_for_error(capsys, [*fit[:3], f"{other}:qqg", *fit[4:], "--epochs", "2", "--resume"])
    assert code == 2 and "is not the file the run" in err and str(other) in err
    assert main([*fit, "--epochs", "2", "--resume"]) == 0
    lhe = tmp_path / "e.lhe"
    assert main(["sample", run, "-n", "5", "--unweighted", *me, "--pdg", "2,-2,21", "-o", lhe, "--block-size",
                 "5000"]) == 0
    ids = [[int(q.id) for q in e.particles] for e in pylhe.LHEFile.fromfile(str(lhe)).events]
    assert ids == [[11, -11, 2, -2, 21]] * 5
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", "5", "--unweighted", *me, "--pdg", "2,-2", "-o",
                                           tmp_path / "f.lhe"])
    assert code == 2 and "2 ids for the 3 particles" in err and not (tmp_path / "f.lhe").exists()
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", "5", "--unweighted", "--integrand", f"{user_file}:qqg",
                                           "-o", tmp_path / "f.h5"])
    assert code == 2 and "--matrix-element" in err and "--integrand is not this run's option" in err


def test_python_targets_and_functions_and_load_without_them(tmp_path):
    import torch

    import hepgen
    from hepgen.errors import ConfigError
    from hepgen.phasespace import HypercubeFlow, PhaseSpaceFlow
    from hepgen.targets import Target

    class Product(Target):  # a user's Target subclass: prod 2 x_i, integral 1
        name, domain = "product", "unit-hypercube"

        def __init__(self):
            self.event_shape = (2,)

        def log_prob(self, x):
            return torch.log(2 * x).sum(-1)

        def get_config(self):
            return {}

    model = HypercubeFlow(Product(), transforms=2, hidden=(8,), bins=4)
    assert model.dims == 2 and abs(model.integrate(20_000, seed=0)["integral"] - 1.0) < 0.05
    with pytest.raises(ConfigError, match="dims=3 but the target 'product' has 2"):
        HypercubeFlow(Product(), dims=3)
    flow = PhaseSpaceFlow(lambda p: torch.ones(len(p)), sqrt_s=10.0, particles=4, transforms=2, hidden=(8,), bins=4)
    flow.fit(None, steps_per_epoch=2, epochs=1, batch_size=64, quiet=True, run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"hepgen.load\(run, matrix_element=<the function>\)"):
        hepgen.load(tmp_path / "run")
    with pytest.raises(ConfigError, match="--particles is not an option of the run"):
        hepgen.load(tmp_path / "run", matrix_element=lambda p: torch.ones(len(p)), particles=5)
    back = hepgen.load(tmp_path / "run", matrix_element=lambda p: torch.ones(len(p)))
    assert back.particles == 4 and back.dims == 8
    # |M|² = 1: the integral is the 4-body volume (pi/2)^3 s^2 / (3! 2!), within the error of the flow's weights
    out = back.integrate(20_000, seed=0)
    assert abs(out["integral"] - math.pi**3 * 1e4 / 96) < 4 * out["error"]


@pytest.mark.parametrize("target", ["camel", "gaussian"])
def test_an_integrand_file_and_a_target_together_are_refused(tmp_path, user_file, capsys, target):
    """--integrand and --target name two integrands: exit 2 naming both, nothing written (it silently took the
    file before); in Python a built-in name other than the default, a Target or a function beside integrand=."""
    code, err = run_cli_for_error(capsys, ["fit", "hypercube-flow", "--integrand", f"{user_file}:product", "--target",
                                           target, "--dims", "2", "--steps-per-epoch", "2", "--epochs", "1", "-o",
                                           tmp_path / "run", *SMALL])
    assert code == 2 and "Traceback" not in err and "two integrands" in err and target in err
    assert not (tmp_path / "run").exists()
    from hepgen.errors import ConfigError
    from hepgen.phasespace import HypercubeFlow

    with pytest.raises(ConfigError, match="two integrands"):
        HypercubeFlow(target="gaussian", integrand=f"{user_file}:product", dims=2)
    with pytest.raises(ConfigError, match="two integrands"):
        HypercubeFlow(target=lambda x: x.sum(1), integrand=f"{user_file}:product", dims=2)


def test_score_and_export_take_the_action_a_lattice_flow_was_trained_on(tmp_path, capsys):
    """A run on the user's action loads only with that file given again: sample, score and export all take
    --action (score and export had no such flag, while the refusal told the user to give it)."""
    import onnxruntime as ort
    import torch

    import hepgen

    action = tmp_path / "ring.py"
    action.write_text("import torch\n\ndef S(phi):\n    return 0.5 * (((torch.roll(phi, -1, 1) - phi) ** 2).sum(1)"
                      " + (phi ** 2).sum(1))\n")
    other = tmp_path / "other.py"
    other.write_text(action.read_text() + "# another file\n")
    run = tmp_path / "run"
    assert main(["fit", "lattice-flow", "--action", f"{action}:S", "--shape", "8", "-o", run, "--epochs", 1,
                 "--steps-per-epoch", 2, "--layers", 2, "--channels", 4, "-q"]) == 0
    chain = tmp_path / "chain.h5"
    assert main(["sample", run, "-n", 30, "--mcmc", "--action", f"{action}:S", "-o", chain, "-q"]) == 0
    capsys.readouterr()
    model = hepgen.load(run, action=f"{action}:S")
    with h5py.File(chain) as f:
        configs = f["configs"][:]
    scores = tmp_path / "scores.h5"
    assert main(["score", run, f"{chain}:configs", "--action", f"{action}:S", "-o", scores, "-q"]) == 0
    with h5py.File(scores) as f:
        np.testing.assert_allclose(f["log_prob"][:], model.log_prob(torch.as_tensor(configs)).numpy(), rtol=1e-5)
    graph = tmp_path / "flow.onnx"
    assert main(["export", run, "--action", f"{action}:S", "-o", graph, "-q"]) == 0
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert session.run(["x"], {"z": np.zeros((3, 8), np.float32)})[0].shape == (3, 8)
    for argv, message in [(["score", run, f"{chain}:configs", "-o", tmp_path / "s2.h5"], "--action"),
                          (["export", run, "-o", tmp_path / "f2.onnx"], "--action"),
                          (["export", run, "--action", f"{other}:S", "-o", tmp_path / "f2.onnx"], "not the file")]:
        code, err = run_cli_for_error(capsys, argv)
        assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "s2.h5").exists() and not (tmp_path / "f2.onnx").exists()
