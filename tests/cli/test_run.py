"""``hepgen sample`` / ``score`` / ``info`` on a physicist's own files: feature and context columns
selected by name, every output format for named and unnamed models, streamed blocks, bad input
(exit 2, nothing written), the training record, progress bars."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import uproot

import hepgen
from hepgen.cli import main
from hepgen.data import io
from tests.helpers import run_cli

FORMATS = ["h5", "npy", "npz", "csv", "parquet", "root"]


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """The issue's repro: a flat ROOT tree of 4 features and a weight branch, and a gaussian fitted on it."""
    tmp = tmp_path_factory.mktemp("flat")
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal([1.0, -1.0, 0.5, 2.0], np.diag([1.0, 2.0, 0.5, 1.5]), size=4000).astype(np.float32)
    w = rng.uniform(0.5, 1.5, len(x)).astype(np.float32)
    with uproot.recreate(tmp / "flat.root") as f:
        f["events"] = {"a": x[:, 0], "b": x[:, 1], "weight": w, "c": x[:, 2], "d": x[:, 3]}
    assert main(["fit", "gaussian", f"{tmp / 'flat.root'}:events", "--weights", "weight", "-o", str(tmp / "run"),
                 "--epochs", "1", "--lr", "0.05", "-q"]) == 0
    return tmp, x, w


def test_score_reads_the_models_features_by_name_from_its_training_file(flat, tmp_path, capsys):
    tmp, x, _ = flat
    code, _, err = run_cli(capsys, "score", tmp / "run", f"{tmp / 'flat.root'}:events", "-o", tmp_path / "s.h5",
                           "--batch-size", 1000)
    assert code == 0, err
    scores = io.read(tmp_path / "s.h5")
    model = hepgen.load(tmp / "run")
    assert model.columns_ == ["a", "b", "c", "d"]
    with torch.no_grad():
        expected = model.log_prob(torch.as_tensor(x)).numpy()  # the 4 features in the model's order
    np.testing.assert_allclose(scores.data[:, 0], expected, rtol=1e-5, atol=1e-5)
    # a Gaussian's log density, in closed form from its fitted mean and covariance, agrees too
    samples = model.sample(200_000).numpy()
    from scipy.stats import multivariate_normal

    ref = multivariate_normal(samples.mean(0), np.cov(samples.T)).logpdf(x[:50])
    np.testing.assert_allclose(scores.data[:50, 0], ref, atol=0.05)


def test_score_names_the_missing_column(flat, tmp_path, capsys):
    tmp, x, _ = flat
    io.write(tmp_path / "abc.h5", x[:, :3], columns=["a", "b", "c"])
    code, _, err = run_cli(capsys, "score", tmp / "run", tmp_path / "abc.h5", "-o", tmp_path / "s.h5")
    assert code == 2 and "'d'" in err and "abc.h5" in err and "Traceback" not in err
    assert not (tmp_path / "s.h5").exists()


