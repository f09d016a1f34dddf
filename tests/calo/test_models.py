"""CaloGAN and CaloFlow on tiny samples of the calo simulator: they train, sample the simulator's layout from the
CLI and the API, and their showers follow the conditioning energy."""

from unittest import mock

import h5py
import numpy as np
import pytest
import torch

import hepgen
from hepgen.calo.caloflow import CaloFlow
from hepgen.calo.gan import CaloGAN
from hepgen.calo.shower_layout import LAYERS, read_showers
from hepgen.data.generators import calo
from hepgen.flows.transforms.splines import SplineTransformer
from hepgen.metrics.shower_observables import shower_features


@pytest.fixture(scope="module")
def showers(tmp_path_factory):
    path = tmp_path_factory.mktemp("calo") / "e.h5"
    from hepgen.cli import main

    assert main(["data", "calo", "-n", "1200", "-o", str(path), "--seed", "1", "-q"]) == 0
    return path


def _sum_at(model, energy, n=200):
    torch.manual_seed(0)
    s = model.sample(n, context=np.array([energy]))
    assert {k: tuple(v.shape) for k, v in s.items()} == {k: (n, *v) for k, v in LAYERS.items()}
    return shower_features([s[k].numpy() for k in LAYERS], np.full(n, energy))


@pytest.mark.parametrize("name", ["calo-gan", "calo-flow"])
def test_cli_fit_and_sample_write_the_simulator_layout(showers, tmp_path, name, capsys):
    from hepgen.cli import main

    run = tmp_path / "run"
    extra = ["--cell-transforms", "2", "--bins", "4"] if name == "calo-flow" else ["--hidden", "64,64",
                                                                                 "--critic-hidden", "64,64"]
    assert main(["fit", name, str(showers), "--context", "energy", "--out", str(run), "--epochs", "1",
                 "--batch-size", "200", "-q", *extra]) == 0, capsys.readouterr().err
    out = tmp_path / "s.h5"
    assert main(["sample", str(run), "-n", "64", "--context", "30", "-o", str(out), "-q"]) == 0, capsys.readouterr().err
    with h5py.File(out) as f:
        assert {k: f[k].shape[1:] for k in LAYERS} == LAYERS and f["energy"].shape == (64,)  # as the simulator
    back = read_showers(out)
    assert len(back) == 64 and np.all(back.energy == 30.0)
    assert main(["score", str(run), str(showers), "--context", f"{showers}:energy", "-o", str(tmp_path / "score.h5"),
                 "-q"]) == 0, capsys.readouterr().err
    # a shower file as --context: one shower drawn at each of its showers' energies (its `energy` dataset)
    assert main(["sample", str(run), "--context", str(showers), "-o", str(tmp_path / "like.h5"), "-q"]) == 0, \
        capsys.readouterr().err
    with h5py.File(showers) as f, h5py.File(tmp_path / "like.h5") as g:
        assert g["layer_1"].shape == f["layer_1"].shape
        np.testing.assert_allclose(g["energy"][()], f["energy"][()], rtol=1e-6)  # (float32 on the way)


def test_calo_gan_response_follows_the_conditioning_energy(showers):
    x = read_showers(showers)
    model = CaloGAN(hidden=(64, 64), critic_hidden=(64, 64)).fit(
        x.layers, context=x.energy, epochs=2, batch_size=200, quiet=True, seed=0)
    low, high = _sum_at(model, 5.0), _sum_at(model, 80.0)
    # deposited energy scales with the incident energy (a response of order the simulator's 0.2 at both ends)
    ratio = high["E_total"].mean() / low["E_total"].mean()
    assert 8.0 < ratio < 24.0, ratio
    for e, got in ((5.0, low), (80.0, high)):  # the simulator's response at that energy, within 5 %
        sim = calo.generate(300, seed=5, energy_min=e * 0.999, energy_max=e * 1.001)
        want = shower_features([sim[k] for k in LAYERS], sim["energy"])["response"].mean()
        assert got["response"].mean() == pytest.approx(want, rel=0.05), e
    # gradients reach the condition (the design study differentiates through it)
    e = torch.tensor([[40.0]], requires_grad=True)
    sum(v.sum() for v in model.rsample(8, context=e).values()).backward()
    assert e.grad is not None and float(e.grad) > 0


