r"""Logarithmic score (negative log-likelihood) and Gaussian-mixture constructors (the GIVT head family).

The logarithmic score of a predictive density :math:`p` at an observation :math:`y` is

.. math::

    \mathrm{LogS}(p, y) = -\log p(y),

negatively oriented (lower is better; the positively oriented score of Good (1952) is :math:`\log p(y)`) and
strictly proper. Its expectation under the true :math:`q` is the cross-entropy
:math:`H(q) + \mathrm{KL}(q\,\|\,p)`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from .._internal.checks import DTypeError, check_floating, compute_dtype
from .._internal.reduction import check_reduction, reduce

__all__ = ["gaussian_mixture", "log_score", "normal_mixture"]


def log_score(
    dist: Distribution | Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    *,
    event_dims: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Logarithmic score :math:`-\log p(y)` of a distribution or log-density; lower is better.

    .. math::

        \mathrm{LogS}(p, y) = -\log p(y).

    Negatively oriented (the paper's :math:`S(p, y) = \log p(y)` is :math:`-\mathrm{LogS}`); strictly proper
    relative to densities; the expected score is the cross-entropy. For a ``Distribution`` the value is
    ``-dist.log_prob(target)``: event dimensions are summed by ``log_prob`` (one value per observation), and
    every family in ``torch.distributions`` (and the mixtures built by :func:`gaussian_mixture`) evaluates the
    density in log space, so the score stays finite far in the tails (e.g. 800.92 for a standard normal at 40,
    where the density itself underflows in float64). For a discrete distribution it is the negative
    log-probability mass (cross-entropy).

    ``dist`` may also be a callable ``f(target) -> log p(target)`` returning the **joint** log-density of each
    observation, one value per observation: shape ``target.shape[:-event_dims]`` (``event_dims`` trailing event
    dimensions, default 1, as in ``hyvarinen_score``; pass ``event_dims=0`` for a univariate callable that returns
    ``target.shape``). Any other shape is an error: in particular a callable returning per-element log-densities
    (shape ``target.shape`` with the default ``event_dims=1``) must sum them over the event dimensions itself
    (``.sum(-1)``; that is the joint log-density of independent components) — averaging them silently would
    divide the score by ``d``. Use unnormalised callables only if the normaliser does not depend on what you
    optimise.

    Args:
        dist: a ``torch.distributions.Distribution``, or a log-density callable.
        target: observations; for a ``Distribution`` its trailing dimensions must equal ``dist.event_shape``
            and the leading ones must broadcast with ``dist.batch_shape``.
        event_dims: for a callable, the number of trailing event dimensions of ``target`` (default 1); for a
            Distribution leave it ``None`` (it is ``len(dist.event_shape)``).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - dist: ``batch_shape`` :math:`(*B)`, ``event_shape`` :math:`(*E)`
        - target: :math:`(*B', *E)` with :math:`B'` broadcastable with :math:`B`
        - callable output: ``target.shape[:target.dim() - event_dims]``
        - output: scalar, or the broadcast batch shape with ``reduction="none"``.

    Returns:
        The logarithmic score in the dtype of ``log_prob`` (float32 if that is a half-precision dtype).

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> from scoringrules_torch.functional.log import log_score
        >>> d = Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
        >>> log_score(d, torch.tensor([0.0, 40.0], dtype=torch.float64), reduction="none")
        tensor([  0.9189, 800.9189], dtype=torch.float64)
        >>> log_score(lambda y: -0.5 * y.pow(2).sum(-1), torch.zeros(3, 2))  # unnormalised, callable
        tensor(0.)

    References:
        Good, I. J. (1952). Rational decisions. JRSS B 14(1).
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
        Tschannen, M., Eastwood, C. & Mentzer, F. (2023). GIVT: Generative infinite-vocabulary transformers.
    """
    check_reduction(reduction)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor; got {type(target).__name__}")
    if target.is_complex():
        raise DTypeError(f"target must be a real tensor; got complex dtype {target.dtype}")
    if event_dims is not None and (
        not isinstance(event_dims, int) or isinstance(event_dims, bool) or event_dims < 0
    ):
        raise ValueError(f"event_dims must be a non-negative int or None; got {event_dims!r}")
    if isinstance(dist, Distribution):
        event = tuple(dist.event_shape)
        k = len(event)
        if event_dims is not None and event_dims != k:
            raise ValueError(
                f"event_dims={event_dims} disagrees with {type(dist).__name__}.event_shape {event}; leave "
                f"event_dims=None for a Distribution"
            )
        if target.dim() < k or tuple(target.shape[target.dim() - k :]) != event:
            raise ValueError(
                f"target must have shape (*batch, *event_shape) with event_shape {event} for "
                f"{type(dist).__name__}; got target shape {tuple(target.shape)}"
            )
        try:
            torch.broadcast_shapes(target.shape[: target.dim() - k], dist.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"the batch dimensions of target {tuple(target.shape[: target.dim() - k])} do not broadcast "
                f"with the distribution's batch_shape {tuple(dist.batch_shape)}"
            ) from None
        values = -dist.log_prob(target)
    elif callable(dist):
        out = dist(target)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"the log-density callable must return a torch.Tensor of log p(target); got "
                f"{type(out).__name__}"
            )
        check_floating("log-density output", out)
        ev = 1 if event_dims is None else event_dims
        if target.dim() < ev:
            raise ValueError(
                f"target must have at least event_dims={ev} dimension(s); got shape {tuple(target.shape)}"
            )
        batch = tuple(target.shape[: target.dim() - ev])
        if tuple(out.shape) != batch:
            hint = (
                " It looks like per-element log-densities: return their sum over the event dimension(s) "
                "(the joint log-density), or pass event_dims=0 for a univariate callable."
                if tuple(out.shape) == tuple(target.shape) and ev > 0
                else ""
            )
            raise ValueError(
                f"the log-density callable must return one joint log-density per observation, shape {batch} "
                f"for target {tuple(target.shape)} with event_dims={ev}; got {tuple(out.shape)}.{hint}"
            )
        values = -out
    else:
        raise TypeError(
            f"dist must be a torch.distributions.Distribution or a log-density callable; got "
            f"{type(dist).__name__}"
        )
    # Half-precision log-densities are reduced in float32 (the convention of every score here).
    return reduce(values.to(compute_dtype(values)), reduction)


