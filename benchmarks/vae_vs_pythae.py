"""hepgen's VAE against pythae's on the same MLP, data, optimiser, batch size and epochs: speed and test ELBO.

Both models are the same network: encoder D -> 64 -> 32 -> 2L (μ and a log-scale head), decoder
L -> 32 -> 64 -> D, ReLU, a Gaussian decoder with unit variance (pythae's ``reconstruction_loss="mse"``
is ½‖x − x̂‖², hepgen's ``decoder="gaussian-fixed", decoder_sigma=1`` is the same up to a constant),
KL to N(0, I) in closed form, Adam at lr 1e-3, batch 64, no validation, no scheduler, and the same
model selection (the epoch with the lowest training loss: pythae's rule without eval data). The data are
standardised once with the training statistics and handed to both as the same float32 arrays
(hepgen with ``preprocess="none"``). Datasets: the 11 high-level features of the shipped jets (all
three processes) and scikit-learn's 8x8 digits (64 values), each split 80/20 with a fixed seed.

Speed: wall time (and process CPU time, steadier on a shared machine) of the whole ``fit`` call
(hepgen: ``VAE.fit``; pythae: building its dataset and ``BaseTrainer`` and ``train()``, which also
writes its final model, a few kB), one thread each, after one untimed warm-up fit of each, repeats
interleaved (hepgen first on even repeats, pythae first on odd ones); the ratio is pythae time /
hepgen time per repeat (> 1: hepgen trains faster), summarised by its median (and by best-of: the fastest pythae
run over the fastest hepgen run, the least disturbed by other load). A third, diagnostic
contestant, ``hepgen_fused_adam``, is hepgen with the engine's Adam built with ``fused=True`` (patched
in-process for this run only): it measures what that one-line engine change would buy. A fourth,
``torch_loop``, is the plain PyTorch loop (same networks, loss, Adam, shuffled batches, best-epoch
rule, no engine): the floor that shows the engine's per-step cost and whether its ELBO differs. Quality: the test ELBO of both trained networks from one
shared estimator in the standardised space, E_q[log N(u; g(z), I)] − KL(q(z|u) ‖ N(0, I)) with
K = 64 seeded posterior samples per event (nats per event; higher is better), and the mean
hepgen − pythae difference over the repeats with its standard error.

    .venv/bin/python benchmarks/vae_vs_pythae.py [--quick] [--epochs 40] [--repeats 3]

Writes benchmarks/results/vae_vs_pythae.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import logging
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

RESULTS = Path(__file__).with_name("results") / "vae_vs_pythae.json"
HIDDEN = (64, 32)
LATENT = 4
BATCH = 64
LR = 1e-3


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (train, test) standardised float32 arrays."""
    from sklearn.datasets import load_digits

    from hepgen.data.generators.jets import load_sample

    raw = {"jet_features": np.concatenate([load_sample(p)["features"] for p in ("qcd", "top", "w")]),
           "digits": load_digits().data}
    out = {}
    for name, x in raw.items():
        x = np.asarray(x, dtype=np.float64)
        order = np.random.default_rng(0).permutation(len(x))
        n_test = len(x) // 5
        train, test = x[order[n_test:]], x[order[:n_test]]
        mean, std = train.mean(0), train.std(0)
        std[std == 0] = 1.0
        out[name] = (((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32))
    return out


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


# -- pythae ----------------------------------------------------------------------------------------------
def pythae_model(features: int):
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.net = mlp([features, *HIDDEN, 2 * LATENT])

        def forward(self, x):
            mu, log_var = self.net(x).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.net = mlp([LATENT, *reversed(HIDDEN), features])

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    config = VAEConfig(input_dim=(features,), latent_dim=LATENT, reconstruction_loss="mse")
    return VAE(config, encoder=Encoder(), decoder=Decoder())


def fit_pythae(train: np.ndarray, epochs: int, seed: int, out_dir: str):
    from pythae.data.preprocessors import DataProcessor
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    torch.manual_seed(seed)
    model = pythae_model(train.shape[1])
    config = BaseTrainerConfig(output_dir=out_dir, num_epochs=epochs, learning_rate=LR,
                               per_device_train_batch_size=BATCH, optimizer_cls="Adam", no_cuda=True, seed=seed)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        start = time.perf_counter()
        dataset = DataProcessor.to_dataset(torch.as_tensor(train))  # what pythae's TrainingPipeline builds
        trainer = BaseTrainer(model=model, train_dataset=dataset, training_config=config)
        trainer.train()
        elapsed = time.perf_counter() - start
    model = trainer._best_model if getattr(trainer, "_best_model", None) is not None else model
    model.eval()

    def posterior(u):
        out = model.encoder(u)
        return out.embedding, 0.5 * out.log_covariance  # log σ = ½ log σ²

    return elapsed, posterior, lambda z: model.decoder(z)["reconstruction"]


# -- hepgen ----------------------------------------------------------------------------------------------
def fit_hepgen(train: np.ndarray, epochs: int, seed: int):
    import hepgen

    model = hepgen.VAE(train.shape[1], LATENT, hidden=HIDDEN, decoder="gaussian-fixed", decoder_sigma=1.0,
                       preprocess="none")
    start = time.perf_counter()
    # monitor="train_loss": keep the epoch with the lowest training loss, pythae's rule without eval data
    model.fit(train, epochs=epochs, batch_size=BATCH, lr=LR, seed=seed, device="cpu", val_fraction=0.0,
              monitor="train_loss", quiet=True)
    elapsed = time.perf_counter() - start
    model.eval()
    return elapsed, (lambda u: model.encoder_net(u).chunk(2, dim=-1)), (lambda z: model.decoder_net(z)[:, 0])


def fit_torch_loop(train: np.ndarray, epochs: int, seed: int):
    """The plain loop: shuffle, forward, ½‖u − g(z)‖² + KL, backward, Adam; keep the best-training-loss epoch."""
    import copy

    torch.manual_seed(seed)
    x = torch.as_tensor(train)
    enc, dec = mlp([x.shape[1], *HIDDEN, 2 * LATENT]), mlp([LATENT, *reversed(HIDDEN), x.shape[1]])
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=LR)
    best, kept = math.inf, (enc, dec)
    start = time.perf_counter()
    for _ in range(epochs):
        total = torch.zeros(())
        for index in torch.randperm(len(x)).split(BATCH):
            u = x[index]
            mu, log_sigma = enc(u).chunk(2, dim=-1)
            rec = dec(mu + torch.exp(log_sigma) * torch.randn_like(mu))
            loss = (0.5 * (u - rec).square().sum(-1)
                    + 0.5 * (mu.square() + torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(-1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(u)
        if float(total) < best:
            best, kept = float(total), (copy.deepcopy(enc), copy.deepcopy(dec))
    elapsed = time.perf_counter() - start
    enc, dec = kept
    return elapsed, (lambda u: enc(u).chunk(2, dim=-1)), dec


@contextlib.contextmanager
def fused_adam():
    """Diagnostic: torch.optim.Adam(fused=True) inside the block (what a one-line engine change would do)."""
    original = torch.optim.Adam
    torch.optim.Adam = functools.partial(original, fused=True)
    try:
        yield
    finally:
        torch.optim.Adam = original


def timed(fn):
    """(wall s, CPU s, fn's other outputs)."""
    cpu = time.process_time()
    wall, *rest = fn()
    return wall, time.process_time() - cpu, rest


# -- the shared estimator ----------------------------------------------------------------------------------
@torch.no_grad()
def test_elbo(posterior, decode, test: np.ndarray, k: int = 64, seed: int = 123) -> float:
    """mean over events of E_q[log N(u; g(z), I)] − KL(q(z|u) ‖ N(0, I)) with k seeded samples (nats)."""
    u = torch.as_tensor(test)
    mu, log_sigma = posterior(u)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((k, *mu.shape), generator=g)
    z = (mu + torch.exp(log_sigma) * eps).reshape(-1, mu.shape[1])
    rec = decode(z).reshape(k, *u.shape)
    log_px = (-0.5 * (u - rec).square() - 0.5 * math.log(2 * math.pi)).sum(-1).mean(0)
    kl = 0.5 * (mu.square() + torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(-1)
    return float((log_px - kl).mean())


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs, 2 repeats")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    epochs, repeats = (5, 2) if args.quick else (args.epochs, args.repeats)
    torch.set_num_threads(1)
    import pythae.trainers  # noqa: F401  (its loggers exist once imported)
    import pythae.trainers.training_callbacks  # noqa: F401

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.ERROR)

    contestants = {
        "hepgen": lambda train, seed, tmp: fit_hepgen(train, epochs, seed),
        "pythae": lambda train, seed, tmp: fit_pythae(train, epochs, seed, tmp),
    }

    def hepgen_fused(train, seed, tmp):
        with fused_adam():
            return fit_hepgen(train, epochs, seed)

    contestants["hepgen_fused_adam"] = hepgen_fused
    contestants["torch_loop"] = lambda train, seed, tmp: fit_torch_loop(train, epochs, seed)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (train, test) in datasets().items():
            fit_hepgen(train[:512], 1, 0)  # warm-up, untimed
            fit_pythae(train[:512], 1, 0, tmp)
            runs = []
            for r in range(repeats):
                order = ["hepgen", "pythae"] if r % 2 == 0 else ["pythae", "hepgen"]
                row: dict[str, float] = {}
                for who in order + ["hepgen_fused_adam", "torch_loop"]:
                    wall, cpu, (post, dec) = timed(functools.partial(contestants[who], train, r, tmp))
                    row[f"{who}_s"], row[f"{who}_cpu_s"] = wall, cpu
                    row[f"{who}_test_elbo"] = test_elbo(post, dec, test)
                row["ratio"] = row["pythae_s"] / row["hepgen_s"]
                row["ratio_cpu"] = row["pythae_cpu_s"] / row["hepgen_cpu_s"]
                row["ratio_fused_adam"] = row["pythae_s"] / row["hepgen_fused_adam_s"]
                row["ratio_torch_loop"] = row["pythae_s"] / row["torch_loop_s"]
                runs.append(row)
                print(f"{name} repeat {r}: hepgen {row['hepgen_s']:.2f}s ELBO {row['hepgen_test_elbo']:.3f} | "
                      f"pythae {row['pythae_s']:.2f}s ELBO {row['pythae_test_elbo']:.3f} | ratio {row['ratio']:.2f} "
                      f"(CPU {row['ratio_cpu']:.2f}; with fused Adam {row['ratio_fused_adam']:.2f}; "
                      f"plain loop {row['ratio_torch_loop']:.2f}, ELBO {row['torch_loop_test_elbo']:.3f})", flush=True)
            events = len(train) * epochs
            med = statistics.median
            diffs = [r["hepgen_test_elbo"] - r["pythae_test_elbo"] for r in runs]  # > 0: hepgen better
            loop_diffs = [r["hepgen_test_elbo"] - r["torch_loop_test_elbo"] for r in runs]
            results[name] = {
                "n_train": len(train), "n_test": len(test), "features": train.shape[1], "epochs": epochs,
                "throughput_ratio_median": med(r["ratio"] for r in runs),
                "throughput_ratio_best_of": min(r["pythae_s"] for r in runs) / min(r["hepgen_s"] for r in runs),
                "throughput_ratio_cpu_median": med(r["ratio_cpu"] for r in runs),
                "throughput_ratio_with_fused_adam_median": med(r["ratio_fused_adam"] for r in runs),
                "throughput_ratio_torch_loop_median": med(r["ratio_torch_loop"] for r in runs),
                "hepgen_events_per_s_median": med(events / r["hepgen_s"] for r in runs),
                "pythae_events_per_s_median": med(events / r["pythae_s"] for r in runs),
                "hepgen_test_elbo_mean": statistics.mean(r["hepgen_test_elbo"] for r in runs),
                "pythae_test_elbo_mean": statistics.mean(r["pythae_test_elbo"] for r in runs),
                "hepgen_fused_adam_test_elbo_mean": statistics.mean(r["hepgen_fused_adam_test_elbo"] for r in runs),
                "torch_loop_test_elbo_mean": statistics.mean(r["torch_loop_test_elbo"] for r in runs),
                "hepgen_minus_torch_loop_elbo_mean": statistics.mean(loop_diffs),
                "hepgen_minus_torch_loop_elbo_stderr": statistics.stdev(loop_diffs) / math.sqrt(len(loop_diffs))
                if len(loop_diffs) > 1 else None,
                "test_elbo_difference_mean": statistics.mean(diffs),
                "test_elbo_difference_stderr": statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1
                else None,
                "runs": runs,
            }
    summary = {
        "benchmark": "vae_vs_pythae",
        "setup": {"hidden": list(HIDDEN), "latent": LATENT, "batch_size": BATCH, "lr": LR, "optimizer": "Adam",
                  "decoder": "Gaussian, unit variance", "threads": 1, "repeats": repeats, "interleaved": True,
                  "elbo_estimator": "shared, K=64 posterior samples, standardised space, nats/event"},
        "versions": {"torch": torch.__version__, "pythae": _version("pythae"),
                     "python": platform.python_version()},
        "quick": bool(args.quick),
        "results": results,
        "goal": "throughput ratio (pythae time / hepgen time) >= 1.3 and test ELBO not worse",
        "note": "wall times on a shared machine are noisy: the CPU-time ratio and the best-of ratio are the "
                "steadier figures; hepgen_fused_adam patches torch.optim.Adam(fused=True) in-process only",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
