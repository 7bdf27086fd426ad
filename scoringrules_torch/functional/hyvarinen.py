r"""Hyvärinen score (score matching) and denoising score matching.

For a predictive density :math:`p` on :math:`\mathbb R^d` and an observation :math:`x`,

.. math::

    \mathrm{H}(p, x) = 2\,\Delta_x \log p(x) + \big\|\nabla_x \log p(x)\big\|^2
    = 2\,\mathrm{tr}\,\nabla_x^2 \log p(x) + \big\|\nabla_x \log p(x)\big\|^2 .

Negatively oriented (lower is better); the paper's positively oriented score is :math:`S = -\mathrm H`. It needs
:math:`p` only up to its normalising constant, and (under the usual boundary conditions) its expectation under
the true density :math:`q` is :math:`\mathbb E_q\|\nabla\log p - \nabla \log q\|^2 - \mathbb E_q\|\nabla\log q\|^2`,
so it is strictly proper relative to smooth positive densities (Hyvärinen 2005). Diffusion losses estimate its
expectation for the noise-smoothed density by denoising score matching (Vincent 2011); see
:func:`denoising_score_matching`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    StudentT,
)

from .._internal.checks import (
    check_choice,
    check_floating,
    check_positive_number,
    check_real_number,
    compute_dtype,
    tracing,
)
from .._internal.reduction import check_reduction, reduce
from .._internal.registry import TypeRegistry
from .crps_closed import Logistic

__all__ = [
    "HYVARINEN_METHODS",
    "denoising_score_matching",
    "hyvarinen_score",
    "register_hyvarinen",
]

#: Ways to evaluate the Laplacian term.
HYVARINEN_METHODS = ("exact", "hutchinson", "sliced")
_PROBES = ("rademacher", "gaussian")
_KINDS = ("log_prob", "score")
_PREDICTIONS = ("score", "epsilon")

ScoreLaplacianFn = Callable[
    [Distribution, torch.Tensor], "tuple[torch.Tensor, torch.Tensor] | None"
]
_REGISTRY: TypeRegistry[ScoreLaplacianFn] = TypeRegistry("register_hyvarinen")


def register_hyvarinen(type_p: type) -> Callable[[ScoreLaplacianFn], ScoreLaplacianFn]:
    r"""Decorator registering the closed-form gradient and Laplacian of ``log_prob`` for a distribution class.

    The decorated function receives ``(dist, x)`` with ``x`` shaped ``(*batch, *dist.event_shape)`` and returns
    ``(score, laplacian)``: :math:`\nabla_x \log p(x)` shaped like ``x`` (broadcast with the distribution) and
    :math:`\Delta_x \log p(x)` shaped like the batch; or ``None`` to fall back to autograd. Subclasses are
    covered through the MRO (the most specific registered class wins). ``hyvarinen_score(dist, x)`` then
    returns ``2 * laplacian + (score ** 2).sum(event dims)`` without autograd.

    Args:
        type_p: a subclass of :class:`torch.distributions.Distribution`.

    Returns:
        The decorator.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> from scoringrules_torch.functional.hyvarinen import hyvarinen_score, register_hyvarinen
        >>> class UnitNormal(Normal):
        ...     pass
        >>> @register_hyvarinen(UnitNormal)
        ... def _unit(dist, x):
        ...     return -(x - dist.loc), -torch.ones_like(x)
        >>> hyvarinen_score(UnitNormal(torch.zeros(1), torch.ones(1)), torch.tensor([2.0]))  # -2 + 4
        tensor(2.)
    """
    return _REGISTRY.register(type_p)


def _closed_form(dist: Distribution, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    fn = _REGISTRY.dispatch(type(dist))
    return None if fn is None else fn(dist, x)


def _sum_event(t: torch.Tensor, k: int) -> torch.Tensor:
    return t if k == 0 else t.sum(dim=tuple(range(-k, 0)))


def _cast(*tensors: torch.Tensor) -> list[torch.Tensor]:
    ts = [t if isinstance(t, torch.Tensor) else torch.as_tensor(t) for t in tensors]
    dtype = compute_dtype(*[t for t in ts if t.is_floating_point()])
    return [t.to(dtype) for t in ts]


# --------------------------------------------------------------------------------------------------------------
# Closed forms: (grad log p, Laplacian log p)
# --------------------------------------------------------------------------------------------------------------
@register_hyvarinen(Normal)
def _normal(dist: Normal, x: torch.Tensor):
    x, loc, scale = _cast(x, dist.loc, dist.scale)
    prec = scale.pow(-2)
    g = -(x - loc) * prec
    return g, (-prec).expand_as(g)


@register_hyvarinen(StudentT)
def _student_t(dist: StudentT, x: torch.Tensor):
    x, nu, loc, scale = _cast(x, dist.df, dist.loc, dist.scale)
    z = (x - loc) / scale
    den = nu + z * z
    g = -(nu + 1.0) * z / (scale * den)
    lap = -(nu + 1.0) * (nu - z * z) / (scale * scale * den * den)
    return g, lap.expand_as(g)


@register_hyvarinen(Logistic)
def _logistic(dist: Logistic, x: torch.Tensor):
    x, loc, scale = _cast(x, dist.loc, dist.scale)
    t = torch.tanh(0.5 * (x - loc) / scale)
    g = -t / scale
    return g, (-(1.0 - t * t) / (2.0 * scale * scale)).expand_as(g)


@register_hyvarinen(MultivariateNormal)
def _mvn(dist: MultivariateNormal, x: torch.Tensor):
    x, loc, tril = _cast(x, dist.loc, dist.scale_tril)
    d = x.shape[-1]
    diff = x - loc
    batch = torch.broadcast_shapes(diff.shape[:-1], tril.shape[:-2])
    tril_b = tril.expand(batch + (d, d))
    u = torch.linalg.solve_triangular(tril_b, diff.expand(batch + (d,)).unsqueeze(-1), upper=False)
    g = -torch.linalg.solve_triangular(tril_b.mT, u, upper=True).squeeze(-1)
    eye = torch.eye(d, dtype=tril.dtype, device=tril.device)
    tril_inv = torch.linalg.solve_triangular(tril, eye, upper=False)
    lap = -tril_inv.pow(2).sum((-1, -2))  # -tr(Sigma^{-1}) = -||L^{-1}||_F^2
    return g, lap.expand(batch)


@register_hyvarinen(LowRankMultivariateNormal)
def _lowrank_mvn(dist: LowRankMultivariateNormal, x: torch.Tensor):
    x, loc, prec = _cast(x, dist.loc, dist.precision_matrix)
    g = -(prec @ (x - loc).unsqueeze(-1)).squeeze(-1)
    lap = -torch.diagonal(prec, dim1=-2, dim2=-1).sum(-1)
    return g, lap.expand(g.shape[:-1])


@register_hyvarinen(Independent)
def _independent(dist: Independent, x: torch.Tensor):
    res = _closed_form(dist.base_dist, x)
    if res is None:
        return None
    g, lap = res
    return g, _sum_event(lap, dist.reinterpreted_batch_ndims)


@register_hyvarinen(MixtureSameFamily)
def _mixture(dist: MixtureSameFamily, x: torch.Tensor):
    # grad log p = sum_k r_k g_k;  Lap log p = sum_k r_k (Lap_k + |g_k|^2) - |grad log p|^2,
    # with responsibilities r_k = softmax_k(log w_k + log p_k(x)).
    e = len(dist.event_shape)
    comp = dist.component_distribution
    xk = x.unsqueeze(-1 - e)
    res = _closed_form(comp, xk)
    if res is None:
        return None
    gk, lapk = res
    logits = dist.mixture_distribution.logits + comp.log_prob(xk)
    r = torch.softmax(logits.to(gk.dtype), dim=-1)
    g = (r.reshape(r.shape + (1,) * e) * gk).sum(-1 - e)
    lap = (r * (lapk + _sum_event(gk * gk, e))).sum(-1) - _sum_event(g * g, e)
    return g, lap


# --------------------------------------------------------------------------------------------------------------
# Autograd path
# --------------------------------------------------------------------------------------------------------------
def _probe(
    shape: torch.Size, kind: str, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return bits.to(like.dtype) * 2.0 - 1.0


def _grad_or_zeros(out: torch.Tensor, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    if not out.requires_grad:
        return torch.zeros_like(x)
    (h,) = torch.autograd.grad(
        out, x, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    return torch.zeros_like(x) if h is None else h


def _autograd_values(
    fn: Callable[[torch.Tensor], torch.Tensor],
    kind: str,
    x: torch.Tensor,
    event_dims: int,
    method: str,
    num_probes: int,
    probe: str,
    generator: torch.Generator | None,
) -> torch.Tensor:
    outer = torch.is_grad_enabled()
    batch_shape = x.shape[: x.dim() - event_dims]
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        out = fn(x)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"the model callable must return a torch.Tensor; got {type(out).__name__}"
            )
        if kind == "log_prob":
            if out.shape != batch_shape:
                raise ValueError(
                    f"the log-density must return one value per observation, shape {tuple(batch_shape)} for "
                    f"target {tuple(x.shape)} with event_dims={event_dims}; got {tuple(out.shape)}"
                )
            g = _grad_or_zeros(out.sum(), x, create_graph=True)
        else:
            if out.shape != x.shape:
                raise ValueError(
                    f"the score callable must return grad log p(x) shaped like x {tuple(x.shape)}; got "
                    f"{tuple(out.shape)}"
                )
            g = out
        sq = _sum_event(g * g, event_dims)
        if method == "exact":
            dim = math.prod(x.shape[x.dim() - event_dims :])
            gf = g.reshape(batch_shape + (dim,))
            lap = torch.zeros_like(sq)
            for i in range(dim):
                h = _grad_or_zeros(gf[..., i].sum(), x, create_graph=outer)
                lap = lap + h.reshape(batch_shape + (dim,))[..., i]
            values = 2.0 * lap + sq
        else:
            values = torch.zeros_like(sq)
            for _ in range(num_probes):
                v = _probe(x.shape, probe, x, generator)
                gv = _sum_event(g * v, event_dims)
                h = _grad_or_zeros(gv.sum(), x, create_graph=outer)
                vhv = _sum_event(h * v, event_dims)
                values = values + 2.0 * vhv + (sq if method == "hutchinson" else gv * gv)
            values = values / num_probes
    return values if outer else values.detach()


# --------------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------------
def check_event_dims(event_dims, *, allow_none: bool = True) -> int | None:
    """Validate ``event_dims``: a non-negative int (or ``None`` where allowed)."""
    if event_dims is None and allow_none:
        return None
    if not isinstance(event_dims, int) or isinstance(event_dims, bool) or event_dims < 0:
        raise ValueError(f"event_dims must be a non-negative int; got {event_dims!r}")
    return event_dims


def check_hyvarinen_settings(
    *, method: str, kind: str, event_dims: int | None, num_probes: int, probe: str
) -> None:
    """Validate the settings of :func:`hyvarinen_score` (also used by ``HyvarinenScore`` at construction)."""
    check_choice("method", method, HYVARINEN_METHODS)
    check_choice("kind", kind, _KINDS)
    check_choice("probe", probe, _PROBES)
    if not isinstance(num_probes, int) or isinstance(num_probes, bool) or num_probes < 1:
        raise ValueError(f"num_probes must be a positive int; got {num_probes!r}")
    check_event_dims(event_dims)


def hyvarinen_score(
    model: Distribution | Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    *,
    method: str = "exact",
    kind: str = "log_prob",
    event_dims: int | None = None,
    num_probes: int = 1,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Hyvärinen score of a density (or a score function) at observations; lower is better.

    .. math::

        \mathrm H(p, x) = 2\,\Delta_x \log p(x) + \big\|\nabla_x \log p(x)\big\|^2 .

    Negatively oriented: the paper's :math:`S(p, x) = -\mathrm H(p, x)`. Strictly proper relative to smooth
    positive densities; invariant to the normalising constant of :math:`p`; not bounded below in general and
    not in the units of :math:`x` (it scales like :math:`1/x^2`).

    What ``model`` can be (``kind`` says which for callables):

    * a ``torch.distributions.Distribution``: closed forms are registered (:func:`register_hyvarinen`) for
      ``Normal``, ``StudentT``, :class:`~scoringrules_torch.functional.crps_closed.Logistic`,
      ``MultivariateNormal`` (full or diagonal covariance), ``LowRankMultivariateNormal``, ``Independent`` of
      any of these, and ``MixtureSameFamily`` of any of these (e.g.
      :func:`~scoringrules_torch.functional.log.gaussian_mixture`); any other distribution goes through
      autograd on ``log_prob``. The closed form is used with ``method="exact"``;
    * ``kind="log_prob"`` (default): a callable ``x -> log p(x)`` (unnormalised is fine) returning shape
      ``batch``;
    * ``kind="score"``: a callable ``x -> \nabla_x \log p(x)`` returning the shape of ``x`` (a score network);
      then :math:`\Delta_x\log p = \nabla\cdot s`.

    Callables must treat observations independently (observation :math:`b`'s output depends only on
    :math:`x_b`: no batch norm in training mode), because per-observation derivatives are taken from the
    gradient of a batch sum.

    Methods for the Laplacian (``H`` for the Hessian of :math:`\log p`, :math:`s = \nabla\log p`; probes
    :math:`v` with :math:`\mathbb E[vv^\top] = I`):

    * ``"exact"``: closed form, or :math:`D = \prod` event-shape backward passes (fine for small :math:`D`);
    * ``"hutchinson"``: :math:`2 v^\top H v + \|s\|^2`, averaged over ``num_probes`` probes; unbiased, one
      backward pass per probe (Hutchinson 1989; the variance-reduced sliced score matching of Song et al. 2019);
    * ``"sliced"``: :math:`2 v^\top H v + (v^\top s)^2`, sliced score matching (Song et al. 2019); unbiased,
      higher variance than ``"hutchinson"``.

    ``probe`` is ``"rademacher"`` (entries :math:`\pm1`, lowest variance for the trace) or ``"gaussian"``.
    Gradients (of every order, with ``create_graph``) flow to the model's parameters and to ``target``. The
    autograd path evaluates with gradients enabled even under ``torch.no_grad()`` and then detaches.

    Args:
        model: a Distribution, a log-density callable or a score callable.
        target: observations.
        method: ``"exact"`` | ``"hutchinson"`` | ``"sliced"``.
        kind: ``"log_prob"`` | ``"score"``, what a callable ``model`` returns (must stay ``"log_prob"`` for a
            Distribution).
        event_dims: number of trailing event dimensions of ``target`` for callables (default 1:
            ``(*batch, d)``); for a Distribution it is ``len(model.event_shape)``.
        num_probes: probes per observation for the stochastic methods (averaged).
        probe: ``"rademacher"`` | ``"gaussian"``.
        generator: optional ``torch.Generator`` for the probes.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - target: :math:`(*B, *E)`; for a Distribution :math:`E` is its ``event_shape`` and :math:`B` broadcasts
          with its ``batch_shape``; for callables :math:`E` has ``event_dims`` dimensions
        - output: scalar, or :math:`(*B)` (broadcast) with ``reduction="none"``.

    Returns:
        The Hyvärinen score, in the promoted dtype of target and parameters (at least float32).

    Examples:
        >>> import torch
        >>> from torch.distributions import MultivariateNormal
        >>> from scoringrules_torch.functional.hyvarinen import hyvarinen_score
        >>> mvn = MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
        >>> hyvarinen_score(mvn, x, reduction="none")  # -2 tr(I) + |x|^2
        tensor([-4.,  1.])
        >>> logp = lambda x: -0.5 * x.pow(2).sum(-1)  # the same model, unnormalised
        >>> hyvarinen_score(logp, x, reduction="none").detach()  # autograd
        tensor([-4.,  1.])
        >>> hyvarinen_score(lambda x: -x, x, kind="score", method="hutchinson", reduction="none").detach()
        tensor([-4.,  1.])

    References:
        Hyvärinen, A. (2005). Estimation of non-normalized statistical models by score matching. JMLR 6.
        Hutchinson, M. F. (1989). A stochastic estimator of the trace of the influence matrix. Commun. Stat.
        Song, Y., Garg, S., Shi, J. & Ermon, S. (2019). Sliced score matching. UAI.
        Parry, M., Dawid, A. P. & Lauritzen, S. (2012). Proper local scoring rules. Ann. Statist. 40(1).
    """
    check_reduction(reduction)
    check_hyvarinen_settings(method=method, kind=kind, event_dims=event_dims, num_probes=num_probes, probe=probe)
    check_floating("target", target)
    x = target.to(compute_dtype(target))

    if isinstance(model, Distribution):
        if kind != "log_prob":
            raise ValueError(
                "kind='score' is for score callables; a Distribution is scored through its log_prob "
                "(leave kind='log_prob')"
            )
        ev = len(model.event_shape)
        if event_dims is not None and event_dims != ev:
            raise ValueError(
                f"event_dims={event_dims} disagrees with {type(model).__name__}.event_shape "
                f"{tuple(model.event_shape)}; leave event_dims=None for a Distribution"
            )
        if x.dim() < ev or tuple(x.shape[x.dim() - ev :]) != tuple(model.event_shape):
            raise ValueError(
                f"target must have shape (*batch, *event_shape) with event_shape "
                f"{tuple(model.event_shape)} for {type(model).__name__}; got {tuple(target.shape)}"
            )
        try:
            batch = torch.broadcast_shapes(x.shape[: x.dim() - ev], model.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"the batch dimensions of target {tuple(x.shape[: x.dim() - ev])} do not broadcast with the "
                f"distribution's batch_shape {tuple(model.batch_shape)}"
            ) from None
        if method == "exact":
            res = _closed_form(model, x)
            if res is not None:
                g, lap = res
                return reduce(2.0 * lap + _sum_event(g * g, ev), reduction)
        x = x.expand(batch + tuple(model.event_shape))
        values = _autograd_values(
            model.log_prob, "log_prob", x, ev, method, num_probes, probe, generator
        )
        return reduce(values, reduction)

    if not callable(model):
        raise TypeError(
            f"model must be a torch.distributions.Distribution or a callable; got {type(model).__name__}"
        )
    ev = 1 if event_dims is None else event_dims
    if x.dim() < ev:
        raise ValueError(
            f"target must have at least event_dims={ev} dimensions; got shape {tuple(target.shape)}"
        )
    values = _autograd_values(model, kind, x, ev, method, num_probes, probe, generator)
    return reduce(values, reduction)


