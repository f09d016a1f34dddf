"""The CaloChallenge protocol piece by piece: the inputs of a constructed shower by hand, FPD/KPD against jetnet
on the same arrays, the classifier's settings read back from the trained network, its calibration, AUC and
JSD recomputed independently, the floor measured the same way, and the separation powers."""

import functools
import math

import numpy as np
import pytest
import torch
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from hepgen.errors import DataError
from hepgen.evaluate import calochallenge
from hepgen.evaluate.calochallenge import (
    PROTOCOLS,
    ShowerSample,
    calochallenge_metrics,
    cell_separation_power,
    classifier_auc,
    fpd_features,
    high_level_inputs,
    histogram_features,
    low_level_inputs,
    separation_powers,
)
from hepgen.evaluate.classifiers import NeuralNetwork
from hepgen.metrics import separation_power
from tests.metrics.conftest import _jetnet_gen_metrics


def _constructed():
    """One shower of 100 MeV (0.1 GeV) in two 480 mm layers: layer 0 one row of two cells (x = ∓120 mm) with
    30 and 10 MeV, layer 1 one column of two cells (y = ∓120 mm) with 5 and 15 MeV."""
    return ShowerSample.from_layers([np.array([[[30.0, 10.0]]]), np.array([[[5.0], [15.0]]])], np.array([0.1]))


