"""``hepgen sample --truncation PSI``: refused (exit 2, nothing written) by models without a truncation trick and
for values that are not a number >= 0; the families that have one are tested with their family (tests/gans)."""

import pytest

from tests.helpers import run_cli_for_error


def test_a_model_without_a_truncation_trick_refuses_it(unnamed, tmp_path, capsys):
    out = tmp_path / "s.h5"
    code, err = run_cli_for_error(capsys, ["sample", unnamed / "run", "-n", 10, "-o", out, "--truncation", "0.5",
                                           "-q"])
    assert code == 2 and "--truncation 0.5" in err and "gaussian" in err and "without a truncation trick" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("value", ["-0.5", "nan", "inf", "half"])
def test_truncation_must_be_a_finite_number_at_least_zero(unnamed, tmp_path, capsys, value):
    out = tmp_path / "s.h5"
    code, err = run_cli_for_error(capsys, ["sample", unnamed / "run", "-n", 10, "-o", out, f"--truncation={value}",
                                           "-q"])
    assert code == 2 and "--truncation" in err and value in err and not out.exists()


def test_truncation_with_mcmc_is_refused(unnamed, tmp_path, capsys):
    code, err = run_cli_for_error(capsys, ["sample", unnamed / "run", "-n", 10, "-o", tmp_path / "s.h5", "--mcmc",
                                           "--truncation", "0.5", "-q"])
    assert code == 2 and "--truncation" in err and "--mcmc" in err
