"""hepgen compare on shower files: the floor (two simulator samples) against a wrong candidate."""

import json

import numpy as np
import pytest

from hepgen.calo.compare import compare_showers
from hepgen.calo.shower_layout import read_showers, write_showers
from hepgen.cli import main
from hepgen.data.generators import calo


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    for name, seed in (("ref", 1), ("floor", 2)):
        assert main(["data", "calo", "-n", "1500", "-o", str(d / f"{name}.h5"), "--seed", str(seed), "-q"]) == 0
    sim = calo.generate(1500, seed=3)
    write_showers(d / "wrong.h5", {k: 1.3 * sim[k] for k in ("layer_0", "layer_1", "layer_2")}, sim["energy"])
    return d


@pytest.mark.slow
def test_floor_is_near_half_and_a_miscalibrated_candidate_is_caught(files):
    result = compare_showers(files / "ref.h5", files / "wrong.h5", floor=files / "floor.h5", classifier_epochs=10)
    auc = result["classifier"]
    assert auc["floor_high"]["auc"] < 0.58 and auc["floor_cells"]["auc"] < 0.62
    assert auc["candidate_high"]["auc"] > 0.9  # a 30 % energy scale is obvious in the response
    assert result["response"]["max_rel_deviation"] == pytest.approx(0.3, abs=0.02)
    ref = read_showers(files / "ref.h5")
    assert result["features"]["response"]["mean_ref"] == pytest.approx(
        float(np.mean(sum(v.sum(axis=(1, 2)) for v in ref.list()) / (1000 * ref.energy))))


