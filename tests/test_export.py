"""ONNX export: each exportable model kind, run in onnxruntime, against the torch model on the same inputs.

Samplers get the same noise the torch model draws under the same seed; densities are compared with
``model.log_prob`` (and the Gaussian with scipy); scorers with ``model.score_outputs``. Inputs are
given in the original units, so the preprocessing folded into the graph is checked as well.
"""

import numpy as np
import onnx  # the onnx extra, which make test installs
import onnxruntime as ort
import pytest
import torch
from scipy import stats

import hepgen
from hepgen.cli import main
from hepgen.errors import ConfigError
from hepgen.export import default_what, export, read_metadata
from hepgen.flows.transforms import LULinear


#: mixed preprocessing: a positive (log), a bounded (logit) and a plain (standard) feature
MIXED = {"0": "log", "1": "logit", "*": "standard"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 600
    c = rng.normal(0.0, 1.0, (n, 2))
    x = np.column_stack([rng.exponential(2.0, n) * np.exp(0.3 * c[:, 0]), rng.uniform(-1.0, 3.0, n),
                         rng.normal(5.0, 2.0, n) + c[:, 1]])
    return x.astype(np.float32), c.astype(np.float32)


def fitted(model, x, context=None):
    torch.manual_seed(0)
    return model.fit(x, context=context, epochs=1, batch_size=128, lr=1e-3, seed=0, quiet=True)


def run(path, **feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feed = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in feeds.items()}
    return dict(zip(names, session.run(names, feed)))


def close(actual, expected, rtol=1e-4):
    """|a − e| <= rtol · max(1, |e|) elementwise: relative for large values, absolute near zero."""
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(1.0, float(np.abs(expected).max())))


def flow(name, context=0):
    small = {"transforms": 2, "hidden": (16, 16), "context": context}
    return {
        "nsf-coupling": lambda: hepgen.NSF(3, bins=4, coupling=True, preprocess=MIXED, **small),
        "nsf": lambda: hepgen.NSF(3, bins=4, **small),
        "realnvp": lambda: hepgen.RealNVP(3, preprocess=MIXED, **small),
        "maf": lambda: hepgen.MAF(3, preprocess=MIXED, **small),
        "iaf": lambda: hepgen.IAF(3, **small),
    }[name]()


_FITTED = {}


def fitted_flow(name, context, data):
    """One fitted flow per (name, context) for the whole module (fitting and tracing splines is the slow part)."""
    if (name, context) not in _FITTED:
        x, c = data
        _FITTED[name, context] = fitted(flow(name, context), x, c if context else None)
    return _FITTED[name, context]


# samplers: a coupling spline with log/logit preprocessing, affine coupling with a context, and the
# unrolled sequential inverses of MAF (mixed preprocessing) and of IAF's density direction
SAMPLERS = [("nsf-coupling", 0), ("realnvp", 2), ("maf", 0), ("iaf", 2)]
DENSITIES = [("nsf-coupling", 2), ("maf", 2), ("nsf", 0), ("iaf", 0)]


# -- flows and the Gaussian --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,context", SAMPLERS)
def test_flow_sampler_matches_torch_on_the_same_noise(tmp_path, data, name, context):
    _, c = data
    model = fitted_flow(name, context, data)
    result = export(model, tmp_path / "s.onnx", what="sample")
    assert result.what == "sample" and [p.name for p in result.inputs] == ["z", "context"][:1 + bool(context)]
    n = 257  # not the traced batch size: the batch axis is dynamic
    ctx = c[:n] if context else None
    torch.manual_seed(7)
    expected = model.sample(n, context=ctx).numpy()
    torch.manual_seed(7)
    z = torch.randn(n, 3).numpy()
    out = run(tmp_path / "s.onnx", z=z, **({"context": ctx} if context else {}))
    close(out["x"], expected)
    # the exported log p(x) of each sample is the torch density of the sample, computed the other way round
    close(out["log_prob"], model.log_prob(out["x"], ctx).numpy(), rtol=1e-3)


@pytest.mark.parametrize("name,context", DENSITIES)
def test_flow_log_prob_matches_torch(tmp_path, data, name, context):
    x, c = data
    model = fitted_flow(name, context, data)
    ctx = {"context": c[:300]} if context else {}
    export(model, tmp_path / "lp.onnx", what="log_prob")
    out = run(tmp_path / "lp.onnx", x=x[:300], **ctx)
    assert list(out) == ["log_prob"]
    close(out["log_prob"], model.log_prob(x[:300], c[:300] if context else None).numpy())