def test_calo_gan_starts_at_the_mean_shower_of_its_training_data(showers):
    """The warm start: after a fit with a vanishing learning rate the generator is the mean shower at every energy."""
    x = read_showers(showers)
    model = CaloGAN(hidden=(64, 64), critic_hidden=(64, 64), energy_weight=0.0).fit(
        x.layers, context=x.energy, epochs=1, batch_size=100, lr=1e-12, quiet=True, seed=0)
    torch.manual_seed(1)
    s = model.sample(len(x), context=x.energy[:, None])
    for k in ("layer_0", "layer_1"):  # layer_2 holds ~0.03 % of E_inc, below the noise at low energies
        want, got = x.layers[k].mean(0), s[k].numpy().mean(0)
        bright = want > 0.05 * want.max()
        np.testing.assert_allclose(got[bright], want[bright], rtol=0.15)
        assert got.sum() == pytest.approx(want.sum(), rel=0.05), k
    sim, gen = shower_features(x.list(), x.energy), shower_features([s[k].numpy() for k in LAYERS], x.energy)
    for lo, hi in ((1, 20), (20, 60), (60, 100)):
        inside = (x.energy >= lo) & (x.energy < hi)
        assert gen["response"][inside].mean() == pytest.approx(sim["response"][inside].mean(), rel=0.03), (lo, hi)


def test_calo_gan_fast_sample_is_rsample_without_the_graph():
    model = CaloGAN(hidden=(16,), critic_hidden=(16,))
    model.eval()
    e = np.array([[3.0], [40.0], [90.0]])
    torch.manual_seed(5)
    fast = model.sample(3, context=e)
    torch.manual_seed(5)
    slow = model.rsample(3, context=e)
    for k in LAYERS:
        assert fast[k].shape == slow[k].shape == (3, *LAYERS[k])
        torch.testing.assert_close(fast[k], slow[k].detach(), rtol=1e-5, atol=1e-4)
    # one row broadcasts; a wrong number of rows or a non-positive energy is refused
    assert model.sample(4, context=np.array([10.0]))["layer_0"].shape == (4, 3, 96)
    with pytest.raises(hepgen.ConfigError, match="rows"):
        model.sample(4, context=np.ones((3, 1)))
    with pytest.raises(hepgen.ConfigError, match="positive"):
        model.sample(2, context=np.array([[1.0], [0.0]]))


def test_energy_term_matches_its_formula_and_does_not_shrink_fluctuations():
    model = CaloGAN(hidden=(16,), critic_hidden=(16,), energy_group=4)
    rng = np.random.default_rng(0)
    fake, real, energy = rng.random((10, 3)), rng.random((10, 3)), rng.permutation(10) + 1.0
    got = float(model._energy_loss(torch.tensor(fake), torch.tensor(real), torch.tensor(energy)))
    f, r = np.c_[fake, fake.sum(1)], np.c_[real, real.sum(1)]
    s = r.mean(0)
    order = np.argsort(energy)
    terms = []
    for idx in (order[:4], order[4:8], order[8:]):
        terms.append(np.sum(((f[idx].mean(0) - r[idx].mean(0)) ** 2 - f[idx].var(0, ddof=1) / len(idx)) / s**2))
    assert got == pytest.approx(np.mean(terms), rel=1e-9)
    # fake = mu + sigma * eps drawn like the real showers: the expected gradient in sigma vanishes (no shrinkage),
    # the one in mu is 0 too; a mean offset gives a positive gradient in mu
    torch.manual_seed(0)
    grads = {0.0: [], 0.2: []}
    for offset, values in grads.items():
        for _ in range(400):
            mu, sigma = torch.tensor(1.0 + offset, requires_grad=True), torch.tensor(0.3, requires_grad=True)
            fake = mu + sigma * torch.randn(64, 1)
            loss = model._energy_loss(fake, 1.0 + 0.3 * torch.randn(64, 1), torch.rand(64))
            values.append(torch.stack(torch.autograd.grad(loss, (mu, sigma))).numpy())
    g0, g1 = np.mean(grads[0.0], 0), np.mean(grads[0.2], 0)
    se = np.std(grads[0.0], 0) / np.sqrt(400)
    assert abs(g0[0]) < 4 * se[0] and abs(g0[1]) < 4 * se[1], (g0, se)
    assert g1[0] > 10 * se[0]


