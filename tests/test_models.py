"""models.py: the registry (filled where the classes are defined), model_class and its suggestions, register,
load() and its refusals, and the inference contract every registered family keeps (plain tensors out; rsample is
the differentiable path)."""

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import hepgen
from hepgen.errors import CheckpointError, ConfigError
from hepgen.models import REGISTRY, Model, load, model_class, register

#: hepgen's own entries, as the package top level declares them (tests register toy models into the same table)
BUILTIN = sorted(hepgen._MODELS)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_registry_entry_resolves_to_a_model_class_of_that_cli_name(name):
    cls = model_class(name)
    assert isinstance(cls, type) and issubclass(cls, Model)
    assert cls.cli_name == name and REGISTRY[name] is cls
    assert cls.__module__ == hepgen._MODELS[name]  # registered where it is defined, in the declared module


def test_every_registered_hepgen_class_is_declared_so_a_fresh_process_finds_it():
    """A class that registers itself but is missing from the top level's declarations would be found only once
    something else imported its module: load() of its run would fail in a fresh process."""
    for name in BUILTIN:
        model_class(name)
    own = {name for name, cls in REGISTRY.items() if cls.__module__.startswith("hepgen.")}
    assert own == set(BUILTIN)


def test_a_name_is_found_in_a_fresh_process_importing_only_its_family():
    code = ("import sys, hepgen\n"
            "loaded = lambda: {m for m in sys.modules if m.startswith('hepgen.')}\n"
            "assert not loaded() & {'hepgen.flows', 'hepgen.calo', 'hepgen.models'}, loaded()\n"
            "names = sorted(hepgen.REGISTRY)\n"
            "assert 'calo-gan' in names and not loaded() & {'hepgen.calo', 'hepgen.flows'}, loaded()\n"
            "from hepgen.models import model_class\n"
            "assert model_class('hypercube-flow').__name__ == 'HypercubeFlow'\n"
            "assert not loaded() & {'hepgen.calo', 'hepgen.jets', 'hepgen.gans', 'hepgen.autoencoders'}, loaded()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_family_overrides_fit_or_the_engine_lacks_a_hook(name):
    """Every family trains through Model.fit and the engine's hooks (targets, streams, diagnostics, fit_defaults,
    on_fit_start/end): a family that needs its own fit means the engine is missing something."""
    cls = model_class(name)
    assert cls.fit is Model.fit, f"{cls.__name__} overrides fit"


def test_registry_names_are_short_kebab_case_and_only_what_the_cli_can_fit():
    assert len(BUILTIN) >= 16
    for name in BUILTIN:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) and len(name) <= 16, name
    assert "flow" not in REGISTRY  # a custom Flow is composed in Python; the CLI cannot fit it
    # no base class registered: Model itself, DensityModel, FlowModel, the GAN and autoencoder bases
    assert not {cls.__name__ for cls in REGISTRY.values()} & {"Model", "DensityModel", "FlowModel", "Flow",
                                                                "Adversarial", "LatentModel"}


def test_registry_mapping_declares_imports_on_lookup_and_forgets():
    from hepgen.registry import Registry

    table = Registry()
    table.declare("test-json", "json")  # a module that registers nothing under that name
    assert "test-json" in table and list(table) == ["test-json"] and len(table) == 1
    with pytest.raises(LookupError, match="declared in json, which registers no class"):
        table["test-json"]
    table["test-json"] = dict
    assert table["test-json"] is dict and len(table) == 1
    del table["test-json"]
    assert "test-json" not in table and len(table) == 0
    with pytest.raises(KeyError):
        del table["test-json"]


@pytest.mark.parametrize(("typo", "suggestion"), [("nfs", "nsf"), ("wgangp", "wgan-gp"), ("conv_vae", "conv-vae"),
                                                  ("gausian", "gaussian")])