def test_flow_score_is_what_hepgen_score_writes(tmp_path, data):
    x, c = data
    model = fitted_flow("nsf-coupling", 2, data)
    export(model, tmp_path / "score.onnx", what="score")
    out = run(tmp_path / "score.onnx", x=x[:300], context=c[:300])
    expected = model.score_outputs(x[:300], c[:300])
    close(out["log_prob"], expected["log_prob"].numpy())
    close(out["score"], expected["score"].numpy())


def test_gaussian_exports_match_scipy_and_its_sampler(tmp_path, data):
    x, _ = data
    model = fitted(hepgen.Gaussian(3, preprocess="standard"), x)
    export(model, tmp_path / "lp.onnx", what="log_prob")
    out = run(tmp_path / "lp.onnx", x=x)
    reference = stats.multivariate_normal(model.mean_.numpy(), model.covariance_.numpy()).logpdf(x.astype(np.float64))
    close(out["log_prob"], reference)
    export(model, tmp_path / "s.onnx")  # default: sample
    torch.manual_seed(3)
    expected = model.sample(200).numpy()
    torch.manual_seed(3)
    out = run(tmp_path / "s.onnx", z=torch.randn(200, 3).numpy())
    close(out["x"], expected)
    close(out["log_prob"], model.log_prob(out["x"]).numpy())


def test_gaussian_with_log_and_logit_preprocessing_includes_the_jacobian(tmp_path, data):
    x, _ = data
    model = fitted(hepgen.Gaussian(3, preprocess=MIXED), x)
    export(model, tmp_path / "score.onnx", what="score")
    out = run(tmp_path / "score.onnx", x=x)
    expected = model.score_outputs(x)
    close(out["log_prob"], expected["log_prob"].numpy())
    close(out["score"], expected["score"].numpy())


# -- GANs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("context,ema", [(0, 0.0), (2, 0.5)])
def test_gan_generator_and_critic_match_torch(tmp_path, data, context, ema):
    x, c = data
    cls = hepgen.CGAN if context else hepgen.GAN
    model = fitted(cls(3, latent=4, hidden=(16, 16), context=context, ema=ema, preprocess=MIXED), x,
                   c if context else None)
    assert default_what(model) == "sample"
    export(model, tmp_path / "g.onnx")
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(1))
    ctx = c[:300] if context else None
    expected = model.rsample(300, context=ctx, z=z).detach().numpy()
    out = run(tmp_path / "g.onnx", z=z.numpy(), **({"context": ctx} if context else {}))
    close(out["x"], expected)
    export(model, tmp_path / "d.onnx", what="score")
    out = run(tmp_path / "d.onnx", x=x[:300], **({"context": ctx} if context else {}))
    close(out["score"], model.score(x[:300], ctx).numpy())


def test_ema_generator_is_the_one_exported(tmp_path, data):
    x, _ = data
    model = fitted(hepgen.GAN(3, latent=4, hidden=(16, 16), ema=0.9), x)
    export(model, tmp_path / "g.onnx")
    z = torch.randn(50, 4, generator=torch.Generator().manual_seed(2))
    out = run(tmp_path / "g.onnx", z=z.numpy())["x"]
    with torch.no_grad():
        raw = model.to_external(model.generator(z)).numpy()
    assert np.abs(out - raw).max() > 1e-3  # the EMA weights differ from the last step's
    close(out, model.rsample(50, z=z).detach().numpy())


