"""big-gan: the projection discriminator, class-conditional batch norm and the orthogonal regulariser against hand
computations; the truncation trick (within ±ψ, the truncated normal's distribution, ψ = 0 is the zero-z image);
classes found in the data, recorded and refused when unknown (file, column, row); save/load, resume and ONNX."""

import h5py
import numpy as np
import onnxruntime as ort
import pytest
import torch
from scipy import stats
from torch.nn import functional as F

import hepgen
from hepgen.errors import ConfigError, DataError
from hepgen.gans.adversarial import Adversarial
from hepgen.gans.biggan import BigGAN, ConditionalBatchNorm2d, orthogonal_penalty, truncated_normal
from tests.helpers import run_cli, run_cli_for_error

CLASSES = [11.0, 22.0, 211.0]


def _data(n=240, seed=0):
    """(images (n, 8, 8), context (n, 2) = [energy, particle type]): the class sets the pattern, energy the scale."""
    rng = np.random.default_rng(seed)
    ptype = rng.choice(CLASSES, size=n)
    energy = rng.uniform(1.0, 10.0, n)
    rows = np.arange(8)[:, None] + 0 * np.arange(8)[None]
    pattern = {11.0: np.exp(-((rows - 3.5) ** 2)), 22.0: np.exp(-((rows.T - 3.5) ** 2)), 211.0: np.ones((8, 8)) / 8}
    x = np.stack([pattern[p] for p in ptype]) * energy[:, None, None] + 0.05 * rng.normal(size=(n, 8, 8))
    return x.astype(np.float32), np.column_stack([energy, ptype]).astype(np.float32)


def _small(**kw):
    params = dict(context=2, class_column="context_1", latent=6, channels=(4, 8), width=8, embed=3)
    params.update(kw)
    return BigGAN((8, 8), **params)


@pytest.fixture(scope="module")
def fitted():
    x, c = _data()
    model = _small().fit(x, context=c, epochs=2, batch_size=64, lr=1e-3, seed=0, quiet=True)
    return model, x, c


# -- the networks against hand computations ----------------------------------------------------------------------
def test_projection_discriminator_is_psi_of_phi_plus_the_class_and_energy_projections(fitted):
    model, x, c = fitted
    critic = model.critic
    xs = torch.as_tensor(x[:7])
    ctx = torch.as_tensor(c[:7])
    with torch.no_grad():
        u = model.preprocessor(xs)
        cu = model.context_preprocessor(ctx)
        h = critic.phi(u)  # φ(x) (7, width)
        psi = h @ critic.head.weight[0] + critic.head.bias[0]
        y = [CLASSES.index(float(v)) for v in c[:7, 1]]
        class_term = (critic.embed.weight[:, y].T * h).sum(1)  # ⟨E_D[:, y], φ(x)⟩ (no bias term: one-hot in)
        class_term = class_term + (critic.embed.bias * h).sum(1)
        energy = cu[:, :1]  # the continuous column, standardised
        energy_term = ((energy @ critic.project.weight.T + critic.project.bias) * h).sum(1)
        expected = psi + class_term + energy_term
        got = model.critic_output(x[:7], c[:7])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert model.classes_ == CLASSES and model.class_column_ == "context_1"


def test_conditional_batch_norm_applies_the_gain_and_bias_of_each_rows_class():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, 4).train()
    torch.nn.init.normal_(cbn.gain.weight)
    torch.nn.init.normal_(cbn.bias.weight)
    torch.nn.init.normal_(cbn.gain.bias)
    torch.nn.init.normal_(cbn.bias.bias)
    h = torch.randn(10, 3, 5, 5) * 2 + 1
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 3])
    e = F.one_hot(y, 4).float()
    mean = h.mean(dim=(0, 2, 3), keepdim=True)
    var = h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    normed = (h - mean) / torch.sqrt(var + 1e-5)
    gain = 1.0 + cbn.gain.weight.T[y] + cbn.gain.bias  # class y's own gain: column y of W_γ
    bias = cbn.bias.weight.T[y] + cbn.bias.bias
    torch.testing.assert_close(cbn(h, e), normed * gain[:, :, None, None] + bias[:, :, None, None])


