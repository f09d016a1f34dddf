"""GAN quality figures for the closing note: mode coverage on the 8-Gaussian ring, the WGAN-GP critic's
W1 estimate against scipy, CycleGAN's cycle-consistency error, and the defaults on a 6-mode ring.

1. Ring (8 Gaussians, σ = 0.1, radius 2; :func:`hepgen.demo.figures.gans.ring_settings`): WGAN-GP and a
   non-saturating GAN of the same size, several seeds each. Per run: modes hit (of 8), the
   high-quality fraction (samples within 3σ of their nearest mode), KL/JS on a 40×40 grid, the mean
   per-feature W1 to held-out data (scipy), and the per-epoch trajectory of modes hit / quality.
   The issue's criterion: WGAN-GP hits 8/8 modes with >= 80% of samples within 3σ.
2. W1: a WGAN-GP critic (λ = 10) trained between two 1-D Gaussians; its estimate E[D(x)] − E[D(y)] on
   fresh samples against scipy.stats.wasserstein_distance (relative error), and the weight-clipped
   WGAN critic's estimate, which is K·W1 for an unknown K (the ratio is shown, not an error).
3. CycleGAN on a toy pair (A: correlated 2-D Gaussian, B: A rotated, stretched and shifted): mean
   cycle error |F(G(a)) − a|₁ in standardised units, both directions, and W1(G(A), B) per feature / σ_B.

4. ``ring6`` (issue 11, "defaults that should already be good"): a 6-mode ring (σ = 0.1, radius 3,
   20k events, all used for training), WGAN-GP with k = 5, lr 5e-4, batches of 256, 100 epochs
   (quick: 30), three variants on the same data and budget: ``defaults`` (``hepgen.WGANGP(2)`` as it
   is), ``previous`` (the defaults before issue 11: 2×128, no EMA) and ``plain`` (a 3×128 ReLU
   WGAN-GP in plain torch, latent 2, no preprocessing, no EMA). Modes hit (of 6) and the fraction of
   20000 samples within 3σ of a mode, mean ± std over seeds. hepgen's engine counts the k critic steps
   per epoch (15 generator steps in each epoch of 79 batches, 1500 in all); the plain loop counts
   across epochs (1580): the plain recipe gets 5% more generator steps.

Cost is quoted as the ratio WGAN-GP / non-saturating CPU time per run on the same machine.

    .venv/bin/python benchmarks/gan_quality.py [--quick] [--seeds 3] [--workers 2] [--sections ring6]

Output: benchmarks/results/gan_quality.json (``--quick``: gan_quality_quick.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def ring_run(loss: str, seed: int, quick: bool) -> dict:
    """One GAN on the ring; returns its final figures and per-epoch trajectory."""
    _threads()
    import torch

    from hepgen.data.generators.toys import eight_gaussian_centres, eight_gaussians
    from hepgen.demo.figures.gans import ring_settings
    from hepgen.gans.diagnostics import GridDivergence, ModeCoverage, mode_coverage
    from hepgen.gans.gan import GAN
    from hepgen.metrics import kl_js_from_samples, wasserstein_per_feature

    settings = ring_settings(quick)
    model_params = dict(settings["model"])
    if loss != "wgan-gp":  # the textbook GAN: one discriminator step per generator step, equal learning rates
        model_params.update(loss=loss, critic_steps=1, lr_critic=1e-3, lr_generator=1e-3)
    sigma, centres = settings["sigma"], eight_gaussian_centres()
    data = eight_gaussians(settings["n"], np.random.default_rng(seed), std=sigma).astype(np.float32)
    test = eight_gaussians(20000, np.random.default_rng(10_000 + seed), std=sigma)
    box = [(-3.0, 3.0), (-3.0, 3.0)]
    start = time.process_time()
    model = GAN(2, **model_params)
    model.fit(data, seed=seed, lr=1e-3, quiet=True, val_fraction=0.05, **settings["train"],
              diagnostics=[ModeCoverage(centres, sigma, n=2000, seed=seed), GridDivergence(data, bins=40, range=box)])
    cpu = time.process_time() - start
    torch.manual_seed(seed + 1)
    fake = model.sample(20000).double().numpy()
    hit, good = mode_coverage(fake, centres, sigma)
    kl, js = kl_js_from_samples(test, fake, bins=40, range=box)
    w1 = float(np.mean(wasserstein_per_feature(fake, test)))
    return {"loss": loss, "seed": seed, "modes_hit": hit, "high_quality": good, "kl": kl, "js": js,
            "w1_mean_per_feature": w1, "passes_issue_criterion": bool(hit == 8 and good >= 0.8),
            "cpu_s": cpu, "epochs": settings["train"]["epochs"],
            "trajectory": [{"epoch": r["epoch"], "modes_hit": r["val_modes_hit"], "high_quality": r["val_high_quality"],
                            "grid_js": r["val_grid_js"]} for r in model.history_]}


# -- 4. the 6-mode ring with default settings (issue 11) ------------------------------------------------
RING6 = {"modes": 6, "radius": 3.0, "sigma": 0.1, "n": 20000, "lr": 5e-4, "batch_size": 256, "critic_steps": 5}
# GAN's defaults before issue 11, stated explicitly so that the comparison can be rerun after they changed
PREVIOUS_DEFAULTS = {"latent": 8, "hidden": (128, 128), "activation": "leaky_relu", "ema": 0.0,
                     "preprocess": "standard"}


def ring6_centres() -> np.ndarray:
    """radius (cos 2πk/6, sin 2πk/6), k = 0..5: (6, 2)."""
    angle = 2.0 * np.pi * np.arange(RING6["modes"]) / RING6["modes"]
    return RING6["radius"] * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def ring6_data(n: int, seed: int) -> np.ndarray:
    """Equal mixture of N(c_k, σ² I) at :func:`ring6_centres`: (n, 2) float32."""
    rng = np.random.default_rng(seed)
    return (ring6_centres()[rng.integers(0, RING6["modes"], n)]
            + RING6["sigma"] * rng.standard_normal((n, 2))).astype(np.float32)


def plain_wgan_gp(data: np.ndarray, epochs: int, seed: int, latent: int = 2, width: int = 128, depth: int = 3,
                  lr: float = 5e-4, batch_size: int = 256, critic_steps: int = 5, gp_weight: float = 10.0):
    """The plain recipe, in plain torch and nothing of hepgen: generator and critic MLPs of ``depth``
    hidden ReLU layers of ``width``, z ~ N(0, I_latent), no preprocessing, Adam(lr, betas (0.5, 0.9)) for
    both, λ = 10 on (‖∇D(x̂)‖ − 1)² at x̂ = εx + (1 − ε)x̃, one critic step per batch of shuffled data and
    a generator step after every ``critic_steps``-th; the last generator is returned (no EMA)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def mlp(a: int, b: int) -> nn.Sequential:
        sizes, layers = [a] + [width] * depth, []
        for i, o in itertools.pairwise(sizes):
            layers += [nn.Linear(i, o), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(sizes[-1], b))

    x = torch.as_tensor(data, dtype=torch.float32)
    gen, critic = mlp(latent, x.shape[1]), mlp(x.shape[1], 1)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            real = x[order[i:i + batch_size]]
            with torch.no_grad():
                fake = gen(torch.randn(len(real), latent))
            eps = torch.rand(len(real), 1)
            mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
            loss = (critic(fake) - critic(real)).mean() + gp_weight * ((grad.norm(dim=1) - 1) ** 2).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
            step += 1
            if step % critic_steps == 0:
                g_loss = -critic(gen(torch.randn(batch_size, latent))).mean()
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
    return lambda n: gen(torch.randn(n, latent))


