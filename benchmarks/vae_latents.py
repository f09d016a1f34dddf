"""β sweep of VAE latents on jets (issue 25): how many latents stay active and how well each tracks jet physics.

For each β (β = 1: the plain ELBO; larger β: the β-VAE's pressure towards independent latents) a VAE is trained
on the same QCD jets with the same budget, then :func:`hepgen.evaluate.disentanglement` measures on held-out
jets: the KL per latent (active = KL > 0.01 nats), and against the jet's mass, τ21, pT and constituent multiplicity
the mutual information (scikit-learn's mutual_info_regression, KSG, nats), Pearson/Spearman correlations and the
MIG-like gap (I₁ − I₂)/H(q) on 20 equal-frequency bins. Held-out −ELBO (k = 16) says what the disentanglement costs.

Tasks:

* ``images``: ``conv-vae`` (latent 8, channels 16,32) on 40×40 QCD jet images as √(pT fraction), standardised per
  pixel, with a fixed-σ Gaussian decoder (σ = 1 in standardised units: jets_anomaly.py's conv-VAE); the quantities
  come from the jets' ``features``. ``--image-decoder bernoulli`` gives the first run's setting (min-max scaled pT
  fractions, Bernoulli decoder), whose latents collapsed at the full scale: at β = 1 the KL per latent was
  0.0002-0.0003 nats, none active (benchmarks/results/vae_latents_bernoulli.json), though 8 epochs on 6,000 jets
  left all 8 active (0.45-0.91 nats: a probe) — the decoder learns the sparse images without the latents. The
  Gaussian decoder keeps all 8 active at β = 1 (1.6-2.5 nats) and still at β = 16 (0.04-1.06) (a probe at the full
  settings; the committed figures are this benchmark's).
* ``features``: ``vae`` (latent 4, hidden 64,32, Gaussian decoder, standardised) on all 11 jet features (the
  quantities are among them: the question is which latent carries which, and whether one latent carries one).

    .venv/bin/python benchmarks/vae_latents.py --quick            # <= 60 s: the shipped jets, 2 betas, tiny nets
    .venv/bin/python benchmarks/vae_latents.py --resume           # full: 20,000 training + 5,000 held-out QCD jets,
                                                                  # betas 1, 2, 4, 8, 16; 30 epochs (images), 60
                                                                  # (features); ~1.5 CPU h, resumable

Each (task, β, ``--seed``) training with its analysis is a unit, left in benchmarks/data/vae_latents_units/
(quick: vae_latents_quick_units/) the moment it is done, so a killed run loses at most the unit in progress
(an image VAE: ~15 CPU min; a feature VAE: ~2 min); rerun the same command with ``--resume`` and it trains only
the units left (the jets are not even read when all are cached), then writes the JSON. ``--resume`` refuses a
folder made with other settings (jets, epochs, batch size, lr, ``--quick``); without it a folder with finished
units is refused unless ``--fresh`` discards them. Estimate: the 5 image VAEs ≈ 75 CPU min, the 5 feature VAEs
≈ 15 CPU min (one thread): ~1.5 CPU h, within one 3-hour session, split over several by ``--resume`` if killed.

Full mode also writes a latents report folder per task and β (benchmarks/results/vae_latents/TASK_beta_B/:
traversals, KL, MI and correlation figures) when the unit is trained, before the unit is left. Output:
benchmarks/results/vae_latents.json (quick: vae_latents_quick.json) with the machine record of this invocation
(load averages, CPU seconds: ``_machine.Meter``) and per unit its CPU and wall seconds and peak load whichever
invocation ran it (``units``; their sum ``cpu_hours_units``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _jets_data import COLUMNS, jets  # noqa: E402
from _machine import Meter  # noqa: E402
from _units import Units  # noqa: E402

RESULTS = Path(__file__).with_name("results")
DATA = Path(__file__).with_name("data")
QUANTITIES = ("mass", "tau21", "pt", "n_constituents")


def build(task: str, quick: bool, beta: float, shape: tuple[int, ...], decoder: str = "gaussian-fixed") -> Any:
    import hepgen

    if task == "images":
        channels = (8, 16) if quick else (16, 32)
        if decoder == "bernoulli":
            return hepgen.ConvVAE(shape, latent=8, channels=channels, beta=beta)
        return hepgen.ConvVAE(shape, latent=8, channels=channels, beta=beta, decoder="gaussian-fixed",
                              decoder_sigma=1.0, preprocess="standard")
    return hepgen.VAE(shape[0], latent=4, hidden=(32, 16) if quick else (64, 32), beta=beta)


def run(task: str, beta: float, x: np.ndarray, held: np.ndarray, quantities: np.ndarray, args: argparse.Namespace,
        report_dir: Path | None) -> dict[str, Any]:
    from hepgen.evaluate import disentanglement

    torch.manual_seed(args.seed)
    model = build(task, args.quick, beta, tuple(x.shape[1:]), args.image_decoder)
    epochs = args.epochs or ((2 if task == "images" else 8) if args.quick else (30 if task == "images" else 60))
    start = time.process_time()
    model.fit(x, epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, quiet=True, val_fraction=0.1)
    train_cpu = time.process_time() - start
    analysis = disentanglement(model, held, quantities, list(QUANTITIES), top_k=4, seed=args.seed)
    neg_elbo = float(-model.elbo(held, k=16).mean())
    summary = analysis.matrices.summary
    record = {"epochs": epochs, "train_cpu_s": round(train_cpu, 2), "held_out_neg_elbo": neg_elbo,
              "kl_total": float(analysis.kl.sum()), "active_latents": int((analysis.kl > 0.01).sum()),
              "kl_per_latent": [round(float(v), 4) for v in analysis.kl],
              "per_quantity": {q: {k: summary[q][k] for k in ("best_latent", "mi_max", "mi_gap", "mig",
                                                               "pearson_best", "spearman_best")} for q in QUANTITIES},
              "mean_mig": float(np.mean([summary[q]["mig"] for q in QUANTITIES]))}
    if report_dir is not None:
        from hepgen.report.latents import latents_report

        tabular = held.ndim == 2
        latents_report(analysis, report_dir, title=f"{task}: β = {beta:g}",
                       feature_names=COLUMNS if tabular else None,
                       feature_mean=held.mean(axis=0) if tabular else None,
                       feature_std=held.std(axis=0) if tabular else None)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="<= 60 s: the shipped jets, betas 1 and 4, tiny nets")
    parser.add_argument("--tasks", default="images,features")
    parser.add_argument("--betas", default=None, help="comma separated (default 1,2,4,8,16; quick 1,4)")
    parser.add_argument("--train", type=int, default=None, help="training jets (default 20000; quick 1500)")
    parser.add_argument("--eval", type=int, default=None, help="held-out jets (default 5000; quick 500)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--image-decoder", choices=("gaussian-fixed", "bernoulli"), default="gaussian-fixed",
                        help="the images task's decoder: gaussian-fixed on standardised sqrt(pT fraction) (default) or "
                             "bernoulli on min-max scaled pT fractions (the first run's, whose latents collapsed)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished (task, β) units of a killed or earlier run with the same settings")
    parser.add_argument("--fresh", action="store_true", help="discard the finished units of an earlier run")
    parser.add_argument("--units", type=Path, default=None,
                        help="folder of the per-unit records (default benchmarks/data/vae_latents[_quick]_units)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.resume and args.fresh:
        parser.error("--resume and --fresh exclude each other")
    torch.set_num_threads(1)
    meter = Meter()
    from hepgen.autoencoders import jet_images

    betas = [float(b) for b in (args.betas or ("1,4" if args.quick else "1,2,4,8,16")).split(",")]
    n_train = args.train or (1500 if args.quick else 20000)
    n_eval = args.eval or (500 if args.quick else 5000)
    tasks = [t for t in args.tasks.split(",") if t]
    for task in tasks:
        if task not in ("images", "features"):
            raise SystemExit(f"unknown task {task!r}; tasks: images, features")
    path = Path(args.out) if args.out else RESULTS / ("vae_latents_quick.json" if args.quick else "vae_latents.json")
    stem = "vae_latents_quick" if args.quick else "vae_latents"
    # what a unit's record depends on besides its key (task, β, seed)
    manifest = {"quick": bool(args.quick), "train": n_train, "eval": n_eval, "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "quantities": list(QUANTITIES),
                "image_decoder": args.image_decoder}
    units = Units(args.units or DATA / f"{stem}_units", manifest, args.resume, discard=args.fresh or args.quick)
    keys = {(task, beta): f"{task}/beta_{beta:g}/seed{args.seed}" for task in tasks for beta in betas}
    cached = {k: units.get(key) for k, key in keys.items()}
    qcd = None
    if any(v is None for v in cached.values()):  # the jets only when something is left to train
        qcd = jets(args.quick, {"qcd": n_train + n_eval}, processes=("qcd",))["qcd"]
        if len(qcd["features"]) < n_train + n_eval:
            raise SystemExit(f"{len(qcd['features'])} QCD jets, {n_train} + {n_eval} needed (lower --train/--eval)")
        features = qcd["features"][:n_train + n_eval].astype(np.float32)
        quantities = features[n_train:, [COLUMNS.index(q) for q in QUANTITIES]].astype(np.float64)
    out: dict[str, Any] = {"benchmark": "vae_latents", "image_decoder": args.image_decoder, "train": n_train,
                           "eval": n_eval, "betas": betas,
                           "quantities": list(QUANTITIES), "results": {}, "units": {}}
    for task in tasks:
        x = None
        if any(cached[task, beta] is None for beta in betas):
            intensity = "linear" if args.image_decoder == "bernoulli" else "sqrt"
            x = (jet_images(qcd["images"][:n_train + n_eval].astype(np.float32), intensity=intensity).astype(np.float32)
                 if task == "images" else features)
        out["results"][task] = {}
        for beta in betas:
            if cached[task, beta] is None:
                piece = Meter()
                report = None if args.quick else RESULTS / "vae_latents" / f"{task}_beta_{beta:g}"
                record = run(task, beta, x[:n_train], x[n_train:], quantities, args, report)
                record = json.loads(json.dumps(record, default=float))  # as it reads back from the unit
                machine = piece.record()
                units.put(keys[task, beta], {}, {"result": record, "machine": machine})
                meter.sample()
            else:
                record, machine = cached[task, beta][1]["result"], cached[task, beta][1]["machine"]
            out["results"][task][f"beta_{beta:g}"] = record
            out["units"][keys[task, beta]] = {"cpu_s": machine["cpu_s"], "wall_s": machine["wall_s"],
                                              "load_1min_peak": machine["peak_load_1min_sampled"],
                                              "timings_valid": machine["timings_valid"]}
            print(f"{task} β={beta:g}{' (cached)' if cached[task, beta] else ''}: -ELBO "
                  f"{record['held_out_neg_elbo']:.4g}, active {record['active_latents']}, "
                  f"mean MIG {record['mean_mig']:.3f}, " + ", ".join(
                      f"{q}: {r['best_latent']} MI {r['mi_max']:.2f}" for q, r in record["per_quantity"].items()),
                  flush=True)
    out["cpu_hours_units"] = round(sum(r["cpu_s"] for r in out["units"].values()) / 3600, 3)
    out["units_folder"] = str(units.folder.relative_to(DATA.parent) if units.folder.is_relative_to(DATA.parent)
                              else units.folder)
    out["machine"] = meter.record()
    out["command"] = " ".join(sys.argv)
    from hepgen.report.folder import write_json

    RESULTS.mkdir(exist_ok=True)
    write_json(path, out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
