"""Shower models and compare on CaloChallenge files: fit -> sample -> compare round trips on a dataset-1-photon-like
(368 voxels) and a dataset-2-like (6480 voxels) geometry, the η/φ centroids and widths against a hand computation,
and bad input (a wrong voxel count, a malformed XML) exiting 2 with the file and the layer named, writing nothing."""

import itertools
import json
import math
import shutil

import h5py
import numpy as np
import pytest
import torch

import hepgen
from hepgen.calo.shower_layout import read_showers
from hepgen.cli import main
from hepgen.data.calochallenge import read_geometry
from hepgen.errors import ConfigError, DataError
from hepgen.metrics.shower_observables import classifier_inputs, shower_features
from tests.data.challenge_files import (
    challenge_showers,
    ds1_photon_xml,
    ds2_xml,
    evaluate_high_level_inputs,
    write_challenge_file,
)


@pytest.fixture(scope="module")
def ds1(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds1")
    xml = ds1_photon_xml(d / "binning_dataset_1_photons.xml")
    return {"xml": xml, "train": write_challenge_file(d / "train.h5", xml, 300, seed=1),
            "ref": write_challenge_file(d / "ref.h5", xml, 100, seed=2),
            "floor": write_challenge_file(d / "floor.h5", xml, 100, seed=3), "dir": d}


def test_centroids_and_widths_in_eta_and_phi_by_hand(ds1):
    """Layer 1 (16 radial x 10 angular bins): 3 MeV in angular bin 0, radial bin 2 (edges 4-6 mm) and 1 MeV in
    angular bin 5, radial bin 2. α_0 = -0.9π and α_5 = 0.1π, so the two cells sit at (η, φ) = ∓(a, b) with
    a = 5 cos(0.1π), b = 5 sin(0.1π): centroid -a/2 (weights 3 : 1) and width sqrt(a² - a²/4) = a√3/2."""
    g = read_geometry(ds1["xml"])
    showers = np.zeros((2, 368))
    showers[0, 8 + 0 * 16 + 2] = 3.0
    showers[0, 8 + 5 * 16 + 2] = 1.0
    showers[0, 3] = 10.0  # layer 0: one angular bin, no centroid
    showers[1, 168 + 7 * 19 + 4] = 2.0  # layer 2, angular bin 7, radial bin 4 (edges 15-20 mm): one cell
    from hepgen.calo.shower_layout import Showers

    s = Showers(g.split(showers), np.array([1.0, 2.0]), geometry=g)
    f = shower_features(s.list(), s.energy, **s.feature_layout())
    a, b = 5 * math.cos(0.1 * math.pi), 5 * math.sin(0.1 * math.pi)
    assert f["centroid_x_1"][0] == pytest.approx(-a / 2, rel=1e-12)
    assert f["centroid_y_1"][0] == pytest.approx(-b / 2, rel=1e-12)
    assert f["width_x_1"][0] == pytest.approx(a * math.sqrt(3) / 2, rel=1e-12)
    assert f["width_y_1"][0] == pytest.approx(b * math.sqrt(3) / 2, rel=1e-12)
    alpha = -math.pi + 7.5 * 2 * math.pi / 10
    assert f["centroid_x_2"][1] == pytest.approx(17.5 * math.cos(alpha), rel=1e-12)
    assert f["centroid_y_2"][1] == pytest.approx(17.5 * math.sin(alpha), rel=1e-12)
    assert f["width_x_2"][1] == pytest.approx(0.0, abs=1e-12)
    assert f["E_1"][0] == 4.0 and f["E_0"][0] == 10.0 and f["E_12"][1] == 0.0
    assert f["response"][0] == pytest.approx(14.0 / 1000.0)  # E_dep / E_inc, 14 MeV of 1 GeV
    assert not any(k.startswith(("centroid_x_0", "centroid_x_3", "centroid_x_12")) for k in f)
    # the classifier's high-level inputs: 5 layer energies, the response, 2 x 4 centroids/widths, 5 sparsities, E_inc
    assert classifier_inputs(s.list(), s.energy, "high", **s.feature_layout()).shape == (2, 5 + 1 + 8 + 5 + 1)


@pytest.mark.parametrize("which", ["ds1", "ds2"])
def test_the_protocols_high_level_inputs_are_evaluate_pys(ds1, tmp_path, which):
    """The CaloChallenge protocol's high-level classifier inputs on a geometry's showers, against a transcription
    of evaluate.py's (HighLevelFeatures on the flat voxels and XMLHandler's bin centres): 1 + 5 + 4 x 2 columns
    for dataset 1 photons (centroids of layers 1 and 2 only), 1 + 45 + 4 x 45 for dataset 2."""
    from hepgen.calo.compare import _sample
    from hepgen.evaluate.calochallenge import high_level_inputs

    xml = ds1["xml"] if which == "ds1" else ds2_xml(tmp_path / "binning_dataset_2.xml")
    path = ds1["ref"] if which == "ds1" else write_challenge_file(tmp_path / "ds2.h5", xml, 30, seed=6)
    s = read_showers(path, geometry=xml)
    got = high_level_inputs(_sample(s, shower_features(s.list(), s.energy, **s.feature_layout())))
    with h5py.File(path) as f:
        want = evaluate_high_level_inputs(xml, f["incident_energies"][:].astype(np.float64),
                                          f["showers"][:].astype(np.float64))
    assert got.shape == want.shape == ((100, 14) if which == "ds1" else (30, 1 + 45 + 180))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_read_showers_needs_the_geometry_of_a_challenge_file(ds1):
    with pytest.raises(DataError, match=r"ref\.h5 is a CaloChallenge file \(incident_energies, showers\): give its "
                                        r"binning XML \(--geometry binning.xml"):
        read_showers(ds1["ref"])
    s = read_showers(ds1["ref"], geometry=ds1["xml"])
    assert len(s) == 100 and list(s.layers) == ["layer_0", "layer_1", "layer_2", "layer_3", "layer_12"]
    with h5py.File(ds1["ref"]) as f:
        np.testing.assert_allclose(s.energy, f["incident_energies"][:, 0] / 1000, rtol=1e-6)  # MeV -> GeV
        np.testing.assert_array_equal(s.layers["layer_2"].reshape(100, -1), f["showers"][:, 168:358])


def test_ds1_fit_sample_compare_round_trip(ds1, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "calo-flow", str(ds1["train"]), "--geometry", str(ds1["xml"]), "--out", str(run),
                 "--epochs", "2", "--batch-size", "100", "--cell-transforms", "2", "--bins", "4", "--cell-hidden",
                 "16", "-q"]) == 0, capsys.readouterr().err
    config = (run / "config.yaml").read_text()
    assert "particle: photon" in config and "sha256:" in config
    # sampling needs no XML: the run holds the geometry's content
    moved = tmp_path / "elsewhere.xml"
    shutil.move(ds1["xml"], moved)
    try:
        fake = tmp_path / "fake.h5"
        assert main(["sample", str(run), "-n", "100", "-o", str(fake), "--context", str(ds1["ref"]), "-q"]) == 0, \
            capsys.readouterr().err
    finally:
        shutil.move(moved, ds1["xml"])
    with h5py.File(fake) as f, h5py.File(ds1["ref"]) as ref:  # evaluate.py's check_file and extract_shower_and_energy
        assert set(f) == {"incident_energies", "showers"}
        assert f["incident_energies"].shape == (100, 1) and f["showers"].shape == (100, 368)
        np.testing.assert_allclose(f["incident_energies"][:], ref["incident_energies"][:], rtol=1e-6)
        assert np.isfinite(f["showers"][:]).all()
        response = f["showers"][:].sum(1) / f["incident_energies"][:, 0]
        want = ref["showers"][:].sum(1) / ref["incident_energies"][:, 0]
    assert response.mean() == pytest.approx(want.mean(), rel=0.25)  # the energy scale after a 2-epoch fit
    model = hepgen.load(run)
    assert model.geometry_ == read_geometry(ds1["xml"])
    # score reads the file through the run's geometry too, its incident energies as the context
    assert main(["score", str(run), str(ds1["ref"]), "-o", str(tmp_path / "score.h5"), "-q"]) == 0, \
        capsys.readouterr().err
    showers = read_showers(ds1["ref"], geometry=ds1["xml"])
    with h5py.File(tmp_path / "score.h5") as f:
        np.testing.assert_allclose(f["score"][:], model.score(showers.layers, context=showers.energy[:, None]),
                                   rtol=1e-4, atol=1e-3)
    out = tmp_path / "metrics.json"
    assert main(["compare", str(ds1["ref"]), str(fake), "--geometry", str(ds1["xml"]), "--floor", str(ds1["floor"]),
                 "--report", str(tmp_path / "report"), "-o", str(out), "-q"]) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["n_ref"] == result["n_cand"] == 100
    assert set(result["classifier"]) == {"candidate_high", "candidate_cells", "floor_high", "floor_cells"}
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert {"E_12", "centroid_x_1", "width_y_2", "response"} <= set(metrics["features"])
    assert (tmp_path / "report" / "plots" / "centroid_x_1_E0.png").exists()


