"""The oracle comparison itself (:mod:`oracle_helpers`) can fail: a misspelt check, an output off
by a relative 1e-6, a NaN, a wrong shape, a missing key or an update that did nothing.

The engine under test is the float64 NumPy oracle itself, so an unperturbed run must pass (each
failure below is the perturbation's, not the helper's) and nothing here compiles.
"""

import numpy as np
import pytest

from oracle_helpers import (CHECKS, RTOL, assert_close, compare_with_oracle, data, oracle, params,
                            run_check)


class Skewed:
    """The oracle with one check's output multiplied by ``by`` (the others untouched)."""

    def __init__(self, check, by):
        self.inner, self.check, self.by = oracle(params()), check, by

    def _skew(self, check, value):
        return value * self.by if check == self.check else value

    def set_params(self, p):
        self.inner.set_params(p)

    def get_params(self):
        p = self.inner.get_params()
        return {**p, "Whh": self._skew("train_step", p["Whh"])}

    def forward(self, x, lengths):
        return self._skew("forward", self.inner.forward(x, lengths))

    def loss(self, x, y, lengths):
        return self._skew("loss", self.inner.loss(x, y, lengths))

    def gradients(self, x, y, lengths):
        g = self.inner.gradients(x, y, lengths)
        return {**g, "bh": self._skew("gradients", g["bh"])}

    def train_step(self, x, y, lr, lengths):
        return self.inner.train_step(x, y, lr, lengths)


def compare(engine, check, batched=True):
    compare_with_oracle(engine, check, batched, RTOL["float64"], params=params(), data=data())


@pytest.mark.parametrize("check", ["gradient", "train-step", "Forward", "", "fwd"])
def test_an_unknown_check_raises(check):
    with pytest.raises(ValueError, match="unknown check"):
        compare(oracle(params()), check)
    x, y, lengths = data()
    with pytest.raises(ValueError, match="unknown check"):
        run_check(oracle(params()), check, x, y, lengths)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "single"])
@pytest.mark.parametrize("check", CHECKS)
def test_the_oracle_against_itself_passes_and_a_skewed_output_fails(check, batched):
    compare(Skewed(check, 1.0), check, batched)                       # the control
    assert compare_with_oracle(oracle(params()), check, batched, 0, params=params(),
                               data=data()) is not None               # deterministic: exact
    with pytest.raises(AssertionError, match=f"{check} .*relative error"):
        compare(Skewed(check, 1 + 1e-6), check, batched)
    with pytest.raises(AssertionError, match="NaN or Inf"):
        compare(Skewed(check, np.nan), check, batched)


def test_a_train_step_that_does_not_update_fails():
    class Frozen(Skewed):
        def train_step(self, x, y, lr, lengths):
            return self.inner.loss(x, y, lengths)                     # right loss, no update
    with pytest.raises(AssertionError, match="loss at step 1"):
        compare(Frozen("train_step", 1.0), "train_step")
    with pytest.raises(AssertionError, match="did not move"):          # no steps: nothing shown
        compare_with_oracle(oracle(params()), "train_step", True, RTOL["float64"],
                            params=params(), data=data(), steps=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_fail(bad):
    want = np.array([1.0, 2.0, 3.0])
    got = want.copy()
    got[1] = bad
    with pytest.raises(AssertionError, match="NaN or Inf"):
        assert_close(got, want, 1.0, "probs")
    with pytest.raises(AssertionError, match="reference has NaN or Inf"):
        assert_close(want, got, 1.0, "probs")
    with pytest.raises(AssertionError, match="NaN or Inf"):
        assert_close(got, got, 1.0, "probs")                          # NaN == NaN is no pass


@pytest.mark.parametrize("got_shape, want_shape", [((3,), (1, 3)), ((3, 1), (3,)), ((), (1,)),
                                                   ((2, 3), (3, 2))])
def test_a_shape_mismatch_fails_even_where_it_would_broadcast(got_shape, want_shape):
    got, want = np.ones(got_shape), np.ones(want_shape)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(got, want, 1.0, "probs")


def test_tolerance_is_relative_to_the_reference_scale_and_zero_is_exact():
    want = np.array([100.0, 1e-3])
    assert_close(want + [0.0, 5e-8], want, 1e-9, "small entry, large scale")  # 5e-10 of 100
    with pytest.raises(AssertionError, match="relative error 1e-08 > 1e-09"):
        assert_close(want + [1e-6, 0.0], want, 1e-9, "large entry")
    assert_close(want.copy(), want, 0, "exact")
    with pytest.raises(AssertionError, match="relative error"):
        assert_close(np.nextafter(want, 0), want, 0, "one ulp")
    assert_close(np.zeros(3), np.zeros(3), 0, "all zero")


def test_mappings_need_the_same_keys():
    want = {"a": np.ones(2), "b": 1.0}
    assert_close(dict(want), want, 0, "params")
    with pytest.raises(AssertionError, match="keys"):
        assert_close({"a": np.ones(2)}, want, 0, "params")
    with pytest.raises(AssertionError, match="keys"):
        assert_close({**want, "c": 0.0}, want, 0, "params")
    with pytest.raises(AssertionError, match="params b: relative error"):
        assert_close({**want, "b": 1.5}, want, 0.1, "params")
    with pytest.raises(AssertionError, match="not a mapping"):
        assert_close(np.ones(2), want, 0, "params")
