"""Energy and kernel scores against several target samples per observation (as CALM trains).

CALM (Shao et al. 2025, "Continuous Autoregressive Language Models") does not score its generator against one
target vector but against ``n`` draws ``y_1..y_n`` from the autoencoder's posterior of the true chunk, with ``m``
model samples ``x_1..x_m``: its loss is ``2/(mn) sum_ij ||x_i - y_j|| - 1/(m(m-1)) sum_{i != k} ||x_i - x_k||``,
twice the energy score below (``beta = 1``, ``target_estimator=None``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._internal.blocks import blocks
from .._internal.checks import check_choice, check_floating, compute_dtype, move_sample_dim
from .._internal.pairwise import Radial, no_autocast, pairwise_radial_sum, power_radial
from .._internal.reduction import check_reduction, reduce
from .energy import check_beta
from .kernel import KERNELS, _bandwidths, _radial

__all__ = ["MULTI_TARGET_ESTIMATORS", "multi_target_energy_score", "multi_target_kernel_score"]

#: Estimators of the within-forecast and within-target terms.
MULTI_TARGET_ESTIMATORS = ("fair", "nrg")


def _flatten(samples, targets, sample_dim, target_dim, estimator, target_estimator):
    check_choice("estimator", estimator, MULTI_TARGET_ESTIMATORS)
    if target_estimator is not None:
        check_choice("target_estimator", target_estimator, MULTI_TARGET_ESTIMATORS)
    x = move_sample_dim(check_floating("samples", samples), sample_dim)
    if not isinstance(target_dim, int) or isinstance(target_dim, bool):
        raise TypeError(f"target_dim must be an int; got {type(target_dim).__name__}")
    check_floating("targets", targets)
    if not -targets.dim() <= target_dim < targets.dim():
        raise ValueError(f"target_dim={target_dim} is out of range for targets of shape {tuple(targets.shape)}")
    y = targets.movedim(target_dim, 0)
    if x.dim() < 2 or x.dim() != y.dim() or x.shape[1:] != y.shape[1:]:
        raise ValueError(
            "samples must have shape (m, *batch, d) and targets (n, *batch, d) with the same (*batch, d), sample "
            f"axes first (see sample_dim, target_dim); got samples {tuple(x.shape)} and targets {tuple(y.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"samples and targets must be on the same device; got {x.device} and {y.device}")
    m, n = x.shape[0], y.shape[0]
    if m < (2 if estimator == "fair" else 1):
        raise ValueError(f"estimator={estimator!r} needs at least 2 samples; got m={m}")
    if n < (2 if target_estimator == "fair" else 1):
        raise ValueError(f"target_estimator={target_estimator!r} needs at least 2 target samples; got n={n}")
    dtype = compute_dtype(x, y)
    batch_shape = x.shape[1:-1]
    d = x.shape[-1]
    return x.to(dtype).reshape(m, -1, d), y.to(dtype).reshape(n, -1, d), batch_shape


def _cross_sum(x: torch.Tensor, y: torch.Tensor, radial: Radial, h: torch.Tensor | None) -> torch.Tensor:
    """``sum_ij phi(||x_i - y_j||^2)`` per observation, blocked over observations: at most ``(b, m, n)`` at once."""
    m, b, _ = x.shape
    n = y.shape[0]
    xb = x.transpose(0, 1)
    yb = y.transpose(0, 1)
    # Translate each observation's points by its first target sample (exact differences are unchanged).
    origin = yb[:, :1, :].detach()
    xb, yb = xb - origin, yb - origin
    out = []
    with no_autocast(x.device):
        for start, stop in blocks(b, m * n, x.device):
            r = torch.cdist(xb[start:stop].contiguous(), yb[start:stop].contiguous(),
                            compute_mode="donot_use_mm_for_euclid_dist")
            hc = None if h is None else h[start:stop].reshape(-1, 1, 1)
            out.append(radial.value(r * r, hc).sum((-2, -1)))
    return torch.cat(out)


def _within(z: torch.Tensor, radial: Radial, estimator: str, h: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``phi`` over pairs of members: ``i != j`` (``"fair"``) or all pairs (``"nrg"``)."""
    k = z.shape[0]
    total = pairwise_radial_sum(z, None, radial, diagonal=estimator == "nrg", h=h)
    return total / (k * (k - 1) if estimator == "fair" else k * k)


