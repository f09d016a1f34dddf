"""``hepgen fit classifier|pivot|disco`` on the user's own files: a working fit + score of each, and every bad
label/nuisance input of issue 12 refused with exit 2, no traceback, the file, the column (and the row) named,
and nothing written (no run directory)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import hepgen
from tests.helpers import run_cli_for_error as run_cli

N = 300




@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """d.h5:ev (features a, b; label y; nuisance m) and its broken variants, in HDF5 and CSV."""
    tmp = tmp_path_factory.mktemp("taggers_cli")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, N).astype(float)
    x = rng.normal(size=(N, 2)) + y[:, None]
    m = rng.normal(size=N) + 0.5 * x[:, 1]
    columns = {
        "a": x[:, 0], "b": x[:, 1], "y": y, "m": m,
        "y_two": np.where(np.arange(N) == 4, 2.0, y),        # a label 2 at row 4
        "y_half": np.where(np.arange(N) == 7, 0.5, y),       # a label 0.5 at row 7
        "y_bkg": np.zeros(N),                                # all background
        "y_sig": np.ones(N),                                 # all signal
        "m_nan": np.where(np.arange(N) == 9, np.nan, m),     # a NaN nuisance at row 9
        "m_cls": np.where(np.arange(N) == 11, 3.0, (m > 0).astype(float)),  # class 3 of 2 at row 11
    }

    def write(name, cols):
        with h5py.File(tmp / name, "w") as f:
            g = f.create_group("ev")
            for k, v in cols.items():
                g[k] = v

    write("d.h5", {k: columns[k] for k in ("a", "b", "y", "m")})
    for bad in ("y_two", "y_half", "y_bkg", "y_sig"):
        write(f"{bad}.h5", {"a": x[:, 0], "b": x[:, 1], "y": columns[bad], "m": m})
    for bad in ("m_nan", "m_cls"):
        write(f"{bad}.h5", {"a": x[:, 0], "b": x[:, 1], "y": y, "m": columns[bad]})
    n = 2000  # a file to train on: the same classes, more events
    yt = rng.integers(0, 2, n).astype(float)
    xt = rng.normal(size=(n, 2)) + yt[:, None]
    mt = rng.normal(size=n) + 0.5 * xt[:, 1]
    write("train.h5", {"a": xt[:, 0], "b": xt[:, 1], "y": yt, "m": mt, "m_cls": (mt > 0).astype(float)})
    np.savetxt(tmp / "bkg.csv", np.c_[x, np.zeros(N), m], delimiter=",", header="a,b,y,m", comments="")
    np.savetxt(tmp / "two.csv", np.c_[x, columns["y_two"], m], delimiter=",", header="a,b,y,m", comments="")
    return tmp


# (argv after "fit", substrings stderr must contain)
BAD_INPUT = {
    # a label column that is not 0/1: file, column and row named, for each tagger
    "classifier label 2": (["classifier", "{t}/y_two.h5:ev", "--label", "y"], ["y_two.h5", "'y'", "row 4"]),
    "classifier label 0.5": (["classifier", "{t}/y_half.h5:ev", "--label", "y"], ["y_half.h5", "'y'", "row 7"]),
    "pivot label 2": (["pivot", "{t}/y_two.h5:ev", "--label", "y", "--nuisance", "m"], ["y_two.h5", "'y'", "row 4"]),
    "disco label 2": (["disco", "{t}/y_two.h5:ev", "--label", "y", "--decorrelate", "m"],
                      ["y_two.h5", "'y'", "row 4"]),
    "classifier csv label 2": (["classifier", "{t}/two.csv", "--label", "y"], ["two.csv", "'y'", "row 4"]),
    # the label column missing
    "classifier no label column": (["classifier", "{t}/d.h5:ev", "--label", "is_signal"],
                                   ["d.h5", "is_signal"]),
    "pivot no label column": (["pivot", "{t}/d.h5:ev", "--label", "is_signal", "--nuisance", "m"],
                              ["d.h5", "is_signal"]),
    # the nuisance column missing
    "pivot no nuisance column": (["pivot", "{t}/d.h5:ev", "--label", "y", "--nuisance", "mass"],
                                 ["d.h5", "mass"]),
    "pivot default nuisance absent": (["pivot", "{t}/d.h5:ev", "--label", "y"], ["d.h5", "'z'"]),
    "disco no decorrelate column": (["disco", "{t}/d.h5:ev", "--label", "y", "--decorrelate", "mass"],
                                    ["d.h5", "mass"]),
    # a non-finite nuisance, a categorical nuisance out of range
    "pivot nan nuisance": (["pivot", "{t}/m_nan.h5:ev", "--label", "y", "--nuisance", "m"],
                           ["m_nan.h5", "'m'", "row 9"]),
    "disco nan decorrelate": (["disco", "{t}/m_nan.h5:ev", "--label", "y", "--decorrelate", "m"],
                              ["m_nan.h5", "'m'", "row 9"]),
    "pivot class out of range": (["pivot", "{t}/m_cls.h5:ev", "--label", "y", "--nuisance", "m",
                                  "--nuisance-classes", "2"], ["m_cls.h5", "'m'", "row 11"]),
    # all-background (and all-signal) data
    "classifier all background": (["classifier", "{t}/y_bkg.h5:ev", "--label", "y"],
                                  ["y_bkg.h5", "'y'", "no signal"]),
    "classifier all signal": (["classifier", "{t}/y_sig.h5:ev", "--label", "y"], ["y_sig.h5", "'y'", "no background"]),
    "pivot all background": (["pivot", "{t}/y_bkg.h5:ev", "--label", "y", "--nuisance", "m", "--adversary-on",
                              "background"], ["y_bkg.h5", "'y'", "no signal"]),
    "disco all background": (["disco", "{t}/y_bkg.h5:ev", "--label", "y", "--decorrelate", "m"],
                             ["y_bkg.h5", "'y'", "no signal"]),
    "disco all signal": (["disco", "{t}/y_sig.h5:ev", "--label", "y", "--decorrelate", "m"],
                         ["y_sig.h5", "'y'", "no background"]),
    "classifier csv all background": (["classifier", "{t}/bkg.csv", "--label", "y"], ["bkg.csv", "'y'", "no signal"]),
    # a bad validation file is checked like the training file
    "classifier bad val labels": (["classifier", "{t}/d.h5:ev", "--label", "y", "--val", "{t}/y_two.h5:ev"],
                                  ["y_two.h5", "'y'", "row 4"]),
    # bad hyper-parameters
    "pivot negative lambda": (["pivot", "{t}/d.h5:ev", "--label", "y", "--nuisance", "m", "--lam", "-1"], ["lam"]),
    "disco negative alpha": (["disco", "{t}/d.h5:ev", "--label", "y", "--decorrelate", "m", "--alpha", "-2"],
                             ["alpha"]),
    "pivot adversary-on typo": (["pivot", "{t}/d.h5:ev", "--label", "y", "--nuisance", "m", "--adversary-on",
                                 "bkg"], ["adversary_on", "background"]),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_exits_2_names_the_file_and_column_and_writes_nothing(files, capsys, name):
    argv, expect = BAD_INPUT[name]
    out = files / f"run_{name.replace(' ', '_')}"
    code, err = run_cli(capsys, ["fit", *[a.format(t=files) for a in argv], "--epochs", 1, "-q", "-o", out])
    assert code == 2, err
    assert "Traceback" not in err
    for text in expect:
        assert text in err, (text, err)
    assert not out.exists()


@pytest.mark.parametrize("name", ["classifier label 2", "pivot no nuisance column", "disco all background"])
def test_bad_input_message_names_the_file_as_the_user_wrote_it(files, capsys, name):
    """The file appears as ``path:key`` (what the user typed), not as the repr of an internal spec object."""
    argv, _ = BAD_INPUT[name]
    code, err = run_cli(capsys, ["fit", *[a.format(t=files) for a in argv], "--epochs", 1, "-q", "-o",
                                 files / "never"])
    assert code == 2
    assert "{'spec'" not in err and "DataSpec(" not in err, err


def test_bad_labels_through_the_api_on_a_file_name_it(files):
    with pytest.raises(hepgen.DataError, match=r"label column 'y' must be 0 \(background\) or 1 \(signal\); row 4"):
        hepgen.Classifier(3, label="y").fit(f"{files}/y_two.h5:ev", epochs=1, quiet=True)
    with pytest.raises(hepgen.DataError, match=r"(?i)no column 'mass'.*pivot reads its training labels y, mass"):
        hepgen.Pivot(3, label="y", nuisance="mass").fit(f"{files}/d.h5:ev", epochs=1, quiet=True)
    with pytest.raises(hepgen.DataError, match="no signal"):
        hepgen.DisCo(2, label="y", decorrelate="m").fit(f"{files}/y_bkg.h5:ev", epochs=1, quiet=True)


@pytest.mark.parametrize("argv", [
    ["pivot", "--nuisance", "m", "--lam", "1", "--pretrain-classifier", "1", "--pretrain-adversary", "1",
     "--adversary-steps", "2", "--adversary-on", "background", "--hidden", "16", "--adversary-hidden", "8"],
    ["pivot", "--nuisance", "m_cls", "--exclude", "m", "--nuisance-classes", "2", "--pretrain-classifier", "1", "--pretrain-adversary", "1",
     "--hidden", "16"],
    ["disco", "--decorrelate", "m", "--alpha", "1"],
    ["classifier", "--exclude", "m,m_cls", "--hidden", "16"],
])
def test_fit_then_score_from_the_cli_gives_probabilities_of_the_features_only(files, capsys, tmp_path, argv):
    """Each tagger trains from the CLI on a file with the label/nuisance columns, and scores a file that has only
    the features; the scores equal the API's on the same events and separate the classes."""
    data = files / "train.h5"
    run = tmp_path / "run"
    exclude = [] if "--exclude" in argv else ["--exclude", "m_cls"]
    code, err = run_cli(capsys, ["fit", argv[0], f"{data}:ev", "--label", "y", *argv[1:], *exclude, "--epochs", 6,
                                 "--batch-size", 100, "--lr", 0.01, "-q", "-o", run])
    assert code == 0, err
    with h5py.File(data) as f:
        a, b, y = f["ev/a"][:], f["ev/b"][:], f["ev/y"][:]
    with h5py.File(tmp_path / "features.h5", "w") as f:
        g = f.create_group("ev")
        g["a"], g["b"] = a, b
    code, err = run_cli(capsys, ["score", run, f"{tmp_path}/features.h5:ev", "-o", tmp_path / "s.h5", "-q"])
    assert code == 0, err
    with h5py.File(tmp_path / "s.h5") as f:
        s = f["score"][:]
    assert s.shape == (len(y),) and ((s >= 0) & (s <= 1)).all()
    model = hepgen.load(run)
    np.testing.assert_allclose(model.score(np.c_[a, b].astype(np.float32)).numpy(), s, rtol=1e-5, atol=1e-6)
    from sklearn.metrics import roc_auc_score

    # classes shifted by 1σ in each feature: the Bayes AUC is Φ(1) ≈ 0.84; a decorrelated one gives some away
    assert roc_auc_score(y, s) > 0.7
