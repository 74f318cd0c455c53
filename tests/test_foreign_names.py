"""A reader coming from Avalanche passes its argument names; each method answers with
synapse's name and the conversion, in one line (a ConfigError naming the argument), instead of
a bare TypeError. The conversions are checked against the peer penalties written out."""
import numpy as np
import pytest

from synapse.errors import ConfigError, UserError
from synapse.methods import EWC, MAS, SI, OnlineEWC, make_method
from synapse.model import mlp

CASES = [
    (SI, "si_lambda", "c = si_lambda / 2"),
    (SI, "eps", "use xi"),
    (SI, "epsilon", "xi"),
    (SI, "excluded_parameters", "use exclude"),
    (EWC, "ewc_lambda", "c = ewc_lambda"),
    (EWC, "mode", "OnlineEWC"),
    (EWC, "decay_factor", "OnlineEWC(gamma=decay_factor)"),
    (OnlineEWC, "ewc_lambda", "c = ewc_lambda"),
    (OnlineEWC, "decay_factor", "use gamma"),
    (MAS, "lambda_reg", "c = lambda_reg"),
    (MAS, "alpha", "no alpha"),
]


@pytest.mark.parametrize("cls, name, hint", CASES, ids=[f"{c.__name__}-{n}" for c, n, _ in CASES])
def test_a_peer_name_gets_a_one_line_hint(cls, name, hint):
    with pytest.raises(ConfigError) as err:
        cls(**{name: 1.0})
    message = str(err.value)
    assert isinstance(err.value, UserError) and err.value.option == name
    assert message.startswith(f"{name}: ") and hint in message and "\n" not in message


def test_make_method_passes_the_hint_through():
    with pytest.raises(ConfigError, match=r"^si_lambda: .*c = si_lambda / 2"):
        make_method("si", si_lambda=1.0, eps=1e-7)


def test_an_unknown_name_is_still_python_s_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        SI(foo=1.0)


def penalty_at(method, rng):
    """The method's penalty on a small net whose importance and anchor are set by hand."""
    model = mlp([3, 2], seed=0, dtype=np.float64, zero_readout=False)
    method.attach(model)
    method.Omega[...] = rng.uniform(0, 1, model.params.size)
    method.theta_ref[...] = model.params.theta + rng.standard_normal(model.params.size)
    Delta = model.params.theta - method.theta_ref
    return float(method.penalty()), method.Omega, Delta


def test_the_conversions_give_the_peer_penalties(rng):
    """Avalanche: SI adds (si_lambda / 2) sum Omega Delta^2, EWC ewc_lambda sum F Delta^2,
    MAS lambda_reg sum Omega Delta^2 to the loss; synapse adds c sum Omega Delta^2."""
    lam = 0.7
    for method, peer in ((SI(c=lam / 2), lam / 2), (EWC(c=lam), lam), (MAS(c=lam), lam)):
        value, Omega, Delta = penalty_at(method, rng)
        np.testing.assert_allclose(value, peer * np.sum(Omega * Delta ** 2), rtol=1e-12)