def multi_target_energy_score(
    samples: torch.Tensor,
    targets: torch.Tensor,
    *,
    beta: float = 1.0,
    estimator: str = "fair",
    target_estimator: str | None = None,
    sample_dim: int = 0,
    target_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Energy score of an ensemble against several target samples per observation; lower is better.

    With model samples :math:`x_1..x_m \sim F` and target samples :math:`y_1..y_n \sim G` (e.g. draws from a
    posterior of the truth, as CALM trains),

    .. math::

        \frac{1}{mn}\sum_{i,j}\|x_i - y_j\|^\beta
        - \frac{1}{2m(m-1)}\sum_{i\ne k}\|x_i - x_k\|^\beta
        \;\Big[- \frac{1}{2n(n-1)}\sum_{j\ne l}\|y_j - y_l\|^\beta\Big].

    * ``target_estimator=None`` (default): the mean over the target samples of the energy score of the ensemble,
      an unbiased estimate of :math:`\mathbb{E}_{Y\sim G}\,\mathrm{ES}_\beta(F, Y)`. CALM's energy loss is twice
      this with :math:`\beta = 1`. Proper: its expectation is minimised by :math:`F = G` (strictly for
      :math:`0 < \beta < 2`).
    * ``target_estimator="fair"``: also subtracts the unbiased within-target term; the result is an unbiased
      estimate of half the energy distance :math:`\tfrac12 D_\beta(F, G) \ge 0` (0 iff :math:`F = G`); it
      differs from ``None`` by a term that does not depend on the forecast (same gradients). ``"nrg"``: the
      V-statistic over the targets instead.
    * ``estimator``: ``"fair"`` (U-statistic, unbiased; default) or ``"nrg"`` (V-statistic) for the model term.

    The cross term is computed block by block over observations with exact differences (nothing larger than
    :math:`(b, m, n)` at once, never :math:`(B, m, n, d)`); the within terms use the pairwise engine of
    :func:`energy_score`.

    Args:
        samples: model samples.
        targets: target samples (may require gradients, e.g. reparameterised posterior draws).
        beta: exponent in :math:`(0, 2]`.
        estimator: ``"fair"`` | ``"nrg"`` for the model-sample term.
        target_estimator: ``None`` | ``"fair"`` | ``"nrg"`` for the target-sample term.
        sample_dim: the axis of ``samples`` that indexes model samples.
        target_dim: the axis of ``targets`` that indexes target samples.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`
        - targets: :math:`(n, *\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.multi_target import multi_target_energy_score
        >>> x = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]])  # m=2 samples, batch 1, d=2
        >>> y = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]])  # n=2 target samples: the same two points
        >>> multi_target_energy_score(x, y)  # (0 + 5 + 5 + 0)/4 - 5/2
        tensor(0.)
        >>> multi_target_energy_score(x, y, target_estimator="fair")  # - 5/2 more: half the energy distance
        tensor(-2.5000)

    References:
        Shao, C., Li, D., Meng, F. & Zhou, J. (2025). Continuous Autoregressive Language Models.
        Székely, G. J. & Rizzo, M. L. (2013). Energy statistics. J. Stat. Plan. Inference 143.
    """
    check_reduction(reduction)
    beta = check_beta(beta)
    x, y, batch_shape = _flatten(samples, targets, sample_dim, target_dim, estimator, target_estimator)
    radial = power_radial(beta / 2.0)
    values = _cross_sum(x, y, radial, None) / (x.shape[0] * y.shape[0]) - 0.5 * _within(x, radial, estimator, None)
    if target_estimator is not None:
        values = values - 0.5 * _within(y, radial, target_estimator, None)
    return reduce(values.reshape(batch_shape), reduction)


def multi_target_kernel_score(
    samples: torch.Tensor,
    targets: torch.Tensor,
    *,
    kernel: str = "gaussian",
    bandwidth: float | str | Sequence[float] = 1.0,
    estimator: str = "fair",
    target_estimator: str | None = None,
    sample_dim: int = 0,
    target_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Kernel score of an ensemble against several target samples per observation; lower is better.

    .. math::

        \frac{1}{2m(m-1)}\sum_{i\ne k} k(x_i, x_k) + \frac{1}{2}\,T - \frac{1}{mn}\sum_{i,j} k(x_i, y_j),

    with the target term :math:`T = \frac1n\sum_j k(y_j, y_j)` for ``target_estimator=None`` (the mean over the
    target samples of :func:`~scoringrules_torch.functional.kernel_score`; proper, strictly for a characteristic
    kernel), :math:`T = \frac{1}{n(n-1)}\sum_{j\ne l} k(y_j, y_l)` for ``"fair"`` (then the score is an unbiased
    estimate of half the squared MMD between :math:`F` and :math:`G`; it can be negative) or the V-statistic for
    ``"nrg"``. ``estimator`` (``"fair"``/``"nrg"``) chooses the model-sample term.

    Args:
        samples: model samples.
        targets: target samples.
        kernel: ``"gaussian"`` | ``"laplacian"`` | ``"inverse_multiquadric"``.
        bandwidth: positive float, sequence of positive floats (multi-scale) or ``"median"`` (of the model
            samples per observation; not proper, see :func:`~scoringrules_torch.functional.kernel_score`).
        estimator: ``"fair"`` | ``"nrg"``.
        target_estimator: ``None`` | ``"fair"`` | ``"nrg"``.
        sample_dim: the axis of ``samples`` that indexes model samples.
        target_dim: the axis of ``targets`` that indexes target samples.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`
        - targets: :math:`(n, *\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.multi_target import multi_target_kernel_score
        >>> x = torch.zeros(2, 1, 3)  # both model samples at the origin
        >>> multi_target_kernel_score(x, torch.zeros(4, 1, 3))  # 1/2 + 1/2 - 1
        tensor(0.)
    """
    check_reduction(reduction)
    if not isinstance(kernel, str) or kernel == "energy":
        raise ValueError(
            "kernel must be 'gaussian', 'laplacian' or 'inverse_multiquadric' (use multi_target_energy_score for "
            f"the energy kernel); got {kernel!r}"
        )
    check_choice("kernel", kernel, KERNELS)
    x, y, batch_shape = _flatten(samples, targets, 0 if sample_dim is None else sample_dim, target_dim, estimator,
                                 target_estimator)
    bandwidths, h = _bandwidths(bandwidth, x)
    radial = _radial(kernel, bandwidths, 1.0)
    cross = _cross_sum(x, y, radial, h) / (x.shape[0] * y.shape[0])
    within = _within(x, radial, estimator, h)
    if target_estimator is None:
        target_term = radial.value(torch.zeros_like(y[0, :, 0]), h)
    else:
        target_term = _within(y, radial, target_estimator, h)
    values = 0.5 * within + 0.5 * target_term - cross
    return reduce(values.reshape(batch_shape), reduction)