def test_model_class_suggests_the_nearest_name(typo, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'") as info:
        model_class(typo)
    assert "available models" in str(info.value) and "realnvp" in str(info.value)


def test_model_class_without_a_near_name_lists_the_models():
    with pytest.raises(ConfigError) as info:
        model_class("xyzzy-quux")
    assert "did you mean" not in str(info.value)
    assert all(name in str(info.value) for name in REGISTRY)


class TwiceGaussian(hepgen.Gaussian):
    """A user's model (registered only inside the test below: the registry is global)."""


def test_register_adds_a_user_model_that_load_rebuilds(tmp_path):
    try:
        assert register(TwiceGaussian, name="test-twice-gaussian") is TwiceGaussian
        assert model_class("test-twice-gaussian") is TwiceGaussian
        model = TwiceGaussian(2)
        with torch.no_grad():
            model.loc.copy_(torch.tensor([0.5, -1.0]))
        model.save(tmp_path / "run")
        again = load(tmp_path / "run")
        assert type(again) is TwiceGaussian
        torch.testing.assert_close(again.loc, model.loc)
    finally:
        REGISTRY.pop("test-twice-gaussian", None)


@pytest.fixture
def saved_run(tmp_path):
    model = hepgen.Gaussian(3)
    with torch.no_grad():
        model.loc.copy_(torch.tensor([1.0, 2.0, 3.0]))
    return model, model.save(tmp_path / "good")


def _variant(run, tmp_path, name, edit):
    """A copy of ``run`` whose config.yaml is changed by ``edit(config)``."""
    target = tmp_path / name
    shutil.copytree(run, target)
    config = yaml.safe_load((target / "config.yaml").read_text())
    edit(config)
    (target / "config.yaml").write_text(yaml.safe_dump(config))
    return target


def test_load_round_trip_is_exact_and_in_eval_mode(saved_run):
    model, run = saved_run
    again = load(run)
    assert type(again) is hepgen.Gaussian and not again.training
    x = np.random.default_rng(0).normal(size=(5, 3))
    torch.testing.assert_close(again.log_prob(x), model.log_prob(x))


def test_load_leaves_the_callers_torch_rng_as_it_was(tmp_path):
    """Building the modules draws initial weights that load then overwrites: the draws must not move the
    caller's global RNG (a seeded script must give the same numbers whether or not it loads a model)."""
    hepgen.MAF(3).save(tmp_path / "made")
    torch.manual_seed(7)
    before = torch.get_rng_state()
    load(tmp_path / "made")
    assert torch.equal(torch.get_rng_state(), before)


def test_load_refusals_name_the_file(saved_run, tmp_path):
    _, run = saved_run
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.yaml is missing"):
        load(tmp_path / "empty")
    bad = _variant(run, tmp_path, "unknown", lambda c: c.update(model="gausian"))
    with pytest.raises(CheckpointError, match=r"config\.yaml.*unknown model 'gausian'.*did you mean 'gaussian'"):
        load(bad)
    bad = _variant(run, tmp_path, "params", lambda c: c["params"].update(colour="red"))
    with pytest.raises(CheckpointError, match=r"does not fit model 'gaussian'.*colour"):
        load(bad)
    bad = _variant(run, tmp_path, "shape", lambda c: c["params"].update(features=4))
    with pytest.raises(CheckpointError, match=r"model\.pt does not match its config\.yaml"):
        load(bad)
    bad = _variant(run, tmp_path, "other", lambda c: c.update(model="nsf", params={"features": 3}))
    with pytest.raises(CheckpointError, match="holds a 'gaussian' model but config.yaml says 'nsf'"):
        load(bad)
    (bad / "config.yaml").write_text("model: [unclosed\n")
    with pytest.raises(CheckpointError, match="not valid YAML"):
        load(bad)


#: families whose events are no (3,) or (8, 8) array, tested with their own events in tests/calo, tests/lattice and
#: tests/phasespace: calorimeter showers (several arrays, conditional on E_inc) and data-free targets (a lattice, an
#: integrand); test_the_families_left_out_cannot_be_built_small checks the list hides no other family
NOT_SMALL = {"calo-flow", "calo-gan", "hypercube-flow", "lattice-flow", "phase-space-flow", "phi4-flow"}


#: hyper-parameters a family needs to be built before it sees data: big-gan's classes (found in the training data)
SMALL_PARAMS = {"big-gan": {"classes": [0.0, 1.0]}}


def _small(name):
    """The model built by from_data for small tabular (3,) or image (8, 8) events, with a batch of its inputs."""
    cls = model_class(name)
    for shape in ((3,), (8, 8)):
        for context in (0, 1):
            try:
                model = cls.from_data(shape, context, **SMALL_PARAMS.get(name, {})).eval()
            except (ConfigError, TypeError):
                continue
            assert not isinstance(model.event_shape, dict), f"{name}: multi-array events (add it to NOT_SMALL)"
            x = torch.rand(6, *model.event_shape, requires_grad=True)
            c = torch.rand(6, model.context) if model.context else None
            if c is not None and getattr(model, "classes_", None):  # a class column: values of known classes
                c[:, 0] = torch.tensor(model.classes_)[torch.arange(6) % len(model.classes_)]
            if hasattr(model, "fit_latent"):  # deterministic AEs sample from a Gaussian fitted to training codes
                model.fit_latent(x.detach().numpy())
            return model, x, c
    raise AssertionError(f"{name} is not built from a (3,) or (8, 8) event shape by from_data")


@pytest.mark.parametrize("name", sorted(NOT_SMALL))
def test_the_families_left_out_cannot_be_built_small(name):
    with pytest.raises(AssertionError, match="not built|multi-array"):
        _small(name)


def _tensors(value):
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return [value] if isinstance(value, torch.Tensor) else []


@pytest.mark.parametrize("name", [n for n in BUILTIN if n not in NOT_SMALL])
def test_inference_returns_plain_tensors_for_every_family(name):
    """The README's ``model.log_prob(x)`` / ``model.sample(n)`` go straight to NumPy: no autograd graph, even
    for inputs that require grad; the differentiable path is rsample (and log_prob(x, grad=True))."""
    model, x, c = _small(name)
    outputs = _tensors(model.score(x, c)) + _tensors(model.score_outputs(x, c))
    for method in ("log_prob", "encode", "reconstruct"):
        if hasattr(model, method):
            outputs += _tensors(getattr(model, method)(x, c))
    if hasattr(model, "sample") and name != "cyclegan":  # cyclegan translates events instead of sampling
        outputs += _tensors(model.sample(6, c))
    # the reparameterised samplers: flows, Gaussian, VAE decoders, GANs (pixel-cnn draws discrete levels: it refuses)
    if hasattr(model, "rsample") and name not in ("cyclegan", "pixel-cnn"):
        c_grad = None if c is None else c.clone().requires_grad_(True)
        drawn = model.rsample(6, c_grad)
        # an EMA generator is a frozen average of the trained one: its samples depend on the context only
        frozen = getattr(model, "generator_ema", None) is not None
        if c_grad is not None or not frozen:
            assert drawn.requires_grad, name
    assert outputs
    for out in outputs:
        assert out.requires_grad is False, name
        out.numpy()
    if hasattr(model, "log_prob"):
        lp = model.log_prob(x, c, grad=True)
        assert lp.requires_grad and torch.isfinite(lp).all(), name


def test_register_finds_a_class_defined_inside_a_function(tmp_path):
    import numpy as np

    import hepgen
    from hepgen.models import REGISTRY, model_class, register

    def make():
        class Local(hepgen.Gaussian):
            cli_name = "test-local-gaussian"
        return Local

    cls = register(make())
    try:
        assert model_class("test-local-gaussian") is cls
        cls(2).fit(np.random.default_rng(0).normal(size=(100, 2)), epochs=1, quiet=True).save(tmp_path / "r")
        assert type(hepgen.load(tmp_path / "r")) is cls
    finally:
        REGISTRY.pop("test-local-gaussian", None)


def test_a_data_free_model_fits_without_an_x_argument_and_a_data_model_is_told_to_pass_one():
    """``LatticeFlow(target=S, shape=...).fit(steps_per_epoch=N)``: x defaults to None, what a data-free model
    takes (scikit-learn's fit(X) keeps its first argument; a model trained from its own target has none)."""
    import hepgen

    def action(phi):  # a free field on a 2x2 lattice
        return 0.5 * (phi ** 2).sum(dim=(1, 2))

    flow = hepgen.LatticeFlow(target=action, shape=(2, 2), layers=2, channels=(4,), ess_draws=0)
    assert flow.fit(steps_per_epoch=2, epochs=1, batch_size=8, quiet=True) is flow
    with pytest.raises(ConfigError, match="learns from data"):
        hepgen.Gaussian(2).fit(epochs=1, quiet=True)