def test_conv_gan_generator(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.gamma(2.0, 1.0, (64, 1, 8, 8)).astype(np.float32)
    model = fitted(hepgen.ConvGAN((1, 8, 8), latent=6, channels=(4, 8)), images)
    export(model, tmp_path / "g.onnx")
    torch.manual_seed(4)
    expected = model.sample(40).numpy()
    torch.manual_seed(4)
    out = run(tmp_path / "g.onnx", z=torch.randn(40, 6).numpy())
    assert out["x"].shape == (40, 1, 8, 8)
    close(out["x"], expected)


@pytest.mark.parametrize("make", [
    lambda: hepgen.ConvGAN((1, 8, 8), latent=6, channels=(4, 8), spectral_norm=True),
    lambda: hepgen.BigGAN((8, 8), context=2, class_column="context_0", latent=6, channels=(4, 8), width=8),
], ids=["conv-gan", "big-gan"])
def test_spectrally_normalised_critic_scores_export(tmp_path, make):
    """A critic with spectral norm (big-gan's default) exports its score: the weight / σ of eval mode is folded into
    a plain weight (σ's power iteration uses vdot, which ONNX lacks), the same numbers as the torch model's."""
    rng = np.random.default_rng(2)
    images = rng.gamma(2.0, 1.0, (64, 8, 8)).astype(np.float32)
    model = make()
    context = np.column_stack([np.arange(64) % 3, rng.uniform(10, 100, 64)]).astype(np.float32)
    if model.context:
        model = fitted(model, images, context)
    else:
        images = images[:, None]
        model = fitted(model, images)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export(model, tmp_path / "d.onnx", what="score")
    feeds = {"x": images[:40], **({"context": context[:40]} if model.context else {})}
    out = run(tmp_path / "d.onnx", **feeds)
    close(out["score"], model.score(images[:40], context[:40] if model.context else None).numpy())
    after = model.state_dict()  # the model itself keeps its parametrisation and power-iteration state
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


# -- autoencoders ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("context", [0, 2])
def test_autoencoder_score_and_sampler_match_torch(tmp_path, data, context):
    x, c = data
    model = fitted(hepgen.Autoencoder(3, latent=2, hidden=(16,), context=context, preprocess=MIXED), x,
                   c if context else None)
    assert default_what(model) == "score"
    ctx = c[:250] if context else None
    feed = {"context": ctx} if context else {}
    export(model, tmp_path / "ae.onnx")
    out = run(tmp_path / "ae.onnx", x=x[:250], **feed)
    expected = model.score_outputs(x[:250], ctx)
    close(out["score"], expected["score"].numpy())
    close(out["score_per_feature"], expected["score_per_feature"].numpy())
    export(model, tmp_path / "gen.onnx", what="sample")
    torch.manual_seed(9)
    samples = model.sample(250, context=ctx).numpy()
    torch.manual_seed(9)
    close(run(tmp_path / "gen.onnx", z=torch.randn(250, 2).numpy(), **feed)["x"], samples)


def test_conv_autoencoder_score(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.gamma(2.0, 1.0, (80, 8, 8)).astype(np.float32)
    model = fitted(hepgen.ConvAutoencoder((8, 8), latent=4, channels=(4, 8)), images)
    export(model, tmp_path / "cae.onnx")
    out = run(tmp_path / "cae.onnx", x=images[:30])
    expected = model.score_outputs(images[:30])
    assert out["score_per_feature"].shape == (30, 8, 8)
    close(out["score"], expected["score"].numpy())
    close(out["score_per_feature"], expected["score_per_feature"].numpy())


def test_vae_decoder_sampler(tmp_path, data):
    x, _ = data
    model = fitted(hepgen.VAE(3, latent=2, hidden=(16,)), x)
    export(model, tmp_path / "vae.onnx")
    torch.manual_seed(5)
    expected = model.sample(120).numpy()
    torch.manual_seed(5)
    close(run(tmp_path / "vae.onnx", z=torch.randn(120, 2).numpy())["x"], expected)


def test_cyclegan_score_exports_the_translation(tmp_path, data):
    x, _ = data
    b = (x[:, :2] * [2.0, 0.5] + [5.0, -1.0]).astype(np.float32)
    model = hepgen.CycleGAN(3, features_b=2, hidden=(16, 16), identity_weight=0.0)
    model.fit(x, streams={"b": b}, epochs=1, batch_size=128, seed=0, quiet=True)
    assert default_what(model) == "score"
    export(model, tmp_path / "cyc.onnx")
    out = run(tmp_path / "cyc.onnx", x=x[:200])
    expected = model.score_outputs(x[:200])
    for key in ("score", "translated", "cycle_error"):
        close(out[key], expected[key].detach().numpy())


# -- refusals, options, metadata ---------------------------------------------------------------------------
def _refusals(data):
    x, _ = data
    custom = hepgen.Flow("normal", [LULinear(3)], features=3)
    custom.preprocessor.fit(x)
    return [
        (fitted(hepgen.GAN(3, latent=2, hidden=(8,)), x), "log_prob", "no density"),
        (fitted(hepgen.Autoencoder(3, latent=2, hidden=(8,)), x), "log_prob", "no density"),
        (fitted(hepgen.VAE(3, latent=2, hidden=(8,)), x), "score", "Monte-Carlo"),
        (hepgen.CycleGAN(3, hidden=(8,)), "sample", "translates events"),
        (custom, "log_prob", "diag_embed"),
    ]


def test_models_that_cannot_be_exported_are_refused_and_nothing_is_written(tmp_path, data):
    for model, what, reason in _refusals(data):
        target = tmp_path / f"{model.cli_name}-{what}.onnx"
        with pytest.raises(ConfigError, match=reason) as info:
            export(model, target, what=what)
        assert model.cli_name in str(info.value) and what in str(info.value)
        assert list(tmp_path.iterdir()) == []  # no file and no temporary


def test_a_missing_onnx_operation_prints_nothing_but_the_error(tmp_path, data, capfd):
    """The exporter's C++ side prints the whole IR graph on stdout (file descriptor 1) when an operation is missing;
    the user sees the one-paragraph error only."""
    x, _ = data
    custom = hepgen.Flow("normal", [LULinear(3)], features=3)
    custom.preprocessor.fit(x)
    capfd.readouterr()
    with pytest.raises(ConfigError, match="diag_embed"):
        export(custom, tmp_path / "c.onnx", what="log_prob")
    out, err = capfd.readouterr()
    assert "graph" not in out and "graph" not in err and len(out) + len(err) < 200, (out[:300], err[:300])


def test_unknown_classes_and_multi_array_events_are_refused(tmp_path, data):
    with pytest.raises(ConfigError, match="Linear.*hepgen families"):
        export(torch.nn.Linear(2, 2), tmp_path / "l.onnx")
    model = fitted(hepgen.Gaussian(3), data[0])
    model.event_shape = {"layer0": (3,), "energy": (1,)}  # as a model of several arrays per event has it
    with pytest.raises(ConfigError, match="several arrays .layer0, energy"):
        export(model, tmp_path / "g.onnx", what="log_prob")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [5, 21, 17.5, "17"])
def test_opset_out_of_range_is_refused(tmp_path, data, bad):
    model = fitted(hepgen.Gaussian(3), data[0])
    with pytest.raises(ConfigError, match="opset"):
        export(model, tmp_path / "g.onnx", opset=bad)
    assert not (tmp_path / "g.onnx").exists()


def test_opset_and_description_are_stored_in_the_file(tmp_path, data):
    x, _ = data
    model = fitted(hepgen.RealNVP(3, transforms=2, hidden=(8,)), x)
    model.columns_ = ["e", "eta", "m"]
    result = model.export(tmp_path / "f.onnx", what="log_prob", opset=13)
    assert result.opset == 13 and result.check_error is not None and result.check_error < 1e-4
    proto = onnx.load(str(tmp_path / "f.onnx"))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 13
    meta = read_metadata(tmp_path / "f.onnx")
    assert meta["opset"] == "13" and meta["model"] == "realnvp" and meta["what"] == "log_prob"
    assert meta["columns"] == '["e", "eta", "m"]' and meta["hepgen_version"] == hepgen.__version__
    assert "opset 13" in result.describe() and "[e, eta, m]" in result.describe()


def test_output_onto_a_directory_is_refused(tmp_path, data):
    model = fitted(hepgen.Gaussian(3), data[0])
    with pytest.raises(ConfigError, match="directory"):
        export(model, tmp_path)


# -- the command line ----------------------------------------------------------------------------------------
def test_cli_export_writes_a_graph_that_matches_the_run(tmp_path, data, capsys):
    x, _ = data
    fitted(hepgen.NSF(3, transforms=2, hidden=(16, 16), bins=4, coupling=True), x).save(tmp_path / "run")
    code = main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "nsf.onnx"), "--what", "log_prob"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "opset 17" in err and "log_prob" in err
    model = hepgen.load(tmp_path / "run")
    close(run(tmp_path / "nsf.onnx", x=x)["log_prob"], model.log_prob(x).numpy())


def test_cli_export_refusal_exits_2_without_traceback_or_file(tmp_path, data, capsys):
    x, _ = data
    fitted(hepgen.Autoencoder(3, latent=2, hidden=(8,)), x).save(tmp_path / "run")
    code = main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "ae.onnx"), "--what", "log_prob"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot export ae" in err and "Traceback" not in err
    assert not (tmp_path / "ae.onnx").exists()
    code = main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "ae.onnx"), "--opset", "99"])
    assert code == 2 and "opset" in capsys.readouterr().err and not (tmp_path / "ae.onnx").exists()
    code = main(["export", str(tmp_path / "missing"), "-o", str(tmp_path / "ae.onnx")])
    assert code == 2 and not (tmp_path / "ae.onnx").exists()