def test_ds2_fit_sample_compare_round_trip(tmp_path, capsys):
    xml = ds2_xml(tmp_path / "binning_dataset_2.xml")
    train = write_challenge_file(tmp_path / "train.h5", xml, 120, seed=4)
    ref = write_challenge_file(tmp_path / "ref.h5", xml, 60, seed=5)
    run = tmp_path / "run"
    assert main(["fit", "calo-gan", str(train), "--geometry", str(xml), "--out", str(run), "--epochs", "1",
                 "--batch-size", "30", "--critic-steps", "1", "--hidden", "16", "--critic-hidden", "16",
                 "--stream", "true", "--val", str(ref), "-q"]) == 0, capsys.readouterr().err
    import yaml

    data = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert data["n_train"] == 120 and data["n_val"] == 60 and data["streamed"] is True
    fake = tmp_path / "fake.h5"
    assert main(["sample", str(run), "-n", "60", "-o", str(fake), "--context", str(ref), "-q"]) == 0, \
        capsys.readouterr().err
    with h5py.File(fake) as f:
        assert f["showers"].shape == (60, 6480) and f["incident_energies"].shape == (60, 1)
    from hepgen.calo.compare import compare_showers

    result = compare_showers(ref, fake, geometry=xml, classifier=False, n_bootstrap=2)
    assert result["n_cand"] == 60 and {"E_44", "centroid_y_44", "width_x_0"} <= set(result["features"])