def test_calo_flow_response_within_ten_percent_of_the_simulator_after_a_short_fit(showers):
    x = read_showers(showers)
    model = CaloFlow(cell_transforms=2, bins=4).fit(x.layers, context=x.energy, epochs=3, batch_size=200,
                                                    quiet=True, seed=0)
    for e in (10.0, 80.0):
        got = _sum_at(model, e)["response"].mean()
        sim = calo.generate(300, seed=5, energy_min=e * 0.999, energy_max=e * 1.001)
        want = shower_features([sim[k] for k in LAYERS], sim["energy"])["response"].mean()
        assert got == pytest.approx(want, rel=0.10), (e, got, want)
    # sampled layer energies never leave the training range of E_k / E_inc (the clip of flow 1's tail)
    torch.manual_seed(2)
    s = model.sample(3000, context=np.geomspace(1.0, 100.0, 3000)[:, None])
    for k in LAYERS:
        got = s[k].double().sum((1, 2)).numpy() / (1000 * np.geomspace(1.0, 100.0, 3000))
        train = x.layers[k].astype(np.float64).sum((1, 2)) / (1000 * x.energy)
        assert got.max() <= train.max() * (1 + 1e-4) + 1e-7, k
    score = model.score(x.take(np.arange(5)).layers, context=x.energy[:5, None])
    assert score.shape == (5,) and torch.isfinite(score).all()


def test_models_refuse_a_missing_energy_context_and_single_array_data():
    with pytest.raises(hepgen.ConfigError, match="--context energy"):
        CaloGAN(context=0)
    with pytest.raises(hepgen.ConfigError, match="--context energy"):
        CaloFlow(context=0)
    with pytest.raises(hepgen.ConfigError, match="several layers"):
        CaloGAN.from_data((10,), 1)


