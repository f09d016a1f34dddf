"""The demo's end-to-end job on the shipped jets: its numbers are the API's numbers, its files are what the
CLI writes for the same commands, its report links them."""

from pathlib import Path

import numpy as np
import pytest

import hepgen
from hepgen import demo
from hepgen.data import io


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")

    def toy_figure(directory: Path, quick: bool) -> dict:
        import matplotlib.pyplot as plt

        directory.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        fig.savefig(directory / "toy.png")
        plt.close(fig)
        return {"figures": [("a toy figure", str(directory / "toy.png"))], "quick": quick}

    summary = demo.run_demo(out, epochs=2, quiet=True, families=[("Toy family", toy_figure)])
    return out, summary


def test_demo_log_likelihoods_are_the_reloaded_models_log_prob_on_the_test_file(demo_run):
    out, summary = demo_run
    test = io.read(out / "data" / "qcd_test.h5")
    train = io.read(out / "data" / "qcd_train.h5")
    assert len(test.data) == 625 and len(train.data) == 1875
    assert test.columns[:3] == ["pt", "eta", "mass"]
    for name in demo.DENSITY_MODELS:
        model = hepgen.load(out / "runs" / name)
        expected = model.log_prob(test.data).double().mean().item()
        assert summary["density_models"][name]["test_log_likelihood"] == pytest.approx(expected, rel=1e-5)
        samples = io.read(out / "samples" / f"{name}.h5").data
        assert samples.shape == test.data.shape and np.isfinite(samples).all()


def test_demo_report_links_every_model_report_and_family_figure(demo_run):
    out, summary = demo_run
    index = (out / "report" / "index.html").read_text()
    for name in demo.DENSITY_MODELS:
        assert f'href="{name}/index.html"' in index
        assert (out / "report" / name / "metrics.json").exists()
    assert 'src="figures/toy.png"' in index
    assert summary["families"]["Toy family"]["quick"] is True
    assert set(summary["step_times_s"]) >= {f"fit {n}" for n in demo.DENSITY_MODELS}


def test_demo_files_are_what_the_cli_writes_for_the_printed_commands(demo_run, tmp_path):
    from hepgen.cli import main

    out, _ = demo_run
    for name in demo.DENSITY_MODELS:
        run = out / "runs" / name
        assert (run / "plots" / "loss.png").stat().st_size > 1000
        assert main(["sample", str(run), "-n", "625", "-o", str(tmp_path / "s.h5"), "--seed", "0"]) == 0
        np.testing.assert_array_equal(io.read(tmp_path / "s.h5").data, io.read(out / "samples" / f"{name}.h5").data)
        assert io.read(tmp_path / "s.h5").columns == io.read(out / "samples" / f"{name}.h5").columns
        assert main(["score", str(run), str(out / "data" / "qcd_test.h5"), "-o", str(tmp_path / "l.h5")]) == 0
        for key in ("log_prob", "score"):
            np.testing.assert_allclose(io.read(f"{tmp_path / 'l.h5'}:{key}").data,
                                       io.read(f"{out / 'scores' / f'{name}_test.h5'}:{key}").data, rtol=1e-6)