def test_high_and_low_level_inputs_of_a_constructed_shower():
    s = _constructed()
    width = math.sqrt(120.0**2 - 60.0**2)  # √(<x²> − <x>²) with <x> = ∓60 mm
    expected = [2.0, math.log10(40 + 1e-8), math.log10(20 + 1e-8),  # log10 E_inc [MeV], log10(E_k + 1e-8)
                -0.6, 0.0,  # centroids in x (η) / 100: (−120·30 + 120·10)/40 = −60 mm; layer 1 has one column
                0.0, 0.6,  # centroids in y (φ) / 100: (−120·5 + 120·15)/20 = 60 mm
                width / 100, 0.0, 0.0, width / 100]  # widths in x, then in y
    np.testing.assert_allclose(high_level_inputs(s)[0], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(low_level_inputs(s)[0], [2.0, 0.3, 0.1, 0.05, 0.15], rtol=1e-12)
    np.testing.assert_allclose(fpd_features(s)[0], [*expected, 0.6], rtol=1e-12, atol=1e-12)  # E_dep/E_inc = 60/100
    assert list(histogram_features(s)) == ["response", "E_0", "E_1", "centroid_x_0", "centroid_x_1", "centroid_y_0",
                                           "centroid_y_1", "width_x_0", "width_x_1", "width_y_0", "width_y_1"]
    noisy = ShowerSample.from_layers([np.array([[[-3.0, 1.0]]]), np.array([[[5.0], [15.0]]])], np.array([0.1]))
    assert high_level_inputs(noisy)[0, 1] == pytest.approx(-8.0)  # a negative layer sum (noise) enters as 0


def _samples(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    layers = [rng.exponential(1.0 + shift, size=(n, 3, 4)), rng.exponential(2.0, size=(n, 4, 4))]
    return ShowerSample.from_layers(layers, rng.uniform(1, 100, n))


def test_fpd_and_kpd_equal_jetnets_on_the_same_arrays_for_the_candidate_and_the_floor():
    gen_metrics = _jetnet_gen_metrics()
    ref, cand, floor = _samples(900, 1), _samples(700, 2, shift=0.3), _samples(800, 3)
    fo = dict(min_samples=300, max_samples=600, num_batches=4, num_points=3)
    ko = dict(num_batches=4, batch_size=300)
    got = calochallenge_metrics(ref, cand, floor, classifier=False, n_bootstrap=5, fpd_options=fo, kpd_options=ko)
    for label, other in (("candidate", cand), ("floor", floor)):
        theirs = gen_metrics.fpd(fpd_features(ref), fpd_features(other), **fo)
        assert got["fpd"][label]["value"] == pytest.approx(1e3 * float(theirs[0]), rel=1e-6, abs=1e-9)
        assert got["fpd"][label]["error"] == pytest.approx(1e3 * float(theirs[1]), rel=1e-6, abs=1e-9)
        theirs = gen_metrics.kpd(fpd_features(ref), fpd_features(other), **ko)
        assert got["kpd"][label]["value"] == pytest.approx(1e3 * float(theirs[0]), rel=1e-6, abs=1e-12)
        assert got["kpd"][label]["error"] == pytest.approx(1e3 * float(theirs[1]), rel=1e-6, abs=1e-12)
    assert got["fpd"]["candidate"]["value"] > 10 * got["fpd"]["floor"]["value"]
    assert got["classifier"] == {} and "not jetnet's defaults" in got["notes"][0]


def test_separation_powers_on_the_references_bins_with_bootstrap_errors_and_the_floor_alike():
    ref, cand, floor = _samples(900, 1), _samples(700, 2, shift=0.3), _samples(800, 3)
    got = calochallenge_metrics(ref, cand, floor, classifier=False, n_bootstrap=30, seed=4,
                                fpd_options=dict(min_samples=100, max_samples=200, num_batches=2, num_points=2),
                                kpd_options=dict(num_batches=2, batch_size=100))["separation_power"]
    hr, hc = histogram_features(ref), histogram_features(cand)
    # E_0: 39 logarithmic bins from the reference's 0.1 % quantile to its maximum
    edges = np.logspace(np.log10(np.quantile(hr["E_0"], 0.001)), np.log10(hr["E_0"].max()), 40)
    expected = separation_power(np.histogram(hr["E_0"], edges)[0], np.histogram(hc["E_0"], edges)[0])
    assert got["candidate"]["E_0"]["value"] == pytest.approx(expected, rel=1e-12)
    edges = np.linspace(hr["centroid_x_1"].min(), hr["centroid_x_1"].max(), 101)
    expected = separation_power(np.histogram(hr["centroid_x_1"], edges)[0], np.histogram(hc["centroid_x_1"], edges)[0])
    assert got["candidate"]["centroid_x_1"]["value"] == pytest.approx(expected, rel=1e-12)
    # the floor: the same functions of the reference and the floor (its own bootstrap seed)
    floor_cells = got["floor"].pop("cells")
    assert got["floor"] == separation_powers(hr, histogram_features(floor), n_bootstrap=30, seed=5)
    assert floor_cells == cell_separation_power(ref.cells, floor.cells, n_bootstrap=30, seed=5)
    # every cell of every shower: 49 logarithmic bins from the reference's 0.1 % quantile of positive cells
    positive = ref.cells[ref.cells > 0]
    edges = np.logspace(np.log10(np.quantile(positive, 0.001)), np.log10(positive.max()), 50)
    expected = separation_power(np.histogram(ref.cells, edges)[0], np.histogram(cand.cells, edges)[0])
    assert got["candidate"]["cells"]["value"] == pytest.approx(expected, rel=1e-12)
    assert 0 < got["candidate"]["cells"]["error"] < got["candidate"]["cells"]["value"]
    # a scale of layer 0's cells separates its energy histogram beyond the floor's, by many errors
    c, f = got["candidate"]["E_0"], got["floor"]["E_0"]
    assert c["value"] > f["value"] + 5 * (c["error"] + f["error"]) and 0 < f["error"] < 0.1


def test_the_floor_runs_the_candidates_classifier_test_with_the_same_settings(monkeypatch):
    calls = []
    monkeypatch.setattr(calochallenge, "classifier_auc", lambda a, b, **kw: calls.append((a, b, kw)) or {"auc": 0.5})
    ref, cand, floor = _samples(200, 1), _samples(200, 2), _samples(200, 3)
    got = calochallenge_metrics(ref, cand, floor, epochs=3, n_bootstrap=4, seed=7,
                                fpd_options=dict(min_samples=50, max_samples=100, num_batches=2, num_points=2),
                                kpd_options=dict(num_batches=2, batch_size=50))
    assert list(got["classifier"]) == ["candidate_high", "candidate_low", "floor_high", "floor_low"]
    (rh, ch, kw1), (rl, cl, kw2), (rh2, fh, kw3), (rl2, fl, kw4) = calls
    assert kw1 == kw2 == kw3 == kw4 == dict(protocol="calochallenge", epochs=3, seed=7, max_per_class=None,
                                            device="auto", n_bootstrap=4)
    np.testing.assert_array_equal(rh, high_level_inputs(ref))
    np.testing.assert_array_equal(fh, high_level_inputs(floor))
    np.testing.assert_array_equal(fl, low_level_inputs(floor))
    with pytest.raises(DataError, match="the floor showers have 24 cells in 2 layers but the reference has 28 in 2"):
        small = ShowerSample.from_layers([np.ones((5, 3, 4)), np.ones((5, 4, 4))], np.ones(5))
        other = ShowerSample.from_layers([np.ones((5, 3, 4)), np.ones((5, 4, 4))[:, :, :3]], np.ones(5))
        calochallenge_metrics(small, small, other)


def test_the_classifier_is_evaluate_pys_dnn_with_its_settings_read_back_from_the_trained_network(monkeypatch):
    from hepgen.train import engine

    seen = []
    original = engine.Engine.__init__

    @functools.wraps(original)  # the same signature: Model.fit checks its options against it
    def spy(self, **kwargs):
        seen.append(kwargs)
        original(self, **kwargs)

    monkeypatch.setattr(engine.Engine, "__init__", spy)
    assert PROTOCOLS["calochallenge"]["epochs"] == 50  # the protocol's; the test trains 2 of them
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 6)), rng.normal(size=(700, 6)) + 0.5  # unequal sizes: cut to 500 each
    result, held = classifier_auc(a, b, protocol="calochallenge", epochs=2, device="cpu", return_scores=True,
                                  n_bootstrap=40)
    net = held.classifiers[0]
    linear = [m for m in net.model_.net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(6, 2048), (2048, 2048), (2048, 2048), (2048, 1)]
    acts = [m for m in net.model_.net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))]
    assert len(acts) == 3 and all(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.01 for m in acts)
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in net.model_.net.modules())
    assert net.model_.preprocess == "none" and len(net.history_) == 2
    assert seen[-1]["epochs"] == 2 and seen[-1]["batch_size"] == 1000 and seen[-1]["lr"] == 2e-4
    assert seen[-1]["monitor"] == "val_error" and all(row["lr"] == 2e-4 for row in net.history_)
    # 60/20/20 of 2 × 500 events; the kept epoch is the first of highest selection accuracy
    assert result["n_train"] == 600 and result["n_test"] == 200 and len(held.real) == len(held.generated) == 100
    errors = [row["val_error"] for row in net.history_]
    assert net.best_epoch_ == 1 + int(np.argmin(errors)) and result["val_accuracy"] == pytest.approx(1 - min(errors))
    # calibrated (isotonic, evaluate.py's bounds); AUC and JSD of the calibrated scores, computed independently
    iso = net.calibrator_
    assert isinstance(iso, IsotonicRegression) and (iso.y_min, iso.y_max, iso.out_of_bounds) == (1e-6, 1 - 1e-6, "clip")
    y = np.r_[np.ones(100), np.zeros(100)]
    s = np.r_[held.real, held.generated]
    assert result["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    bce = float(torch.nn.BCELoss()(torch.tensor(s), torch.tensor(y)))
    assert result["jsd"] == pytest.approx((math.log(2) - bce) / math.log(2), rel=1e-9)
    assert 0 < result["auc_err"] < 0.1 and 0 < result["jsd_err"] < 0.2 and result["auc"] > 0.6
    assert result["settings"]["hidden"] == [2048, 2048, 2048] and result["settings"]["standardise"] is False


def test_selection_by_accuracy_and_isotonic_calibration_on_the_validation_events():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 2)), rng.integers(0, 2, 300).astype(float)
    x[:, 0] += y
    xv, yv = rng.normal(size=(200, 2)), rng.integers(0, 2, 200).astype(float)
    xv[:, 0] += yv
    net = NeuralNetwork(seed=1, hidden=(32,), epochs=8, lr=3e-3, batch_size=30, select="accuracy",
                        calibrate="isotonic", device="cpu").fit(x, y, val=(xv, yv))
    errors = [row["val_error"] for row in net.history_]
    assert net.best_epoch_ == 1 + int(np.argmin(errors))
    raw = net._raw_proba(xv)
    assert np.mean(np.round(raw) == yv) == pytest.approx(net.val_accuracy_)  # the kept weights are in place
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(raw, yv)
    grid = rng.normal(size=(50, 2))
    np.testing.assert_allclose(net.predict_proba(grid)[:, 1], iso.predict(net._raw_proba(grid)), rtol=1e-12)
    with pytest.raises(Exception, match="needs validation events"):
        NeuralNetwork(calibrate="isotonic").fit(x, y)