def _per_observation(
    name: str, value: float | torch.Tensor, batch_shape: torch.Size, like: torch.Tensor, *, positive: bool
) -> torch.Tensor:
    """``value`` (a number or a tensor broadcastable to ``batch_shape``) as a ``batch_shape`` tensor; finite, and
    positive if ``positive`` (tensor values are checked outside ``torch.compile`` tracing)."""
    if isinstance(value, torch.Tensor):
        check_floating(name, value)
        if value.device != like.device:
            raise ValueError(f"{name} must be on the device of target ({like.device}); got {value.device}")
        if not tracing():
            v = value.detach()
            bad = ~torch.isfinite(v) | (v <= 0 if positive else torch.zeros_like(v, dtype=torch.bool))
            if bool(bad.any()):
                what = "positive and finite" if positive else "finite"
                raise ValueError(f"{name} must be {what}; got {v[bad].flatten()[0].item()!r}")
        try:
            return value.to(like.dtype).expand(batch_shape)
        except RuntimeError:
            raise ValueError(
                f"{name} must be a number or a tensor broadcastable to the batch shape "
                f"{tuple(batch_shape)} (one value per observation); got shape {tuple(value.shape)}"
            ) from None
    if positive:
        v = check_positive_number(name, value)
    else:
        v = check_real_number(name, value)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite; got {value!r}")
    return torch.full(batch_shape, v, dtype=like.dtype, device=like.device)


