r"""Scores of categorical (and binary) probability forecasts: Brier, ranked probability, ranked logarithmic,
logarithmic and spherical scores, and the Brier and spherical scores computed from logits for large vocabularies.

Layout (as :func:`torch.nn.functional.cross_entropy` and :class:`torch.distributions.Categorical`): probabilities or
logits ``(*batch, K)`` with the class axis **last** (``class_dim=-1``); the target is either integer class indices
``(*batch)`` in ``[0, K)`` (0-based), or a floating one-hot / probability vector ``(*batch, K)``.
"""

from __future__ import annotations

import torch

from .._internal.checks import check_floating, compute_dtype
from .._internal.reduction import check_reduction, reduce
from ._argcheck import check_class_index, check_probabilities

__all__ = [
    "brier_score",
    "brier_score_from_logits",
    "categorical_log_score",
    "rls_score",
    "rps_score",
    "spherical_score",
    "spherical_score_from_logits",
]


# ---------------------------------------------------------------------------------------------------- inputs


def _check_class_dim(class_dim: int, x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(class_dim, int) or isinstance(class_dim, bool):
        raise TypeError(f"class_dim must be an int; got {type(class_dim).__name__}")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a class axis: shape (*batch, K); got a 0-d tensor")
    if not -x.dim() <= class_dim < x.dim():
        raise ValueError(f"class_dim={class_dim} is out of range for {name} of shape {tuple(x.shape)}")
    return x.movedim(class_dim, -1)


def _categorical_inputs(probs, target, class_dim, *, validate_probs=True, name="probs"):
    """Return ``p (*batch, K)`` in the compute dtype and a one-hot/probability target ``o (*batch, K)``."""
    check_floating(name, probs)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor; got {type(target).__name__}")
    p = _check_class_dim(class_dim, probs, name)
    k = p.shape[-1]
    if target.is_floating_point():
        o = _check_class_dim(class_dim, target, "target") if target.dim() == probs.dim() else None
        if o is None or o.shape != p.shape:
            raise ValueError(
                f"a floating target must be a one-hot or probability vector of the shape of {name} "
                f"{tuple(probs.shape)} (class axis at class_dim); got {tuple(target.shape)}. Pass integer class "
                "indices of shape (*batch) otherwise"
            )
        check_probabilities("target", o)
    elif target.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise TypeError(f"target must hold integer class indices or floating probabilities; got {target.dtype}")
    else:
        if target.shape != p.shape[:-1]:
            raise ValueError(
                f"integer class indices must have shape (*batch) = {tuple(p.shape[:-1])} ({name} without its "
                f"class axis); got {tuple(target.shape)}"
            )
        check_class_index("target", target, k)
        o = None
    if p.device != target.device:
        raise ValueError(f"{name} and target must be on the same device; got {p.device} and {target.device}")
    if validate_probs:
        check_probabilities(name, p)
    dtype = compute_dtype(p) if o is None else compute_dtype(p, o)
    p = p.to(dtype)
    if o is None:
        o = torch.nn.functional.one_hot(target.long(), k).to(dtype)
    else:
        o = o.to(dtype)
    return p, o


def _binary_inputs(probs, target, name="probs"):
    check_floating(name, probs)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor; got {type(target).__name__}")
    if target.shape != probs.shape:
        raise ValueError(
            f"with binary=True, {name} (the probability of the event) and target must have the same shape; got "
            f"{tuple(probs.shape)} and {tuple(target.shape)}"
        )
    check_probabilities(name, probs, dim=None)
    if not torch.compiler.is_compiling():
        bad = (target != 0) & (target != 1)
        if bool(bad.any()):
            raise ValueError(f"with binary=True, target must be 0 or 1; got {target[bad].flatten()[0].item()!r}")
    dtype = compute_dtype(probs) if not target.is_floating_point() else compute_dtype(probs, target)
    return probs.to(dtype), target.to(dtype)


# ---------------------------------------------------------------------------------------------------- scores


def brier_score(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    binary: bool = False,
    class_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Brier (quadratic) score of a categorical forecast; lower is better.

    .. math::

        \mathrm{BS}(p, y) = \sum_{k=1}^{K} \big(p_k - \mathbf 1\{y = k\}\big)^2
        = 1 - 2p_y + \|p\|_2^2 ,

    strictly proper (Brier 1950). With ``binary=True`` the forecast is the probability :math:`p` of an event and
    the score is :math:`(p - y)^2`, :math:`y \in \{0, 1\}` (as ``scoringrules.brier_score``); the two-class
    score above is twice that. A floating target :math:`o` (one-hot or a probability vector) gives
    :math:`\sum_k (p_k - o_k)^2`. For logits, use :func:`brier_score_from_logits` (no softmax round-trip).

    Args:
        probs: class probabilities, class axis last by default (or, with ``binary=True``, event probabilities).
        target: integer class indices ``(*batch)`` in ``[0, K)``, or a floating one-hot / probability vector
            ``(*batch, K)``; with ``binary=True``, 0/1 outcomes of ``probs``' shape.
        binary: score the probability of a binary event.
        class_dim: the class axis of ``probs`` (and of a floating target).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - probs: :math:`(*\text{batch}, K)` (``binary=True``: :math:`(*\text{batch})`)
        - target: :math:`(*\text{batch})` indices or :math:`(*\text{batch}, K)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The Brier score.

    Raises:
        ValueError: probabilities outside [0, 1] or not summing to one, class indices out of range.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import brier_score
        >>> p = torch.tensor([[0.7, 0.2, 0.1]])
        >>> brier_score(p, torch.tensor([0]))  # 0.3^2 + 0.2^2 + 0.1^2
        tensor(0.1400)
        >>> brier_score(torch.tensor([0.8]), torch.tensor([1.0]), binary=True)
        tensor(0.0400)

    References:
        Brier, G. W. (1950). Verification of forecasts expressed in terms of probability. Mon. Weather Rev. 78.
    """
    check_reduction(reduction)
    if binary:
        p, y = _binary_inputs(probs, target)
        return reduce((p - y) ** 2, reduction)
    p, o = _categorical_inputs(probs, target, class_dim)
    return reduce(((p - o) ** 2).sum(-1), reduction)


def rps_score(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    class_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Ranked probability score of a forecast over ordered categories; lower is better.

    .. math::

        \mathrm{RPS}(p, y) = \sum_{k=1}^{K} \big(F_k - O_k\big)^2,\qquad F_k = \sum_{j \le k} p_j,\
        O_k = \mathbf 1\{y \le k\},

    the Brier score of the cumulative forecast, a discrete CRPS (Epstein 1969); strictly proper. Not divided by
    :math:`K - 1` (as ``scoringrules.rps_score``). The target is 0-based class indices or a floating one-hot
    vector (``scoringrules``' ``onehot=True``); ``scoringrules`` numbers categories from 1.

    Args:
        probs: probabilities of the ``K`` ordered categories, class axis last by default.
        target: integer category indices ``(*batch)`` in ``[0, K)``, or a floating one-hot / probability
            vector ``(*batch, K)``.
        class_dim: the class axis.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - probs: :math:`(*\text{batch}, K)`; target: :math:`(*\text{batch})` or :math:`(*\text{batch}, K)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The ranked probability score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import rps_score
        >>> p = torch.tensor([[0.2, 0.5, 0.3]])
        >>> rps_score(p, torch.tensor([2]))  # cumulative (0.2, 0.7, 1) vs (0, 0, 1): 0.04 + 0.49
        tensor(0.5300)

    References:
        Epstein, E. S. (1969). A scoring system for probability forecasts of ranked categories. J. Appl. Meteor. 8.
    """
    check_reduction(reduction)
    p, o = _categorical_inputs(probs, target, class_dim)
    return reduce(((p.cumsum(-1) - o.cumsum(-1)) ** 2).sum(-1), reduction)


def rls_score(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    class_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Ranked logarithmic score of a forecast over ordered categories; lower is better.

    .. math::

        \mathrm{RLS}(p, y) = -\sum_{k=1}^{K} \log\big|F_k + O_k - 1\big|
        = -\sum_{k < y} \log(1 - F_k) - \sum_{k \ge y} \log F_k ,

    the sum of the binary log scores of the events :math:`\{Y \le k\}` (Todter & Ahrens 2012); strictly proper.
    The last term is :math:`\log 1 = 0`. :math:`1 - F_k` is computed as the upper cumulative sum
    :math:`\sum_{j > k} p_j`, so confident forecasts keep their precision. Target conventions as
    :func:`rps_score`.

    Args:
        probs: probabilities of the ``K`` ordered categories, class axis last by default.
        target: integer category indices ``(*batch)`` in ``[0, K)``, or a floating one-hot vector.
        class_dim: the class axis.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - probs: :math:`(*\text{batch}, K)`; target: :math:`(*\text{batch})` or :math:`(*\text{batch}, K)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The ranked logarithmic score (``inf`` when an observed cumulative event has probability zero).

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import rls_score
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> rls_score(p, torch.tensor([0]))  # -log F_1 = log 2
        tensor(0.6931)

    References:
        Todter, J. & Ahrens, B. (2012). Generalization of the ignorance score: continuous ranked version and its
        decomposition. Mon. Weather Rev. 140.
    """
    check_reduction(reduction)
    p, o = _categorical_inputs(probs, target, class_dim)
    cdf = p.cumsum(-1)
    upper = p.flip(-1).cumsum(-1).flip(-1)  # sum_{j >= k} p_j
    sf = torch.cat([upper[..., 1:], torch.zeros_like(upper[..., :1])], -1)  # sum_{j > k} p_j
    obs_cdf = o.cumsum(-1)
    # |F_k + O_k - 1| = O_k F_k + (1 - O_k)(1 - F_k) for one-hot O; the general formula for soft targets
    val = obs_cdf * cdf + (1.0 - obs_cdf) * sf
    val = torch.where((obs_cdf == 0) | (obs_cdf == 1), val, (cdf + obs_cdf - 1.0).abs())
    return reduce(-torch.log(val[..., :-1]).sum(-1), reduction)


def categorical_log_score(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    binary: bool = False,
    class_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Logarithmic score (negative log-likelihood) of a categorical forecast; lower is better.

    .. math::

        \mathrm{LS}(p, y) = -\log p_y ,

    strictly proper (Good 1952). A floating target :math:`o` gives the cross-entropy :math:`-\sum_k o_k \log p_k`.
    With ``binary=True``: :math:`-\log p` if :math:`y = 1`, :math:`-\log(1 - p)` if :math:`y = 0` (as
    ``scoringrules.log_score``). From logits this is :func:`torch.nn.functional.cross_entropy`.

    Args:
        probs: class probabilities, class axis last by default (``binary=True``: event probabilities).
        target: integer class indices or a floating one-hot / probability vector (``binary=True``: 0/1).
        binary: score the probability of a binary event.
        class_dim: the class axis.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - probs: :math:`(*\text{batch}, K)` (``binary=True``: :math:`(*\text{batch})`)
        - target: :math:`(*\text{batch})` or :math:`(*\text{batch}, K)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The log score (``inf`` where the observed class has probability zero).

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import categorical_log_score
        >>> categorical_log_score(torch.tensor([[0.25, 0.75]]), torch.tensor([1]))  # -log 0.75
        tensor(0.2877)

    References:
        Good, I. J. (1952). Rational decisions. J. R. Stat. Soc. B 14.
    """
    check_reduction(reduction)
    if binary:
        p, y = _binary_inputs(probs, target)
        return reduce(-torch.log(torch.where(y == 1, p, 1.0 - p)), reduction)
    p, o = _categorical_inputs(probs, target, class_dim)
    # 0 * log 0 = 0 for classes the target gives no mass
    terms = torch.where(o > 0, o * torch.log(p), torch.zeros_like(p))
    return reduce(-terms.sum(-1), reduction)


def spherical_score(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    class_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Spherical score of a categorical forecast, negatively oriented and shifted to be non-negative.

    .. math::

        \mathrm{SphS}(p, y) = 1 - \frac{p_y}{\|p\|_2},

    strictly proper (Good 1971; Gneiting & Raftery 2007, §3): the usual positively oriented spherical score is
    :math:`p_y/\|p\|_2`; this is one minus it, zero for a certain correct forecast. Bounded in :math:`[0, 1]`, so
    (unlike the log score) one confident mistake costs at most 1. A floating target :math:`o` gives the expected
    score :math:`1 - \langle p, o\rangle/\|p\|_2`. From logits use :func:`spherical_score_from_logits`.

    Args:
        probs: class probabilities, class axis last by default.
        target: integer class indices or a floating one-hot / probability vector.
        class_dim: the class axis.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - probs: :math:`(*\text{batch}, K)`; target: :math:`(*\text{batch})` or :math:`(*\text{batch}, K)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The spherical score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import spherical_score
        >>> spherical_score(torch.tensor([[0.6, 0.8, 0.0]]) / 1.4, torch.tensor([1]))  # 1 - 0.8 / 1
        tensor(0.2000)

    References:
        Good, I. J. (1971). Comment on "Measuring information and uncertainty" by R. J. Buehler.
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
    """
    check_reduction(reduction)
    p, o = _categorical_inputs(probs, target, class_dim)
    return reduce(1.0 - (p * o).sum(-1) / torch.linalg.vector_norm(p, dim=-1), reduction)


# ---------------------------------------------------------------------------------------------------- logits

_CHUNK_ELEMENTS = 1 << 24  # 16 M elements (64 MiB in float32) of temporaries per chunk


def _logit_terms(z: torch.Tensor, y: torch.Tensor, kind: str):
    """Per-row value and the pieces the gradient needs, for a chunk ``z (n, V)`` in the compute dtype."""
    onehot = torch.zeros_like(z, dtype=torch.bool).scatter_(-1, y.unsqueeze(-1), True)
    z_y = z.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    neg_inf = torch.tensor(float("-inf"), dtype=z.dtype, device=z.device)
    if kind == "brier":
        lse_o = torch.logsumexp(torch.where(onehot, neg_inf, z), -1)  # log sum_{k != y} e^{z_k}
        lse = torch.logaddexp(z_y, lse_o)
        p_y = torch.exp(z_y - lse)
        one_minus = torch.exp(lse_o - lse)  # 1 - p_y without cancellation
        rest = torch.exp(torch.logsumexp(torch.where(onehot, neg_inf, 2.0 * z), -1) - 2.0 * lse)  # sum_{k!=y} p_k^2
        value = one_minus * one_minus + rest
        return value, (lse, p_y, one_minus, rest, value)
    # p_y / ||p|| = (1 + R)^(-1/2) with R = sum_{k != y} e^{2 (z_k - z_y)}
    log_r = torch.logsumexp(torch.where(onehot, neg_inf, 2.0 * z), -1) - 2.0 * z_y
    log_s = -0.5 * torch.nn.functional.softplus(log_r)
    s = torch.exp(log_s)
    value = -torch.expm1(log_s)  # 1 - p_y / ||p||
    lse2 = 2.0 * z_y + torch.nn.functional.softplus(log_r)  # logsumexp(2z)
    r_rest = torch.sigmoid(log_r)  # 1 - softmax(2z)_y
    return value, (lse2, s, r_rest)


def _logit_grad(z: torch.Tensor, y: torch.Tensor, kind: str, saved) -> torch.Tensor:
    onehot = torch.zeros_like(z, dtype=torch.bool).scatter_(-1, y.unsqueeze(-1), True)
    if kind == "brier":
        lse, p_y, one_minus, rest, value = saved
        p = torch.exp(z - lse.unsqueeze(-1))
        # d/dz_j = 2 p_j (p_j + p_y (1 - p_y) - rest) for j != y, and -2 p_y BS for j = y
        g = 2.0 * p * (p + (p_y * one_minus - rest).unsqueeze(-1))
        return torch.where(onehot, (-2.0 * p_y * value).unsqueeze(-1), g)
    lse2, s, r_rest = saved
    r = torch.exp(2.0 * z - lse2.unsqueeze(-1))  # softmax(2z)
    # d/dz_j = s r_j for j != y, and -s (1 - r_y) for j = y
    return torch.where(onehot, (-s * r_rest).unsqueeze(-1), s.unsqueeze(-1) * r)


class _LogitScore(torch.autograd.Function):
    """Chunked value and exact gradient of the Brier / spherical score from logits ``(N, V)``."""

    @staticmethod
    def forward(ctx, logits, target, kind, rows, dtype):
        n = logits.shape[0]
        values, saved = [], []
        for start in range(0, n, rows):
            z = logits[start : start + rows].to(dtype)
            v, s = _logit_terms(z, target[start : start + rows], kind)
            values.append(v)
            saved.append(s)
        pieces = [torch.cat([s[i] for s in saved]) for i in range(len(saved[0]))] if saved else []
        ctx.save_for_backward(logits, target, *pieces)
        ctx.kind, ctx.rows, ctx.dtype = kind, rows, dtype
        return torch.cat(values) if values else logits.new_zeros((0,), dtype=dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        logits, target, *pieces = ctx.saved_tensors
        grad = torch.empty_like(logits)
        rows = ctx.rows
        for start in range(0, logits.shape[0], rows):
            sl = slice(start, start + rows)
            z = logits[sl].to(ctx.dtype)
            g = _logit_grad(z, target[sl], ctx.kind, [p[sl] for p in pieces])
            grad[sl] = (grad_out[sl].to(ctx.dtype).unsqueeze(-1) * g).to(logits.dtype)
        return grad, None, None, None, None


def _from_logits(kind, logits, target, class_dim, chunk_size, ignore_index, reduction):
    check_reduction(reduction)
    check_floating("logits", logits)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor; got {type(target).__name__}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class indices (*batch) for the logits scores; got dtype {target.dtype}"
        )
    z = _check_class_dim(class_dim, logits, "logits")
    if target.shape != z.shape[:-1]:
        raise ValueError(
            f"target must have shape (*batch) = {tuple(z.shape[:-1])} (logits without the class axis); got "
            f"{tuple(target.shape)}"
        )
    if z.device != target.device:
        raise ValueError(f"logits and target must be on the same device; got {z.device} and {target.device}")
    v = z.shape[-1]
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or a positive int (rows per chunk); got {chunk_size!r}")
    if ignore_index is not None:
        keep = target != ignore_index
        target = torch.where(keep, target, torch.zeros_like(target))
    check_class_index("target", target, v)
    batch_shape = target.shape
    flat = z.reshape(-1, v)
    rows = chunk_size if chunk_size is not None else max(1, _CHUNK_ELEMENTS // max(v, 1))
    dtype = compute_dtype(logits)
    values = _LogitScore.apply(flat, target.reshape(-1).long(), kind, rows, dtype).reshape(batch_shape)
    if ignore_index is None:
        return reduce(values, reduction)
    values = values * keep.to(values.dtype)
    if reduction == "mean":
        return values.sum() / keep.sum().clamp_min(1).to(values.dtype)
    return reduce(values, reduction)


def brier_score_from_logits(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    class_dim: int = -1,
    chunk_size: int | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Brier score of :math:`\mathrm{softmax}(z)` computed stably from logits, for language-model heads.

    .. math::

        \mathrm{BS} = (1 - p_y)^2 + \sum_{k \ne y} p_k^2 ,\qquad p = \mathrm{softmax}(z),

    evaluated as :math:`\mathrm{expm1}(z_y - \mathrm{lse}(z))^2 + \exp(\mathrm{lse}_{k\ne y}(2z_k) -
    2\,\mathrm{lse}(z))`: no probability vector is formed in the input precision, every term is non-negative (no
    cancellation when the forecast is confident), and the work runs in float32 or wider. Strictly proper, bounded
    in :math:`[0, 2]`.

    Memory: rows are processed in chunks of ``chunk_size`` rows (default: :math:`2^{24} / V` rows, 64 MiB of
    float32 temporaries), and the backward pass recomputes the softmax per chunk instead of storing it, so a
    ``(tokens, vocabulary)`` input needs one gradient tensor of its own dtype and size plus one chunk. The gradient
    is exact (closed form, :math:`\partial/\partial z_j = 2p_j(p_j + p_y(1-p_y) - \sum_{k\ne y}p_k^2)` for
    :math:`j \ne y` and :math:`-2p_y\,\mathrm{BS}` for :math:`j = y`); it is not differentiable twice.

    Args:
        logits: unnormalised log-probabilities, class axis last by default.
        target: integer class indices ``(*batch)`` in ``[0, V)``.
        class_dim: the class axis of ``logits``.
        chunk_size: rows per chunk (``None``: automatic).
        ignore_index: a target value whose rows score 0 and are left out of the mean (as in
            :func:`torch.nn.functional.cross_entropy`).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - logits: :math:`(*\text{batch}, V)`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The Brier score (float32 for half-precision logits).

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import brier_score, brier_score_from_logits
        >>> z = torch.tensor([[2.0, 0.5, -1.0]])
        >>> torch.allclose(brier_score_from_logits(z, torch.tensor([1])), brier_score(z.softmax(-1), torch.tensor([1])))
        True
    """
    return _from_logits("brier", logits, target, class_dim, chunk_size, ignore_index, reduction)


def spherical_score_from_logits(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    class_dim: int = -1,
    chunk_size: int | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Spherical score :math:`1 - p_y/\|p\|_2` of :math:`\mathrm{softmax}(z)` computed stably from logits.

    Because :math:`p_y/\|p\|_2 = \exp\big(z_y - \tfrac12\mathrm{lse}(2z)\big)`, the score is
    :math:`-\mathrm{expm1}\big(z_y - \tfrac12\mathrm{lse}(2z)\big)`: one log-sum-exp, no probabilities, accurate at
    both ends. Strictly proper, bounded in :math:`[0, 1]`. Chunked and with a closed-form gradient
    (:math:`\partial/\partial z_j = s\,r_j` for :math:`j \ne y`, :math:`-s(1 - r_y)` for :math:`j = y`, with
    :math:`s = p_y/\|p\|_2`, :math:`r = \mathrm{softmax}(2z)`), as :func:`brier_score_from_logits`.

    Args:
        logits: unnormalised log-probabilities, class axis last by default.
        target: integer class indices ``(*batch)`` in ``[0, V)``.
        class_dim: the class axis of ``logits``.
        chunk_size: rows per chunk (``None``: automatic).
        ignore_index: a target value whose rows score 0 and are left out of the mean.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - logits: :math:`(*\text{batch}, V)`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The spherical score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.categorical import spherical_score, spherical_score_from_logits
        >>> z = torch.tensor([[2.0, 0.5, -1.0]])
        >>> torch.allclose(spherical_score_from_logits(z, torch.tensor([0])),
        ...                spherical_score(z.softmax(-1), torch.tensor([0])))
        True
    """
    return _from_logits("spherical", logits, target, class_dim, chunk_size, ignore_index, reduction)