def test_changing_one_class_embedding_moves_only_that_classs_images(fitted):
    model, _, _ = fitted
    gen = model._sampler()
    z = torch.randn(6, model.latent)
    ctx = torch.tensor([[5.0, 11.0], [5.0, 22.0], [5.0, 211.0]] * 2)
    with torch.no_grad():
        before = model.rsample(6, ctx, z=z)
        saved = gen.embed.weight.clone()
        gen.embed.weight[:, 1] += 1.0  # class 22's row of the shared embedding
        after = model.rsample(6, ctx, z=z)
        gen.embed.weight.copy_(saved)
    moved = (after - before).abs().flatten(1).amax(1)
    assert torch.all(moved[[1, 4]] > 1e-3) and torch.all(moved[[0, 2, 3, 5]] == 0)


def test_orthogonal_penalty_is_the_sum_of_squared_off_diagonal_filter_products():
    torch.manual_seed(1)
    conv, lin, tall = torch.randn(4, 3, 3, 3), torch.randn(5, 7), torch.randn(9, 3)
    expected = 0.0
    for w in (conv.reshape(4, -1), lin, tall.T):  # the filters (rows); a tall matrix's columns
        for i in range(len(w)):
            for j in range(len(w)):
                if i != j:
                    expected += float(w[i] @ w[j]) ** 2
    assert float(orthogonal_penalty([conv, lin, tall])) == pytest.approx(expected, rel=1e-5)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    assert float(orthogonal_penalty([3.0 * q])) == pytest.approx(0.0, abs=1e-8)  # norms are free


def test_the_generator_loss_adds_the_weighted_penalty_on_every_weight_but_the_embedding():
    x, c = _data(32)
    for weight in (0.0, 0.5):
        model = _small(classes=CLASSES, ortho_weight=weight)
        model.check_context(c, None, "test")
        model.eval()  # spectral norm's power iteration would move the critic between the two calls
        batch = {"x": model.preprocessor(torch.as_tensor(x)), "context": torch.as_tensor(c)}
        torch.manual_seed(3)
        out = model.player_step("generator", batch)
        torch.manual_seed(3)
        plain = Adversarial.player_step(model, "generator", batch)
        weights = model.generator.regularised_weights()
        assert not any(w is model.generator.embed.weight for w in weights)
        assert len(weights) == 1 + 3 * len(model.channels) + 1 + 4 * len(model.channels)  # linear, convs, CBN maps
        penalty = orthogonal_penalty(weights)
        torch.testing.assert_close(out["loss"], plain["loss"] + weight * penalty)
        if weight:
            torch.testing.assert_close(out["orthogonal"], penalty.detach().expand(32))


def test_a_short_fit_learns_each_classs_own_pattern():
    """Class 11: a horizontal band, 22: a vertical one, 211: flat (the toy data of _data): after ten epochs on 1200
    images each class's generated mean image peaks along its own axis (~5 CPU s)."""
    x, c = _data(1200)
    model = _small(latent=8, channels=(8, 16), width=16, embed=4).fit(x, context=c, epochs=10, batch_size=64,
                                                                       lr=1e-3, seed=0, quiet=True)

    def peak(profile):  # the middle two rows (or columns) over the outer two
        return float(profile[3:5].mean() / np.abs(profile[[0, 7]]).mean().clip(1e-3))

    torch.manual_seed(0)
    images = {cls: model.sample(300, context=[5.0, cls]).mean(0).numpy() for cls in CLASSES}
    rows = {cls: peak(im.mean(1)) for cls, im in images.items()}
    cols = {cls: peak(im.mean(0)) for cls, im in images.items()}
    assert rows[11.0] > 2 * cols[11.0] and rows[11.0] > 3, (rows, cols)
    assert cols[22.0] > 2 * rows[22.0] and cols[22.0] > 3, (rows, cols)
    assert max(rows[211.0], cols[211.0]) < 2, (rows, cols)


# -- the truncation trick --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("psi", [0.3, 1.0, 2.0, 6.0])
def test_truncated_latent_lies_within_psi_and_follows_the_truncated_normal(psi):
    g = torch.Generator().manual_seed(0)
    z = truncated_normal((4000, 5), psi, generator=g)
    assert z.abs().max() <= psi
    ks = stats.kstest(z.flatten().double().numpy(), stats.truncnorm(-psi, psi).cdf)
    assert ks.pvalue > 1e-3
    assert torch.equal(truncated_normal((3, 4), 0.0), torch.zeros(3, 4))


