"""Tests of the Pythia 8 + FastJet jets generator, its substructure code and the shipped sample."""

from __future__ import annotations

import itertools
import sys

import h5py
import numpy as np
import pytest

from hepgen.data.generators import jet_features as jf
from hepgen.data.generators import jets
from hepgen.errors import ConfigError

if sys.platform == "win32":  # pythia8mc and fastjet are dependencies everywhere else (no Windows wheels)
    pytest.skip("pythia8mc/fastjet are not installed on Windows", allow_module_level=True)
import fastjet  # noqa: E402
import pythia8mc  # noqa: E402


# ------------------------------------------------------------------------------------------ helpers


def massless_p4(pt, rap, phi) -> np.ndarray:
    """(n, 4) massless 4-momenta from pt, rapidity (= pseudorapidity here), phi."""
    pt, rap, phi = map(np.asarray, (pt, rap, phi))
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(rap), pt * np.cosh(rap)], axis=1)


def brute_force_kt_axes(p4: np.ndarray, n_axes: int, wta: bool = False) -> np.ndarray:
    """Exclusive kT clustering by hand: merge the pair with smallest min(pt_i^2, pt_j^2) dR_ij^2.

    E-scheme adds 4-vectors; winner-take-all keeps the harder direction with the summed pT (massless).
    """
    objects = [row.copy() for row in p4]
    while len(objects) > n_axes:
        pt, _, phi, rap = jf.kinematics(np.array(objects))
        best, pair = np.inf, None
        for i, j in itertools.combinations(range(len(objects)), 2):
            dphi = (phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi
            d = min(pt[i] ** 2, pt[j] ** 2) * ((rap[i] - rap[j]) ** 2 + dphi**2)
            if d < best:
                best, pair = d, (i, j)
        i, j = pair
        if wta:
            hard = i if pt[i] >= pt[j] else j
            merged = massless_p4([pt[i] + pt[j]], [rap[hard]], [phi[hard]])[0]
        else:
            merged = objects[i] + objects[j]
        objects = [o for k, o in enumerate(objects) if k not in (i, j)] + [merged]
    return np.array(objects)


def brute_force_tau(p4: np.ndarray, n_axes: int, R: float, wta: bool = False) -> float:
    pt, _, phi, rap = jf.kinematics(p4)
    _, _, aphi, arap = jf.kinematics(brute_force_kt_axes(p4, n_axes, wta))
    total = 0.0
    for k in range(len(p4)):
        dr = [np.hypot(rap[k] - arap[a], (phi[k] - aphi[a] + np.pi) % (2 * np.pi) - np.pi) for a in range(len(arap))]
        total += pt[k] * min(dr)
    return total / (pt.sum() * R)


def prong_jet(centres, rng, n_per_prong=12, spread=0.01, pt_prong=200.0) -> np.ndarray:
    pts, raps, phis = [], [], []
    for y0, phi0 in centres:
        pts.append(rng.uniform(0.5, 1.5, n_per_prong) * pt_prong / n_per_prong)
        raps.append(y0 + spread * rng.standard_normal(n_per_prong))
        phis.append(phi0 + spread * rng.standard_normal(n_per_prong))
    return massless_p4(np.concatenate(pts), np.concatenate(raps), np.concatenate(phis))


def rotate(x, y, angle, centre=(0.0, 0.0)):
    c, s = np.cos(angle), np.sin(angle)
    x, y = x - centre[0], y - centre[1]
    return c * x - s * y + centre[0], s * x + c * y + centre[1]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def qcd_all():
    """20 QCD jets keeping every constituent (N = 200 exceeds any multiplicity here)."""
    return jets.generate(20, seed=5, process="qcd", max_constituents=200, progress=False)


@pytest.fixture(scope="module")
def qcd_default():
    return jets.generate(20, seed=5, process="qcd", progress=False)


@pytest.fixture(scope="module")
def shipped():
    if not jets.SHIPPED_SAMPLE.is_file():
        pytest.fail(f"shipped sample missing: {jets.SHIPPED_SAMPLE}")
    return {process: jets.load_sample(process) for process in jets.PROCESSES}


# ------------------------------------------------------------------------------------------ generator


def test_shapes_dtypes_and_columns(qcd_default):
    a = qcd_default
    assert a["constituents"].shape == (20, 30, 3)
    assert a["mask"].shape == (20, 30) and a["mask"].dtype == bool
    assert a["images"].shape == (20, 40, 40)
    assert a["features"].shape == (20, len(jets.columns()["features"]))
    assert a["weights"].shape == (20,)
    np.testing.assert_array_equal(a["weights"], 1.0)  # unweighted Pythia events
    cols = jets.columns()["features"]
    assert cols[:3] == ["pt", "eta", "mass"] and "tau21" in cols and "d2" in cols
    for value in a.values():
        assert np.all(np.isfinite(value))


def test_mask_matches_multiplicity_and_padding(qcd_all, qcd_default):
    n_const = qcd_all["features"][:, jets.columns()["features"].index("n_constituents")]
    np.testing.assert_array_equal(qcd_all["mask"].sum(axis=1), n_const)
    assert n_const.max() < 200
    # Same seed, N = 30: the 30 hardest of the same jets, zero padded.
    np.testing.assert_array_equal(qcd_default["mask"].sum(axis=1), np.minimum(n_const, 30))
    np.testing.assert_allclose(qcd_default["constituents"], qcd_all["constituents"][:, :30], rtol=0, atol=0)
    for c, m in zip(qcd_all["constituents"], qcd_all["mask"]):
        assert np.all(c[~m] == 0)
        assert m[: m.sum()].all()  # real rows first
        assert np.all(np.diff(c[m][:, 0]) <= 0)  # pT-ordered
        assert np.all(np.abs(c[m][:, 2]) <= np.pi)


def test_jet_in_window_and_pt_from_constituents(qcd_all):
    f = qcd_all["features"]
    cols = jets.columns()["features"]
    pt, eta = f[:, cols.index("pt")], f[:, cols.index("eta")]
    assert np.all((pt >= 550) & (pt <= 650))
    assert np.all(np.abs(eta) < 2.0)
    c = qcd_all["constituents"].astype(np.float64)  # padding rows have pT = 0
    px = np.sum(c[..., 0] * np.cos(c[..., 2]), axis=1)
    py = np.sum(c[..., 0] * np.sin(c[..., 2]), axis=1)
    np.testing.assert_allclose(np.hypot(px, py), pt, rtol=1e-5)  # vector pT sum is exact
    np.testing.assert_allclose(py / px, 0.0, atol=1e-5)  # dphi measured from the jet axis


def test_substructure_ranges(qcd_all):
    f = qcd_all["features"]
    col = {name: f[:, i] for i, name in enumerate(jets.columns()["features"])}
    for ratio in ("tau21", "tau32"):
        assert np.all((col[ratio] >= 0) & (col[ratio] < 1.5))
        assert np.mean(col[ratio] <= 1) >= 0.75
        # Non-minimising kT axes give tau_N > tau_{N-1} only for narrow, one-prong-like jets.
        assert np.all(col["tau1"][col[ratio] > 1] < 0.2)
    np.testing.assert_allclose(col["tau21"], col["tau2"] / col["tau1"], rtol=1e-5)
    np.testing.assert_allclose(col["tau32"], col["tau3"] / col["tau2"], rtol=1e-5)
    assert np.all(col["tau1"] > 0) and np.all(col["tau1"] < 1)
    assert np.all(col["c2"] > 0) and np.all(col["c2"] < 0.5)
    assert np.all(col["d2"] > 0)
    assert np.all(col["mass"] > 0) and np.all(col["mass"] < col["pt"])


def test_wta_axes_keep_ratios_in_unit_interval(qcd_all):
    wta = jets.generate(20, seed=5, process="qcd", max_constituents=200, nsub_axes="wta_kt", progress=False)
    cols = jets.columns()["features"]
    taus = [cols.index(name) for name in ("tau1", "tau2", "tau3", "tau21", "tau32")]
    same = [cols.index(name) for name in ("pt", "eta", "mass", "c2", "d2", "n_constituents")]
    np.testing.assert_array_equal(wta["features"][:, same], qcd_all["features"][:, same])
    np.testing.assert_array_equal(wta["constituents"], qcd_all["constituents"])
    for name in ("tau21", "tau32"):
        assert np.all((wta["features"][:, cols.index(name)] >= 0) & (wta["features"][:, cols.index(name)] <= 1))
    assert not np.allclose(wta["features"][:, taus], qcd_all["features"][:, taus])


def test_image_sum_equals_pt_inside_window(qcd_all):
    images = qcd_all["images"]
    for k in range(20):
        c = qcd_all["constituents"][k][qcd_all["mask"][k]].astype(np.float64)
        x, y = jf.standardise_coordinates(c[:, 0], c[:, 1], c[:, 2])
        inside = (np.abs(x) < 1.2) & (np.abs(y) < 1.2)
        np.testing.assert_allclose(images[k].sum(), c[inside, 0].sum(), rtol=1e-5)
        assert c[inside, 0].sum() / c[:, 0].sum() > 0.97
        # Hottest half in x > 0 and y > 0 (rows are y ascending, columns x ascending).
        assert images[k][:, 20:].sum() >= images[k][:, :20].sum()
        assert images[k][20:, :].sum() >= images[k][:20, :].sum()


def test_determinism_same_seed_and_different_seed(qcd_default):
    again = jets.generate(20, seed=5, process="qcd", progress=False)
    for key in jets.DATASETS:
        np.testing.assert_array_equal(again[key], qcd_default[key])
    other = jets.generate(5, seed=6, process="qcd", progress=False)
    assert not np.array_equal(other["features"], qcd_default["features"][:5])


def test_output_independent_of_workers_and_a_prefix():
    one = jets.generate(7, seed=11, process="w", block_size=3, workers=1, progress=False)
    two = jets.generate(9, seed=11, process="w", block_size=3, workers=2, progress=False)
    for key in jets.DATASETS:
        np.testing.assert_array_equal(two[key][:7], one[key])


def test_jet_mass_from_constituents_equals_fastjet_mass():
    """Re-cluster Pythia events by hand in fastjet; the generator's mass and the 4-vector sum agree."""
    opts = jets.resolve_options(process="top", truth_match=False)
    pythia = pythia8mc.Pythia("", False)
    for line in jets.pythia_settings("top", opts["ptmin"], opts["ptmax"], 4242):
        pythia.readString(line)
    assert pythia.init()
    checked = 0
    for _ in range(60):
        if not pythia.next():
            continue
        selected = jets._select_jet(pythia, opts)
        p4 = jets._final_state(pythia.event)
        jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, 0.8)
        cs = fastjet.ClusterSequence([fastjet.PseudoJet(*row) for row in p4], jet_def)
        lead = fastjet.sorted_by_pt(cs.inclusive_jets(0.0))[0]
        if selected is None:
            assert not (550 <= lead.pt() <= 650 and abs(lead.eta()) < 2)
            continue
        members = np.array([[c.px(), c.py(), c.pz(), c.e()] for c in lead.constituents()])
        e, px, py, pz = members[:, 3].sum(), members[:, 0].sum(), members[:, 1].sum(), members[:, 2].sum()
        mass_by_hand = np.sqrt(e**2 - px**2 - py**2 - pz**2)
        np.testing.assert_allclose(lead.m(), mass_by_hand, rtol=1e-8)
        np.testing.assert_allclose(selected["features"][2], lead.m(), rtol=1e-8)
        np.testing.assert_allclose(selected["features"][0], lead.pt(), rtol=1e-10)
        assert selected["features"][-1] == len(members)
        checked += 1
    assert checked >= 5


