"""``hepgen roc``'s numbers through the CLI against independent computations: scikit-learn's ``roc_curve``
with per-event weights, negative ones included (where ``roc_auc_score`` refuses the non-monotone curve, the
trapezoid of sklearn's curve is the reference), ``roc_auc_score`` with positive weights on both classes, and
the two-Gaussian closed forms (AUC = Φ(Δ/√2), 1/ε_B at fixed ε_S, the SIC maximum); files of different
lengths (allowed between samples, refused within one) and a missing ``--score`` column named with its file."""

import json

import h5py
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from hepgen.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def sk_rejection(fpr, tpr, eff):
    """1/ε_B at ε_S = eff from sklearn's curve: the first point reaching eff (running maximum of ε_S, which
    negative weights can make non-monotone), ε_B interpolated linearly on the segment before it."""
    tpr = np.maximum.accumulate(tpr)
    k = int(np.searchsorted(tpr, eff, side="left"))
    e_b = fpr[k - 1] + (eff - tpr[k - 1]) / (tpr[k] - tpr[k - 1]) * (fpr[k] - fpr[k - 1])
    return 1.0 / e_b


def write_csv(path, **columns):
    names = list(columns)
    np.savetxt(path, np.column_stack([columns[n] for n in names]), delimiter=",", header=",".join(names),
               comments="")


def test_negative_weights_on_both_classes_match_sklearn_roc_curve(tmp_path, capsys):
    rng = np.random.default_rng(4)
    s, b = rng.normal(1.0, 1.0, 900), rng.normal(0.0, 1.3, 1400)  # different lengths: allowed
    ws, wb = rng.uniform(-0.3, 1.5, 900), rng.uniform(-0.3, 1.5, 1400)  # ~15 % negative (NLO-like)
    assert (ws < 0).sum() > 50 and (wb < 0).sum() > 50
    write_csv(tmp_path / "sig.csv", score=s, w=ws)
    write_csv(tmp_path / "bkg.csv", score=b, w=wb)
    code, out, err = run_cli(capsys, "roc", tmp_path / "bkg.csv", f"sig={tmp_path / 'sig.csv'}", "--weights", "w",
                             "--bootstrap", 0)
    assert code == 0, err
    got = json.loads(out)["signals"]["sig"]
    y = np.r_[np.ones(900), np.zeros(1400)]
    fpr, tpr, _ = roc_curve(y, np.r_[s, b], sample_weight=np.r_[ws, wb], drop_intermediate=False)
    assert (np.diff(fpr) < 0).any()  # the curve really is non-monotone: sklearn's roc_auc_score refuses it
    with pytest.raises(ValueError):
        roc_auc_score(y, np.r_[s, b], sample_weight=np.r_[ws, wb])
    assert got["auc"] == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-10)
    for eff in (0.3, 0.5):
        assert got[f"rejection_at_eps_s_{eff:g}"] == pytest.approx(sk_rejection(fpr, tpr, eff), rel=1e-9)
    n_eff = wb.sum() ** 2 / (wb**2).sum()
    keep = fpr > 10.0 / n_eff
    assert got["max_sic"] == pytest.approx(np.max(tpr[keep] / np.sqrt(fpr[keep])), rel=1e-9)
    assert got["n_signal"] == 900 and got["n_background"] == 1400


