"""BrierLM: the two-sample estimator against an enumeration oracle; the combination; the temperature sampler."""

import itertools
import math

import pytest
import torch
from calm_support import one_thread_fixture  # noqa: F401 (fixtures)

from reference.calm.brierlm import brier_estimates, brier_n, brierlm, select_with_temperature


def _random_law(vocab, length, seed):
    g = torch.Generator().manual_seed(seed)
    outcomes = list(itertools.product(range(vocab), repeat=length))
    probs = torch.rand(len(outcomes), generator=g, dtype=torch.float64) ** 3  # uneven
    return outcomes, probs / probs.sum()


def _oracle(outcomes, probs, y, n):
    """float64 loop: 2 P_n(y[:n]) - sum_u P_n(u)^2 with P_n the law of the n-prefix."""
    marg = {}
    for o, p in zip(outcomes, probs.tolist(), strict=True):
        marg[o[:n]] = marg.get(o[:n], 0.0) + p
    return 2 * marg.get(tuple(y[:n]), 0.0) - sum(v * v for v in marg.values())


@pytest.mark.parametrize("seed", [0, 1])
def test_two_sample_estimator_is_unbiased_by_enumeration(seed):
    outcomes, probs = _random_law(3, 4, seed)
    table = torch.tensor(outcomes)  # (81, 4)
    k = len(outcomes)
    i1, i2 = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    x1, x2 = table[i1.reshape(-1)], table[i2.reshape(-1)]
    weights = (probs[:, None] * probs[None, :]).reshape(-1)
    for y in ([0, 1, 2, 0], list(outcomes[int(probs.argmax())])):
        ys = torch.tensor(y).expand(k * k, 4)
        est = brier_estimates(x1, x2, ys)  # (k*k, 4)
        expectation = (weights[:, None] * est).sum(0)
        want = torch.tensor([_oracle(outcomes, probs, y, n) for n in range(1, 5)], dtype=torch.float64)
        torch.testing.assert_close(expectation, want, rtol=1e-12, atol=1e-12)


def test_estimates_by_hand_and_prefix_rule():
    y = torch.tensor([[1, 2, 3, 4]])
    x1 = torch.tensor([[1, 2, 9, 4]])  # matches the 1- and 2-gram, not beyond (the 4th token alone does not count)
    x2 = torch.tensor([[1, 2, 9, 4]])  # identical to x1
    assert brier_estimates(x1, x2, y).tolist() == [[1.0, 1.0, -1.0, -1.0]]
    x2 = torch.tensor([[1, 5, 3, 4]])
    assert brier_estimates(x1, x2, y).tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert brier_n(torch.tensor([[1], [0]]), torch.tensor([[0], [0]]), torch.tensor([[1], [1]])) == [0.0]


def test_brierlm_is_100_times_geometric_mean():
    b = [0.4, 0.2, 0.1, 0.05]
    assert brierlm(b) == pytest.approx(100 * (0.4 * 0.2 * 0.1 * 0.05) ** 0.25, rel=1e-12)
    assert brierlm([0.4, 0.2, 0.1, -0.01]) == 0.0
    with pytest.raises(ValueError, match="Brier-1..4"):
        brierlm([0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        brierlm([0.1, 0.2, math.nan, 0.1])


def test_bad_inputs():
    ok = torch.zeros(3, 4, dtype=torch.long)
    with pytest.raises(TypeError, match="integer token ids"):
        brier_estimates(ok.float(), ok, ok)
    with pytest.raises(TypeError, match="torch.Tensor"):
        brier_estimates([[0]], ok, ok)
    with pytest.raises(ValueError, match="same shape"):
        brier_estimates(ok, ok[:2], ok)
    with pytest.raises(ValueError, match="positions, n_max"):
        brier_estimates(ok[0], ok[0], ok[0])
    with pytest.raises(ValueError, match="int >= 1"):
        select_with_temperature(ok[None], 0)


def test_temperature_sampler_weights_are_binomial_counts():
    a, b, c = [1, 1], [2, 2], [3, 3]
    cand = torch.tensor([a, a, a, b, b, c])[:, None, :]  # (N=6, P=1, K=2): counts 3, 2, 1
    g = torch.Generator().manual_seed(0)
    draws = [tuple(select_with_temperature(cand, 2, generator=g)[0].tolist()) for _ in range(3000)]
    # T = 1/2: weights C(3,2)=3, C(2,2)=1, C(1,2)=0
    assert draws.count((3, 3)) == 0
    assert draws.count((1, 1)) / 3000 == pytest.approx(0.75, abs=0.03)
    draws1 = [tuple(select_with_temperature(cand, 1, generator=g)[0].tolist()) for _ in range(3000)]
    assert draws1.count((3, 3)) / 3000 == pytest.approx(1 / 6, abs=0.03)  # T = 1: proportional to counts
    # T = 1/4: nobody seen 4 times -> falls back to n = 3: only the tuple seen 3 times
    assert all(tuple(select_with_temperature(cand, 4, generator=g)[0].tolist()) == (1, 1) for _ in range(20))


def test_standard_error_is_std_over_sqrt_positions():
    from reference.calm.brierlm import brier_n_stderr

    g = torch.Generator().manual_seed(0)
    x1, x2, y = (torch.randint(0, 2, (50, 4), generator=g) for _ in range(3))
    est = brier_estimates(x1, x2, y)
    want = [float(est[:, j].std()) / 50**0.5 for j in range(4)]
    assert brier_n_stderr(x1, x2, y) == pytest.approx(want, rel=1e-12)
