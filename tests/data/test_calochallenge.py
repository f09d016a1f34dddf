"""CaloChallenge binning XML and files: the geometry follows the challenge's XMLHandler (checked against a transcription
of its loops), files round-trip, streamed and in-memory reads agree, and every malformed input is a DataError naming
the file and the layer."""

import h5py
import numpy as np
import pytest

from hepgen.data.calochallenge import (
    ChallengeGeometry,
    open_challenge,
    read_challenge,
    read_geometry,
    write_challenge,
)
from hepgen.errors import ConfigError, DataError
from tests.data.challenge_files import (
    DS1_PHOTON_SIZES,
    ds1_photon_xml,
    ds2_xml,
    write_challenge_file,
    xml_handler_eta_phi,
)


@pytest.fixture(scope="module")
def xmls(tmp_path_factory):
    d = tmp_path_factory.mktemp("xml")
    return {"ds1": ds1_photon_xml(d / "binning_dataset_1_photons.xml"), "ds2": ds2_xml(d / "binning_dataset_2.xml")}


def test_dataset_1_photons_geometry_is_the_challenges(xmls):
    g = read_geometry(xmls["ds1"])
    assert g.particle == "photon" and g.pid == "22" and len(g.layers) == 24
    assert g.voxels == 368
    assert {layer.id: layer.voxels for layer in g.filled} == DS1_PHOTON_SIZES
    assert g.shapes == {"layer_0": (1, 8), "layer_1": (10, 16), "layer_2": (10, 19), "layer_3": (1, 5),
                        "layer_12": (1, 5)}
    # XMLHandler.GetBinEdges: cumulative voxel counts over all 24 layers
    assert g.bin_edges == [0, 8, 168, 358, 363] + [363] * 8 + [368] * 12
    # the bin centres of every layer, against the transcription of XMLHandler's loops
    reference = xml_handler_eta_phi(xmls["ds1"])
    for layer in g.filled:
        eta, phi = layer.centres()
        np.testing.assert_allclose(eta.reshape(-1), reference[layer.id][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(phi.reshape(-1), reference[layer.id][1], rtol=1e-12, atol=1e-12)
    # centroids only where the layer is binned in angle (HighLevelFeatures' layersBinnedInAlpha)
    assert [k for k, v in g.centres().items() if v is not None] == ["layer_1", "layer_2"]


def test_dataset_2_geometry(xmls):
    g = read_geometry(xmls["ds2"])
    assert g.particle == "electron" and g.voxels == 6480 == 45 * 16 * 9
    assert set(g.shapes.values()) == {(16, 9)} and len(g.shapes) == 45
    reference = xml_handler_eta_phi(xmls["ds2"])
    eta, phi = g.filled[44].centres()
    np.testing.assert_allclose(eta.reshape(-1), reference[44][0], atol=1e-12)
    np.testing.assert_allclose(phi.reshape(-1), reference[44][1], atol=1e-12)


def test_voxel_order_angular_outer_radial_inner(xmls):
    g = read_geometry(xmls["ds1"])
    showers = np.zeros((2, 368))
    # layer 1 starts at voxel 8; its voxel 8 + j * 16 + i is angular bin j, radial bin i
    showers[0, 8 + 3 * 16 + 5] = 7.0
    showers[1, 358 + 2] = 4.0  # layer 3, radial bin 2
    showers[1, 363 + 4] = 2.0  # layer 12, radial bin 4
    layers = g.split(showers)
    assert layers["layer_1"][0, 3, 5] == 7.0 and layers["layer_1"].sum() == 7.0
    assert layers["layer_3"][1, 0, 2] == 4.0 and layers["layer_12"][1, 0, 4] == 2.0
    np.testing.assert_array_equal(g.join(layers), showers)


def test_geometry_round_trips_through_its_record_and_a_particle_key(xmls, tmp_path):
    g = read_geometry(xmls["ds1"])
    again = ChallengeGeometry.from_dict(g.to_dict())
    assert again == g and again.sha256 == g.sha256 and len(g.sha256) == 64
    assert read_geometry(f"{xmls['ds1']}:photon") == g
    two = tmp_path / "two.xml"
    two.write_text('<Bins><Bin name="photon"><Layer id="0" r_edges="0,1,2" n_bin_alpha="1"/></Bin>'
                   '<Bin name="pion"><Layer id="0" r_edges="0,1,2,3" n_bin_alpha="2"/></Bin></Bins>')
    assert read_geometry(f"{two}:pion").voxels == 6
    with pytest.raises(DataError, match=r"two\.xml holds several particles \(photon, pion\); name one as "
                                        r".*two\.xml:photon"):
        read_geometry(two)


@pytest.mark.parametrize("layer, message", [
    ('<Layer id="1" n_bin_alpha="10"/>', r"bad\.xml: particle 'photon', layer 1: no 'r_edges' attribute"),
    ('<Layer id="1" r_edges="0,2,4"/>', r"bad\.xml: particle 'photon', layer 1: no 'n_bin_alpha' attribute"),
    ('<Layer r_edges="0,2,4" n_bin_alpha="1"/>', r"bad\.xml: particle 'photon', layer #1 \(no id\): no 'id'"),
    ('<Layer id="1" r_edges="0,2,x4" n_bin_alpha="10"/>',
     r"bad\.xml: particle 'photon', layer 1: r_edges '0,2,x4' is not a comma-separated list of numbers"),
    ('<Layer id="1" r_edges="0,4,2" n_bin_alpha="10"/>',
     r"layer 1: r_edges '0,4,2' must be finite, start at >= 0 and increase"),
    ('<Layer id="1" r_edges="0,2,nan" n_bin_alpha="10"/>', r"layer 1: r_edges '0,2,nan' must be finite"),
    ('<Layer id="1" r_edges="0,2,4" n_bin_alpha="ten"/>', r"layer 1: n_bin_alpha 'ten' is not an integer"),
    ('<Layer id="1" r_edges="0,2,4" n_bin_alpha="0"/>', r"layer 1: n_bin_alpha must be at least 1, got 0"),
    ('<Layer id="0" r_edges="0,2,4" n_bin_alpha="1"/>',
     r"layer 0: the layer ids must be >= 0 and increase in file order .*this is <Layer> #1, after layer 0"),
])
def test_a_malformed_layer_is_named_with_its_file(tmp_path, layer, message):
    bad = tmp_path / "bad.xml"
    bad.write_text(f'<Bins><Bin pid="22" name="photon"><Layer id="0" r_edges="0,5,10" n_bin_alpha="1"/>{layer}'
                   '</Bin></Bins>')
    with pytest.raises(DataError, match=message):
        read_geometry(bad)


def test_malformed_files_unknown_particles_and_missing_files(tmp_path, xmls):
    cases = {"notxml.xml": ("<Bins><Bin name='photon'>", r"notxml\.xml: not a readable XML file"),
             "nobin.xml": ("<Bins><Other/></Bins>", r"nobin\.xml: no <Bin> element"),
             "noname.xml": ('<Bins><Bin etaMin="0"><Layer id="0" r_edges="0,1" n_bin_alpha="1"/></Bin></Bins>',
                            r"noname\.xml: <Bin> #0 has neither a 'name' \(the particle: photon, pion, electron "
                            r"\.\.\.\) nor a 'pid' attribute"),
             "empty.xml": ('<Bins><Bin name="photon"><Layer id="0" r_edges="0" n_bin_alpha="1"/></Bin></Bins>',
                           r"empty\.xml: particle 'photon' has no layer with voxels")}
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=message):
            read_geometry(tmp_path / name)
    with pytest.raises(DataError, match=r"binning_dataset_1_photons\.xml has no particle 'pion' \(its particles: "
                                        r"photon\)"):
        read_geometry(f"{xmls['ds1']}:pion")
    with pytest.raises(DataError, match=r"nothere\.xml: no such binning XML file"):
        read_geometry(tmp_path / "nothere.xml")


def test_write_then_read_is_the_identity_and_h5py_sees_the_challenges_layout(xmls, tmp_path):
    g = read_geometry(xmls["ds1"])
    rng = np.random.default_rng(0)
    layers = {k: rng.exponential(5.0, (7, *s)).astype(np.float32) for k, s in g.shapes.items()}
    energy = np.array([0.256, 1.0, 2.048, 16.384, 65.536, 262.144, 4194.304])  # GeV: dataset 1's 2^k MeV
    write_challenge(tmp_path / "out.h5", g, layers, energy)
    with h5py.File(tmp_path / "out.h5") as f:  # what the challenge's evaluate.py checks and reads
        assert set(f) == {"incident_energies", "showers"}
        assert f["incident_energies"].shape == (7, 1) and f["showers"].shape == (7, 368)
        np.testing.assert_allclose(f["incident_energies"][:, 0], energy * 1000, rtol=1e-6)
        np.testing.assert_array_equal(f["showers"][:, 8:168], layers["layer_1"].reshape(7, -1))
    back, e, g2 = read_challenge(tmp_path / "out.h5", xmls["ds1"])
    assert g2 == g
    np.testing.assert_allclose(e, energy, rtol=1e-6)
    for k in layers:
        np.testing.assert_array_equal(back[k], layers[k])
    assert len(read_challenge(tmp_path / "out.h5", g, limit=3)[1]) == 3


def test_streamed_and_in_memory_events_agree(xmls, tmp_path):
    path = write_challenge_file(tmp_path / "ds.h5", xmls["ds1"], 50, seed=1)
    whole = open_challenge(path, xmls["ds1"], stream=False)
    streamed = open_challenge(path, xmls["ds1"], stream=True)
    assert whole.in_memory and not streamed.in_memory and whole.event_shape == streamed.event_shape
    assert whole.names == {"context": ["energy"]} and whole.geometry.voxels == 368
    rows_w, rows_s = whole.rows(10, 30), streamed.rows(10, 30)
    for k in whole.x:
        np.testing.assert_array_equal(rows_w["x"][k], rows_s["x"][k])
    with h5py.File(path) as f:
        np.testing.assert_allclose(rows_w["context"][:, 0], f["incident_energies"][10:30, 0] / 1000, rtol=1e-6)
    with pytest.raises(ConfigError, match=r"--context 'E,theta': a CaloChallenge file's condition is its incident "
                                          "energy"):
        open_challenge(path, xmls["ds1"], context="E,theta")


def _file(path, energies, showers):
    with h5py.File(path, "w") as f:
        for k, v in (("incident_energies", energies), ("showers", showers)):
            if v is not None:
                f[k] = v
    return path


@pytest.mark.parametrize("case, energies, showers, message", [
    ("short", np.ones((4, 1)), np.zeros((4, 367)),
     r"short\.h5:showers has 367 voxels per shower, but .*binning_dataset_1_photons\.xml \(photon\) gives 368 "
     r"\(layer 0: 8, layer 1: 160, layer 2: 190, layer 3: 5, layer 12: 5\): they end inside layer 12, which gets "
     r"4 of its 5 voxels"),
    ("shorter", np.ones((4, 1)), np.zeros((4, 358)),
     r"shorter\.h5:showers has 358 voxels .*: layer 3 gets none of its 5"),
    ("long", np.ones((4, 1)), np.zeros((4, 370)), r"long\.h5:showers has 370 voxels .*: 2 voxel\(s\) beyond its last "
                                                   r"layer \(12\)"),
    ("ds2", np.ones((4, 1)), np.zeros((4, 6480)), r"ds2\.h5:showers has 6480 voxels per shower, but .* gives 368"),
    ("energy_shape", np.ones((4, 2)), np.zeros((4, 368)), r"energy_shape\.h5:incident_energies has shape \(4, 2\)"),
    ("counts", np.ones((3, 1)), np.zeros((4, 368)), r"counts\.h5: 3 incident energies but 4 showers"),
    ("negative", np.array([[1e3], [-5.0], [1e4], [2e3]]), np.zeros((4, 368)),
     r"negative\.h5:incident_energies: the incident energy must be a positive number of MeV; row 1 is -5"),
    ("nan", np.ones((4, 1)), np.where(np.arange(4)[:, None] == 2, np.nan, np.zeros((4, 368))),
     r"nan\.h5:showers' holds 368 non-finite value\(s\) \(NaN or inf\): the first is nan at row 2, column 0"),
    ("no_showers", np.ones((4, 1)), None, r"no_showers\.h5 is not a CaloChallenge file: expected datasets "
                                          r"incident_energies \(N, 1\) and showers \(N, voxels\) in MeV; it has "
                                          r"incident_energies"),
])
def test_a_file_that_does_not_fit_the_geometry_is_named(xmls, tmp_path, case, energies, showers, message):
    path = _file(tmp_path / f"{case}.h5", energies, showers)
    with pytest.raises(DataError, match=message):
        read_challenge(path, xmls["ds1"])
    if case != "nan":  # streamed, a NaN is found when its chunk is read
        with pytest.raises(DataError, match=message):
            open_challenge(path, xmls["ds1"], stream=True)
    with pytest.raises(DataError, match=r"nothere\.h5: no such file"):
        read_challenge(tmp_path / "nothere.h5", xmls["ds1"])


def test_the_one_line_summary_names_particle_layers_voxels_and_the_xml(xmls):
    import hashlib

    line = read_geometry(xmls["ds1"]).summary()
    digest = hashlib.sha256(xmls["ds1"].read_bytes()).hexdigest()
    assert line == (f"photon: 24 layers ({len(DS1_PHOTON_SIZES)} with voxels), {sum(DS1_PHOTON_SIZES.values())} "
                    f"voxels, {xmls['ds1'].resolve()} (sha256 {digest[:12]})")


def test_bins_without_a_name_are_the_particles_of_their_pid(tmp_path):
    """The challenge's older code/binning.xml has two <Bin>s with a pid and no name (22: photons, 211: pions); each
    is read by its pid, and a <Bin> of dataset 1's files (a name and a pid) by either."""
    layers = '<Layer id="0" r_edges="0,5,10" n_bin_alpha="1"/><Layer id="1" r_edges="0" n_bin_alpha="1"/>'
    pions = '<Layer id="0" r_edges="0,5" n_bin_alpha="1"/><Layer id="1" r_edges="0,1,4,7" n_bin_alpha="10"/>'
    old = tmp_path / "binning.xml"
    old.write_text(f'<Bins>\n <Bin pid="22" etaMin="0" etaMax="130">{layers}</Bin>\n'
                   f' <Bin pid="211" etaMin="0" etaMax="130">{pions}</Bin>\n</Bins>\n')
    g = read_geometry(f"{old}:211")
    assert (g.particle, g.pid, g.voxels, g.shapes) == ("211", "211", 31, {"layer_0": (1, 1), "layer_1": (10, 3)})
    assert read_geometry(f"{old}:22").voxels == 2
    with pytest.raises(DataError, match=r"binning\.xml holds several particles \(22, 211\); name one as "
                                        r".*binning\.xml:22"):
        read_geometry(old)
    with pytest.raises(DataError, match=r"binning\.xml has no particle '111' \(its particles: 22, 211\)"):
        read_geometry(f"{old}:111")
    named = tmp_path / "named.xml"
    named.write_text(f'<Bins><Bin pid="22" name="photon">{layers}</Bin></Bins>')
    assert read_geometry(f"{named}:22") == read_geometry(f"{named}:photon") == read_geometry(named)
    assert read_geometry(named).particle == "photon"


def test_messages_list_a_run_of_equal_layers_once(xmls, tmp_path):
    """A voxel count that is not the geometry's names the layer; dataset 2's 45 layers of 144 voxels are one entry
    (the message listed all 45 before, ~900 characters)."""
    path = write_challenge_file(tmp_path / "ds1.h5", xmls["ds1"], 4, seed=1)
    with pytest.raises(DataError) as info:
        read_challenge(path, xmls["ds2"])
    message = str(info.value)
    assert "ds1.h5:showers has 368 voxels per shower" in message and len(message) < 300, message
    assert "gives 6480 (layers 0-44: 144 each): they end inside layer 2, which gets 80 of its 144 voxels" in message
    assert read_geometry(xmls["ds1"]).layer_sizes() == "layer 0: 8, layer 1: 160, layer 2: 190, layer 3: 5, layer 12: 5"
    three = tmp_path / "three.xml"
    three.write_text('<Bins><Bin name="x">' + "".join(
        f'<Layer id="{i}" r_edges="{e}" n_bin_alpha="1"/>' for i, e in enumerate(["0,1,2", "0,1,2", "0", "0,1,2",
                                                                                   "0,1,2", "0,1,2", "0,1"])) +
        '</Bin></Bins>')
    assert read_geometry(three).layer_sizes() == "layer 0: 2, layer 1: 2, layers 3-5: 2 each, layer 6: 1"


def test_context_energies_of_a_challenge_file_or_an_energies_only_file(xmls, tmp_path):
    from hepgen.data.calochallenge import context_energies

    path = write_challenge_file(tmp_path / "ds1.h5", xmls["ds1"], 6, seed=2)
    with h5py.File(path) as f:
        want = f["incident_energies"][:, 0].astype(np.float64)
    energy, where = context_energies(path, xmls["ds1"])
    np.testing.assert_array_equal(energy, want)
    assert where == f"{path}:incident_energies"
    with h5py.File(tmp_path / "only.h5", "w") as f:
        f["incident_energies"] = want[:4, None]
    energy, where = context_energies(tmp_path / "only.h5", xmls["ds1"])
    np.testing.assert_array_equal(energy, want[:4])
    with pytest.raises(DataError, match=r"ds1\.h5:showers has 368 voxels per shower, but .*binning_dataset_2\.xml "
                                        r"\(electron\) gives 6480"):
        context_energies(path, xmls["ds2"])
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["energy"] = want
    assert context_energies(tmp_path / "other.h5", xmls["ds1"]) is None
    assert context_energies(tmp_path / "table.csv", xmls["ds1"]) is None


def test_layer_ids_that_skip_are_labels_and_the_voxels_follow_the_file(tmp_path):
    """A dataset-1-photon-like XML of only the five layers with voxels, keeping their ids 0, 1, 2, 3, 12: 368 voxels
    in file order, the last layer named layer_12 (XMLHandler reads the layers in file order too)."""
    from tests.data.challenge_files import DS1_PHOTON_LAYERS

    five = tmp_path / "five.xml"
    five.write_text('<Bins><Bin pid="22" name="photon">' + "".join(
        f'<Layer id="{i}" r_edges="{e}" n_bin_alpha="{a}"/>' for i, (e, a) in DS1_PHOTON_LAYERS.items()) +
        '</Bin></Bins>')
    g = read_geometry(five)
    assert g.voxels == 368 and list(g.shapes) == ["layer_0", "layer_1", "layer_2", "layer_3", "layer_12"]
    assert g.bin_edges == [0, 8, 168, 358, 363, 368]
    showers = np.zeros((1, 368))
    showers[0, 363:] = np.arange(1.0, 6.0)
    np.testing.assert_array_equal(g.split(showers)["layer_12"], [[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    assert ChallengeGeometry.from_dict(g.to_dict()) == g


@pytest.mark.parametrize("how", ["read", "memory", "stream"])
def test_a_nan_voxel_is_named_with_its_row_layer_and_bins(xmls, tmp_path, how):
    """Voxel 200 of dataset 1 photons is layer 2 (voxels 168-357, 10 angular x 19 radial bins), angular bin 1,
    radial bin 13: the message names the file, the row and that place, read whole, in memory or streamed."""
    path = write_challenge_file(tmp_path / "nan.h5", xmls["ds1"], 40, seed=3)
    with h5py.File(path, "a") as f:
        showers = f["showers"][:]
        showers[31, 200] = np.nan
        f["showers"][...] = showers
    g = read_geometry(xmls["ds1"])
    assert g.locate(200) == "layer 2, angular bin 1, radial bin 13" and g.locate(367) == \
        "layer 12, angular bin 0, radial bin 4"
    message = (r"nan\.h5:showers' holds 1 non-finite value.* at row 31, column 200 \(layer 2, angular bin 1, "
               r"radial bin 13\)")
    with pytest.raises(DataError, match=message):
        if how == "read":
            read_challenge(path, g)
        else:
            events = open_challenge(path, g, stream=how == "stream")
            events.x["layer_2"].read_rows(0, 40)
