"""The main end-to-end job, run by ``make demo`` / ``hepgen demo``: fit, sample, score, compare, report.

On the jets sample shipped with hepgen (Pythia 8 + FastJet jets, high-level features) it does, through
the Python API, what a user would type:

    hepgen fit gaussian qcd_train.h5 --out runs/gaussian        # the baseline every flow must beat
    hepgen fit nsf qcd_train.h5 --out runs/nsf                  # a neural spline flow
    hepgen sample runs/nsf -n N -o samples/nsf.h5
    hepgen score runs/nsf qcd_test.h5 -o scores/nsf.h5           # log p(x) per held-out jet
    hepgen compare qcd_test.h5 samples/nsf.h5 --report report/nsf

(each step prints its command line unless ``quiet``), then adds each family's figures
(:mod:`hepgen.demo.figures`: the flows' 2D toy gallery, the autoencoders' PCA comparison and anomaly
detection on top/W jets, the GAN-Lab view of a GAN) and writes ``report/index.html`` linking all of
it, and ``summary.json`` with the headline numbers. The demo sits above the families and below the
CLI: it never imports :mod:`hepgen.cli`.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.report.html import Gallery, Page, Table, write_index_html
from hepgen.nn.rng import seeded
from hepgen.report.folder import write_json

#: density models fitted to the jet features: hyper-parameters and training settings (the CLI's flags)
DENSITY_MODELS: dict[str, dict[str, dict[str, Any]]] = {
    "gaussian": {"params": {},
                 "train": {"epochs": 30, "batch_size": 256, "lr": 0.01, "scheduler": "cosine"}},
    "nsf": {"params": {"transforms": 4, "hidden": (64, 64)},
            "train": {"epochs": 40, "batch_size": 256, "lr": 0.002, "scheduler": "cosine"}},
}

#: wall time of each step of the last demo run, seconds
STEP_TIMES: dict[str, float] = {}

#: (title, function(out_dir, quick) -> {"figures": [(caption, path)], ...numbers}) of a figure section
Family = tuple[str, Callable[[Path, bool], dict[str, Any]]]


def _flag(key: str, value: Any) -> list[str]:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return [f"--{key.replace('_', '-')}", text]


def _step(title: str, command: list[str], quiet: bool, action: Callable[[], Any]) -> Any:
    """Run ``action`` (the API calls of ``hepgen COMMAND``), print the command line, record the wall time."""
    if not quiet:
        print(f"\n$ hepgen {' '.join(command)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    result = action()
    STEP_TIMES[title] = round(time.perf_counter() - t0, 1)
    return result


def demo_data(out: Path) -> tuple[str, str, list[str]]:
    """Split the shipped QCD jets' high-level features 3:1 into train and test files; returns their specs."""
    from hepgen.data import io
    from hepgen.data.generators.jets import shipped_sample_path

    table = io.read(f"{shipped_sample_path()}:qcd/features")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(table.data))
    n_test = len(order) // 4
    train, test = out / "data" / "qcd_train.h5", out / "data" / "qcd_test.h5"
    io.write(train, table.data[order[n_test:]], columns=table.columns)
    io.write(test, table.data[order[:n_test]], columns=table.columns)
    return str(train), str(test), list(table.columns or [])


def fit_run(name: str, train: str, run: Path, *, params: dict[str, Any], settings: dict[str, Any],
            quiet: bool) -> Path:
    """``hepgen fit NAME TRAIN --out RUN``: build the model for the data, train it into ``run`` and draw
    ``plots/loss.png``; returns the run directory."""
    from hepgen.data import io
    from hepgen.models import model_class
    from hepgen.report.plots import plot_loss_curves
    from hepgen.train.rundir import RunDir

    source = io.open_source(train)
    event_shape = tuple(source.event_shape)
    source.close()
    model = model_class(name).from_data(event_shape, 0, **params)
    model.fit(train, run_dir=run, quiet=quiet, **settings)
    history = RunDir(run).read_metrics()
    if history:
        plot_loss_curves(history, RunDir(run).plots / "loss.png")
    return run


def sample_run(run: Path, n: int, out: Path, seed: int = 0) -> Path:
    """``hepgen sample RUN -n N -o OUT --seed S``: n events in the original units, named columns."""

    from hepgen.data import io
    from hepgen.models import load

    model = load(run)
    with seeded(seed, model.device):
        samples = model.sample(n).cpu().numpy()
    return io.write(out, samples, columns=model.columns_) if model.columns_ else io.write(out, {"samples": samples})