def test_positive_weights_on_both_classes_match_roc_auc_score(tmp_path, capsys):
    rng = np.random.default_rng(5)
    s, b = rng.normal(0.7, 1.0, 700), rng.normal(0.0, 1.0, 1100)
    ws, wb = rng.uniform(0.1, 3.0, 700), rng.uniform(0.1, 3.0, 1100)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["score"], f["weight"] = s, ws
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["score"], f["weight"] = b, wb
    code, out, err = run_cli(capsys, "roc", tmp_path / "b.h5", tmp_path / "s.h5", "--weights", "weight",
                             "--bootstrap", 0)
    assert code == 0, err
    got = json.loads(out)["signals"]["s"]
    y = np.r_[np.ones(700), np.zeros(1100)]
    w = np.r_[ws, wb]
    assert got["auc"] == pytest.approx(roc_auc_score(y, np.r_[s, b], sample_weight=w), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, np.r_[s, b], sample_weight=w, drop_intermediate=False)
    assert got["rejection_at_eps_s_0.5"] == pytest.approx(1 / np.interp(0.5, tpr, fpr), rel=1e-9)
    # the weights matter: unweighted, the AUC is a different number
    assert abs(got["auc"] - roc_auc_score(y, np.r_[s, b])) > 1e-4


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_two_gaussians_closed_forms_through_the_cli(tmp_path, capsys, delta):
    """N(Δ, 1) signal against N(0, 1) background: AUC = Φ(Δ/√2); the cut keeping ε_S = Φ̄(t − Δ) sits at
    t = Δ + Φ̄⁻¹(ε_S), so 1/ε_B = 1/Φ̄(t); SIC(t) = Φ̄(t − Δ)/√Φ̄(t), maximised on a fine grid. Each within 4 bootstrap standard deviations (and a small absolute slack)."""
    rng = np.random.default_rng(int(10 * delta))
    n = 20000
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["score"] = rng.normal(0.0, 1.0, n)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["score"] = rng.normal(delta, 1.0, n)
    code, out, err = run_cli(capsys, "roc", tmp_path / "b.h5", tmp_path / "s.h5", "--bootstrap", 40)
    assert code == 0, err
    got = json.loads(out)["signals"]["s"]
    auc = norm.cdf(delta / np.sqrt(2))
    assert abs(got["auc"] - auc) < 4 * got["auc_err"] + 1e-4
    assert got["auc_err"] < 3 * np.sqrt(auc * (1 - auc) / n) + 1e-3
    for eff in (0.3, 0.5):
        rejection = 1.0 / norm.sf(delta + norm.isf(eff))
        assert abs(got[f"rejection_at_eps_s_{eff:g}"] - rejection) < 4 * got[f"rejection_at_eps_s_{eff:g}_err"] \
            + 0.01 * rejection
    t = np.linspace(-4, 6, 40001)
    t = t[norm.sf(t) * n >= 10]  # as hepgen: the maximum where ≥ 10 background events pass
    sic = norm.sf(t - delta) / np.sqrt(norm.sf(t))
    assert abs(got["max_sic"] - sic.max()) < 4 * got["max_sic_err"] + 0.03 * sic.max()


@pytest.fixture
def broken(tmp_path):
    rng = np.random.default_rng(0)
    b, s = rng.normal(size=500), rng.normal(1, 1, 300)
    with h5py.File(tmp_path / "bkg.h5", "w") as f:
        f["score"], f["w"], f["mass"] = b, np.ones(500), rng.normal(80, 10, 500)
    with h5py.File(tmp_path / "sig.h5", "w") as f:
        f["score"], f["w"] = s, np.ones(300)
    with h5py.File(tmp_path / "bkg_short_w.h5", "w") as f:  # 499 weights for 500 scores
        f["score"], f["w"] = b, np.ones(499)
    with h5py.File(tmp_path / "bkg_short_mass.h5", "w") as f:  # 498 masses for 500 scores
        f["score"], f["mass"] = b, rng.normal(80, 10, 498)
    with h5py.File(tmp_path / "sig_other.h5", "w") as f:  # the score under another name
        f["tagger"] = s
    write_csv(tmp_path / "bkg.csv", score=b, mass=rng.normal(80, 10, 500))
    with open(tmp_path / "short.csv", "w") as f:  # a CSV whose mass column misses its last value
        f.write("score,mass\n" + "".join(f"{v},{80 + i % 7}\n" for i, v in enumerate(b[:-1])) + f"{b[-1]},\n")
    return tmp_path


@pytest.mark.parametrize("argv, expect", [
    # one file's columns of different lengths: weights, the mass column, a separate mass file
    (["{t}/bkg_short_w.h5", "{t}/sig.h5", "--weights", "w"], ["bkg_short_w.h5", "499 weights", "500 scores"]),
    (["{t}/bkg_short_mass.h5", "{t}/sig.h5", "--mass", "mass"], ["498 values", "500 background", "bkg_short_mass.h5"]),
    (["{t}/bkg.h5", "{t}/sig.h5", "--mass", "{t}/sig.h5:score"], ["sig.h5:score", "300 values", "500 background"]),
    (["{t}/bkg.csv", "{t}/sig.h5", "--mass", "{t}/bkg_short_w.h5:w"], ["499 values", "500 background"]),
    # a missing --score column: the file and the column named
    (["{t}/bkg.h5", "{t}/sig_other.h5"], ["sig_other.h5", "'score'", "--score"]),
    (["{t}/bkg.h5", "{t}/sig.h5", "--score", "tagger"], ["bkg.h5", "'tagger'", "--score"]),
    (["{t}/bkg.csv", "{t}/sig.h5", "--score", "tagger"], ["bkg.csv", "tagger"]),
    # a missing mass column, a non-numeric mass value in a CSV
    (["{t}/bkg.h5", "{t}/sig.h5", "--mass", "m_jet"], ["bkg.h5", "m_jet"]),
    (["{t}/short.csv", "{t}/sig.h5", "--mass", "mass"], ["short.csv", "mass", "row 499"]),
])
def test_bad_input_exits_2_names_the_file_and_writes_nothing(broken, capsys, argv, expect):
    report = broken / "report"
    code, _, err = run_cli(capsys, "roc", *[a.format(t=broken) for a in argv], "--report", report)
    assert code == 2, err
    assert "Traceback" not in err
    for text in expect:
        assert text in err, (text, err)
    assert not report.exists()