@pytest.mark.parametrize("cls", [CaloGAN, CaloFlow])
def test_shower_models_refuse_non_physical_energies_and_record_the_training_range(cls, tmp_path):
    from hepgen.errors import ConfigError, DataError

    sim = calo.generate(120, seed=3, energy_min=10.0, energy_max=40.0)
    layers = {k: sim[k] for k in LAYERS}
    small = {"hidden": (16,), "critic_hidden": (16,)} if cls is CaloGAN else {"cell_transforms": 1, "cell_hidden": (8,)}
    energy = sim["energy"].copy()
    energy[17] = -20.0
    with pytest.raises(DataError, match="is -20 at row 17"):
        cls(**small).fit(layers, context=energy, epochs=1, batch_size=60, quiet=True, run_dir=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    model = cls(**small).fit(layers, context=sim["energy"], epochs=1, batch_size=60, quiet=True, val_fraction=0,
                             run_dir=tmp_path / "run")
    assert model.energy_range_ == pytest.approx((sim["energy"].min(), sim["energy"].max()), rel=1e-6)
    loaded = hepgen.load(tmp_path / "run")
    assert loaded.energy_range_ == pytest.approx(model.energy_range_)
    # fitted on unnamed arrays (as the shipped models were), `sample` still writes the simulator's layout: the
    # incident energy as `energy` in GeV (not `context_0`), so `compare` and `read_showers` take the file
    from hepgen.cli import main

    assert main(["sample", str(tmp_path / "run"), "-n", "7", "--context", "25", "-o", str(tmp_path / "f.h5"), "-q"]) == 0
    with h5py.File(tmp_path / "f.h5") as f:
        assert set(f) == {*LAYERS, "energy"} and f["energy"][()].tolist() == [25.0] * 7
    assert read_showers(tmp_path / "f.h5").layers["layer_1"].shape == (7, 12, 12)
    # and `score` of a shower file finds the incident energy there without --context (its `energy` dataset)
    from hepgen.calo.shower_layout import write_showers

    write_showers(tmp_path / "sim.h5", layers, sim["energy"])
    for extra, out in (([], "a.h5"), (["--context", f"{tmp_path / 'sim.h5'}:energy"], "b.h5")):
        assert main(["score", str(tmp_path / "run"), str(tmp_path / "sim.h5"), *extra, "-o", str(tmp_path / out), "-q"]) == 0
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        assert a["score"].shape == (120,) and np.array_equal(a["score"][()], b["score"][()])
    for m in (model, loaded):
        for bad in (-5.0, 0.0):
            with pytest.raises(ConfigError, match="positive number of GeV"):
                m.sample(4, context=np.array([bad]))
        with pytest.raises(ConfigError, match="far outside the training range"):
            m.sample(4, context=np.array([1e9]))
        with pytest.raises(ConfigError, match="far outside the training range"):
            m.rsample(4, context=torch.tensor([[1.0]]))
        assert m.sample(4, context=np.array([1e3]), extrapolate=True)["layer_0"].shape == (4, 3, 96)
        assert m.sample(4, context=np.array([25.0]))["layer_0"].shape == (4, 3, 96)
    # a warm start widens the range by the new showers' energies; a fresh fit forgets the old range
    more = calo.generate(120, seed=4, energy_min=60.0, energy_max=70.0)
    model.fit({k: more[k] for k in LAYERS}, context=more["energy"], epochs=1, batch_size=60, quiet=True, val_fraction=0,
              warm_start=True)
    assert model.energy_range_ == pytest.approx((sim["energy"].min(), more["energy"].max()), rel=1e-6)
    model.fit({k: more[k] for k in LAYERS}, context=more["energy"], epochs=1, batch_size=60, quiet=True, val_fraction=0)
    assert model.energy_range_ == pytest.approx((more["energy"].min(), more["energy"].max()), rel=1e-6)


def test_calo_flow_preprocessing_inverts_to_the_showers():
    """(a, l) = the flows' coordinates of simulator showers (layer energies, logit of the shifted, normalised
    cells), standardised with statistics fitted on them; the sampling path's inverse gives the showers back."""
    d = calo.generate(64, seed=5, particle="pi+")
    model = CaloFlow(energy_transforms=1, cell_transforms=2, cell_hidden=(8,), energy_hidden=(8,))
    x = {k: torch.as_tensor(d[k], dtype=torch.float64) for k in LAYERS}
    energy = torch.as_tensor(d["energy"], dtype=torch.float64)
    model.double()
    a, l = model._raw_internal(x, energy)
    with torch.no_grad():  # non-trivial standardisation, as on_fit_start fits it
        model.a_mean.copy_(a.mean(0)), model.a_std.copy_(a.std(0)), model.l_mean.copy_(l.mean(0))
        model.l_std.copy_(l.std(0).clamp_min(1e-3))
    assert min(float(v.min()) for v in x.values()) > model.floor - model.offset  # the invertible domain
    back = model._from_internal(*model._internal(x, energy), energy)
    for k in LAYERS:
        np.testing.assert_allclose(back[k].numpy(), x[k].numpy(), rtol=1e-9, atol=1e-7 * float(x[k].abs().max()))
    # the layer energies by hand: a = asinh(E_k / (1000 E) / 1e-3)
    e_k = np.stack([d[k].astype(np.float64).reshape(64, -1).sum(1) for k in LAYERS], 1)
    np.testing.assert_allclose(a.numpy(), np.arcsinh(e_k / (1000 * d["energy"].astype(np.float64)[:, None]) / 1e-3), rtol=1e-12)


def test_calo_flow_samples_in_blocks_as_rsample_does_block_by_block():
    d = calo.generate(100, seed=2)
    model = CaloFlow(energy_transforms=1, cell_transforms=2, cell_hidden=(8,), energy_hidden=(8,))
    model.fit({k: d[k] for k in LAYERS}, context=d["energy"][:, None], epochs=1, batch_size=50, quiet=True,
              monitor=None)
    model.eval()
    model.sample_block = 16
    energies = np.linspace(2.0, 90.0, 40)[:, None]
    torch.manual_seed(4)
    blocks = model.sample(40, context=energies)
    torch.manual_seed(4)
    by_hand = [model.rsample(len(e), context=e) for e in np.split(energies, [16, 32])]
    for k in LAYERS:
        assert blocks[k].shape == (40, *LAYERS[k])
        assert torch.equal(blocks[k], torch.cat([b[k] for b in by_hand]).detach())
    torch.manual_seed(4)
    one = model.sample(40, context=np.array([30.0]))  # one energy for all
    torch.manual_seed(4)
    assert torch.equal(one["layer_0"][:16], model.rsample(16, context=np.array([30.0]))["layer_0"].detach())
    with pytest.raises(Exception, match="context"):
        model.sample(40, context=np.ones((7, 1)))


@pytest.mark.parametrize("kind", ["coupling", "autoregressive"])
def test_calo_flow_energy_flow_kinds_invert_and_sample_in_the_passes_they_promise(kind):
    """Flow 1 of couplings samples in one conditioner pass per layer, CaloFlow's autoregressive one in K per
    layer; both are invertible with opposite log-determinants, and either trains and samples."""
    torch.manual_seed(0)
    model = CaloFlow(energy_flow=kind, energy_transforms=3, cell_transforms=1, cell_hidden=(8,), energy_hidden=(8,))
    with torch.no_grad():
        for p in model.flow1.parameters():
            p.add_(0.3 * torch.randn_like(p))
    k = len(LAYERS)
    a, cond = torch.randn(50, k, dtype=torch.float64), torch.randn(50, model.context, dtype=torch.float64)
    with torch.no_grad():
        z, ladj = model.flow1.double()(a, cond)
        back, ladj_inv = model.flow1.inverse(z, cond)
    model.float()
    torch.testing.assert_close(back, a, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(ladj_inv, -ladj, atol=1e-9, rtol=1e-9)
    assert not torch.allclose(z, a)  # not the identity
    # every pass evaluates its spline once: count the spline calls of flow 1 while sampling one shower
    calls = []
    original, original_invert = SplineTransformer.__call__, SplineTransformer.invert

    def counted(self, x, *args, **kw):
        calls.append(x.shape[-1])
        return original(self, x, *args, **kw)

    def counted_invert(self, x, *args, **kw):  # sampling's coupling layers skip the log-derivative
        calls.append(x.shape[-1])
        return original_invert(self, x, *args, **kw)
    model.eval()
    with mock.patch.object(SplineTransformer, "__call__", counted), \
            mock.patch.object(SplineTransformer, "invert", counted_invert):
        s = model.sample(1, context=np.array([[20.0]]))
    assert set(s) == set(LAYERS)
    flow1_calls = len(calls) - 1  # flow 2's single coupling: one call
    assert flow1_calls == 3 * (1 if kind == "coupling" else k)


def test_calo_flow_refuses_an_unknown_energy_flow_and_builds_one_layer_geometries():
    with pytest.raises(hepgen.ConfigError, match="energy_flow must be 'coupling' or 'autoregressive'"):
        CaloFlow(energy_flow="maf")
    one = CaloFlow(shapes={"layer_0": (3, 4)}, cell_transforms=1, cell_hidden=(8,), energy_hidden=(8,))
    assert one.sample(2, context=np.array([[5.0]]))["layer_0"].shape == (2, 3, 4)


def test_calo_flow_sample_equals_the_flows_plain_inverse_bit_for_bit():
    """sample runs the flows' ``invert`` (no log-derivatives): the showers are those of the plain ``inverse``."""
    from hepgen.flows.transforms.base import Compose

    model = CaloFlow(energy_transforms=2, cell_transforms=2, cell_hidden=(8,), energy_hidden=(8,))
    with torch.no_grad():
        for t in list(model.flow1.transforms) + list(model.flow2.transforms):
            t.conditioner[-1].weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
    model.eval()
    energies = np.linspace(2.0, 90.0, 40)[:, None]
    torch.manual_seed(4)
    fast = model.sample(40, context=energies)
    for f in (model.flow1, model.flow2):
        f.invert = (lambda y, c=None, f=f: Compose.inverse(f, y, c)[0])
    torch.manual_seed(4)
    plain = model.sample(40, context=energies)
    torch.manual_seed(4)
    graph = model.rsample(40, context=energies)
    for k in LAYERS:
        assert torch.equal(fast[k], plain[k]) and torch.equal(fast[k], graph[k].detach())
        assert fast[k].std() > 0
