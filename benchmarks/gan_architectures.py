"""GAN architectures on the same physics images, data and training budget (issue 25): one entry per architecture.

Tasks (the same events for every architecture):

* ``jets``: QCD 40×40 jet images, unconditional. Judged on jet observables computed from the images
  (:func:`hepgen.data.generators.jet_features.image_substructure`: each pixel a massless constituent), generated
  against held-out real jets: W1 of the jet mass and of τ21 (and of the pT sum), FPD and KPD of (mass, τ21) in the
  JetNet conventions (:mod:`hepgen.metrics`). Lower is better; the real-vs-real floor (the next ``--eval`` real
  jets of the same cache, judged by the same metrics against the held-out ones) is recorded beside them.
* ``calo``: one calorimeter layer (``--layer``, default layer_1, 12×12; layer_0 is 3×96, layer_2 12×6) of
  ``--particle`` showers from ``hepgen data calo``, conditioned on the incident energy (1-100 GeV). Judged by the
  high-level classifier AUC (:func:`hepgen.evaluate.c2st_auc`, gradient boosting, 5 folds, on the layer's
  CaloChallenge high-level features with log10 E: :func:`hepgen.metrics.shower_observables.classifier_inputs`):
  generated showers at the held-out showers' energies against those showers; 0.5 = indistinguishable.
* ``particles``: the same layer of e+, γ and π+ showers together (a third each), conditioned on the incident
  energy and the particle type (context [E, PDG id -11 / 22 / 211]): the task of a class-conditional GAN. Every
  architecture gets the same two context columns (conv-gan and style-gan read the PDG id as one more continuous
  condition; big-gan as its class). Judged by the high-level AUC with the PDG id as one more classifier input
  (a shower of the wrong particle type is caught), overall and per particle, and W1 of the log layer fraction.
  big-gan's entry adds its fidelity–diversity curve: per truncation ψ (:func:`hepgen.report.truncation.
  truncation_curve`) the high-level AUC, FPD and k-NN precision/density/recall/coverage of the same features.

Floors: per task, ``real-vs-real`` holds the metrics of a second real sample, not trained on, against the held-out
events, as if it were generated: the jets after the held-out ones; for showers, fresh simulator showers at the
held-out showers' energies and particles (:func:`simulated_at`), as the generators are sampled. It is what a perfect
generator would score at these sample sizes: the AUCs' 0.5 with its noise, the FPD/KPD and W1 bias. It is a unit
(``<task>/real-vs-real``) like the entries, so a resumed run computes it once (~25 CPU s for 15k showers).

Budget: every architecture trains on the same events with the same batch size and learning rate for the same CPU
time (``--budget`` seconds of this process, one thread), epoch by epoch: after each epoch the fit is resumed from
its run directory (weights, optimiser state, RNG), and training stops after the first epoch that reaches the
budget. Epochs, generator steps and CPU seconds are recorded, as are the model sizes.

Entries: ``ARCHITECTURES`` maps a name to (builder(shape, context) -> model, the tasks it runs). conv-gan is the
baseline (``hepgen.ConvGAN`` defaults) and style-gan ``hepgen.StyleGAN`` with its defaults (channels 64 at the
constant, halved per stage to 16; mapping 8×128; lazy R1 γ = 1 every 16 critic steps; path length λ = 2 every 4
generator steps; style mixing 0.9); stack-gan ``hepgen.StackGAN`` with its defaults (stage I at 1/4 resolution,
channels 32,64; stage II 32,32 at full resolution) but stage II starting after 2 epochs of stage I alone (its
``critic_parameters`` count the full-resolution critic; the stage-I critic is smaller);
big-gan ``hepgen.BigGAN`` with its defaults (residual blocks of channels
(32, 64) under class-conditional batch norm, shared class embedding 16, hierarchical latent 64, projection critic
with spectral norm, hinge loss, orthogonal regularisation 1e-4, betas (0, 0.999), EMA 0.99), on the particles task
only (it needs a class column). Add an architecture as one more entry with the same data and budget.

PixelCNN's anomaly AUCs (issue 25) are measured by benchmarks/jets_anomaly.py (scorer ``pixel_cnn``: the same
QCD training jets, test jets and seeds as its conv-AE and NSF scorers, trained for the conv-AE's training CPU
time); this script does not measure them again but copies them, with the conv-AE's and the NSF's, from
benchmarks/results/jets_anomaly.json into its JSON's ``pixel_cnn_anomaly`` section (which names that source) when
that file has a ``pixel_cnn`` entry.

    .venv/bin/python benchmarks/gan_architectures.py --quick             # ≤ 60 s: tiny budget, a smoke run
    .venv/bin/python benchmarks/gan_architectures.py --resume            # full: 20,000 training events per task,
                                                                         # 900 CPU s per architecture and task
    .venv/bin/python benchmarks/gan_architectures.py --resume --tasks jets,calo   # ~80 CPU min (6 entries)
    .venv/bin/python benchmarks/gan_architectures.py --resume --tasks particles   # ~1 CPU h: 4 entries, big-gan's curve
    .venv/bin/python benchmarks/gan_architectures.py --resume --architectures style-gan --tasks calo   # a subset

Each entry (a unit: task, architecture and ``--seed``, with its metrics and big-gan's truncation curve) is left in
benchmarks/data/gan_architectures_units/ (quick: gan_architectures_quick_units/) the moment it is done, so a
killed run loses at most the entry in progress (≤ 15 CPU min of training and its evaluation); rerun the same
command with ``--resume`` and it trains only the entries left (a task whose entries are all cached is not even
loaded), then writes the JSON. ``--resume`` refuses a folder made with other settings (events, budget, batch size,
lr, max epochs, ``--quick``); without it a folder with finished units is refused unless ``--fresh`` discards
them. The full run is ~2.4 CPU h (one thread; the training budget is CPU time, so its length hardly depends on the
load): the ``jets,calo`` and ``particles`` commands above fit one 3-hour session each.

Output: benchmarks/results/gan_architectures.json (``--quick``: gan_architectures_quick.json), entries merged by
task and architecture, with the machine record of this invocation (load averages, CPU seconds:
``_machine.Meter``) and per entry its CPU and wall seconds and peak load whichever invocation ran it (``units``;
their sum ``cpu_hours_units``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _budget import fit_for_budget  # noqa: E402
from _jets_data import jets  # noqa: E402
from _machine import Meter  # noqa: E402
from _units import Units  # noqa: E402

RESULTS = Path(__file__).with_name("results")
DATA = Path(__file__).with_name("data")


# -- the architectures -------------------------------------------------------------------------------------------------
def _conv_gan(shape: tuple[int, ...], context: int) -> torch.nn.Module:
    import hepgen

    return hepgen.ConvGAN(shape, context=context)


def _style_gan(shape: tuple[int, ...], context: int) -> torch.nn.Module:
    import hepgen

    return hepgen.StyleGAN(shape, context=context)


def _stack_gan(shape: tuple[int, ...], context: int) -> torch.nn.Module:
    import hepgen

    # stage I (at 1/4 resolution) trains alone for 2 epochs, then both stages: the budget is counted across both
    return hepgen.StackGAN(shape, context=context, stage_one_epochs=2)


def _big_gan(shape: tuple[int, ...], context: int) -> torch.nn.Module:
    import hepgen

    return hepgen.BigGAN(shape, context=context, class_column=f"context_{context - 1}")  # the PDG id: last column


#: name -> (builder(event shape, context size) -> model, the tasks it runs)
ARCHITECTURES: dict[str, tuple[Callable[[tuple[int, ...], int], torch.nn.Module], tuple[str, ...]]] = {
    "conv-gan": (_conv_gan, ("jets", "calo", "particles")),
    "style-gan": (_style_gan, ("jets", "calo", "particles")),
    "stack-gan": (_stack_gan, ("jets", "calo", "particles")),
    "big-gan": (_big_gan, ("particles",)),
}

#: particle -> the PDG id the particles task conditions on
PDG = {"e+": -11.0, "gamma": 22.0, "pi+": 211.0}
TASKS = ("jets", "calo", "particles")


# -- the tasks ---------------------------------------------------------------------------------------------------------
def jets_task(quick: bool, n_train: int, n_eval: int) -> dict[str, Any]:
    """QCD jet images: training images and held-out images with their observables."""
    from hepgen.data.generators.jet_features import image_substructure, silence_fastjet_banner

    silence_fastjet_banner()
    # the first n_train + n_eval in the cache's order (the training and held-out images), then n_eval more: the floor's
    images = jets(quick, {"qcd": n_train + 2 * n_eval}, processes=("qcd",))["qcd"]["images"].astype(np.float32)
    if len(images) < n_train + 2 * n_eval:
        raise SystemExit(f"jets: {len(images)} QCD images, {n_train} + 2 × {n_eval} needed (lower --train/--eval)")
    held_out = images[n_train:n_train + n_eval]
    return {"x": images[:n_train], "context": None, "eval_context": None, "n_eval": n_eval,
            "reference": image_substructure(held_out), "second_real": images[n_train + n_eval:n_train + 2 * n_eval]}


def jets_metrics(task: dict[str, Any], generated: np.ndarray) -> dict[str, float]:
    from hepgen.data.generators.jet_features import IMAGE_FEATURE_COLUMNS, image_substructure
    from hepgen.metrics import fpd, kpd, wasserstein_1d

    def compare(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
        out = {f"w1_{name}": float(wasserstein_1d(real[:, k], fake[:, k]))
               for k, name in enumerate(IMAGE_FEATURE_COLUMNS)}
        pair = [IMAGE_FEATURE_COLUMNS.index("mass"), IMAGE_FEATURE_COLUMNS.index("tau21")]
        out["fpd_mass_tau21"], out["fpd_err"] = fpd(real[:, pair], fake[:, pair])
        out["kpd_mass_tau21"], out["kpd_err"] = kpd(real[:, pair], fake[:, pair])
        return out

    observed = image_substructure(np.asarray(generated, dtype=np.float64))
    out = compare(task["reference"], observed)
    out["negative_pixel_fraction"] = float((np.asarray(generated) < 0).mean())
    out["generated_mean_mass"] = float(observed[:, 1].mean())
    out["real_mean_mass"] = float(task["reference"][:, 1].mean())
    return out


def _showers(n: int, seed: int, particle: str) -> Any:
    from hepgen.calo.shower_layout import LAYERS, Showers, read_showers, write_showers
    from hepgen.data.generators import calo

    path = DATA / f"calo_{particle}_{n}_{seed}.h5"  # the cache benchmarks/calo_surrogates.py uses too
    if path.exists():
        return read_showers(path)
    d = calo.generate(n, seed=seed, particle=particle)
    showers = Showers({k: d[k] for k in LAYERS}, d["energy"])
    DATA.mkdir(parents=True, exist_ok=True)
    write_showers(path, showers.layers, showers.energy)
    return showers


def calo_task(quick: bool, n_train: int, n_eval: int, layer: str, particle: str) -> dict[str, Any]:
    """One calorimeter layer conditioned on the incident energy: training showers (seed 1), held-out ones (seed 2)."""
    from hepgen.metrics.shower_observables import classifier_inputs

    if quick:  # simulated on the fly (~1.5 ms a shower), not cached
        from hepgen.data.generators import calo

        train = calo.generate(n_train, seed=1, particle=particle)
        held = calo.generate(n_eval, seed=2, particle=particle)
        train_x, train_e, held_x, held_e = train[layer], train["energy"], held[layer], held["energy"]
    else:
        train, held = _showers(n_train, 1, particle), _showers(n_eval, 2, particle)
        train_x, train_e, held_x, held_e = train.layers[layer], train.energy, held.layers[layer], held.energy
    energy = np.asarray(held_e, dtype=np.float64)
    return {"x": np.asarray(train_x, dtype=np.float32), "context": np.asarray(train_e, dtype=np.float32)[:, None],
            "eval_context": energy.astype(np.float32)[:, None], "n_eval": len(energy), "energy": energy,
            "reference": classifier_inputs([np.asarray(held_x, dtype=np.float64)], energy, "high")}


def calo_metrics(task: dict[str, Any], generated: np.ndarray) -> dict[str, float]:
    """High-level AUC and W1 of the log layer fraction of ``generated`` showers (at the held-out showers' energies)
    against the held-out showers."""
    from hepgen.evaluate import c2st_auc
    from hepgen.metrics import wasserstein_1d
    from hepgen.metrics.shower_observables import classifier_inputs

    energy = task["energy"]
    features = classifier_inputs([np.asarray(generated, dtype=np.float64)], energy, "high")
    real_fraction = task["reference"][:, 0]  # log(ε + E_layer / E_inc)
    return {"high_level_auc": float(c2st_auc(task["reference"], features, classifier="hgb", seed=0)),
            "w1_log_layer_fraction": float(wasserstein_1d(real_fraction, features[:, 0]))}


def particles_task(quick: bool, n_train: int, n_eval: int, layer: str) -> dict[str, Any]:
    """One layer of e+, γ and π+ showers (a third each, shuffled), context [E_inc, PDG id]."""
    from hepgen.metrics.shower_observables import classifier_inputs

    rng = np.random.default_rng(0)
    parts = {"train": [], "eval": []}
    for particle, pdg in PDG.items():
        for split, n, seed in (("train", n_train, 1), ("eval", n_eval, 2)):
            m = n // len(PDG) + (1 if list(PDG).index(particle) < n % len(PDG) else 0)
            if quick:
                from hepgen.data.generators import calo

                d = calo.generate(m, seed=seed, particle=particle)
                x, e = d[layer], d["energy"]
            else:
                showers = _showers(n, seed, particle)  # the calo task's cache: the first m of n showers
                x, e = showers.layers[layer][:m], showers.energy[:m]
            parts[split].append((np.asarray(x, dtype=np.float32), np.asarray(e, dtype=np.float64),
                                 np.full(m, pdg)))
    out = {}
    for split in ("train", "eval"):
        x, e, pdg = (np.concatenate([p[k] for p in parts[split]]) for k in range(3))
        order = rng.permutation(len(x))
        out[split] = (x[order], e[order], pdg[order])
    (x, e, pdg), (hx, he, hpdg) = out["train"], out["eval"]
    context = np.column_stack([e, pdg]).astype(np.float32)
    eval_context = np.column_stack([he, hpdg]).astype(np.float32)
    features = np.column_stack([classifier_inputs([hx.astype(np.float64)], he, "high"), hpdg])
    return {"x": x, "context": context, "eval_context": eval_context, "n_eval": len(hx), "energy": he, "pdg": hpdg,
            "held_x": hx, "reference": features}


def particles_features(task: dict[str, Any], images: np.ndarray) -> np.ndarray:
    """High-level features of the layer (with log10 E) and the PDG id, at the held-out showers' conditions."""
    from hepgen.metrics.shower_observables import classifier_inputs

    return np.column_stack([classifier_inputs([np.asarray(images, dtype=np.float64)], task["energy"], "high"),
                            task["pdg"]])


def particles_metrics(task: dict[str, Any], generated: np.ndarray, features: np.ndarray | None = None
                      ) -> dict[str, float]:
    """High-level AUC (overall, and per particle) and W1 of the log layer fraction of ``generated`` showers at the
    held-out showers' conditions, or of precomputed ``features`` (the PDG id last, rows in any order of particles),
    against the held-out showers."""
    from hepgen.evaluate import c2st_auc
    from hepgen.metrics import wasserstein_1d

    features = particles_features(task, generated) if features is None else features
    real = task["reference"]
    out = {"high_level_auc": float(c2st_auc(real, features, classifier="hgb", seed=0)),
           "w1_log_layer_fraction": float(wasserstein_1d(real[:, 0], features[:, 0]))}
    for particle, pdg in PDG.items():
        real_rows, fake_rows = real[:, -1] == pdg, features[:, -1] == pdg
        out[f"high_level_auc_{particle}"] = float(c2st_auc(real[real_rows, :-1], features[fake_rows, :-1],
                                                           classifier="hgb", seed=0))
    return out


def real_vs_real(task_name: str, task: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The floor of a task (module docstring): its metrics for a second real sample in place of generated events."""
    if task_name == "jets":
        out = jets_metrics(task, task["second_real"])
        out["sample"] = f"the {len(task['second_real'])} real QCD jets after the held-out ones"
        return out
    if task_name == "calo":
        out = calo_metrics(task, simulated_at(task["energy"], args.particle, args.layer))
        out["sample"] = f"simulator showers ({args.particle}, {args.layer}) at the held-out showers' energies, seed 3"
        return out
    showers = np.empty_like(task["held_x"])
    for particle, pdg in PDG.items():
        rows = task["pdg"] == pdg
        showers[rows] = simulated_at(task["energy"][rows], particle, args.layer)
    out = particles_metrics(task, showers)
    out["sample"] = "simulator showers at the held-out showers' energies and particles, seed 3"
    return out


def simulated_at(energy: np.ndarray, particle: str, layer: str, seed: int = 3) -> np.ndarray:
    """One layer of fresh simulator showers, one at each incident energy (GeV) of ``energy`` (shower i from seed
    (seed, i)), so that a floor shares the held-out showers' conditions exactly as generated showers do: the held-out
    sets of the three particles share their energies (the same simulator seed), and a second sample at other
    energies would let the classifier learn those repeated values (a real-vs-real AUC of 0.59 at 600 showers)."""
    from hepgen.data.generators import calo

    out = [calo.generate(1, seed=int(seed) * 1_000_000 + i, particle=particle, energy_min=float(e),
                         energy_max=float(e))[layer][0] for i, e in enumerate(energy)]
    return np.asarray(out, dtype=np.float32)


def fidelity_diversity(model: torch.nn.Module, task: dict[str, Any], quick: bool, seed: int) -> list[dict[str, Any]]:
    """big-gan's truncation curve on the particles task's held-out showers and features."""
    from hepgen.report.truncation import truncation_curve

    truncations = (0.5, 1.0, None) if quick else (0.25, 0.5, 1.0, 1.5, 2.0, None)
    return truncation_curve(model, task["held_x"], task["eval_context"], truncations, seed=seed + 1,
                            features=lambda images: particles_features(task, images))


# -- PixelCNN as an anomaly score: measured by jets_anomaly.py, carried here -------------------------------------------
#: the scorers PixelCNN is compared with (issue 25: "compared with the conv-AE and NSF scores on the same jets")
ANOMALY_PEERS = ("pixel_cnn", "conv_ae", "conv_ae_sqrt", "nsf", "nsf_m_tau")


def pixel_cnn_anomaly(source: Path) -> dict[str, Any] | None:
    """PixelCNN's anomaly AUCs (top and W jets against QCD) beside the conv-AE's and the NSF's, copied from the
    results of benchmarks/jets_anomaly.py (``source``), the one owner of that measurement (same jets, seeds and
    test sample; PixelCNN trained for the conv-AE's training CPU time); None when it has no pixel_cnn entry."""
    if not source.exists():
        return None
    result = json.loads(source.read_text())
    direct = result.get("tasks", {}).get("direct", {})
    if "pixel_cnn" not in direct:
        return None
    aucs = {name: {sig: {k: v[sig][k] for k in ("auc", "auc_seed_std", "auc_bootstrap_err", "auc_by_seed")}
                   for sig in ("top", "w") if sig in v}
            for name in ANOMALY_PEERS if (v := direct.get(name))}
    cpu = {name: round(float(np.mean([u["cpu_s"] for k, u in result.get("units", {}).items()
                                      if k.startswith(f"direct/{name}/")])), 1)
           for name in aucs if any(k.startswith(f"direct/{name}/") for k in result.get("units", {}))}
    return {"source": f"benchmarks/results/{source.name}" if source.parent == RESULTS else str(source),
            "task": "direct: trained on QCD jets, top and W jets as anomalies", "quick": result.get("quick"),
            "scale": result.get("scale"), "pixel_cnn_settings": result.get("pixel_cnn_settings"),
            "auc": aucs, "unit_cpu_s_mean": cpu}


# -- training at a fixed budget ------------------------------------------------------------------------------------------
def train_for_budget(model: torch.nn.Module, task: dict[str, Any], budget: float, settings: dict[str, Any],
                     run_dir: Path, max_epochs: int) -> dict[str, Any]:
    """Epochs until ``budget`` CPU seconds are spent, each a resumed fit (optimiser state and RNG carry on):
    benchmarks/_budget.py."""
    epoch, used = fit_for_budget(
        lambda epoch: model.fit(task["x"], context=task["context"], epochs=epoch, run_dir=run_dir, resume=epoch > 1,
                                quiet=True, val_fraction=0, monitor=None, **settings), budget, max_epochs)
    steps = int(model.generator_updates) if hasattr(model, "generator_updates") else None
    return {"epochs": epoch, "train_cpu_s": round(used, 2), "generator_steps": steps,
            "generator_parameters": sum(p.numel() for p in model.generator.parameters()),
            "critic_parameters": sum(p.numel() for p in model.critic.parameters())}


def run_entry(name: str, task_name: str, task: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    build, _ = ARCHITECTURES[name]
    torch.manual_seed(args.seed)
    model = build(tuple(task["x"].shape[1:]), 0 if task["context"] is None else task["context"].shape[1])
    settings = {"batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        record = train_for_budget(model, task, args.budget, settings, Path(tmp) / "run", args.max_epochs)
    start = time.process_time()
    with torch.random.fork_rng():
        torch.manual_seed(args.seed + 1)
        generated = model.sample(task["n_eval"], context=task["eval_context"]).numpy()
    record["sample_cpu_s"] = round(time.process_time() - start, 2)
    metrics = {"jets": jets_metrics, "calo": calo_metrics, "particles": particles_metrics}[task_name]
    record.update(metrics(task, generated))
    if task_name == "particles" and name == "big-gan":
        start = time.process_time()
        record["fidelity_diversity"] = fidelity_diversity(model, task, args.quick, args.seed)
        record["fidelity_diversity_cpu_s"] = round(time.process_time() - start, 2)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in <= 60 s: the shipped jets, 512 "
                        "training events per task, a budget of a few CPU seconds per entry")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--budget", type=float, default=None, help="CPU seconds of training per architecture and "
                        "task (default 900; quick: 24 s shared by every entry)")
    parser.add_argument("--train", type=int, default=None, help="training events per task (default 20000, quick 512)")
    parser.add_argument("--eval", type=int, default=None, help="held-out events per task (default 5000, quick 400)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (quick 64)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--layer", default="layer_1",
                        help="calo: the layer (layer_0 3x96, layer_1 12x12, layer_2 12x6)")
    parser.add_argument("--particle", default="gamma", help="calo: e+, gamma or pi+")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished entries (units) of a killed or earlier run with the same settings")
    parser.add_argument("--fresh", action="store_true", help="discard the finished units of an earlier run")
    parser.add_argument("--units", type=Path, default=None,
                        help="folder of the per-entry units (default benchmarks/data/gan_architectures[_quick]_units)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.resume and args.fresh:
        parser.error("--resume and --fresh exclude each other")
    torch.set_num_threads(1)
    meter = Meter()
    tasks = [t for t in args.tasks.split(",") if t]
    names = [a for a in args.architectures.split(",") if a]
    unknown = [a for a in names if a not in ARCHITECTURES] + [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown architecture or task {unknown[0]!r}; architectures: {', '.join(ARCHITECTURES)}; "
                         f"tasks: {', '.join(TASKS)}")
    entries = [(t, a) for t in tasks for a in names if t in ARCHITECTURES[a][1]]
    if args.budget is None:
        args.budget = 24.0 / max(len(entries), 1) if args.quick else 900.0
    if args.batch_size is None:
        args.batch_size = 64 if args.quick else 128
    n_train = args.train or (512 if args.quick else 20000)
    n_eval = args.eval or (400 if args.quick else 5000)
    path = Path(args.out) if args.out else RESULTS / ("gan_architectures_quick.json" if args.quick
                                                      else "gan_architectures.json")
    stem = "gan_architectures_quick" if args.quick else "gan_architectures"
    # what an entry's result depends on besides its key (task, layer, particle, architecture, seed)
    manifest = {"quick": bool(args.quick), "train": n_train, "eval": n_eval, "budget_cpu_s": args.budget,
                "batch_size": args.batch_size, "lr": args.lr, "max_epochs": args.max_epochs}
    units = Units(args.units or DATA / f"{stem}_units", manifest, args.resume, discard=args.fresh or args.quick)
    keys = {"jets": "jets", "calo": f"calo_{args.particle}_{args.layer}", "particles": f"particles_{args.layer}"}
    out = json.loads(path.read_text()) if path.exists() else {"benchmark": "gan_architectures", "results": {}}
    unit_records = out.setdefault("units", {})
    for task_name in tasks:
        todo = [name for t, name in entries if t == task_name]
        if not todo:
            continue
        key = keys[task_name]
        cached = {name: units.get(f"{key}/{name}/seed{args.seed}") for name in todo}
        floor = units.get(f"{key}/real-vs-real")
        task = None
        if floor is None or any(v is None for v in cached.values()):  # the data only when something is left
            if task_name == "jets":
                task = jets_task(args.quick, n_train, n_eval)
            elif task_name == "calo":
                task = calo_task(args.quick, n_train, n_eval, args.layer, args.particle)
            else:
                task = particles_task(args.quick, n_train, n_eval, args.layer)
        results = out["results"].setdefault(key, {})
        if floor is None:
            piece = Meter()
            result = json.loads(json.dumps(real_vs_real(task_name, task, args), default=float))
            units.put(f"{key}/real-vs-real", {}, {"result": result, "machine": piece.record()})
            floor = ({}, {"result": result})
        results["real-vs-real"] = floor[1]["result"]
        print(f"{key} real-vs-real: " + ", ".join(f"{k} {v:.4g}" for k, v in results["real-vs-real"].items()
                                                  if isinstance(v, float)), flush=True)
        for name in todo:
            unit = f"{key}/{name}/seed{args.seed}"
            if cached[name] is None:
                piece = Meter()
                result = json.loads(json.dumps(run_entry(name, task_name, task, args), default=float))
                record = {"result": result, "shape": list(task["x"].shape[1:]), "machine": piece.record()}
                units.put(unit, {}, record)
                meter.sample()
            else:
                record = cached[name][1]
            results["_data"] = {"train": n_train, "eval": n_eval, "shape": record["shape"],
                                "budget_cpu_s": args.budget, "batch_size": args.batch_size, "lr": args.lr,
                                "seed": args.seed}
            results[name] = record["result"]
            m = record["machine"]
            for old in [k for k in unit_records if k.startswith(f"{key}/{name}/")]:  # an earlier seed's entry
                del unit_records[old]
            unit_records[unit] = {"cpu_s": m["cpu_s"], "wall_s": m["wall_s"],
                                  "load_1min_peak": m["peak_load_1min_sampled"], "timings_valid": m["timings_valid"]}
            print(f"{key} {name}{' (cached)' if cached[name] else ''}: " + ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in results[name].items() if k != "fidelity_diversity"), flush=True)
            for row in results[name].get("fidelity_diversity", []):
                print(f"  truncation {row['truncation']}: " + ", ".join(
                    f"{k} {v:.3g}" for k, v in row.items() if k != "truncation" and v is not None), flush=True)
    out["units"] = dict(sorted(unit_records.items()))
    out["cpu_hours_units"] = round(sum(r["cpu_s"] for r in unit_records.values()) / 3600, 3)
    out["units_folder"] = str(units.folder.relative_to(DATA.parent) if units.folder.is_relative_to(DATA.parent)
                              else units.folder)
    anomaly = pixel_cnn_anomaly(RESULTS / "jets_anomaly.json")
    if anomaly is not None:
        out["pixel_cnn_anomaly"] = anomaly
    out["machine"] = meter.record()
    out["command"] = " ".join(sys.argv)
    from hepgen.files import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
