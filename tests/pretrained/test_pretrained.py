"""Models shipped with hepgen: pretrained:NAME through hepgen.load, sample and info; the manifest's sha256 and
training record; the total size; unknown names and damaged files refused with exit 2."""

import shutil

import h5py
import numpy as np
import pytest
import torch

import hepgen
from hepgen import pretrained
from hepgen.errors import CheckpointError, ConfigError
from hepgen.files import file_sha256
from tests.helpers import run_cli, run_cli_for_error


def test_the_shipped_models_stay_small():
    assert pretrained.MAX_BYTES == 25_000_000
    assert pretrained.total_bytes() <= pretrained.MAX_BYTES


def test_every_entry_is_a_run_with_the_manifests_sha256_and_training_record():
    models = pretrained.manifest()
    assert "phi4-L6" in models
    for name, entry in models.items():
        assert set(entry["files"]) == {"model.pt", "config.yaml"}
        for file, sha in entry["files"].items():
            assert file_sha256(pretrained.ROOT / name / file) == sha
        assert entry["model"] and entry["description"]
        assert {"command", "cpu_seconds", "steps"} <= set(entry["training"])
        assert (pretrained.ROOT / name).is_dir() and pretrained.run_path(f"pretrained:{name}") == pretrained.ROOT / name


@pytest.mark.parametrize("name", [n for n in sorted(pretrained.manifest()) if n.startswith("phi4-")])
def test_load_a_shipped_flow_and_reproduce_its_recorded_acceptance(name):
    model = hepgen.load(f"pretrained:{name}")
    entry = pretrained.describe(f"pretrained:{name}")
    assert model.cli_name == entry["model"] == "phi4-flow" and f"phi4-L{model.L}" == name
    chain = model.sample_mcmc(max(5_000, 20_000 * 36 // model.L**2), seed=1)  # ~20k proposals' time of L = 6
    recorded = entry["quality"]["acceptance"]
    assert float(chain["acceptance"]) == pytest.approx(recorded, abs=0.03)


@pytest.mark.parametrize("name", [n for n in sorted(pretrained.manifest()) if n.startswith("calo-")])
def test_a_shipped_shower_model_matches_fresh_simulator_showers(name):
    """Re-measured on showers the model never saw (a seed the benchmark does not use): its response agrees
    with the simulator's within 1.5 % plus three standard errors in each of four energy bins (π+: 3 %, its
    benchmark found +3 % at 20-30 GeV), and hepgen's classifier on the
    CaloChallenge high-level features stays far from the 0.86-0.87 that calo-gan gets (0.55 at 10k a class)."""
    from hepgen.calo.compare import shower_classifier_auc
    from hepgen.calo.shower_layout import Showers
    from hepgen.data.generators import calo
    from hepgen.metrics.shower_observables import shower_features

    model = hepgen.load(f"pretrained:{name}")
    entry = pretrained.describe(f"pretrained:{name}")
    particle = name.split("-", 2)[2]
    assert entry["model"] == model.cli_name and entry["quality"]["protocol"] == "calochallenge"
    assert entry["quality"]["auc_high"] <= 0.6 and entry["quality"]["auc_low"] <= 0.7
    n = 4000
    sim = calo.generate(n, seed=987_654, particle=particle)
    energy = sim["energy"].astype(np.float64)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        fake = {k: v.double().numpy() for k, v in model.sample(n, context=energy[:, None]).items()}
    names = sorted(model.shapes)
    layers = {"sim": [sim[k] for k in names], "flow": [fake[k] for k in names]}
    response = {k: shower_features(v, energy)["response"] for k, v in layers.items()}
    for low, high in [(1, 5), (5, 20), (20, 50), (50, 100)]:
        sel = (energy >= low) & (energy < high)
        f, r = response["flow"][sel], response["sim"][sel]
        ratio = f.mean() / r.mean()
        error = ratio * np.sqrt(f.var() / f.mean() ** 2 / len(f) + r.var() / r.mean() ** 2 / len(r))
        # π+: σ/E ~ 0.4-0.8, so 4000 showers measure its response to only ±2-6 % per bin (3 σ allowed besides)
        assert abs(ratio - 1) < (0.03 if particle == "pi+" else 0.015) + 3 * error, (low, high, ratio, error)
    ref, cand = (Showers(dict(zip(names, v)), energy) for v in layers.values())
    auc = shower_classifier_auc(ref, cand, "challenge", seed=0)["auc"]
    assert auc < (0.70 if particle == "pi+" else 0.62), auc


def test_names_are_listed_with_their_numbers_in_order():
    names = pretrained.names()
    flows = [n for n in names if n.startswith("phi4-L")]
    assert flows == sorted(flows, key=lambda n: int(n[len("phi4-L"):])) and {"phi4-L6", "phi4-L12"} <= set(flows)
    assert pretrained._natural("a10b2") == ["a", 10, "b", 2, ""]


def test_unknown_names_list_the_available_ones(capsys, tmp_path):
    with pytest.raises(ConfigError, match="no shipped model pretrained:nope; available: pretrained:") as error:
        hepgen.load("pretrained:nope")
    assert "pretrained:phi4-L6" in str(error.value) and "pretrained:calo-flow-gamma" in str(error.value)
    code, err = run_cli_for_error(capsys, ["sample", "pretrained:nope", "-n", "10", "--mcmc", "-o", tmp_path / "c.h5"])
    assert code == 2 and "pretrained:phi4-L6" in err and "Traceback" not in err
    assert not (tmp_path / "c.h5").exists()


def test_the_cli_samples_and_describes_a_shipped_flow(capsys, tmp_path):
    out = tmp_path / "chain.h5"
    code, _, err = run_cli(capsys, "sample", "pretrained:phi4-L6", "-n", "3000", "--mcmc", "-o", out)
    assert code == 0 and "acceptance" in err
    with h5py.File(out) as f:
        assert f["configs"].shape == (3000, 6, 6) and 0 < float(f["acceptance"][()]) <= 1
        assert np.isfinite(float(f["tau_int"][()]))
    code, text, _ = run_cli(capsys, "info", "pretrained:phi4-L6")
    assert code == 0 and "shipped with hepgen" in text and "phi4-flow" in text and "command" in text
    # the acceptance the shipped flow measured, and the command that measures it again
    quality = pretrained.describe("pretrained:phi4-L6")["quality"]
    assert f"acceptance={quality['acceptance']:.4g}" in text and quality["command"] in text


def test_a_damaged_file_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    shutil.copytree(pretrained.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(pretrained, "ROOT", root)
    monkeypatch.setattr(pretrained, "MANIFEST", root / "manifest.json")
    with open(root / "phi4-L6" / "model.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(CheckpointError, match="does not have the manifest's sha256"):
        hepgen.load("pretrained:phi4-L6")