def score_run(run: Path, data: str, out: Path) -> Path:
    """``hepgen score RUN DATA -o OUT``: every per-event output of ``score_outputs`` (log_prob, score)."""
    from hepgen.data import io
    from hepgen.models import load

    model = load(run)
    outputs = model.score_outputs(io.read(data).data)
    return io.write(out, {key: value.cpu().numpy() for key, value in outputs.items()})


def compare_files(ref: str, cand: str, report: Path, seed: int = 0) -> dict[str, Any]:
    """``hepgen compare REF CAND --report DIR``: metrics.json, plots and index.html in ``report``."""
    from hepgen.data import io
    from hepgen.report.compare import compare

    a, b = io.read(ref), io.read(cand)
    return compare(a.data, b.data, names=a.columns or b.columns, report_dir=report, seed=seed,
                   title=f"{ref} (reference) vs {cand} (candidate)")


def _density_model(name: str, train: str, test: str, n_test: int, out: Path, epochs: int | None,
                   quiet: bool) -> dict[str, Any]:
    """Fit, sample, score and compare one density model; returns its headline numbers."""
    from hepgen.data import io

    run = out / "runs" / name
    if run.exists():
        shutil.rmtree(run)
    params = dict(DENSITY_MODELS[name]["params"])
    settings = {**DENSITY_MODELS[name]["train"], "seed": 0}
    if epochs is not None:
        settings["epochs"] = int(epochs)
    flags = [f for key, value in {**settings, **params}.items() for f in _flag(key, value)]
    _step(f"fit {name}", ["fit", name, train, "--out", str(run), *flags] + (["--quiet"] if quiet else []), quiet,
          lambda: fit_run(name, train, run, params=params, settings=settings, quiet=quiet))
    samples, scores = out / "samples" / f"{name}.h5", out / "scores" / f"{name}_test.h5"
    _step(f"sample {name}", ["sample", str(run), "-n", str(n_test), "-o", str(samples), "--seed", "0"], quiet,
          lambda: sample_run(run, n_test, samples, seed=0))
    _step(f"score {name}", ["score", str(run), test, "-o", str(scores)], quiet, lambda: score_run(run, test, scores))
    report = out / "report" / name
    _step(f"compare {name}", ["compare", test, str(samples), "--report", str(report)], quiet,
          lambda: compare_files(test, str(samples), report))
    metrics = json.loads((report / "metrics.json").read_text())
    log_prob = io.read(f"{scores}:log_prob").data.reshape(-1)
    return {
        "test_log_likelihood": float(np.mean(log_prob)),
        "test_log_likelihood_err": float(np.std(log_prob) / np.sqrt(len(log_prob))),
        "c2st_auc": metrics.get("c2st", {}).get("auc"),
        "fpd": metrics.get("fpd", {}).get("value"),
        "report": f"{name}/index.html",
    }


def _flow_gallery(out_dir: Path, quick: bool) -> dict[str, Any]:
    from hepgen.demo.figures.flows import toy_gallery

    png = toy_gallery(out_dir / "flows", quick=quick)
    result = json.loads(png.with_suffix(".json").read_text())
    caption = "NSF on 2D toys: data (top) and learned density p(x) (bottom)"
    return {"figures": [(caption, str(png))], **result}


def _gan_lab(out_dir: Path, quick: bool) -> dict[str, Any]:
    from hepgen.demo.figures.gans import gan_lab_figure

    result = gan_lab_figure(out_dir / "gans", quick=quick)
    main, frames = result.pop("figures")
    captions = ((f"WGAN-GP on the 8-Gaussian ring: critic map, samples, generator gradients; "
                 f"{result['modes_hit']}/{result['modes']} modes, {result['high_quality']:.0%} within 3σ"),
                "the critic's map and the samples during training")
    return {"figures": list(zip(captions, (main, frames))), **result}