def test_truncation_zero_gives_the_zero_latent_image_and_small_psi_shrinks_the_spread(fitted):
    model, _, _ = fitted
    ctx = np.array([[4.0, 22.0]], dtype=np.float32)
    mean_image = model.sample(5, ctx, truncation=0.0)
    torch.testing.assert_close(mean_image, mean_image[:1].expand_as(mean_image), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mean_image, model.rsample(5, ctx, z=torch.zeros(5, model.latent)).detach())
    torch.manual_seed(0)
    spread = {psi: model.sample(400, ctx, truncation=psi).std(0).mean() for psi in (0.2, None)}
    assert spread[0.2] < spread[None]
    with pytest.raises(ConfigError, match="truncation"):
        model.sample(3, ctx, truncation=-1.0)
    with pytest.raises(ConfigError, match="not both"):
        model.rsample(3, ctx, z=torch.zeros(3, model.latent), truncation=0.5)


# -- classes: found, recorded, refused -------------------------------------------------------------------------------
def test_unknown_classes_are_refused_naming_the_row(fitted):
    model, _, _ = fitted
    with pytest.raises(ConfigError, match=r"is 13 at row 2: not one of the classes .*11, 22, 211"):
        model.sample(4, context=np.array([[5.0, 11.0], [5.0, 22.0], [5.0, 13.0], [5.0, 11.0]]))
    with pytest.raises(ConfigError, match="at row 0"):
        model.score(np.zeros((1, 8, 8)), np.array([[5.0, 0.0]]))
    fixed = _small(classes=[11.0, 22.0])
    x, c = _data(60)
    with pytest.raises(DataError, match=r"array of shape \(60, 8, 8\): column 'context_1' is 211 at row \d+: "
                                        "not one of the classes"):
        fixed.fit(x, context=c, epochs=1, quiet=True)


def test_a_class_column_must_be_named_when_the_context_has_several():
    x, c = _data(60)
    with pytest.raises(ConfigError, match="--class-column"):
        BigGAN((8, 8), context=2).fit(x, context=c, epochs=1, quiet=True)
    with pytest.raises(ConfigError, match="'ptype' is not a context column"):
        BigGAN((8, 8), context=2, class_column="ptype").fit(x, context=c, epochs=1, quiet=True)
    x3, c3 = _data(300)
    with pytest.raises(DataError, match="'context_0' has 3.. distinct values"):  # the energy named as the class
        BigGAN((8, 8), context=2, class_column="context_0").fit(x3, context=c3, epochs=1, quiet=True)
    # fewer distinct energies than the limit: still no class column (a 64-event file made 64 classes of them)
    with pytest.raises(DataError, match=r"column 'context_0' \(the class\) is [0-9.]+ at row 0, not an integer label"):
        BigGAN((8, 8), context=2, class_column="context_0").fit(x, context=c, epochs=1, quiet=True)
    with pytest.raises(ConfigError, match="class-conditional"):
        BigGAN((8, 8), context=0)
    with pytest.raises(ConfigError, match="images"):
        BigGAN.from_data((3,), 1)