def denoising_score_matching(
    score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    *,
    sigma: float | torch.Tensor,
    alpha: float | torch.Tensor = 1.0,
    prediction: str = "score",
    event_dims: int = 1,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Denoising score matching loss: the estimator of the Hyvärinen objective that diffusion heads train with.

    The target is noised as :math:`\tilde x = \alpha x + \sigma\varepsilon`, :math:`\varepsilon\sim N(0, I)`,
    and the model is asked for the score of the noisy density:

    .. math::

        \ell_{\text{score}} = \big\| s(\tilde x, \sigma) + \varepsilon/\sigma \big\|^2, \qquad
        \ell_{\text{epsilon}} = \big\| \hat\varepsilon(\tilde x, \sigma) - \varepsilon \big\|^2
        = \sigma^2\,\ell_{\text{score}}\ \text{ with } s = -\hat\varepsilon/\sigma .

    **Link to the Hyvärinen score** (Vincent 2011). Let :math:`q_\sigma` be the density of :math:`\tilde x`.
    Gaussian integration by parts, :math:`\mathbb E[\varepsilon\cdot f(\alpha x+\sigma\varepsilon)] = \sigma\,
    \mathbb E[\nabla\cdot f(\tilde x)]`, gives for every model :math:`s`

    .. math::

        \mathbb E_{x,\varepsilon}\,\ell_{\text{score}}
        = \mathbb E_{\tilde x\sim q_\sigma}\big[2\,\nabla\!\cdot s(\tilde x) + \|s(\tilde x)\|^2\big] + d/\sigma^2
        = \mathbb E_{q_\sigma}\big[\mathrm H(s, \tilde x)\big] + d/\sigma^2,

    the expected Hyvärinen score (``hyvarinen_score(s, x_noisy, kind="score")``) of the noise-smoothed data
    plus a constant that does not depend on the model (:math:`d` = number of event elements). Minimising it
    fits :math:`s` to :math:`\nabla\log q_\sigma`. With per-observation :math:`\sigma` (a noise schedule:
    draw the levels yourself, e.g. ``sigmas[torch.randint(len(sigmas), batch)]``) the identity holds level by
    level, and ``"epsilon"`` weights level :math:`\sigma` by :math:`\lambda(\sigma)=\sigma^2` (Song & Ermon
    2019; the DDPM/MAR loss with ``alpha`` :math:`=\sqrt{\bar\alpha_t}`, ``sigma`` :math:`=\sqrt{1-\bar\alpha_t}`,
    up to MAR's mean over dimensions instead of a sum). Negatively oriented (lower is better).

    Args:
        score_fn: ``score_fn(x_noisy, sigma) -> output`` shaped like ``target``; ``sigma`` is passed per
            observation, shape ``batch``. The output is the score :math:`s` (``prediction="score"``) or the
            noise :math:`\hat\varepsilon` (``prediction="epsilon"``).
        target: clean observations :math:`x`.
        sigma: noise standard deviation :math:`\sigma > 0` (finite): a number (also a numpy scalar or a 0-d
            tensor) or a tensor broadcastable to ``batch``; non-positive or non-finite values are an error.
        alpha: signal scale :math:`\alpha` (1 for variance-exploding noise, finite): a number or such a tensor.
        prediction: ``"score"`` | ``"epsilon"``.
        event_dims: trailing event dimensions of ``target`` summed in the squared norm (default 1).
        noise: optional :math:`\varepsilon` shaped like ``target`` (drawn if ``None``).
        generator: optional ``torch.Generator`` for drawing the noise.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - target, noise, ``score_fn`` output: :math:`(*B, *E)` with ``event_dims`` dimensions in :math:`E`
        - sigma, alpha: scalar or broadcastable to :math:`(*B)`
        - output: scalar, or :math:`(*B)` with ``reduction="none"``.

    Returns:
        The loss (at least float32).

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.hyvarinen import denoising_score_matching
        >>> x = torch.zeros(3, 2)
        >>> eps = torch.ones(3, 2)
        >>> # the optimal score of N(0, sigma^2 I) noise around x = 0 is -x_noisy / sigma^2: loss 0
        >>> denoising_score_matching(lambda xn, s: -xn / s[:, None] ** 2, x, sigma=0.5, noise=eps)
        tensor(0.)
        >>> denoising_score_matching(lambda xn, s: torch.zeros_like(xn), x, sigma=0.5, noise=eps)  # |eps/s|^2
        tensor(8.)

    References:
        Vincent, P. (2011). A connection between score matching and denoising autoencoders. Neural Comput. 23(7).
        Song, Y. & Ermon, S. (2019). Generative modeling by estimating gradients of the data distribution.
        Ho, J., Jain, A. & Abbeel, P. (2020). Denoising diffusion probabilistic models.
        Li, T. et al. (2024). Autoregressive image generation without vector quantization (MAR).
    """
    check_reduction(reduction)
    check_choice("prediction", prediction, _PREDICTIONS)
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable; got {type(score_fn).__name__}")
    check_floating("target", target)
    check_event_dims(event_dims, allow_none=False)
    if target.dim() < event_dims:
        raise ValueError(
            f"target must have at least event_dims={event_dims} dimensions; got {tuple(target.shape)}"
        )
    batch_shape = target.shape[: target.dim() - event_dims]
    sig = _per_observation("sigma", sigma, batch_shape, target, positive=True)
    alp = _per_observation("alpha", alpha, batch_shape, target, positive=False)
    if noise is None:
        noise = torch.randn(
            target.shape, generator=generator, dtype=target.dtype, device=target.device
        )
    else:
        check_floating("noise", noise)
        if noise.shape != target.shape:
            raise ValueError(
                f"noise must have the shape of target {tuple(target.shape)}; got {tuple(noise.shape)}"
            )
    expand = batch_shape + (1,) * event_dims
    sig_e, alp_e = sig.reshape(expand), alp.reshape(expand)
    noisy = alp_e * target + sig_e * noise
    out = score_fn(noisy, sig)
    if not isinstance(out, torch.Tensor) or out.shape != target.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"score_fn must return a tensor shaped like target {tuple(target.shape)}; got {got}"
        )
    dtype = compute_dtype(out, target)
    if prediction == "score":
        resid = out.to(dtype) + noise.to(dtype) / sig_e.to(dtype)
    else:
        resid = out.to(dtype) - noise.to(dtype)
    return reduce(_sum_event(resid * resid, event_dims), reduction)