def _autoencoders(out_dir: Path, quick: bool) -> dict[str, Any]:
    from hepgen.demo.figures.autoencoders import autoencoder_figures

    result = autoencoder_figures(out_dir / "autoencoders", quick=quick)
    captions = {
        "reconstructions_digits": "8x8 digits: originals, ConvAE and PCA reconstructions at the same latent size",
        "reconstructions_jets": "QCD jet images: originals, ConvAE and PCA reconstructions",
        "interpolation": "latent interpolation g((1-a) f(x) + a f(x'))",
        "samples": "VAE prior samples next to samples from a Gaussian fitted to AE latents",
        "anomaly": "trained on QCD only: ROC and significance improvement for top and W jets",
        "anomaly_breakdown": "per-feature reconstruction error of the dense AE",
        "roc_sic": "hepgen roc on the ConvAE's scores (trained on QCD only): background rejection 1/eps_B and "
                   "significance improvement eps_S/sqrt(eps_B) against eps_S for top and W jets",
        "mass_sculpting": "hepgen roc --mass: the QCD jet mass after cuts on the ConvAE score at fixed eps_B",
    }
    figures = result.pop("figures")
    return {"figures": [(captions.get(k, k.replace("_", " ")), str(p)) for k, p in figures.items()], **result}


def _calo_showers(out_dir: Path, quick: bool) -> dict[str, Any]:
    from hepgen.demo.figures.calo import calo_panel

    return calo_panel(out_dir / "calo", quick=quick)


def family_figures() -> list[Family]:
    """(title, function(out_dir, quick) -> {"figures": [(caption, path)], ...numbers}) of each family."""
    return [("Normalizing flows: 2D toy gallery", _flow_gallery),
            ("Autoencoders: PCA comparison, interpolation, samples, anomaly detection on top and W jets",
             _autoencoders),
            ("GANs: a GAN-Lab view", _gan_lab),
            ("Calorimeter showers: mean images per layer, simulator next to calo-gan and calo-flow", _calo_showers)]


def run_demo(out: str | Path, epochs: int | None = None, quiet: bool = False, quick: bool = True,
             threads: int = 1, families: Sequence[Family] | None = None) -> dict:
    """Run the demo into ``out``; returns the summary also written to ``out/summary.json``.

    ``epochs`` overrides the density models' epochs; ``quick`` is passed to every figure section;
    ``families``: the figure sections (default :func:`family_figures`).

    ``threads``: torch intra-op threads. The demo's networks are small (batches of 256 through
    64-128-unit layers), where a second thread's synchronisation costs more than it saves, and on a
    busy machine spinning threads slow it down several-fold (measured: NSF fit 6 s on 1 thread, 28 s on 2).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_demo(Path(out), epochs, quiet, quick, family_figures() if families is None else families)
    finally:
        torch.set_num_threads(previous)


def _run_demo(out: Path, epochs: int | None, quiet: bool, quick: bool, families: Sequence[Family]) -> dict:
    from hepgen.data import io

    start = time.perf_counter()
    STEP_TIMES.clear()
    out.mkdir(parents=True, exist_ok=True)
    train, test, _ = demo_data(out)
    n_test = len(io.read(test).data)
    summary: dict[str, Any] = {"data": "shipped QCD jets, high-level features (3:1 train/test split)",
                               "density_models": {}, "families": {}}
    for name in DENSITY_MODELS:
        summary["density_models"][name] = _density_model(name, train, test, n_test, out, epochs, quiet)
    report = out / "report"
    galleries = []
    for title, make in families:
        t0 = time.perf_counter()
        if not quiet:
            print(f"\n# {title}", file=sys.stderr, flush=True)
        result = make(report / "figures", quick)
        figures = result.pop("figures", [])
        result["wall_time_s"] = round(time.perf_counter() - t0, 1)
        summary["families"][title] = result
        galleries.append(Gallery(title, [(caption, str(Path(path).resolve().relative_to(report.resolve())))
                                         for caption, path in figures]))
    summary["wall_time_s"] = round(time.perf_counter() - start, 1)
    summary["step_times_s"] = dict(STEP_TIMES)
    rows = [[name, m["test_log_likelihood"], m["test_log_likelihood_err"], m["c2st_auc"], m["fpd"]]
            for name, m in summary["density_models"].items()]
    page = Page(
        title="hepgen demo",
        meta=[summary["data"], f"wall time {summary['wall_time_s']} s"],
        tables=[Table("Density models on held-out jets (higher log-likelihood is better; C2ST AUC 0.5 is ideal)",
                      ["model", "test log-likelihood [nats]", "± (stat.)", "C2ST AUC", "FPD"], rows)],
        galleries=galleries,
        links=[(f"{name} vs data", m["report"]) for name, m in summary["density_models"].items()],
    )
    summary["report"] = str(write_index_html(report, page))
    write_json(out / "summary.json", summary)
    if not quiet:
        print(f"\ndemo finished in {summary['wall_time_s']} s; open {summary['report']}", file=sys.stderr)
    return summary
