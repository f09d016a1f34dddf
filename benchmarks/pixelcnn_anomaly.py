"""PixelCNN −log P as a jet anomaly score against the ConvAE's reconstruction error, on the same QCD jet images.

Both are trained on the same QCD jet images and score held-out QCD jets (background) and top and W jets (signal);
figures: AUC and max SIC per signal (hepgen.metrics), training seconds of each (the issue's "equal training time"
comparison is read off them), PixelCNN's held-out QCD log P per image, and seconds per sampled image.

    .venv/bin/python benchmarks/pixelcnn_anomaly.py [--quick] [--epochs N] [--out FILE]

``--quick``: the shipped 2500 jets per process, images sum-pooled to 20×20, 1000 training jets, small networks
and one epoch (under a minute on one core; a check that the script works, not a headline figure). Full mode:
the 40×40 images of ``hepgen data jets`` (cached in benchmarks/data/), 70 % of the QCD jets for training, the
default networks, ``--epochs`` (default 20) each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _jets_data import jets  # noqa: E402

RESULTS = Path(__file__).with_name("results")


def pooled(images: np.ndarray, k: int) -> np.ndarray:
    """Sum-pool (n, H, W) images by k×k (pT adds up); k = 1 leaves them as they are."""
    if k == 1:
        return images.astype(np.float32)
    n, h, w = images.shape
    return images[:, :h - h % k, :w - w % k].reshape(n, h // k, k, w // k, k).sum((2, 4)).astype(np.float32)


def figures(signal: np.ndarray, background: np.ndarray) -> dict:
    from hepgen.metrics.roc import roc_summary

    summary = roc_summary(signal, background)
    return {k: v for k, v in summary.items() if k.split("_err")[0] in ("auc", "max_sic")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shipped jets, 20×20, small networks, one epoch")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "pixelcnn_anomaly.json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import hepgen

    quick = args.quick
    epochs = args.epochs or (1 if quick else 20)
    data = jets(quick, {"qcd": 70000, "top": 20000, "w": 20000})
    pool = 2 if quick else 1
    images = {p: pooled(d["images"], pool) for p, d in data.items()}
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images["qcd"]))
    n_train = 1000 if quick else int(0.7 * len(order))
    train, test = images["qcd"][order[:n_train]], images["qcd"][order[n_train:]]
    shape = train.shape[1:]
    models = {
        "pixel-cnn": hepgen.PixelCNN(shape, **({"levels": 8, "channels": 16, "layers": 3} if quick else {})),
        "conv-ae": hepgen.ConvAutoencoder(shape, **({"channels": (8, 16)} if quick else {})),
    }
    out: dict = {"quick": quick, "image_shape": list(shape), "train_jets": len(train), "test_qcd_jets": len(test),
                 "epochs": epochs, "models": {}}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(train, epochs=epochs, batch_size=128, lr=2e-3, seed=0, quiet=True)
        seconds = time.perf_counter() - t0
        background = model.score(test).numpy()
        entry = {"train_seconds": seconds, "config": model.get_config()}
        for signal in ("top", "w"):
            entry[signal] = figures(model.score(images[signal]).numpy(), background)
        if name == "pixel-cnn":
            entry["qcd_test_log_prob_mean"] = float(-background.mean())
            t0 = time.perf_counter()
            model.sample(4)
            entry["sample_seconds_per_image"] = (time.perf_counter() - t0) / 4
        out["models"][name] = entry
        print(f"{name}: trained in {seconds:.1f} s; AUC top {entry['top'].get('auc'):.3f}, "
              f"W {entry['w'].get('auc'):.3f}", flush=True)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
