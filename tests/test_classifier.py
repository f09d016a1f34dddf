"""The plain classifier family (hepgen.classifier): where it lives, its old spellings, and saved runs."""

import numpy as np
import torch
import yaml

import hepgen
from hepgen.classifier import Classifier
from hepgen.models import model_class


def test_one_class_under_every_spelling():
    from hepgen.jets import Classifier as from_jets
    from hepgen.jets.taggers import Classifier as from_taggers, DisCo, Pivot

    assert hepgen.Classifier is Classifier is from_jets is from_taggers is model_class("classifier")
    assert issubclass(Pivot, Classifier) and issubclass(DisCo, Classifier)


def test_a_saved_run_names_the_model_not_its_module_and_loads_back(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 1, (300, 2)), rng.normal(1, 1, (300, 2))])
    y = np.r_[np.zeros(300), np.ones(300)]
    model = Classifier(2, hidden=(8,)).fit(x, labels=y, epochs=2, batch_size=64, quiet=True, device="cpu")
    model.save(tmp_path / "run")
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    # runs saved before the move (from hepgen.jets.taggers) record the same: the CLI name, no module path
    assert config["model"] == "classifier" and "taggers" not in (tmp_path / "run" / "config.yaml").read_text()
    again = hepgen.load(tmp_path / "run")
    assert type(again) is Classifier
    torch.testing.assert_close(again.score(x[:50]), model.score(x[:50]))