def test_compare_takes_the_weight_column_by_name_and_matches_features_by_name(flat, tmp_path, capsys):
    tmp, x, w = flat
    assert run_cli(capsys, "sample", tmp / "run", "-n", 3000, "-o", tmp_path / "gen.h5", "-q")[0] == 0
    code, out, err = run_cli(capsys, "compare", f"{tmp / 'flat.root'}:events", tmp_path / "gen.h5",
                             "--ref-weights", "weight", "-q")
    assert code == 0, err
    import json

    from hepgen.report.compare import compare

    summary = json.loads(out)
    gen = io.read(tmp_path / "gen.h5").data
    api = compare(x, gen, names=["a", "b", "c", "d"], ref_weights=w.astype(np.float64),
                  title=summary["title"])
    assert summary["c2st"] == api["c2st"] and summary["fpd"] == api["fpd"]
    assert summary["n_eff"]["ref"] == pytest.approx(w.astype(float).sum() ** 2 / (w.astype(float) ** 2).sum())
    assert summary["title"].index("flat.root") < summary["title"].index("gen.h5")  # REF first


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A tiny MAF conditioned on a named context column 'theta'."""
    tmp = tmp_path_factory.mktemp("cond")
    rng = np.random.default_rng(5)
    theta = rng.uniform(-1, 1, 3000)
    x = np.column_stack([theta + 0.3 * rng.normal(size=3000), rng.normal(size=3000)])
    io.write(tmp / "train.h5", np.column_stack([x, theta, rng.uniform(size=3000)]),
             columns=["x", "y", "theta", "extra"])
    assert main(["fit", "maf", str(tmp / "train.h5"), "--context", "theta", "--exclude", "extra", "-o",
                 str(tmp / "run"), "--epochs", "1", "--transforms", "1", "--hidden", "8", "-q"]) == 0
    return tmp


def test_sample_keeps_its_context_columns_literal_or_from_a_file_by_name(conditional, tmp_path, capsys):
    tmp = conditional
    code, _, err = run_cli(capsys, "sample", tmp / "run", "-n", 500, "-o", tmp_path / "s.csv", "--context", "0.5",
                           "--seed", 2, "-q")
    assert code == 0, err
    s = io.read(tmp_path / "s.csv")
    assert s.columns == ["x", "y", "theta"] and np.all(s.data[:, 2] == 0.5)
    model = hepgen.load(tmp / "run")
    torch.manual_seed(2)
    with torch.no_grad():
        direct = model.sample(500, context=np.array([[0.5]], dtype=np.float32)).numpy()
    np.testing.assert_allclose(s.data[:, :2], direct, rtol=1e-5, atol=1e-6)
    # per-event contexts: the model's context column 'theta' picked by name from a file with more columns
    code, _, err = run_cli(capsys, "sample", tmp / "run", "-n", 3000, "-o", tmp_path / "s2.h5",
                           "--context", tmp / "train.h5", "-q", "--batch-size", 700)
    assert code == 0, err
    s2 = io.read(tmp_path / "s2.h5")
    np.testing.assert_array_equal(s2.data[:, 2], io.read(tmp / "train.h5", columns=["theta"]).data[:, 0])
    # score reads features and context by name from the sample file
    code, _, err = run_cli(capsys, "score", tmp / "run", tmp_path / "s2.h5", "-o", tmp_path / "sc.npy", "-q")
    assert code == 0, err
    with torch.no_grad():
        expected = model.log_prob(s2.data[:, :2], context=s2.data[:, 2:]).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "sc.npy")["log_prob"], expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def unnamed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unnamed")
    np.save(tmp / "x.npy", np.random.default_rng(1).normal(size=(1500, 3)).astype(np.float32))
    assert main(["fit", "gaussian", str(tmp / "x.npy"), "-o", str(tmp / "run"), "--epochs", "1", "-q"]) == 0
    return tmp


@pytest.mark.parametrize("ext", FORMATS)
def test_unnamed_models_sample_and_score_every_format(unnamed, tmp_path, capsys, ext):
    out, scores = tmp_path / f"s.{ext}", tmp_path / f"scores.{ext}"
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 400, "-o", out, "--seed", 3, "--batch-size", 150,
                           "-q")
    assert code == 0, err
    samples = io.read(out).data
    model = hepgen.load(unnamed / "run")
    torch.manual_seed(3)
    with torch.no_grad():
        direct = torch.cat([model.sample(150), model.sample(150), model.sample(100)]).numpy()
    np.testing.assert_allclose(samples, direct, rtol=1e-6, atol=1e-6)
    code, _, err = run_cli(capsys, "score", unnamed / "run", out, "-o", scores, "-q")
    assert code == 0, err
    table = io.read(f"{scores}:events" if ext == "root" else scores)
    with torch.no_grad():
        np.testing.assert_allclose(table.data[:, table.columns.index("log_prob") if table.columns else 0],
                                   model.log_prob(samples).numpy(), rtol=1e-5, atol=1e-5)


def test_sample_writes_block_by_block(unnamed, tmp_path, capsys, monkeypatch):
    from hepgen.data import writer

    calls = []
    original = writer.BlockWriter.write
    monkeypatch.setattr(writer.BlockWriter, "write", lambda self, block: (calls.append(len(block["samples"])),
                                                                          original(self, block))[1])
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 2500, "-o", tmp_path / "s.npy",
                           "--batch-size", 1000, "-q")
    assert code == 0, err
    assert calls == [1000, 1000, 500] and np.load(tmp_path / "s.npy").shape == (2500, 3)


@pytest.mark.parametrize("argv, expected", [
    (["sample", "{run}", "-n", "10", "-o", "{out}", "--batch-size", "0"], "--batch-size"),
    (["sample", "{run}", "-n", "10", "-o", "{out}", "--batch-size", "-1"], "--batch-size"),
    (["sample", "{run}", "-n", "0", "-o", "{out}"], "-n"),
    (["sample", "{run}", "-n", "-5", "-o", "{out}"], "-n"),
    (["score", "{run}", "{data}", "-o", "{out}", "--batch-size", "0"], "--batch-size"),
    (["score", "{run}", "{data}", "-o", "{out}", "--batch-size", "-1"], "--batch-size"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}", "--context", "nan"], "--context 'nan'"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}", "--context", "inf"], "--context 'inf'"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}", "--context", "0.1,0.2"], "--context"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}"], "context"),
    (["sample", "{run}", "-n", "10", "-o", "{out}", "--context", "1"], "without a context"),
    (["sample", "{run}", "-n", "10", "-o", "{bad}"], ".txt"),
])
def test_bad_input_exits_2_and_writes_nothing(unnamed, conditional, tmp_path, capsys, argv, expected):
    subs = dict(run=unnamed / "run", cond=conditional / "run", data=unnamed / "x.npy", out=tmp_path / "o.h5",
                bad=tmp_path / "o.txt")
    code, out, err = run_cli(capsys, *[a.format(**subs) for a in argv])
    assert code == 2, err
    assert expected in err and "Traceback" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_info_shows_the_training_record_and_weights(flat, capsys):
    code, out, _ = run_cli(capsys, "info", flat[0] / "run")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("weights") and "weight" in line.split(None, 1)[1] for line in lines)
    assert "training" in lines and "data" in lines
    assert any(line.split() == ["lr", "0.05"] for line in lines)
    assert any(line.split() == ["epochs", "1"] for line in lines)
    assert any("flat.root" in line for line in lines)


def test_progress_bar_on_a_terminal_only_and_not_with_quiet(unnamed, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 300, "-o", tmp_path / "a.npy", "--batch-size", 100)
    assert code == 0 and "sample:" in err and "/300 [" in err
    code, _, err = run_cli(capsys, "score", unnamed / "run", tmp_path / "a.npy", "-o", tmp_path / "b.npy")
    assert code == 0 and "score:" in err and "/300 [" in err
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 300, "-o", tmp_path / "c.npy", "-q")
    assert code == 0 and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 300, "-o", tmp_path / "d.npy")
    assert code == 0 and "/300 [" not in err and "wrote 300 events" in err


_RSS = textwrap.dedent("""
    import resource, sys
    import torch
    torch.set_num_threads(1)
    from hepgen.cli import main
    code = main(["sample", sys.argv[1], "-n", sys.argv[2], "-o", sys.argv[3], "--batch-size", "100000", "-q"])
    print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.mark.slow
def test_sample_memory_does_not_grow_with_n(unnamed, tmp_path):
    """Peak RSS of `sample -n 1M` and `-n 4M` (3 features): 4x the events, the same memory (blocks of 100k)."""
    peaks = {}
    for n in (1_000_000, 4_000_000):
        out = subprocess.run([sys.executable, "-c", _RSS, str(unnamed / "run"), str(n), str(tmp_path / f"{n}.h5")],
                             capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        code, kb = out.stdout.split()
        assert code == "0"
        peaks[n] = int(kb) / 1024
    print("peak RSS MB", peaks)
    # holding every event would add 4M x 3 x 4 B = 46 MB (x2 for a concatenation); blocks keep it under 15 MB
    assert peaks[4_000_000] - peaks[1_000_000] < 15, peaks
    assert io.read(tmp_path / "4000000.h5").data.shape == (4_000_000, 3)