@pytest.mark.slow
def test_cli_detects_shower_files_and_writes_the_report(files, tmp_path, capsys):
    assert main(["compare", str(files / "ref.h5"), str(files / "floor.h5"), "--report", str(tmp_path / "r"),
                 "-q"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["n_ref"] == 1500 and "candidate_cells" in out["classifier"]
    assert (tmp_path / "r" / "plots" / "response.png").exists() and (tmp_path / "r" / "plots" / "E_1_E0.png").exists()
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["n_cand"] == 1500


def test_a_file_of_another_layout_is_a_clear_error(tmp_path, capsys):
    from hepgen.data import io

    assert main(["data", "calo", "-n", "20", "-o", str(tmp_path / "ref.h5"), "-q"]) == 0

    io.write(tmp_path / "bad.h5", {"layer_0": np.zeros((5, 3, 96)), "layer_1": np.zeros((5, 12, 11)),
                                   "layer_2": np.zeros((5, 12, 6)), "energy": np.ones(5)})
    assert main(["compare", str(tmp_path / "ref.h5"), str(tmp_path / "bad.h5"), "--showers", "-q"]) == 2
    assert "layer_1 has showers of shape (12, 11)" in capsys.readouterr().err


def _showers(n, rng, scale=1.0):
    """Synthetic showers of the simulator's layout: exponential cells [MeV] (a layer sum is a gamma variate)."""
    from hepgen.calo.shower_layout import LAYERS, Showers

    return Showers({k: scale * rng.exponential(1.0, size=(n, *shape)) for k, shape in LAYERS.items()},
                   rng.uniform(1, 100, n))


def test_feature_bootstrap_errors_match_the_spread_over_fresh_samples():
    rng = np.random.default_rng(4)
    result = compare_showers(_showers(400, rng), _showers(400, rng), classifier=False, n_bootstrap=60, seed=1)
    # E_1 sums the 144 exponential cells of layer 1: Gamma(144, 1). W1's spread over fresh pairs of samples:
    from scipy.stats import wasserstein_distance

    fresh = np.random.default_rng(5)
    spread = np.std([wasserstein_distance(fresh.gamma(144, 1, 400), fresh.gamma(144, 1, 400)) for _ in range(300)])
    e1 = result["features"]["E_1"]
    assert e1["w1_err"] == pytest.approx(spread, rel=0.35)
    for key in ("chi2_ndf_err", "kl_err", "js_err"):
        assert e1[key] > 0
    assert result["bootstrap"] == {"replicas": 60, "max_events": 20_000}


def test_weights_enter_the_features_and_the_response_like_copies_of_showers():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(6)
    ref, cand = _showers(120, rng), _showers(100, rng, scale=1.1)
    wc = rng.integers(1, 4, 100).astype(float)
    weighted = compare_showers(ref, cand, cand_weights=wc, classifier=False, n_bootstrap=2,
                               energy_edges=(1, 50, 100))
    copies = compare_showers(ref, cand.take(np.repeat(np.arange(100), wc.astype(int))), classifier=False,
                             n_bootstrap=2, energy_edges=(1, 50, 100))
    e1_ref, e1_cand = ref.layers["layer_1"].sum((1, 2)), cand.layers["layer_1"].sum((1, 2))
    assert weighted["features"]["E_1"]["w1"] == pytest.approx(
        wasserstein_distance(e1_ref, e1_cand, v_weights=wc), rel=1e-9)
    assert weighted["features"]["E_1"]["mean_cand"] == pytest.approx(np.average(e1_cand, weights=wc), rel=1e-12)
    for name in ("E_1", "response", "width_x_1"):
        for key in ("w1", "mean_cand"):  # (χ² differs: its variance is Σw², not the count of copies)
            assert weighted["features"][name][key] == pytest.approx(copies["features"][name][key], rel=1e-9)
    np.testing.assert_allclose(weighted["response"]["cand"]["mean"], copies["response"]["cand"]["mean"], rtol=1e-12)
    assert weighted["weighted"] and not copies["weighted"]


def test_too_few_showers_give_null_errors_with_a_note():
    rng = np.random.default_rng(7)
    result = compare_showers(_showers(5, rng), _showers(30, rng), classifier=False, n_bootstrap=5)
    assert result["features"]["E_1"]["w1"] is not None and result["features"]["E_1"]["w1_err"] is None
    assert any("bootstrap errors are null" in n for n in result["notes"])


def test_cli_shower_weights_from_the_file_and_bad_weights_exit_2_writing_nothing(tmp_path, capsys):
    from hepgen.calo.shower_layout import write_showers
    from hepgen.data import io

    rng = np.random.default_rng(8)
    for name, n in (("ref", 60), ("cand", 50)):
        s = _showers(n, rng)
        write_showers(tmp_path / f"{name}.h5", s.layers, s.energy)
    io.write(tmp_path / "w.h5", {"w": rng.uniform(0.5, 2, 50), "short": np.ones(7)})
    code = main(["compare", str(tmp_path / "ref.h5"), str(tmp_path / "cand.h5"), "--cand-weights",
                 f"{tmp_path / 'w.h5'}:short", "--report", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "cand_weights" in err and "(50,)" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    code = main(["compare", str(tmp_path / "ref.h5"), str(tmp_path / "cand.h5"), "--cand-weights", "weight",
                 "--report", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "'weight'" in err and not (tmp_path / "r").exists()


def test_shower_classifier_auc_on_the_challenges_own_high_level_inputs(monkeypatch):
    """kind='challenge' feeds the classifier exactly evaluate.py's high-level inputs (log10 E_inc, log10 E_k,
    centroids and widths / 100: no sparsities), computed here independently from the shower features."""
    import hepgen.calo.compare as compare
    from hepgen.calo.shower_layout import Showers
    from hepgen.evaluate.calochallenge import ShowerSample, high_level_inputs
    from hepgen.metrics.shower_observables import shower_features

    d = calo.generate(300, seed=3)
    ref = Showers({k: d[k] for k in d if k.startswith("layer_")}, d["energy"])
    d = calo.generate(300, seed=4)
    other = Showers({k: d[k] for k in d if k.startswith("layer_")}, d["energy"])
    seen = []
    monkeypatch.setattr(compare, "classifier_auc", lambda a, b, **k: seen.append((a, b)) or {"auc": 0.5})
    compare.shower_classifier_auc(ref, other, "challenge")

    def expected(s):
        f = shower_features(s.list(), s.energy, **s.feature_layout())
        cells = np.concatenate([x.reshape(len(x), -1) for x in s.list()], axis=1)
        return high_level_inputs(ShowerSample(s.energy, cells, f))

    a, b = seen[0]
    ea, eb = expected(ref), expected(other)
    keep = np.concatenate([ea, eb]).min(0) < np.concatenate([ea, eb]).max(0)
    np.testing.assert_array_equal(a, ea[:, keep])
    np.testing.assert_array_equal(b, eb[:, keep])
    assert a.shape[1] == 1 + 5 * 3  # log10 E_inc, then per layer E_k, centroids and widths in x and y
    compare.shower_classifier_auc(ref, other, "high")
    assert seen[1][0].shape[1] > a.shape[1]  # hepgen's own high-level inputs add the sparsities