@pytest.mark.parametrize("weighted", [False, True])
def test_mass_sculpting_jsd_is_scipys_on_the_passing_and_failing_background(tmp_path, capsys, weighted):
    """``--mass``: per ε_B the cut keeping that (weighted) fraction of the background, and the JSD in bits of the
    mass histograms (50 equal bins over the background's mass range) of the passing and failing events, against
    scipy's Jensen–Shannon distance squared (base 2) on an independent histogram; a sculpting score (the mass
    itself, noisy) has a larger JSD than a score independent of the mass."""
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(8)
    n = 4000
    mass = rng.gamma(4.0, 20.0, n)
    sculpting = mass + rng.normal(0, 30, n)
    w = rng.uniform(0.2, 2.0, n) if weighted else np.ones(n)
    with h5py.File(tmp_path / "bkg.h5", "w") as f:
        f["score"], f["mass"], f["w"], f["flat"] = sculpting, mass, w, rng.normal(size=n)
    with h5py.File(tmp_path / "sig.h5", "w") as f:
        f["score"], f["flat"] = rng.normal(150, 30, 500), rng.normal(1, 1, 500)
    extra = ["--weights", "w"] if weighted else []
    code, out, err = run_cli(capsys, "roc", tmp_path / "bkg.h5", tmp_path / "sig.h5", "--mass", "mass", *extra,
                             "--bootstrap", 0)
    assert code == 0, err
    sculpt = json.loads(out)["mass_sculpting"]["by_background_efficiency"]
    # the binning the figure draws too: 40 equal bins over the central 99.8 % of the background's mass
    edges = np.asarray(json.loads(out)["mass_sculpting"]["edges"])
    lo, hi = np.quantile(mass, [0.001, 0.999])
    np.testing.assert_allclose(edges, np.linspace(lo, hi, 41), rtol=1e-7)
    order = np.argsort(-sculpting)
    for eff in (0.5, 0.1, 0.01):
        kept = order[: int(np.searchsorted(np.cumsum(w[order]) / w.sum(), eff - 1e-12)) + 1]
        passed = np.zeros(n, bool)
        passed[kept] = True
        hp = np.histogram(mass[passed], edges, weights=w[passed])[0]
        hf = np.histogram(mass[~passed], edges, weights=w[~passed])[0]
        got = sculpt[f"{eff:g}"]
        assert got["efficiency"] == pytest.approx(w[passed].sum() / w.sum(), abs=1e-12)
        assert got["jsd"] == pytest.approx(jensenshannon(hp, hf, base=2) ** 2, rel=1e-6)
        assert got["inverse_jsd"] == pytest.approx(1 / got["jsd"], rel=1e-12)
    code, out, err = run_cli(capsys, "roc", tmp_path / "bkg.h5", tmp_path / "sig.h5", "--score", "flat", "--mass",
                             "mass", *extra, "--bootstrap", 0)
    assert code == 0, err
    flat = json.loads(out)["mass_sculpting"]["by_background_efficiency"]
    assert flat["0.1"]["jsd"] < 0.2 * sculpt["0.1"]["jsd"]


def test_a_nan_in_an_existing_mass_column_is_reported_as_a_nan_not_as_a_missing_column(tmp_path, capsys):
    from tests.helpers import run_cli

    (tmp_path / "s.csv").write_text("score,mass\n0.1,50\n0.2,nan\n0.3,70\n")
    code, _, err = run_cli(capsys, "roc", tmp_path / "s.csv", tmp_path / "s.csv", "--mass", "mass", "--report",
                           tmp_path / "rep")
    assert code == 2 and "Traceback" not in err
    assert "row 1" in err and "mass" in err and "no mass column" not in err
    assert not (tmp_path / "rep").exists()