def ring6_run(variant: str, seed: int, epochs: int) -> dict:
    """One WGAN-GP on the 6-mode ring: ``defaults`` (``hepgen.WGANGP(2)`` as it is now), ``previous``
    (:data:`PREVIOUS_DEFAULTS`) or ``plain`` (:func:`plain_wgan_gp`); the same 20k events, epochs, batch
    size, lr and k for all three, every event used for training."""
    _threads()
    import torch

    import hepgen
    from hepgen.gans.diagnostics import mode_coverage

    data = ring6_data(RING6["n"], seed)
    start = time.process_time()
    if variant == "plain":
        draw = plain_wgan_gp(data, epochs, seed, lr=RING6["lr"], batch_size=RING6["batch_size"],
                             critic_steps=RING6["critic_steps"])
        config = {"latent": 2, "hidden": [128, 128, 128], "activation": "relu", "ema": 0.0, "preprocess": "none"}
    else:
        model = hepgen.WGANGP(2, critic_steps=RING6["critic_steps"],
                              **(PREVIOUS_DEFAULTS if variant == "previous" else {}))
        model.fit(data, epochs=epochs, lr=RING6["lr"], batch_size=RING6["batch_size"], seed=seed, quiet=True,
                  val_fraction=0)
        draw = model.sample
        config = {k: v for k, v in model.get_config().items() if k in ("latent", "hidden", "generator_hidden",
                                                                      "activation", "ema", "preprocess")}
    cpu = time.process_time() - start
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        fake = draw(20000).double().numpy()
    hit, good = mode_coverage(fake, ring6_centres(), RING6["sigma"])
    return {"variant": variant, "seed": seed, "epochs": epochs, "modes_hit": hit, "high_quality": good,
            "cpu_s": cpu, "config": config}


