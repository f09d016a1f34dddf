"""Every command's --report is written by the one owner (hepgen.report.folder): the same layout from compare,
roc, unfold, the shower comparison and design, and the mass-sculpting figure drawn on the bins of its JSD."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

import hepgen
from hepgen.calo.compare import compare_showers
from hepgen.calo.shower_layout import LAYERS, Showers
from hepgen.data.generators import smear
from hepgen.metrics.decorrelation import efficiency_threshold, mass_sculpting, sculpting_edges
from hepgen.report.compare import compare
from hepgen.report.design import write_design_report
from hepgen.report.roc import mass_sculpting_figure, roc_report


def _strict(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def showers(n: int, rng: np.random.Generator, scale: float = 1.0) -> Showers:
    """Synthetic showers of the simulator's layout: exponential cells [MeV], E_inc uniform in 1-100 GeV."""
    return Showers({k: scale * rng.exponential(1.0, size=(n, *shape)) for k, shape in LAYERS.items()},
                   rng.uniform(1, 100, n))


def _design_result() -> dict:
    path = [{"iteration": i, "design": {"absorber_mm": 2.0 - 0.2 * i, "layer_1_mm": 500.0 + 10 * i},
             "surrogate_objective": 0.1 - 0.01 * i, "trust": 0.15, "showers": 600 * (i + 1),
             "training_showers": 600 * (i + 1)} for i in range(3)]
    return {"design": {"absorber_mm": 1.4, "layer_1_mm": 530.0}, "start": {"absorber_mm": 2.0, "layer_1_mm": 500.0},
            "showers": 1800, "calls": 3, "stopped": "iterations", "path": path,
            "parameters": [{"name": "absorber_mm", "low": 0.5, "high": 3.0},
                           {"name": "layer_1_mm", "low": 200.0, "high": 1000.0}],
            "objective": {"per_metre": float("inf")}}  # a non-finite number must come out as null


def _write_every_report(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {name: root / name for name in ("compare", "roc", "unfold", "showers", "design")}
    compare(rng.normal(size=(80, 2)), rng.normal(0.2, 1, size=(70, 2)), report_dir=out["compare"], n_bootstrap=2)
    b, s = rng.normal(size=300), rng.normal(1, 1, 200)
    roc_report(b, {"sig": s}, out["roc"], mass=b + rng.normal(size=300), n_bootstrap=2)
    g, d = smear.generate(800, seed=1), smear.generate(600, seed=2)
    hepgen.unfold("ibu", g["truth"][:, :2], g["reco"][:, :2], d["reco"][:, :2], pass_truth=g["pass_truth"],
                  pass_reco=g["pass_reco"], pass_data=d["pass_reco"], bins=5, bootstrap=2, report_dir=out["unfold"])
    compare_showers(showers(60, rng), showers(50, rng), report_dir=out["showers"], classifier=False, n_bootstrap=2,
                    energy_edges=(1, 100))
    write_design_report(_design_result(), out["design"])
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return _write_every_report(tmp_path_factory.mktemp("layout"))


@pytest.mark.parametrize("command", ["compare", "roc", "unfold", "showers", "design"])
def test_every_command_writes_the_same_layout(reports, command):
    out = reports[command]
    top = {p.name for p in out.iterdir()}
    assert {"index.html", "metrics.json", "plots"} <= top
    assert top - {"index.html", "metrics.json", "plots"} <= {"result.json"}  # design's older name for metrics.json
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    metrics = _strict((out / "metrics.json").read_text())
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(metrics["files"]) == on_disk
    pngs = [p.relative_to(out).as_posix() for p in (out / "plots").iterdir() if p.suffix == ".png"]
    assert pngs and all(p.suffix in (".png", ".pdf") for p in (out / "plots").iterdir())
    html = (out / "index.html").read_text()
    for png in pngs:
        assert f'src="{png}"' in html
    assert 'href="metrics.json"' in html


def test_design_report_writes_non_finite_numbers_as_null(reports):
    metrics = _strict((reports["design"] / "metrics.json").read_text())
    assert metrics["objective"]["per_metre"] is None
    assert _strict((reports["design"] / "result.json").read_text())["objective"]["per_metre"] is None


def test_the_sculpting_figure_shows_the_bins_its_jsd_is_computed_on():
    rng = np.random.default_rng(3)
    mass = np.r_[rng.gamma(3, 30, 4000), [5000.0]]  # one far outlier: min/max bins would squeeze the bulk
    score = mass / 100 + rng.normal(size=len(mass))
    edges = sculpting_edges(mass)
    assert len(edges) == 41 and edges[-1] < 1000  # the outlier does not set the range
    sculpt = mass_sculpting(score, mass, bins=edges)
    assert sculpt == mass_sculpting(score, mass)  # the default binning is the same one
    fig = mass_sculpting_figure(score, mass, sculpt, edges)
    drawn = [p for p in fig.axes[0].patches]
    assert len(drawn) == 4  # no cut and three cuts
    for patch in drawn:
        np.testing.assert_allclose(patch.get_data().edges, edges)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for eff, text in zip(("0.5", "0.1", "0.01"), legend[1:]):
        t = efficiency_threshold(score, float(eff))
        passing, _ = np.histogram(mass[score >= t], edges)
        failing, _ = np.histogram(mass[score < t], edges)
        jsd = jensenshannon(passing, failing, base=2) ** 2  # scipy on the bins the figure draws
        assert sculpt[eff]["jsd"] == pytest.approx(jsd, rel=1e-6)
        assert f"1/JSD = {1 / jsd:.3g}" in text


def test_roc_report_records_the_edges_it_draws(reports):
    metrics = _strict((reports["roc"] / "metrics.json").read_text())
    assert len(metrics["mass_sculpting"]["edges"]) == 41