def _check_mixture_args(means, scales, logits, *, event_rank: int) -> None:
    for name, t in (("means", means), ("scales", scales), ("logits", logits)):
        check_floating(name, t)
    need = 1 + event_rank
    if means.dim() < need:
        shape = "(*batch, K, d)" if event_rank else "(*batch, K)"
        raise ValueError(f"means must have shape {shape}; got {tuple(means.shape)}")
    k = means.shape[-need]
    if logits.dim() < 1 or logits.shape[-1] != k:
        raise ValueError(
            f"logits must have shape (*batch, K) with K={k} components (from means "
            f"{tuple(means.shape)}); got {tuple(logits.shape)}"
        )
    try:
        torch.broadcast_shapes(means.shape, scales.shape)
    except RuntimeError:
        raise ValueError(
            f"scales {tuple(scales.shape)} must broadcast with means {tuple(means.shape)}"
        ) from None


def gaussian_mixture(
    means: torch.Tensor, scales: torch.Tensor, logits: torch.Tensor
) -> MixtureSameFamily:
    r"""Mixture of diagonal Gaussians, the GIVT head family, as a ``torch.distributions`` object.

    .. math::

        p(x) = \sum_{k=1}^K \pi_k \prod_{j=1}^d \mathcal N(x_j;\, \mu_{kj}, \sigma_{kj}^2), \qquad
        \pi = \mathrm{softmax}(\text{logits}).

    Returns ``MixtureSameFamily(Categorical(logits=logits), Independent(Normal(means, scales), 1))``, whose
    ``log_prob`` is a ``logsumexp`` over components (finite in the tails). Pass it to :func:`log_score` or to
    ``hyvarinen_score`` (closed form registered); sample with ``.sample()`` (not reparameterised).

    Args:
        means: component means :math:`\mu`.
        scales: component standard deviations :math:`\sigma > 0` (broadcastable to ``means``).
        logits: unnormalised log mixture weights.

    Shape:
        - means, scales: :math:`(*B, K, d)`
        - logits: :math:`(*B, K)`
        - returned distribution: ``batch_shape`` :math:`(*B)`, ``event_shape`` :math:`(d,)`.

    Returns:
        The mixture distribution.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.log import gaussian_mixture, log_score
        >>> mix = gaussian_mixture(torch.zeros(4, 3, 2), torch.ones(4, 3, 2), torch.zeros(4, 3))
        >>> mix.batch_shape, mix.event_shape
        (torch.Size([4]), torch.Size([2]))
        >>> log_score(mix, torch.zeros(4, 2))  # = log(2 pi), a standard 2-d normal at its mean
        tensor(1.8379)

    References:
        Tschannen, M., Eastwood, C. & Mentzer, F. (2023). GIVT: Generative infinite-vocabulary transformers.
    """
    _check_mixture_args(means, scales, logits, event_rank=1)
    return MixtureSameFamily(Categorical(logits=logits), Independent(Normal(means, scales), 1))


def normal_mixture(
    means: torch.Tensor, scales: torch.Tensor, logits: torch.Tensor
) -> MixtureSameFamily:
    r"""Univariate Gaussian mixture ``MixtureSameFamily(Categorical(logits), Normal(means, scales))``.

    .. math::

        p(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x;\, \mu_k, \sigma_k^2), \qquad
        \pi = \mathrm{softmax}(\text{logits}).

    Univariate (``event_shape == ()``), so it also has a closed-form CRPS
    (``scoringrules_torch.functional.crps_closed.crps``).

    Args:
        means: component means.
        scales: component standard deviations (broadcastable to ``means``).
        logits: unnormalised log mixture weights.

    Shape:
        - means, scales, logits: :math:`(*B, K)`
        - returned distribution: ``batch_shape`` :math:`(*B)`, ``event_shape`` ``()``.

    Returns:
        The mixture distribution.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.log import normal_mixture
        >>> mix = normal_mixture(torch.tensor([-1.0, 1.0]), torch.ones(2), torch.zeros(2))
        >>> mix.mean
        tensor(0.)
    """
    _check_mixture_args(means, scales, logits, event_rank=0)
    return MixtureSameFamily(Categorical(logits=logits), Normal(means, scales))
