r"""The hypergeometric distribution (torch has none)."""

from __future__ import annotations

import torch
from torch.distributions import constraints

from ._base import ParametricDistribution, check_support_size

__all__ = ["Hypergeometric"]


def _lchoose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(a + 1.0) - torch.lgamma(b + 1.0) - torch.lgamma(a - b + 1.0)


class Hypergeometric(ParametricDistribution):
    r"""Number of successes in :math:`k` draws without replacement from :math:`m` successes and :math:`n` failures.

    .. math::

        P(X = x) = \binom{m}{x}\binom{n}{k - x}\Big/\binom{m + n}{k}, \qquad
        \max(0, k - n) \le x \le \min(k, m).

    Mean :math:`km/(m+n)`, variance :math:`kmn(m+n-k)/((m+n)^2(m+n-1))`. The parameter names and order are
    scoringrules' (and R's ``dhyper``): ``crps_hypergeometric(obs, m, n, k)`` / ``logs_hypergeometric``.
    ``cdf`` and ``sample`` enumerate the support :math:`\{0, \dots, \max k\}` (a ``ValueError`` when
    ``batch x (max k + 1)`` exceeds the support cap); no reparameterised sampling (discrete).

    Args:
        m: number of success states in the population (a non-negative integer, as a tensor of any dtype).
        n: number of failure states.
        k: number of draws, :math:`k \le m + n`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import Hypergeometric
        >>> d = Hypergeometric(5, 5, 4)
        >>> d.mean, d.log_prob(torch.tensor(2.0)).exp()  # C(5,2) C(5,2) / C(10,4) = 100 / 210
        (tensor(2.), tensor(0.4762))
    """

    arg_constraints = {
        "m": constraints.nonnegative_integer,
        "n": constraints.nonnegative_integer,
        "k": constraints.nonnegative_integer,
    }
    has_rsample = False
    _param_names = ("m", "n", "k")

    def __init__(self, m, n, k, validate_args=None):
        self._init_params((m, n, k), validate_args)

    def _check_joint(self) -> None:
        if not bool((self.k <= self.m + self.n).all()):
            raise ValueError("Hypergeometric: k (draws) must be <= m + n (population size)")

    def _bounds(self):
        return (self.k - self.n).clamp(min=0.0), torch.minimum(self.k, self.m)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(*self._bounds())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._log_pmf(value)

    def _log_pmf(self, value):
        lo, hi = self._bounds()
        ok = (value == torch.floor(value)) & (value >= lo) & (value <= hi)
        x = torch.where(ok, value, lo)
        lp = _lchoose(self.m, x) + _lchoose(self.n, self.k - x) - _lchoose(self.m + self.n, self.k)
        return torch.where(ok, lp, -torch.inf)

    def support_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(support, pmf)``: the points :math:`0, \dots, \max k` and their masses, shape ``(*batch, K + 1)``.

        One host synchronisation for :math:`\max k`; a ``ValueError`` above the support cap.
        """
        k_max = int(self.k.detach().max().item()) if self.k.numel() else 0
        check_support_size("Hypergeometric", max(self.batch_shape.numel(), 1), k_max + 1)
        support = torch.arange(k_max + 1, dtype=self.k.dtype, device=self.k.device)
        pmf = torch.exp(self._log_pmf(support.view((-1,) + (1,) * len(self.batch_shape))))
        return support, pmf.movedim(0, -1)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        support, pmf = self.support_table()
        return (pmf * (support <= value.unsqueeze(-1)).to(pmf.dtype)).sum(-1)

    def sample(self, sample_shape=()):
        with torch.no_grad():
            support, pmf = self.support_table()
            cdf = torch.cumsum(pmf, -1)
            u = self._uniform(sample_shape).unsqueeze(-1)
            idx = (cdf < u).sum(-1).clamp(max=support.numel() - 1)
            return support[idx]

    @property
    def mean(self):
        return self.k * self.m / (self.m + self.n)

    @property
    def variance(self):
        total = self.m + self.n
        return self.k * self.m * self.n * (total - self.k) / (total * total * (total - 1.0))