def test_the_class_column_may_be_an_index_into_an_unnamed_context(tmp_path, showers_file, capsys):
    """``BigGAN(shape, context=2, class_column=1)`` on an array [energy, pdg]: the Python user's natural spelling was
    refused ("'1' is not a context column"); an index is checked against the context's width and survives save/load."""
    x, c = _data(60)
    model = _small(class_column=1).fit(x, context=c, epochs=1, batch_size=32, quiet=True, seed=0)
    assert model.classes_ == CLASSES and model.split.column == 1
    by_name = _small().fit(x, context=c, epochs=1, batch_size=32, quiet=True, seed=0)
    torch.manual_seed(0)
    a = model.sample(4, context=[[5.0, 22.0]])
    torch.manual_seed(0)
    torch.testing.assert_close(a, by_name.sample(4, context=[[5.0, 22.0]]))  # the same model as by its name
    model.save(tmp_path / "run")
    loaded = hepgen.load(tmp_path / "run")
    assert loaded.class_column == 1 and loaded.classes_ == CLASSES
    with pytest.raises(ConfigError, match="not one of the classes"):
        loaded.sample(2, context=[[5.0, 13.0]])
    for bad in (2, -1):
        with pytest.raises(ConfigError, match="no index of the 2 context column"):
            _small(class_column=bad)
    # the command line's digits too (a name wins where a column carries it)
    data = showers_file / "layer.h5"
    argv = ["fit", "big-gan", f"{data}:cells", "--context", f"{data}:cond", "--latent", 6, "--channels", "4,8",
            "--width", 8, "--epochs", 1, "-q"]
    code, _, err = run_cli(capsys, *argv, "--class-column", 1, "-o", tmp_path / "cli")
    assert code == 0, err
    assert hepgen.load(tmp_path / "cli").class_column_ == "ptype"
    code, err = run_cli_for_error(capsys, [*argv, "--class-column", 5, "-o", tmp_path / "bad"])
    assert code == 2 and "no index of the 2 context column(s) (energy, ptype)" in err and "Traceback" not in err, err
    assert not (tmp_path / "bad").exists()


def test_save_and_load_round_trip_keeps_classes_and_samples(fitted, tmp_path):
    model, x, c = fitted
    model.save(tmp_path / "run")
    loaded = hepgen.load(tmp_path / "run")
    assert loaded.classes_ == CLASSES and loaded.class_column_ == "context_1" and loaded.classes is None
    for psi in (None, 0.5):
        torch.manual_seed(2)
        a = model.sample(20, c[:20], truncation=psi)
        torch.manual_seed(2)
        b = loaded.sample(20, c[:20], truncation=psi)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(model.score(x[:9], c[:9]), loaded.score(x[:9], c[:9]))


def test_onnx_sampler_folds_in_the_class_lookup(fitted, tmp_path):
    model, _, c = fitted
    model.export(tmp_path / "g.onnx")
    z = truncated_normal((30, model.latent), 1.0, generator=torch.Generator().manual_seed(5))
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(["x"], {"z": z.numpy(), "context": c[:30]})
    np.testing.assert_allclose(out, model.rsample(30, c[:30], z=z).detach().numpy(), rtol=1e-4, atol=1e-4)


# -- the command line ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def showers_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("biggan")
    x, c = _data(300)
    with h5py.File(tmp / "layer.h5", "w") as f:
        f["cells"] = x
        f["cond/energy"] = c[:, 0]
        f["cond/ptype"] = c[:, 1]
    return tmp


def test_cli_fit_sample_with_truncation_resume_and_refusals(showers_file, tmp_path, capsys):
    data, run = showers_file / "layer.h5", tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", "big-gan", f"{data}:cells", "--context", f"{data}:cond", "--class-column",
                           "ptype", "--latent", 6, "--channels", "4,8", "--width", 8, "--epochs", 1, "-o", run, "-q")
    assert code == 0, err
    model = hepgen.load(run)
    assert model.classes_ == CLASSES and model.class_column_ == "ptype" and model.context_columns_ == ["energy",
                                                                                                      "ptype"]
    assert "classes" in (run / "config.yaml").read_text()
    # truncated samples: the same images as the Python API under the same seed, the context written beside them
    code, _, err = run_cli(capsys, "sample", run, "-n", 40, "--context", "5,211", "--truncation", "0.5", "--seed", 4,
                           "-o", tmp_path / "s.h5", "-q")
    assert code == 0, err
    with h5py.File(tmp_path / "s.h5") as f:
        written, ptype = f["samples"][:], f["ptype"][:]
    torch.manual_seed(4)
    expected = model.sample(40, np.array([[5.0, 211.0]], dtype=np.float32), truncation=0.5).numpy()
    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-6)
    assert np.all(ptype == 211.0)
    # resume to a second epoch
    code, _, err = run_cli(capsys, "fit", "big-gan", f"{data}:cells", "--context", f"{data}:cond", "--class-column",
                           "ptype", "--latent", 6, "--channels", "4,8", "--width", 8, "--epochs", 2, "-o", run,
                           "--resume", "-q")
    assert code == 0, err
    epochs = [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2"]
    # an unknown class: literal, and in a context file (its row named), nothing written
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", 5, "--context", "5,13", "-o", tmp_path / "u.h5", "-q"])
    assert code == 2 and "--context 5,13" in err and "13" in err and "row 0" in err and not (tmp_path / "u.h5").exists()
    ctx = np.tile(np.array([[5.0, 22.0]], dtype=np.float32), (30, 1))
    ctx[17, 1] = 23.0
    np.save(tmp_path / "ctx.npy", ctx)
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", 30, "--context", tmp_path / "ctx.npy", "--block-size",
                                           10, "-o", tmp_path / "u.h5", "-q"])
    assert code == 2 and "ctx.npy" in err and "row 17" in err and "23" in err and "Traceback" not in err
    assert not (tmp_path / "u.h5").exists()
    # an unknown class in the training file, with classes fixed up front: the file, column and row
    code, err = run_cli_for_error(capsys, ["fit", "big-gan", f"{data}:cells", "--context", f"{data}:cond",
                                           "--class-column", "ptype", "--classes", "11,22", "--epochs", 1, "-o",
                                           tmp_path / "bad", "-q"])
    row = int(np.argmax(h5py.File(data)["cond/ptype"][:] == 211.0))
    assert code == 2 and "layer.h5" in err and "'ptype'" in err and f"row {row}" in err
    assert not (tmp_path / "bad").exists()