def test_a_wrong_voxel_count_or_a_malformed_xml_exits_2_naming_file_and_layer(ds1, tmp_path, capsys):
    with h5py.File(tmp_path / "short.h5", "w") as f:
        f["incident_energies"] = np.full((20, 1), 1e4, dtype=np.float32)
        f["showers"] = np.ones((20, 360), dtype=np.float32)
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text(ds1["xml"].read_text().replace('r_edges="0,50,100,200,400,600"', 'r_edges="0,50,1OO,200"'))
    no_alpha = tmp_path / "no_alpha.xml"
    no_alpha.write_text(ds1["xml"].read_text().replace('n_bin_alpha="10" />', '/>', 1))
    run = tmp_path / "run"
    cases = [(["fit", "calo-flow", str(tmp_path / "short.h5"), "--geometry", str(ds1["xml"])],
              ["short.h5:showers has 360 voxels", "they end inside layer 3, which gets 2 of its 5 voxels"]),
             (["fit", "calo-flow", str(ds1["train"]), "--geometry", str(bad_xml)],
              ["bad.xml: particle 'photon', layer 3: r_edges '0,50,1OO,200'"]),
             (["fit", "calo-gan", str(ds1["train"]), "--geometry", str(no_alpha)],
              ["no_alpha.xml: particle 'photon', layer 1: no 'n_bin_alpha' attribute"]),
             (["fit", "calo-flow", str(ds1["train"]), "--geometry", f"{ds1['xml']}:pion"],
              ["has no particle 'pion'"]),
             (["fit", "calo-flow", str(ds1["train"])], ["train.h5 is a CaloChallenge file", "--geometry"])]
    for argv, needles in cases:
        assert main([*argv, "--out", str(run), "--epochs", "1", "-q"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and all(n in err for n in needles), err
        assert not run.exists()
    report = tmp_path / "report"
    for argv, needles in (([str(ds1["ref"]), str(tmp_path / "short.h5")], ["short.h5:showers has 360 voxels"]),
                          ([str(ds1["ref"]), str(ds1["floor"]), "--floor", str(tmp_path / "short.h5")], ["short.h5"]),
                          ([str(ds1["ref"]), str(ds1["floor"])], ["ref.h5 is a CaloChallenge file"])):
        geometry = [] if len(needles) == 1 and "CaloChallenge" in needles[0] else ["--geometry", str(ds1["xml"])]
        assert main(["compare", *argv, *geometry, "--report", str(report), "-q"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and all(n in err for n in needles), err
        assert not report.exists()
    assert main(["compare", str(ds1["ref"]), str(ds1["floor"]), "--geometry", str(bad_xml), "-q"]) == 2
    assert "bad.xml: particle 'photon', layer 3" in capsys.readouterr().err


def test_models_take_the_geometry_and_refuse_other_shapes(ds1):
    from hepgen.calo.caloflow import CaloFlow
    from hepgen.calo.gan import CaloGAN

    g = read_geometry(ds1["xml"])
    flow = CaloFlow(geometry=str(ds1["xml"]), cell_transforms=1, cell_hidden=(8,))
    assert flow.shapes == {k: list(v) for k, v in g.shapes.items()} and flow.geometry == g.to_dict()
    gan = CaloGAN.from_data(dict(g.shapes), 1, geometry=g, hidden=(8,), critic_hidden=(8,))
    assert gan.geometry_ == g
    with pytest.raises(ConfigError, match=r"calo-gan: shapes give layer 'layer_1' \[12, 12\], but the geometry "
                                          r".*binning_dataset_1_photons\.xml \(photon\) gives it \[10, 16\]"):
        CaloGAN(shapes={**g.shapes, "layer_1": (12, 12)}, geometry=g, hidden=(8,), critic_hidden=(8,))
    showers = read_showers(ds1["ref"], geometry=g)
    drawn = flow.sample(4, context=np.array([[2.0], [4.0], [8.0], [16.0]]))
    own = flow.output_arrays(drawn, np.array([[2.0], [4.0], [8.0], [16.0]]))
    assert own["showers"].shape == (4, 368) and own["incident_energies"][:, 0].tolist() == [2e3, 4e3, 8e3, 16e3]
    # the drawn cells, negative ones written as 0 (test_the_challenge_layout_is_written_without_negative_voxels)
    np.testing.assert_array_equal(own["showers"][:, 8:168], drawn["layer_1"].numpy().reshape(4, -1).clip(min=0))
    assert len(showers) == 100


def test_compare_reads_shower_weights_beside_a_challenge_files_showers(ds1, tmp_path):
    from hepgen.cli.compare import _shower_weights

    path = write_challenge_file(tmp_path / "weighted.h5", ds1["xml"], 12, seed=7)
    with h5py.File(path, "a") as f:
        f["w"] = np.arange(1.0, 13.0)
    np.testing.assert_array_equal(_shower_weights("w", str(path)), np.arange(1.0, 13.0))
    with pytest.raises(DataError, match=r"weighted\.h5: no weight dataset 'weight' at the top level \(it has "
                                        r"incident_energies, showers, w\)"):
        _shower_weights("weight", str(path))


def test_sample_context_from_a_challenge_file_checks_its_energies_with_file_and_row(ds1, tmp_path):
    """``sample --context ds.h5`` reads the incident energies through the same check as fit: a negative one is named
    with its file, dataset and row in MeV (it surfaced as a GeV value of an anonymous 'context row' before)."""
    from hepgen.calo.caloflow import CaloFlow

    energy, showers = challenge_showers(ds1["xml"], 6, seed=9)
    energy[4] = -1.0
    with h5py.File(tmp_path / "neg.h5", "w") as f:
        f["incident_energies"] = energy.astype(np.float32)
        f["showers"] = showers.astype(np.float32)
    flow = CaloFlow(geometry=str(ds1["xml"]), cell_transforms=1, cell_hidden=(8,))
    with pytest.raises(DataError, match=r"neg\.h5:incident_energies: the incident energy must be a positive number "
                                        r"of MeV; row 4 is -1"):
        flow.context_file(str(tmp_path / "neg.h5"))
    good = flow.context_file(str(ds1["ref"]))
    with h5py.File(ds1["ref"]) as f:
        np.testing.assert_allclose(good.read_rows(0, 100)[:, 0], f["incident_energies"][:, 0] / 1000, rtol=1e-6)


def test_info_summarises_the_geometry_in_one_line_and_config_keeps_it_whole(ds1, tmp_path, capsys):
    import hashlib

    import yaml

    run = tmp_path / "run"
    assert main(["fit", "calo-flow", str(ds1["train"]), "--geometry", str(ds1["xml"]), "--out", str(run),
                 "--epochs", "1", "--batch-size", "100", "--cell-transforms", "1", "--bins", "4", "--cell-hidden",
                 "8", "--energy-hidden", "8", "-q"]) == 0, capsys.readouterr().err
    config = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    params = [line for line in capsys.readouterr().out.splitlines() if line.startswith("params")]
    assert len(params) == 1 and "r_edges" not in params[0] and "layers\": [" not in params[0], params
    shown = json.loads(params[0].split(None, 1)[1])
    digest = hashlib.sha256(ds1["xml"].read_bytes()).hexdigest()
    assert shown["geometry"] == f"photon: 24 layers (5 with voxels), 368 voxels, {ds1['xml'].resolve()} " \
                                f"(sha256 {digest[:12]})"
    assert shown["shapes"] == "5 layers, from the geometry"
    assert (run / "config.yaml").read_text() == config  # the run keeps the whole record
    recorded = yaml.safe_load(config)["params"]["geometry"]
    assert len(recorded["layers"]) == 24 and recorded["sha256"] == digest


def test_the_python_api_fits_a_challenge_file_through_the_models_geometry(ds1):
    """``CaloFlow(geometry=xml).fit("ds.h5")`` reads the file as ``hepgen fit --geometry`` does (it looked for
    layer_0 in the file); a file of another voxel count is named as on the CLI."""
    from hepgen.calo.caloflow import CaloFlow
    from hepgen.data.sources import open_events

    def fit(x, **kw):
        flow = CaloFlow(geometry=str(ds1["xml"]), cell_transforms=1, cell_hidden=(8,), bins=4)
        return flow.fit(x, epochs=1, batch_size=100, seed=0, quiet=True, **kw)

    by_path = fit(str(ds1["train"]), val=str(ds1["ref"]))
    opened = fit(open_events(str(ds1["train"]), geometry=str(ds1["xml"])),
                 val=open_events(str(ds1["ref"]), geometry=str(ds1["xml"])))
    assert by_path.history_[-1]["val_loss"] == pytest.approx(opened.history_[-1]["val_loss"], rel=1e-6)
    with h5py.File(ds1["dir"] / "short_api.h5", "w") as f:
        f["incident_energies"] = np.full((20, 1), 1e4, dtype=np.float32)
        f["showers"] = np.ones((20, 360), dtype=np.float32)
    with pytest.raises(DataError, match=r"short_api\.h5:showers has 360 voxels"):
        fit(str(ds1["dir"] / "short_api.h5"))


def test_sample_asks_a_shower_model_for_its_energies_and_checks_a_context_files_geometry(ds1, tmp_path, capsys):
    """``hepgen sample RUN -n N -o fake.h5`` without --context says how to give the incident energies; a CaloChallenge
    file of another binning as --context is refused naming the layer (it was sampled at its energies before), and an
    HDF5 file of incident_energies alone gives one shower per energy. Nothing is written when refused."""
    from hepgen.calo.caloflow import CaloFlow

    run = tmp_path / "run"
    CaloFlow(geometry=str(ds1["xml"]), cell_transforms=1, cell_hidden=(8,), bins=4).save(run)
    fake = tmp_path / "fake.h5"
    assert main(["sample", str(run), "-n", "5", "-o", str(fake), "-q"]) == 2
    err = capsys.readouterr().err
    assert "calo-flow generates showers at given incident energies: give --context E (one energy in GeV for all -n " \
           "showers) or --context FILE (a CaloChallenge file of its geometry" in err and "Traceback" not in err, err
    assert not fake.exists()
    ds2 = write_challenge_file(tmp_path / "ds2.h5", ds2_xml(tmp_path / "binning_dataset_2.xml"), 3, seed=8)
    assert main(["sample", str(run), "-o", str(fake), "--context", str(ds2), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ds2.h5:showers has 6480 voxels per shower, but" in err and "6112 voxel(s) beyond its last layer (12)" in \
        err and "Traceback" not in err, err
    assert not fake.exists()
    with h5py.File(ds1["ref"]) as f, h5py.File(tmp_path / "energies.h5", "w") as g:
        g["incident_energies"] = f["incident_energies"][:7]
        want = f["incident_energies"][:7]
    assert main(["sample", str(run), "-o", str(fake), "--context", str(tmp_path / "energies.h5"), "-q"]) == 0, \
        capsys.readouterr().err
    with h5py.File(fake) as f:
        assert f["showers"].shape == (7, 368)
        np.testing.assert_array_equal(f["incident_energies"][:], want)


def test_the_challenge_layout_is_written_without_negative_voxels(ds1):
    """evaluate.py takes log10(E_k + 1e-8) of every layer's sum: a negative voxel (calo-flow's cells are y - offset,
    so an empty one comes back a little below 0) could make it NaN. The file gets 0 there; every other voxel as
    drawn."""
    from hepgen.calo.caloflow import CaloFlow

    flow = CaloFlow(geometry=str(ds1["xml"]), cell_transforms=1, cell_hidden=(8,), bins=4)
    g = flow.geometry_
    rng = np.random.default_rng(3)
    drawn = {k: rng.normal(0.0, 2.0, (6, *shape)) for k, shape in g.shapes.items()}
    drawn["layer_3"][0] = -1.0  # a layer whose sum is negative
    own = flow.output_arrays(drawn, np.full((6, 1), 2.0))
    flat = g.join(drawn)
    np.testing.assert_array_equal(own["showers"], np.maximum(flat, 0).astype(np.float32))
    assert (flat < 0).any() and own["showers"].min() == 0.0
    layer_sums = [own["showers"][:, a:b].sum(1) for a, b in itertools.pairwise(g.bin_edges) if b > a]
    assert all(np.isfinite(np.log10(e + 1e-8)).all() for e in layer_sums)


def test_calo_gan_adds_no_noise_on_a_challenge_geometry_unless_asked(ds1):
    """The simulator's 1 MeV of electronic noise is calo-gan's default on its layout; a CaloChallenge geometry's Geant4
    voxels have none, so there the default is 0 (noise on the generated side only would tell the samples apart)."""
    from hepgen.calo.gan import CaloGAN

    small = dict(hidden=(8,), critic_hidden=(8,))
    assert CaloGAN(**small).noise == 1.0
    gan = CaloGAN(geometry=str(ds1["xml"]), **small)
    assert gan.noise == 0.0 and gan.get_config()["noise"] == 0.0
    assert CaloGAN(geometry=str(ds1["xml"]), noise=0.5, **small).noise == 0.5
    with torch.no_grad():
        showers = gan.sample(3, context=np.full((3, 1), 10.0))
    assert all((v >= 0).all() for v in showers.values())  # E x softplus x softmax, and no noise added


def test_compare_runs_the_calochallenge_protocol_on_challenge_files(ds1, tmp_path, capsys):
    """``hepgen compare REF CAND --floor FLOOR --protocol calochallenge --geometry XML`` on CaloChallenge files: the
    challenge's classifier (its settings read back) on high- and low-level inputs, FPD/KPD x1e3 and a separation
    power per feature histogram of the XML's layers, each with its error, for the candidate and the floor. A
    candidate 1.5x too bright separates its E_dep/E_inc histogram far beyond the floor."""
    cand = write_challenge_file(tmp_path / "cand.h5", ds1["xml"], 100, seed=4, scale=1.5)
    out = tmp_path / "metrics.json"
    assert main(["compare", str(ds1["ref"]), str(cand), "--floor", str(ds1["floor"]), "--geometry", str(ds1["xml"]),
                 "--protocol", "calochallenge", "--classifier-epochs", "1", "-o", str(out), "-q"]) == 0, \
        capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["protocol"] == "calochallenge"
    assert set(result["classifier"]) == {"candidate_high", "candidate_low", "floor_high", "floor_low"}
    for test in result["classifier"].values():
        s = test["settings"]
        assert (s["hidden"], s["activation"], s["lr"], s["batch_size"], s["split"], s["calibrate"]) == \
            ([2048, 2048, 2048], "leaky_relu", 2e-4, 1000, [0.6, 0.2, 0.2], "isotonic")
        assert test["n_train"] == 120 and test["n_test"] == 40 and test["auc_err"] > 0 and "jsd_err" in test
    for label in ("candidate", "floor"):
        assert result["fpd"][label]["error"] > 0 and result["kpd"][label]["error"] > 0
        powers = result["separation_power"][label]
        assert {"response", "E_0", "E_12", "centroid_x_1", "centroid_y_2", "width_x_1", "width_y_2", "cells"} \
            <= set(powers) and "centroid_x_0" not in powers  # layer 0 has one angular bin
    c, f = result["separation_power"]["candidate"]["response"], result["separation_power"]["floor"]["response"]
    assert c["value"] > 0.9 and f["value"] < 0.5 and c["error"] < 0.1
    assert result["fpd"]["candidate"]["value"] > 4 * result["fpd"]["floor"]["value"]


def test_centroids_of_a_tiny_geometry_with_an_empty_layer_by_hand(tmp_path):
    """Three layers: 4 angular x 2 radial bins (edges 0, 1, 3 mm), none (r_edges="0"), 1 x 2. α_j = -3π/4 ... 3π/4,
    r = 0.5, 2 mm. A shower with 2 MeV at (α_1, r_1) and 1 MeV at (α_2, r_0); one with layer 0 empty: its centroid
    and width are 0 (HighLevelFeatures' energy sum + 1e-16), not NaN; layer 2 (one angular bin) has none."""
    xml = tmp_path / "tiny.xml"
    xml.write_text('<Bins><Bin pid="22" name="photon"><Layer id="0" r_edges="0,1,3" n_bin_alpha="4"/>'
                   '<Layer id="1" r_edges="0" n_bin_alpha="1"/><Layer id="2" r_edges="0,2,4" n_bin_alpha="1"/>'
                   '</Bin></Bins>')
    showers = np.zeros((2, 10))
    showers[0, 1 * 2 + 1], showers[0, 2 * 2 + 0], showers[0, 9] = 2.0, 1.0, 4.0
    showers[1, 8] = 3.0
    with h5py.File(tmp_path / "tiny.h5", "w") as f:
        f["incident_energies"] = np.array([[1000.0], [2000.0]])
        f["showers"] = showers
    s = read_showers(tmp_path / "tiny.h5", geometry=xml)
    assert {k: v.shape for k, v in s.layers.items()} == {"layer_0": (2, 4, 2), "layer_2": (2, 1, 2)}
    f = shower_features(s.list(), s.energy, **s.feature_layout())
    x = np.array([2.0 * math.cos(-math.pi / 4), 0.5 * math.cos(math.pi / 4)])
    y = np.array([2.0 * math.sin(-math.pi / 4), 0.5 * math.sin(math.pi / 4)])
    w = np.array([2.0, 1.0]) / 3.0
    cx, cy = (w * x).sum(), (w * y).sum()
    got = [f[k][0] for k in ("centroid_x_0", "centroid_y_0", "width_x_0", "width_y_0")]
    want = [cx, cy, math.sqrt((w * x * x).sum() - cx**2), math.sqrt((w * y * y).sum() - cy**2)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert [f[k][1] for k in ("centroid_x_0", "centroid_y_0", "width_x_0", "width_y_0")] == [0.0, 0.0, 0.0, 0.0]
    assert "centroid_x_2" not in f and "E_1" not in f and f["E_2"].tolist() == [4.0, 3.0]
    np.testing.assert_allclose(f["response"], [7.0 / 1000.0, 3.0 / 2000.0])


def test_sample_names_the_context_files_row_of_an_energy_out_of_range(ds1, tmp_path, capsys):
    """Every energy of --context FILE is checked before a shower is drawn, and a bad one is named with its row of
    the file (the check ran per block and named the row within the block: 'context row 50' for row 250)."""
    from hepgen.calo.caloflow import CaloFlow

    flow = CaloFlow(geometry=str(ds1["xml"]), cell_transforms=1, cell_hidden=(8,), bins=4)
    flow.energy_range_ = (2.0, 100.0)
    flow.save(tmp_path / "run")
    with h5py.File(ds1["train"]) as f, h5py.File(tmp_path / "far.h5", "w") as g:
        energy = f["incident_energies"][:].copy()
        energy[250, 0] = 1e8  # MeV: 10^5 GeV, 1000x the training range's top
        g["incident_energies"], g["showers"] = energy, f["showers"][:]
    fake = tmp_path / "fake.h5"
    assert main(["sample", str(tmp_path / "run"), "-o", str(fake), "--context", str(tmp_path / "far.h5"),
                 "--block-size", "100", "-q"]) == 2
    err = capsys.readouterr().err
    assert "the incident energy 100000 GeV (" in err and "far.h5 row 250) lies far outside the training range 2 to " \
        "100 GeV" in err and "Traceback" not in err, err
    assert not fake.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["far.h5", "run"]
