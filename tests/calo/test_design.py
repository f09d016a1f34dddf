"""Detector design through a local generative surrogate: the gradient of C through the flow against finite
differences, the L-GSO loop finding the known optimum of a closed-form toy, the objective and simulator
wrappers against direct computations, and the ``hepgen design`` CLI (a small real run, bad options -> 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hepgen.calo.design import (
    CaloSimulator,
    DesignStudy,
    Parameter,
    ResolutionObjective,
    optimise_design,
    parse_parameter,
    shower_features,
)
from hepgen.cli import main
from hepgen.data.generators import calo
from hepgen.errors import ConfigError

SMALL_FLOW = {"epochs": 8, "transforms": 2, "hidden": (32, 32)}


class Toy:
    """Response ~ N(1, s), s = 6.94 mm / layer_1_mm x sqrt(absorber_mm / 2 mm), any energy.

    With the default cost (0.01 per metre of depth 90 + layer_1 + 40 mm) and absorber fixed at 2 mm,
    C(l) = 6.94/l + 1e-5 (l + 130): minimum at l* = sqrt(6.94e5) = 833 mm, C* = 0.017960."""

    def __init__(self):
        self.showers = self.calls = 0

    @staticmethod
    def sigma(design):
        return 6.94 / design["layer_1_mm"] * np.sqrt(design.get("absorber_mm", 2.0) / 2.0)

    def __call__(self, design, n, energy_min, energy_max, seed):
        rng = np.random.default_rng(seed)
        self.showers += n
        self.calls += 1
        return rng.uniform(energy_min, energy_max, n), (1 + self.sigma(design) * rng.standard_normal(n))[:, None]

    def simulate_box(self, low, high, n, energy_min, energy_max, seed):
        rng = np.random.default_rng(seed)
        design = {k: rng.uniform(low[k], high[k], n) for k in low}
        self.showers += n
        self.calls += 1
        x = 1 + self.sigma(design) * rng.standard_normal(n)
        return design, rng.uniform(energy_min, energy_max, n), x[:, None]


def toy_objective(l1):
    return 6.94 / l1 + 1e-5 * (l1 + 130.0)


def test_gradient_through_the_surrogate_matches_finite_differences():
    torch.manual_seed(0)
    study = DesignStudy(["absorber_mm=1:3", "layer_1_mm=200:800"], simulator=Toy(), points=1, showers=3000,
                        iterations=1, steps=1, samples=800, surrogate=SMALL_FLOW, seed=1).fit()
    design = {"absorber_mm": 1.7, "layer_1_mm": 430.0}
    grad = study.gradient(design)
    u = study.to_unit(design)
    for i, p in enumerate(study.parameters):
        h = 1e-3  # the ReLU conditioners make C piecewise smooth: a short step
        up, down = u.copy(), u.copy()
        up[i] += h
        down[i] -= h
        with torch.no_grad():
            fd = (float(study.surrogate_objective(torch.tensor(up))) -
                  float(study.surrogate_objective(torch.tensor(down)))) / (2 * h) / (p.high - p.low)
        assert grad[p.name] == pytest.approx(fd, rel=0.03, abs=1e-7), p.name
    # the surrogate learnt the toy's dependence: resolution falls with depth, rises with the absorber
    assert grad["layer_1_mm"] < 0 < grad["absorber_mm"]


def test_local_surrogate_descent_finds_the_toy_optimum():
    """The toy's response is Gaussian: the affine flow (a heteroscedastic Gaussian in one feature) is its
    exact family; the small NSF of the gradient test needs more epochs than make test allows here."""
    simulator = Toy()
    study = optimise_design(["layer_1_mm=100:1000"], simulator=simulator, points=1, showers=1500, iterations=6,
                            trust=0.25, lr=0.05, samples=1000, surrogate={**SMALL_FLOW, "flow": "maf"}, seed=0)
    best = np.sqrt(6.94e5)
    # C is flat near l*: within 2 % of C* (the issue's goal) is l in about [640, 1080] mm
    assert study.design_["layer_1_mm"] == pytest.approx(best, abs=200)
    assert toy_objective(study.design_["layer_1_mm"]) <= 1.02 * toy_objective(best)
    assert toy_objective(study.design_["layer_1_mm"]) < 0.9 * toy_objective(347.0)  # it moved from the start
    assert study.showers_ == simulator.showers == 1500 * len(study.path_)
    assert study.path_[0]["design"] == {"layer_1_mm": 347.0} and study.path_[0]["left_trust_region"]


def test_budget_stops_the_loop_and_to_dict_is_json():
    study = DesignStudy(["layer_1_mm=100:1000"], simulator=Toy(), points=1, showers=500, iterations=10,
                        budget=1000, steps=5, samples=200, surrogate={"epochs": 1, "transforms": 1, "hidden": (8,)})
    study.fit()
    assert study.showers_ == 1000 and study.stopped_ == "budget" and len(study.path_) == 2
    json.dumps(study.to_dict(), default=float)


def test_objective_measures_resolution_and_cost_as_written():
    objective = ResolutionObjective(energies=(10.0, 20.0), per_metre=0.02, per_lead=0.5)
    # 477 mm deep, lead 47.7 cm x 2/6 x 11.35 g/cm3 = 180.465 g/cm2
    assert objective.cost({}) == pytest.approx(0.02 * 0.477 + 0.5 * 1.80465)
    measured = objective.measure(Toy(), {"layer_1_mm": 500.0}, 4000, seed=3)
    rows = [Toy()({"layer_1_mm": 500.0}, 4000, e, e, 3000 + j)[1][:, 0] for j, e in enumerate((10.0, 20.0))]
    direct = np.mean([r.std(ddof=1) / r.mean() for r in rows])
    assert measured["objective"] == pytest.approx(direct + objective.cost({"layer_1_mm": 500.0}))
    assert measured["resolution"][0] == pytest.approx(6.94 / 500.0, rel=0.05)
    with pytest.raises(ConfigError, match="energies"):
        ResolutionObjective(energies=())


def test_calo_simulator_calibrates_the_response_and_draws_designs_per_shower():
    sim = CaloSimulator(max_spots=500)
    energy, x = sim({"absorber_mm": 1.0, "layer_1_mm": 900.0}, 150, 20.0, 20.0, seed=1)
    assert x.shape == (150, 3) and np.allclose(energy, 20.0)
    assert np.mean(x[:, 0]) == pytest.approx(1.0, abs=0.02)  # contained: E_vis / (f_em E) ~ 1
    assert np.all((x[:, 1] > 0) & (x[:, 1] < 1))
    design, energy, x = sim.simulate_box({"absorber_mm": 1.0, "layer_1_mm": 300.0},
                                         {"absorber_mm": 2.0, "layer_1_mm": 300.0}, 100, 10.0, 30.0, seed=2)
    assert 1.0 <= design["absorber_mm"].min() and design["absorber_mm"].max() <= 2.0
    assert np.all(design["layer_1_mm"] == 300.0) and sim.showers == 250 and sim.calls == 2
    out = calo.generate(5, seed=0)
    manual = sum(out[f"layer_{i}"].sum((1, 2), dtype=np.float64) for i in range(3)) / 1000.0 / out["energy"] / 0.2
    np.testing.assert_allclose(shower_features(out, 0.2)[:, 0], manual)


@pytest.mark.parametrize("spec, word", [("absorber=1:2", "'absorber'"), ("absorber_mm=3:1", "absorber_mm"),
                                        ("absorber_mm=1-2", "absorber_mm '1-2'"), ("layer_1_mm=a:b", "LOW:HIGH")])
def test_parse_parameter_names_what_is_wrong(spec, word):
    with pytest.raises(ConfigError, match=word):
        parse_parameter(spec)
    assert parse_parameter("active_mm=2:6") == Parameter("active_mm", 2.0, 6.0)


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_design_runs_and_writes_the_result_and_figure(tmp_path, capsys, monkeypatch):
    import hepgen.report.plots

    drawn = {}
    save = hepgen.report.plots.save_figure

    def keep(fig, out, **kwargs):  # the figure the command saves, to read back what it shows
        drawn[Path(out).name] = fig
        return save(fig, out, **kwargs)

    monkeypatch.setattr(hepgen.report.plots, "save_figure", keep)
    data = tmp_path / "showers.h5"
    assert main(["data", "calo", "-n", "150", "-o", str(data), "--option", "vary=absorber_mm:1:3",
                 "--option", "energy_min=10", "--option", "energy_max=20", "--option", "max_spots=200"]) == 0
    out, report = tmp_path / "r.json", tmp_path / "rep"
    code, err = _run(["design", "calo", "--param", "absorber_mm=1:3", "--energy", "10:20", "--energies", "2",
                      "--showers", "120", "--points", "1", "--iterations", "2", "--steps", "3", "--epochs", "1",
                      "--option", "max_spots=200", "--data", str(data), "--measure", "60", "-o", str(out),
                      "--report", str(report), "-q"], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["showers"] == 240 and len(result["path"]) == 2
    assert result["path"][0]["training_showers"] > 120  # the file's showers joined the first box
    assert 1.0 <= result["design"]["absorber_mm"] <= 3.0
    assert set(result["measured"]) == {"design", "start"} and result["simulator"]["max_spots"] == 200
    assert (report / "plots" / "design.png").is_file()  # what it shows is checked below, from the saved figure
    metrics = json.loads((report / "metrics.json").read_text())
    assert json.loads((report / "result.json").read_text()) == result  # the older name, kept for scripts
    assert {k: v for k, v in metrics.items() if k != "files"} == result
    assert set(metrics["files"]) == {"metrics.json", "index.html", "result.json", "plots/design.png"}
    assert "absorber_mm" in (report / "index.html").read_text()
    # what design.png shows: the design after each iteration and the result (one parameter: against the
    # iteration), and the surrogate's objective against the simulated showers, as result.json has them
    path, (design_axes, objective_axes) = result["path"], drawn["design.png"].axes
    (line,) = design_axes.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [s["design"]["absorber_mm"] for s in path]
                               + [result["design"]["absorber_mm"]])
    np.testing.assert_allclose(line.get_xdata(), np.arange(len(path) + 1))
    (line,) = objective_axes.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [s["showers"] for s in path])
    np.testing.assert_allclose(line.get_ydata(), [s["surrogate_objective"] for s in path])


@pytest.mark.parametrize("extra, word", [
    (["--param", "bogus=1:2"], "'bogus'"),
    (["--param", "absorber_mm=3:1"], "absorber_mm"),
    (["--param", "absorber_mm=1:3", "--energy", "x"], "--energy"),
    (["--param", "absorber_mm=1:3", "--energy", "50:10"], "--energy"),
    (["--param", "absorber_mm=1:3", "--budget", "10"], "--budget"),
    (["--param", "absorber_mm=1:3", "--option", "colour=1"], "'colour'"),
    (["--param", "absorber_mm=1:3", "--option", "absorber_mm=2"], "'absorber_mm'"),
    (["--param", "absorber_mm=1:3", "--start", "absorber_mm=5"], "--start"),
    (["--param", "absorber_mm=1:3", "--start", "layer_1_mm=5"], "--start"),
    (["--param", "absorber_mm=1:3", "--trust", "0.9"], "--trust"),
    (["--param", "absorber_mm=1:3", "--particle", "proton"], "--particle"),
    (["--param", "absorber_mm=1:3", "--showers", "0"], "--showers"),
    (["--param", "absorber_mm=1:3", "--param", "absorber_mm=1:2"], "twice"),
    # non-finite numbers: refused before anything is simulated, never written as Infinity/NaN (#26)
    (["--param", "absorber_mm=1:3", "--per-metre", "inf"], "--per-metre"),
    (["--param", "absorber_mm=1:3", "--per-lead=-inf"], "--per-lead"),
    (["--param", "absorber_mm=1:3", "--lr", "nan"], "--lr"),
    (["--param", "absorber_mm=1:3", "--lr", "0"], "--lr"),
    (["--param", "absorber_mm=1:3", "--trust", "nan"], "--trust"),
    (["--param", "absorber_mm=1:3", "--energy", "10:inf"], "--energy"),
    (["--param", "absorber_mm=1:3", "--start", "absorber_mm=nan"], "--start"),
    (["--param", "absorber_mm=1:3", "--option", "noise=.nan"], "noise"),
])
def test_cli_bad_options_exit_2_naming_the_option(tmp_path, capsys, extra, word, monkeypatch):
    from hepgen.calo import design

    def no_simulation(*args, **kwargs):
        raise AssertionError("the simulator ran before the options were checked")

    monkeypatch.setattr(design.CaloSimulator, "__call__", no_simulation, raising=False)
    out, report = tmp_path / "r.json", tmp_path / "rep"
    code, err = _run(["design", "calo", *extra, "-o", str(out), "--report", str(report)], capsys)
    assert code == 2 and word in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_needs_an_output_and_a_design_column_in_data(tmp_path, capsys):
    code, err = _run(["design", "calo", "--param", "absorber_mm=1:3"], capsys)
    assert code == 2 and "-o FILE" in err
    data = tmp_path / "plain.h5"
    assert main(["data", "calo", "-n", "20", "-o", str(data), "--option", "energy_max=5"]) == 0
    code, err = _run(["design", "calo", "--param", "absorber_mm=1:3", "--data", str(data), "--showers", "20",
                      "--points", "1", "--iterations", "1", "-o", str(tmp_path / "r.json")], capsys)
    assert code == 2 and "'absorber_mm'" in err and not (tmp_path / "r.json").exists()
    with pytest.raises(SystemExit) as exc:  # argparse: --param is required
        main(["design", "calo", "-o", str(tmp_path / "r.json")])
    assert exc.value.code == 2


def test_refreshes_warm_start_the_surrogate_through_the_engine(monkeypatch):
    import hepgen.calo.design as design

    calls = []
    fit = design._fit_flow

    def spy(model, context, x, train, seed, warm):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        out = fit(model, context, x, train, seed, warm)
        calls.append((id(model), warm, before, len(out.history_)))
        return out

    monkeypatch.setattr(design, "_fit_flow", spy)
    study = DesignStudy(["layer_1_mm=100:1000"], simulator=Toy(), points=1, showers=400, iterations=3, steps=5,
                        samples=100, surrogate={"epochs": 4, "warm_epochs": 2, "transforms": 1, "hidden": (8,)},
                        trust=0.25, seed=0).fit()
    assert [c[1] for c in calls] == [False, True, True]
    assert len({c[0] for c in calls}) == 1 and id(study.model_) == calls[0][0]  # one surrogate, refreshed
    assert [c[3] for c in calls] == [4, 2, 2]  # epochs, then warm_epochs
    # a refresh starts from the weights the last one ended with (not re-drawn)
    ended = {k: v for k, v in calls[1][2].items()}
    assert any(not torch.equal(ended[k], v) for k, v in calls[0][2].items())
    assert not any(p.requires_grad for p in study.model_.parameters())  # frozen while the design steps
    assert study.to_dict()["settings"]["surrogate"]["warm_epochs"] == 2


@pytest.mark.parametrize(("options", "word"), [
    ({"lr": float("nan")}, "'lr' of the design study"), ({"lr": -1.0}, "'lr'"), ({"trust": float("nan")}, "'trust'"),
    ({"points": float("nan")}, "'points'"), ({"budget": float("inf")}, "'budget'"), ({"margin": 2.0}, "'margin'"),
    ({"energy": (10.0, float("inf"))}, "--energy"), ({"min_trust": 0.3}, "min_trust"),
    ({"surrogate": {"lr": float("nan")}}, "'lr' of the design surrogate"), ({"surrogate": {"epochs": 0}}, "'epochs'"),
    ({"surrogate": {"colour": 1}}, "no option 'colour'"), ({"surrogate": {"flow": "maf", "bins": 4}}, "bins"),
    ({"surrogate": {"device": "tpu"}}, "device"),
])
def test_study_numbers_are_checked_before_any_simulation(options, word):
    simulator = Toy()
    with pytest.raises(ConfigError, match=re.escape(word)):
        DesignStudy(["layer_1_mm=100:1000"], simulator=simulator, **options)
    assert simulator.showers == 0


@pytest.mark.parametrize("options", [{"per_metre": float("inf")}, {"per_lead": float("nan")}, {"per_metre": -1.0},
                                     {"energies": (10.0, float("nan"))}, {"energies": (0.0,)}])
def test_objective_numbers_are_checked(options):
    with pytest.raises(ConfigError, match="per_metre|per_lead|energies"):
        ResolutionObjective(**options)
