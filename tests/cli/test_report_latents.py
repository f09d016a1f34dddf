"""``hepgen report latents``: the report folder of a constructed VAE on blob images (quantities beside the images,
as in the jets layout, or FILE:KEY), a conv-vae on a calorimeter layer (the shower quantities), and bad inputs."""

import json

import h5py
import numpy as np
import pytest

import hepgen
import hepgen.evaluate
from hepgen.calo.shower_layout import LAYERS, write_showers
from hepgen.cli import main
from tests.evaluate.test_latents import SIDE, blobs, constructed_vae


@pytest.fixture(scope="module")
def blob_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("latents")
    images, p, w = blobs(600, seed=4)
    with h5py.File(tmp / "blobs.h5", "w") as f:  # the jets layout: images and a named features table in one group
        f["g/images"] = images.astype(np.float32)
        f["g/features"] = np.column_stack([p, w]).astype(np.float32)
        f["g/features"].attrs["columns"] = ["position", "width"]
    model, _, _ = constructed_vae()
    model.save(tmp / "vae")
    hepgen.Autoencoder(SIDE * SIDE, latent=2).save(tmp / "ae")
    return tmp, images, p, w


def test_report_folder_of_a_vae_with_quantities_beside_the_images(blob_files, capsys):
    tmp, images, p, w = blob_files
    out = tmp / "rep"
    assert main(["report", "latents", str(tmp / "vae"), "--data", f"{tmp / 'blobs.h5'}:g/images", "--quantities",
                 "position,width", "--report", str(out), "--top", "2", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"]["position"]["best_latent"] == "z0"
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["files"]) == sorted(["metrics.json", "index.html", "plots/traversals.png", "plots/kl.png",
                                              "plots/mi.png", "plots/correlation.png"])
    assert all((out / f).is_file() for f in metrics["files"])
    assert metrics["quantities"] == ["position", "width"] and metrics["inputs"]["quantities_from"].endswith("g/features")
    # the numbers are the Python API's on the same events
    model = hepgen.load(tmp / "vae")
    api = hepgen.evaluate.disentanglement(model, images, {"position": p, "width": w}, top_k=2)
    for key in ("mi", "pearson", "spearman"):
        matrix = getattr(api.matrices, key)
        assert metrics[key]["z0"]["position"] == pytest.approx(matrix[0, 0], abs=1e-6)
        assert metrics[key]["z1"]["width"] == pytest.approx(matrix[1, 1], abs=1e-6)
    assert metrics["traversal"]["latents"] == ["z1", "z0"] and metrics["beta"] == 1.0

    # FILE:KEY quantities give the same matrices
    assert main(["report", "latents", str(tmp / "vae"), "--data", f"{tmp / 'blobs.h5'}:g/images", "--quantities",
                 f"{tmp / 'blobs.h5'}:g/features", "--report", str(tmp / "rep2"), "-q"]) == 0
    again = json.loads((tmp / "rep2" / "metrics.json").read_text())
    assert again["pearson"] == metrics["pearson"]


def test_bad_inputs_exit_2_and_write_nothing(blob_files, capsys):
    tmp, *_ = blob_files
    data = f"{tmp / 'blobs.h5'}:g/images"
    cases = [
        (["report", "latents", str(tmp / "ae"), "--data", data], "needs a VAE"),
        (["report", "latents", str(tmp / "vae"), "--data", data, "--quantities", "position,mass"],
         "no quantity 'mass'"),
        (["report", "latents", str(tmp / "vae"), "--data", f"{tmp / 'blobs.h5'}:g/nope"], "nope"),
        (["report", "latents", str(tmp / "vae"), "--data", f"{tmp / 'blobs.h5'}:g/features"], "shape"),
        (["report", "latents", str(tmp / "vae"), "--data", data, "--events", "0"], "--events"),
        (["report", "latents", str(tmp / "vae"), "--data", data, "--quantities", f"{tmp / 'missing.h5'}:x"],
         "missing.h5"),
    ]
    for argv, message in cases:
        assert main([*argv, "--report", str(tmp / "bad")]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not (tmp / "bad").exists()


def test_data_defaults_to_the_runs_training_file_and_is_asked_for_when_there_is_none(blob_files, capsys):
    """``hepgen report latents RUN --report DIR``: DATA is the file the run was fitted on (config.yaml records it); a
    run saved from Python (no file) exits 2 asking for --data, with nothing written."""
    tmp, *_ = blob_files
    data = f"{tmp / 'blobs.h5'}:g/features"
    assert main(["fit", "vae", data, "-o", str(tmp / "fitted"), "--epochs", "1", "--latent", "2", "-q"]) == 0
    assert main(["report", "latents", str(tmp / "fitted"), "--report", str(tmp / "by_default"), "-q"]) == 0
    capsys.readouterr()
    metrics = json.loads((tmp / "by_default" / "metrics.json").read_text())
    assert metrics["inputs"]["data"] == data and metrics["quantities"] == ["position", "width"]
    assert main(["report", "latents", str(tmp / "vae"), "--report", str(tmp / "none")]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "Traceback" not in err and not (tmp / "none").exists()


def test_shower_layer_quantities(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 300
    energy = rng.uniform(10, 100, n)
    layers = {k: rng.exponential(1.0, size=(n, *shape)) * rng.uniform(0.2, 2.0, size=(n, 1, 1))
              for k, shape in LAYERS.items()}
    write_showers(tmp_path / "showers.h5", layers, energy)
    model = hepgen.ConvVAE((12, 12), latent=3, channels=(4,), decoder="gaussian", preprocess="none")
    model.save(tmp_path / "cvae")
    assert main(["report", "latents", str(tmp_path / "cvae"), "--data", f"{tmp_path / 'showers.h5'}:layer_1",
                 "--report", str(tmp_path / "rep"), "-q"]) == 0
    capsys.readouterr()
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["quantities"] == ["depth", "frac_0", "frac_1", "frac_2", "energy"]
    e = np.stack([layers[k].astype(np.float32).sum(axis=(1, 2), dtype=np.float64) for k in LAYERS])
    depth = (np.arange(3)[:, None] * e).sum(axis=0) / e.sum(axis=0)
    z = hepgen.load(tmp_path / "cvae").encode(layers["layer_1"].astype(np.float32)).double().numpy()
    for l in range(3):
        assert metrics["pearson"][f"z{l}"]["depth"] == pytest.approx(np.corrcoef(z[:, l], depth)[0, 1], abs=1e-4)
        assert metrics["pearson"][f"z{l}"]["energy"] == pytest.approx(np.corrcoef(z[:, l], energy)[0, 1], abs=1e-4)