# ------------------------------------------------------------------------------------------ substructure (no Pythia)


@pytest.mark.parametrize("axes", ["kt", "wta_kt"])
def test_nsubjettiness_matches_brute_force_kt_axes(axes):
    rng = np.random.default_rng(0)
    p4 = massless_p4(rng.uniform(1, 50, 11), rng.normal(0.3, 0.3, 11), rng.normal(1.0, 0.3, 11))
    taus = jf.nsubjettiness(p4, R=0.8, axes=axes)
    expected = [brute_force_tau(p4, n, 0.8, wta=axes == "wta_kt") for n in (1, 2, 3)]
    np.testing.assert_allclose(taus, expected, rtol=1e-9)
    assert not np.allclose(jf.nsubjettiness(p4, R=0.8, axes="kt")[1:], jf.nsubjettiness(p4, R=0.8, axes="wta_kt")[1:])


def test_energy_correlation_ratios_match_triple_loop():
    rng = np.random.default_rng(1)
    pt, rap, phi = rng.uniform(1, 30, 9), rng.normal(0, 0.3, 9), rng.normal(3.0, 0.3, 9)  # phi wraps at pi
    z = pt / pt.sum()

    def dr(i, j):
        return np.hypot(rap[i] - rap[j], (phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi)

    e2 = sum(z[i] * z[j] * dr(i, j) for i, j in itertools.combinations(range(9), 2))
    e3 = sum(z[i] * z[j] * z[k] * dr(i, j) * dr(i, k) * dr(j, k) for i, j, k in itertools.combinations(range(9), 3))
    c2, d2 = jf.energy_correlation_ratios(pt, rap, phi)
    np.testing.assert_allclose([c2, d2], [e3 / e2**2, e3 / e2**3], rtol=1e-10)
    # Closed forms: two particles have e3 = 0; three equal particles on a triangle of side d have
    # e2 = d/3, e3 = d^3/27, so C2 = d/3 and D2 = 1.
    assert jf.energy_correlation_ratios(np.array([5.0, 7.0]), np.array([0.0, 0.3]), np.array([0.0, 0.1])) == (0.0, 0.0)
    d = 0.3
    tri_rap = np.array([0.0, d, d / 2])
    tri_phi = np.array([0.0, 0.0, d * np.sqrt(3) / 2])
    triangle = jf.energy_correlation_ratios(np.full(3, 4.0), tri_rap, tri_phi)
    np.testing.assert_allclose(triangle, [d / 3, 1.0], rtol=1e-12)


def test_two_and_three_prong_toy_jets():
    rng = np.random.default_rng(2)
    two = prong_jet([(0.0, 0.0), (0.35, 0.15)], rng)
    three = prong_jet([(0.0, 0.0), (0.35, 0.1), (0.1, 0.4)], rng)
    t2 = jf.nsubjettiness(two, R=0.8)
    t3 = jf.nsubjettiness(three, R=0.8)
    assert t2[1] / t2[0] < 0.1 and t2[2] / t2[1] > 0.3  # 2-prong: small tau21
    assert t3[2] / t3[1] < 0.15 and t3[1] / t3[0] > 0.3  # 3-prong: small tau32
    # tau_1 of two equal-pT-ish prongs at distance D from each other is about D/2 / R.
    assert 0.1 < t2[0] < 0.35


def test_pixelise_matches_histogram2d():
    rng = np.random.default_rng(3)
    pt, x, y = rng.uniform(0, 10, 500), rng.uniform(-1.5, 1.5, 500), rng.uniform(-1.5, 1.5, 500)
    expected, _, _ = np.histogram2d(y, x, bins=40, range=[[-1.2, 1.2], [-1.2, 1.2]], weights=pt)
    np.testing.assert_allclose(jf.pixelise(pt, x, y, size=40, half_width=1.2), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("angle", [0.3, 1.9, -2.6])
def test_image_invariant_under_rotation_and_translation(qcd_all, angle):
    for k in range(5):
        c = qcd_all["constituents"][k][qcd_all["mask"][k]].astype(np.float64)
        x, y = rotate(c[:, 1], c[:, 2], angle, centre=(0.1, -0.05))
        x, y = x + 0.07, y - 0.02
        ref = jf.standardise_coordinates(c[:, 0], c[:, 1], c[:, 2])
        moved = jf.standardise_coordinates(c[:, 0], x, y)
        np.testing.assert_allclose(moved[0], ref[0], atol=1e-9)
        np.testing.assert_allclose(moved[1], ref[1], atol=1e-9)
        image, image_moved = jf.jet_image(c[:, 0], c[:, 1], c[:, 2]), jf.jet_image(c[:, 0], x, y)
        assert np.abs(image - image_moved).sum() <= 1e-3 * image.sum()
        # The raw, unprocessed picture does change under the rotation.
        raw, raw_moved = jf.pixelise(c[:, 0], c[:, 1], c[:, 2]), jf.pixelise(c[:, 0], x, y)
        assert np.abs(raw - raw_moved).sum() > 0.1 * raw.sum()


# ------------------------------------------------------------------------------------------ shipped sample


def test_shipped_sample_layout_and_size(shipped):
    assert jets.shipped_sample_path() == jets.SHIPPED_SAMPLE
    assert jets.SHIPPED_SAMPLE.stat().st_size < 8e6
    with h5py.File(jets.SHIPPED_SAMPLE, "r") as handle:
        assert set(handle) == {"qcd", "top", "w"}
        for process in jets.PROCESSES:
            features = handle[f"{process}/features"]
            assert features.ndim == 2 and features.shape[1] == len(jets.columns()["features"])
            assert list(features.attrs["columns"]) == jets.columns()["features"]
            assert handle[f"{process}/images"].dtype == np.float16
    for process, a in shipped.items():
        n = len(a["features"])
        assert 2000 <= n <= 3000
        assert a["constituents"].shape == (n, 30, 3) and a["images"].shape == (n, 40, 40)
        assert np.all(np.isfinite(a["images"])) and np.all(np.isfinite(a["features"]))


def test_shipped_masses_peak_where_physics_says(shipped):
    m = jets.columns()["features"].index("mass")
    masses = {process: a["features"][:, m] for process, a in shipped.items()}
    assert abs(np.median(masses["top"]) - 175.0) < 20.0
    assert abs(np.median(masses["w"]) - 80.4) < 20.0
    assert np.median(masses["qcd"]) < np.median(masses["top"]) - 50.0
    iqr = {p: np.subtract(*np.percentile(v, [75, 25])) for p, v in masses.items()}
    assert iqr["qcd"] > 2.0 * iqr["w"]  # QCD mass spectrum is broad, the W peak narrow
    assert iqr["qcd"] > 2.0 * iqr["top"]
    near_w = np.abs(masses["w"] - np.median(masses["w"])) < 10.0
    near_w_qcd = np.abs(masses["qcd"] - np.median(masses["w"])) < 10.0
    assert near_w.mean() > 2.0 * near_w_qcd.mean()
    t32 = jets.columns()["features"].index("tau32")
    t21 = jets.columns()["features"].index("tau21")
    assert np.median(shipped["top"]["features"][:, t32]) < np.median(shipped["qcd"]["features"][:, t32])
    assert np.median(shipped["w"]["features"][:, t21]) < np.median(shipped["qcd"]["features"][:, t21])


# ------------------------------------------------------------------------------------------ errors and options


def test_missing_backends_raise_config_error_naming_shipped_sample(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match="pip install pythia8mc") as info:
        jets.generate(3, process="qcd")
    assert str(jets.SHIPPED_SAMPLE) in str(info.value)


def test_option_validation_and_string_coercion(monkeypatch):
    opts = jets.resolve_options(R="1.0", truth_match="false", workers="2", process="TOP")
    assert opts["R"] == 1.0 and opts["truth_match"] is False and opts["workers"] == 2 and opts["process"] == "top"
    assert set(jets.OPTIONS) >= {"process", "ptmin", "ptmax", "R", "max_constituents", "image_size", "workers"}
    bad_options = ({"process": "higgs"}, {"ptmin": 700.0}, {"colour": 1}, {"R": "wide"}, {"truth_match": "maybe"},
                   {"workers": 0}, {"nsub_axes": "anti_kt"})
    for bad in bad_options:
        with pytest.raises(ConfigError):
            jets.resolve_options(**bad)
    monkeypatch.setattr(jets, "_MAX_EVENTS_PER_JET", 0)
    monkeypatch.setattr(jets, "_MIN_MAX_EVENTS", 5)
    with pytest.raises(ConfigError, match=r"only 0 of 3 jets passed the selection in 5 Pythia events"):
        jets.generate(3, seed=0, process="qcd", eta_max=1e-4, progress=False)


def test_image_substructure_of_pixels_at_their_centres():
    """Constituents placed at pixel centres: the image's pT sum, mass and tau21 are those of the constituents,
    by the closed form m² = Σ_{i<j} 2 p_i p_j (cosh Δη − cos Δφ) and by nsubjettiness; empty and negative pixels
    are no constituents."""
    size, h = 40, 1.2
    centre = lambda i: -h + (i + 0.5) * 2 * h / size  # noqa: E731
    ix, iy, pt = np.array([5, 20, 21, 33]), np.array([7, 20, 26, 12]), np.array([40.0, 300.0, 120.0, 15.0])
    image = np.zeros((2, size, size))
    image[0, iy, ix] = pt
    image[1, 3, 3] = -5.0  # a generator's negative pixel: dropped
    image[1, 10, 10] = 7.0
    x, y = centre(ix), centre(iy)
    m2 = sum(2 * pt[a] * pt[b] * (np.cosh(x[a] - x[b]) - np.cos(y[a] - y[b]))
             for a, b in itertools.combinations(range(4), 2))
    tau1, tau2 = jf.nsubjettiness(massless_p4(pt, x, y), 0.8, n_max=2)
    got = jf.image_substructure(image, R=0.8)
    np.testing.assert_allclose(got[0], [pt.sum(), np.sqrt(m2), tau2 / tau1], rtol=1e-9)
    np.testing.assert_allclose(got[1], [7.0, 0.0, 0.0], atol=1e-6)
    with pytest.raises(ConfigError, match="jet images"):
        jf.image_substructure(np.zeros((2, 4, 5)))


def test_image_mass_tracks_the_constituent_mass_of_the_shipped_jets(shipped):
    images, features = shipped["qcd"]["images"][:300].astype(np.float64), shipped["qcd"]["features"][:300]
    got = jf.image_substructure(images)
    names = jf.FEATURE_COLUMNS
    assert np.corrcoef(got[:, 1], features[:, names.index("mass")])[0, 1] > 0.99
    np.testing.assert_allclose(np.median(got[:, 0] / features[:, names.index("pt")]), 1.0, atol=0.02)
    assert np.corrcoef(got[:, 2], features[:, names.index("tau21")])[0, 1] > 0.6