def test_resuming_on_events_of_another_class_names_the_classes_and_leaves_the_run(showers_file, tmp_path, capsys):
    """A resumed fit builds its networks for the classes of its training data before the checkpoint is loaded: a new
    class (13) gave "does not match this model (Error(s) in loading state_dict for BigGAN:)"."""
    data, run = showers_file / "layer.h5", tmp_path / "run"
    argv = ["--class-column", "ptype", "--latent", 6, "--channels", "4,8", "--width", 8, "-o", run, "-q"]
    code, _, err = run_cli(capsys, "fit", "big-gan", f"{data}:cells", "--context", f"{data}:cond", "--epochs", 1, *argv)
    assert code == 0, err
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with h5py.File(data) as f:
        cells, energy, ptype = f["cells"][:], f["cond/energy"][:], f["cond/ptype"][:]
    ptype[40] = 13.0
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["cells"], f["cond/energy"], f["cond/ptype"] = cells, energy, ptype
    other = tmp_path / "other.h5"
    code, err = run_cli_for_error(capsys, ["fit", "big-gan", f"{other}:cells", "--context", f"{other}:cond",
                                           "--epochs", 2, "--resume", *argv])
    assert code == 2 and "Traceback" not in err, err
    assert "knows the classes 11, 22, 211" in err and "'ptype'" in err and "13 as well" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_cli_help_lists_the_hyper_parameters(capsys):
    code, out, _ = run_cli(capsys, "fit", "big-gan", "--help")
    assert code == 0
    for flag in ("--class-column", "--classes", "--ortho-weight", "--hierarchical", "--embed"):
        assert flag in out
    # each training option in its own words (they all read "see hepgen.gans.adversarial.Adversarial ...")
    assert "see hepgen" not in out and "critic steps per generator step" in out and "Adam betas" in out


def test_cli_score_names_the_file_and_row_of_an_unknown_class(showers_file, tmp_path, capsys):
    data, run = showers_file / "layer.h5", tmp_path / "run"
    assert run_cli(capsys, "fit", "big-gan", f"{data}:cells", "--context", f"{data}:cond", "--class-column", "ptype",
                   "--latent", 6, "--channels", "4,8", "--width", 8, "--epochs", 1, "-o", run, "-q")[0] == 0
    x, c = _data(30)
    c[21, 1] = 5.0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "c.npy", c)
    code, err = run_cli_for_error(capsys, ["score", run, tmp_path / "x.npy", "--context", tmp_path / "c.npy",
                                           "--block-size", 8, "-o", tmp_path / "s.h5", "-q"])
    assert code == 2 and "c.npy" in err and "row 21" in err and "is 5" in err and not (tmp_path / "s.h5").exists()
    c[21, 1] = 22.0
    np.save(tmp_path / "c.npy", c)
    code, _, err = run_cli(capsys, "score", run, tmp_path / "x.npy", "--context", tmp_path / "c.npy", "-o",
                           tmp_path / "s.h5", "-q")
    assert code == 0, err