def test_fpd_and_kpd_at_jetnets_own_defaults():
    """Without batch options the protocol's FPD and KPD are jetnet's defaults (batches of 20,000-50,000 and
    10 x 5,000 drawn with replacement), number for number: the CaloChallenge results quote those."""
    gen_metrics = _jetnet_gen_metrics()
    ref, cand = _samples(400, 1), _samples(300, 2, shift=0.3)
    got = calochallenge_metrics(ref, cand, classifier=False, n_bootstrap=2)
    a, b = fpd_features(ref), fpd_features(cand)
    theirs = gen_metrics.fpd(a, b)
    assert got["fpd"]["candidate"]["value"] == pytest.approx(1e3 * float(theirs[0]), rel=1e-6)
    # the error is the fit's over the batch sizes: agrees to ~1e-6 (rounding in the extrapolation fit)
    assert got["fpd"]["candidate"]["error"] == pytest.approx(1e3 * float(theirs[1]), rel=1e-4)
    theirs = gen_metrics.kpd(a, b)
    assert (got["kpd"]["candidate"]["value"], got["kpd"]["candidate"]["error"]) == pytest.approx(
        (1e3 * float(theirs[0]), 1e3 * float(theirs[1])), rel=1e-6)
    assert "FPD and KPD follow jetnet" in got["notes"][0]
