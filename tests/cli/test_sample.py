"""``hepgen sample`` (and the score of what it wrote): context columns literal or by name, every output format for
named and unnamed models, streamed blocks, bad input (exit 2, nothing written), progress bars, memory."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import hepgen
from hepgen.data import io
from tests.helpers import run_cli

FORMATS = ["h5", "npy", "npz", "csv", "parquet", "root"]


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
                           "--context", tmp / "train.h5", "-q", "--block-size", 700)
    assert code == 0, err
    s2 = io.read(tmp_path / "s2.h5")
    np.testing.assert_array_equal(s2.data[:, 2], io.read(tmp / "train.h5", columns=["theta"]).data[:, 0])
    # without -n: one event per row of the context file (as 'hepgen sample RUN --context ds.h5 -o fake.h5')
    code, _, err = run_cli(capsys, "sample", tmp / "run", "-o", tmp_path / "s3.h5", "--context", tmp / "train.h5",
                           "-q", "--block-size", 700)
    assert code == 0, err
    np.testing.assert_array_equal(io.read(tmp_path / "s3.h5").data, s2.data)
    # score reads features and context by name from the sample file
    code, _, err = run_cli(capsys, "score", tmp / "run", tmp_path / "s2.h5", "-o", tmp_path / "sc.npy", "-q")
    assert code == 0, err
    with torch.no_grad():
        expected = model.log_prob(s2.data[:, :2], context=s2.data[:, 2:]).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "sc.npy")["log_prob"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ext", FORMATS)
def test_unnamed_models_sample_and_score_every_format(unnamed, tmp_path, capsys, ext):
    out, scores = tmp_path / f"s.{ext}", tmp_path / f"scores.{ext}"
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 400, "-o", out, "--seed", 3, "--block-size", 150,
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
                           "--block-size", 1000, "-q")
    assert code == 0, err
    assert calls == [1000, 1000, 500] and np.load(tmp_path / "s.npy").shape == (2500, 3)


@pytest.mark.parametrize("argv, expected", [
    (["sample", "{run}", "-n", "10", "-o", "{out}", "--block-size", "0"], "--block-size"),
    (["sample", "{run}", "-n", "10", "-o", "{out}", "--block-size", "-1"], "--block-size"),
    (["sample", "{run}", "-n", "0", "-o", "{out}"], "-n"),
    (["sample", "{run}", "-n", "-5", "-o", "{out}"], "-n"),
    (["score", "{run}", "{data}", "-o", "{out}", "--block-size", "0"], "--block-size"),
    (["score", "{run}", "{data}", "-o", "{out}", "--block-size", "-1"], "--block-size"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}", "--context", "nan"], "--context 'nan'"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}", "--context", "inf"], "--context 'inf'"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}", "--context", "0.1,0.2"], "--context"),
    (["sample", "{cond}", "-n", "10", "-o", "{out}"], "context"),
    (["sample", "{run}", "-n", "10", "-o", "{out}", "--context", "1"], "without a context"),
    (["sample", "{run}", "-n", "10", "-o", "{bad}"], ".txt"),
    (["sample", "{run}", "-o", "{out}"], "give -n N"),  # -n may be left out only with a --context file
    (["sample", "{cond}", "-o", "{out}", "--context", "0.5"], "give -n N"),
])
def test_bad_input_exits_2_and_writes_nothing(unnamed, conditional, tmp_path, capsys, argv, expected):
    subs = dict(run=unnamed / "run", cond=conditional / "run", data=unnamed / "x.npy", out=tmp_path / "o.h5",
                bad=tmp_path / "o.txt")
    code, out, err = run_cli(capsys, *[a.format(**subs) for a in argv])
    assert code == 2, err
    assert expected in err and "Traceback" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_on_a_terminal_only_and_not_with_quiet(unnamed, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = run_cli(capsys, "sample", unnamed / "run", "-n", 300, "-o", tmp_path / "a.npy", "--block-size", 100)
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
    code = main(["sample", sys.argv[1], "-n", sys.argv[2], "-o", sys.argv[3], "--block-size", "100000", "-q"])
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