def w1_run(shift: float, scale: float, steps: int, seed: int = 0) -> dict:
    """Critic estimates between N(0, 1) and N(shift, scale²) against scipy."""
    _threads()
    import torch
    from scipy.stats import wasserstein_distance

    from hepgen.gans.diagnostics import train_critic
    from hepgen.gans.networks import MLPCritic

    rng = np.random.default_rng(seed)
    real = torch.tensor(rng.normal(size=(8192, 1)), dtype=torch.float32)
    draw = lambda n: shift + scale * torch.randn(n, 1)  # fresh generator samples each step
    out = {"p": "N(0, 1)", "q": f"N({shift}, {scale}^2)"}
    fresh_real = rng.normal(size=(100_000, 1))
    fresh_fake = shift + scale * rng.normal(size=(100_000, 1))
    exact = float(wasserstein_distance(fresh_real[:, 0], fresh_fake[:, 0]))
    out["w1_scipy"] = exact
    for loss, lr in (("wgan-gp", 5e-3), ("wgan", 5e-3)):
        torch.manual_seed(seed)
        critic = MLPCritic(1, (64, 64))
        train_critic(critic, real, draw, loss=loss, steps=steps, lr=lr)
        with torch.no_grad():
            estimate = float(critic(torch.tensor(fresh_real, dtype=torch.float32)).mean()
                             - critic(torch.tensor(fresh_fake, dtype=torch.float32)).mean())
        out[f"{loss}_estimate"] = estimate
        if loss == "wgan-gp":
            out["wgan_gp_relative_error"] = estimate / exact - 1
        else:
            out["wgan_clip_ratio_K"] = estimate / exact
    return out


def cycle_run(epochs: int, seed: int = 0) -> dict:
    """CycleGAN on the toy pair of the tests, trained longer."""
    _threads()
    import torch
    from scipy.stats import wasserstein_distance

    from hepgen.gans.cyclegan import CycleGAN

    rng = np.random.default_rng(3 + seed)
    cov = [[1.0, 0.6], [0.6, 1.0]]
    angle = np.pi / 3
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a = rng.multivariate_normal([0, 0], cov, size=5000).astype(np.float32)
    b = ((rng.multivariate_normal([0, 0], cov, size=5000) @ rot.T) * [2.0, 0.5] + [5.0, -1.0]).astype(np.float32)
    test_a = rng.multivariate_normal([0, 0], cov, size=5000).astype(np.float32)
    model = CycleGAN(2, hidden=(64, 64))
    start = time.process_time()
    model.fit(a, streams={"b": b}, epochs=epochs, batch_size=128, lr=1e-3, seed=seed, quiet=True, val_fraction=0.05)
    with torch.no_grad():
        translated = model.transform(test_a).numpy()
    return {"epochs": epochs, "cycle_error_a": float(model.cycle_error(test_a).mean()),
            "cycle_error_b": float(model.cycle_error(b, domain="b").mean()),
            "w1_over_sigma_translated_vs_b": [float(wasserstein_distance(translated[:, j], b[:, j]) / b[:, j].std())
                                              for j in range(2)],
            "cpu_s": time.process_time() - start}


def _spread(values: list[float]) -> dict:
    """mean and sample standard deviation (ddof 1) over seeds, and the values themselves."""
    v = np.asarray(values, dtype=float)
    return {"mean": round(float(v.mean()), 4), "std": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 4),
            "values": [round(float(a), 4) for a in v]}


