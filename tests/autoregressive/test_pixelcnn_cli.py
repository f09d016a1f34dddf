"""``hepgen fit pixel-cnn`` on a few hundred shipped jet images, then score, roc, sample and a resume; bad image files
are refused with exit 2, naming the file, before anything is written."""

import h5py
import numpy as np
import pytest
import torch

import hepgen
from hepgen.data import io
from hepgen.data.generators.jets import shipped_sample_path
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def jets(tmp_path_factory):
    """200 QCD and 100 top jet images (40×40) and a pixel-cnn fitted for one epoch on the QCD ones."""
    tmp = tmp_path_factory.mktemp("pixelcnn")
    with h5py.File(shipped_sample_path()) as f:
        qcd, top = (np.asarray(f[f"{k}/images"][:n], dtype=np.float32) for k, n in (("qcd", 200), ("top", 100)))
    np.save(tmp / "qcd.npy", qcd)
    np.save(tmp / "top.npy", top)
    np.save(tmp / "qcd8.npy", qcd[:, 16:24, 16:24])
    from hepgen.cli import main

    assert main([str(a) for a in ("fit", "pixel-cnn", tmp / "qcd.npy", "-o", tmp / "run", "--epochs", 1, "--levels", 6,
                                  "--channels", 6, "--layers", 2, "--batch-size", 100, "-q")]) == 0
    return tmp, qcd, top


def test_fit_score_and_sample_from_the_cli(jets, capsys, tmp_path):
    tmp, qcd, top = jets
    model = hepgen.load(tmp / "run")
    assert model.cli_name == "pixel-cnn" and model.event_shape == (40, 40) and model.levels == 6
    code, _, err = run_cli(capsys, "score", tmp / "run", tmp / "top.npy", "-o", tmp_path / "s.h5")
    assert code == 0, err
    # what the columns are: a probability of the quantised image, not the densities' log p(x) with a Jacobian
    assert "quantised" in err and "Jacobian included" not in err, err
    scores = io.read(tmp_path / "s.h5")
    got = dict(zip(scores.columns, scores.data.T))
    expected = model.log_prob(top).numpy()
    np.testing.assert_allclose(got["log_prob"], expected, rtol=1e-5)
    np.testing.assert_allclose(got["score"], -expected, rtol=1e-5)
    torch.manual_seed(0)
    code, _, err = run_cli(capsys, "sample", tmp / "run", "-n", 2, "-o", tmp_path / "x.h5", "-q")
    assert code == 0, err
    drawn = io.read(tmp_path / "x.h5").data
    assert drawn.shape == (2, 40, 40) and (drawn >= 0).all() and np.isfinite(drawn).all()


def test_roc_reads_the_scores(jets, capsys, tmp_path):
    tmp, _, _ = jets
    for name in ("qcd", "top"):
        assert run_cli(capsys, "score", tmp / "run", tmp / f"{name}.npy", "-o", tmp_path / f"{name}.h5",
                       "-q")[0] == 0
    code, out, err = run_cli(capsys, "roc", tmp_path / "qcd.h5", tmp_path / "top.h5", "-q")
    assert code == 0, err
    assert "auc" in (out + err).lower()


def test_resume_continues_the_run(jets, capsys, tmp_path):
    tmp, _, _ = jets
    args = ["fit", "pixel-cnn", tmp / "qcd8.npy", "-o", tmp_path / "run", "--levels", "4", "--channels", "4",
            "--layers", "1", "--batch-size", "100", "-q"]
    assert run_cli(capsys, *args, "--epochs", 1)[0] == 0
    (tmp_path / "run" / "model.pt").unlink()  # as if killed after the first epoch's checkpoint
    code, _, err = run_cli(capsys, *args, "--epochs", 2, "--resume")
    assert code == 0, err
    epochs = [line.split(",")[0] for line in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2"]
    assert hepgen.load(tmp_path / "run").event_shape == (8, 8)


@pytest.mark.parametrize("bad", ["nan", "negative", "shape"])
def test_bad_image_files_exit_2_naming_the_file(jets, capsys, tmp_path, bad):
    tmp, qcd, _ = jets
    x = qcd[:50].copy()
    if bad == "nan":
        x[7, 3, 4] = np.nan
    elif bad == "negative":
        x[7, 3, 4] = -1.0
    else:
        x = x[:, :20, :30]
    np.save(tmp_path / "bad.npy", x)
    if bad == "shape":
        argv = ["score", tmp / "run", tmp_path / "bad.npy", "-o", tmp_path / "s.h5"]
    else:
        argv = ["fit", "pixel-cnn", tmp_path / "bad.npy", "-o", tmp_path / "run", "--epochs", 1,
                "--channels", 4, "--layers", 1, "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "bad.npy" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "s.h5").exists()


def test_score_names_the_file_and_row_of_a_negative_intensity(jets, capsys, tmp_path):
    """A negative pixel in the third block of the scored file: the quantiser's own refusal named neither the file
    nor the row ("the intensity at index (7, 3, 4)", the row within the block); score runs the model's event check."""
    tmp, qcd, _ = jets
    x = qcd[:120].copy()
    x[107, 3, 4] = -1.0
    np.save(tmp_path / "bad.npy", x)
    code, _, err = run_cli(capsys, "score", tmp / "run", tmp_path / "bad.npy", "-o", tmp_path / "s.h5",
                           "--block-size", 50, "-q")
    assert code == 2 and "Traceback" not in err, err
    assert "bad.npy" in err and "row 107" in err and "(3, 4)" in err and "negative" in err, err
    assert not (tmp_path / "s.h5").exists()