def ring6_summary(runs: list[dict]) -> dict:
    """Per variant: modes hit and high-quality fraction, mean ± std over seeds, and CPU seconds per run."""
    out: dict = {"task": {**RING6, "epochs": runs[0]["epochs"], "samples": 20000,
                          "criterion": "mode within 3 sigma; hit when it holds >= 1/(4*6) of the samples"}}
    for variant in ("previous", "defaults", "plain"):
        rs = [r for r in runs if r["variant"] == variant]
        out[variant] = {"modes_hit": _spread([r["modes_hit"] for r in rs]),
                        "high_quality": _spread([r["high_quality"] for r in rs]),
                        "cpu_s_per_run": round(float(np.mean([r["cpu_s"] for r in rs])), 1), "config": rs[0]["config"]}
    return out


SECTIONS = ("ring", "w1", "cycle", "ring6")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs (a smoke run)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per ring model (default 3, quick 1)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (one thread each)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}; the others keep their results "
                             "from the existing output file")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {','.join(SECTIONS)}")
    seeds = range(args.seeds if args.seeds is not None else (1 if args.quick else 3))
    path = Path(args.out) if args.out else RESULTS / ("gan_quality_quick.json" if args.quick else "gan_quality.json")
    start = time.perf_counter()
    jobs = []
    if "ring6" in sections:  # the longest runs first
        jobs += [("ring6", (v, s, 30 if args.quick else 100)) for s in seeds for v in ("previous", "defaults", "plain")]
    if "ring" in sections:
        jobs += [("ring", (loss, s, args.quick)) for loss in ("wgan-gp", "non-saturating") for s in seeds]
    if "w1" in sections:
        jobs += [("w1", (shift, scale, 800 if args.quick else 3000)) for shift, scale in
                 ((0.25, 1.0), (0.5, 0.75), (1.0, 0.5), (2.0, 1.5))]
    if "cycle" in sections:
        jobs += [("cycle", (10 if args.quick else 40,))]
    funcs = {"ring": ring_run, "w1": w1_run, "cycle": cycle_run, "ring6": ring6_run}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [(kind, pool.submit(funcs[kind], *a)) for kind, a in jobs]
        results = [(kind, f.result()) for kind, f in futures]
    out = json.loads(path.read_text()) if path.exists() else {"benchmark": "gan_quality", "summary": {}}
    summary = out.setdefault("summary", {})
    if "ring" in sections:
        ring = [r for k, r in results if k == "ring"]
        wgan = [r for r in ring if r["loss"] == "wgan-gp"]
        ns = [r for r in ring if r["loss"] != "wgan-gp"]
        out["ring"] = ring
        summary.update({
            "wgan_gp_modes_hit": [r["modes_hit"] for r in wgan],
            "wgan_gp_high_quality": [round(r["high_quality"], 4) for r in wgan],
            "wgan_gp_runs_passing_8_of_8_and_80pct": f"{sum(r['passes_issue_criterion'] for r in wgan)}/{len(wgan)}",
            "non_saturating_modes_hit": [r["modes_hit"] for r in ns],
            "non_saturating_high_quality": [round(r["high_quality"], 4) for r in ns],
            "cpu_ratio_wgan_gp_over_non_saturating": round(np.mean([r["cpu_s"] for r in wgan])
                                                           / np.mean([r["cpu_s"] for r in ns]), 2),
        })
    if "w1" in sections:
        w1 = out["w1"] = [r for k, r in results if k == "w1"]
        summary["wgan_gp_w1_relative_error"] = [round(r["wgan_gp_relative_error"], 4) for r in w1]
        summary["max_abs_w1_relative_error"] = round(max(abs(r["wgan_gp_relative_error"]) for r in w1), 4)
    if "cycle" in sections:
        cycle = out["cycle"] = next(r for k, r in results if k == "cycle")
        summary["cycle_error_a_b"] = [round(cycle["cycle_error_a"], 4), round(cycle["cycle_error_b"], 4)]
    if "ring6" in sections:
        out["ring6"] = [r for k, r in results if k == "ring6"]
        summary["ring6_defaults"] = ring6_summary(out["ring6"])
    out.update(quick=args.quick, machine={"platform": platform.platform(), "cpus": os.cpu_count(),
                                          "workers": args.workers})
    out.setdefault("wall_time_s", {})
    if not isinstance(out["wall_time_s"], dict):  # results written before sections: one figure for all of them
        out["wall_time_s"] = {"ring,w1,cycle": out["wall_time_s"]}
    out["wall_time_s"][",".join(sections)] = round(time.perf_counter() - start, 1)
    from hepgen.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=2, default=float) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {path} ({', '.join(sections)}) in {out['wall_time_s'][','.join(sections)]} s")


if __name__ == "__main__":
    main()
