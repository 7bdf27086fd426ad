"""``nan_policy`` for the ensemble scores (private).

* ``"propagate"`` (default): NaN in, NaN out (no check, no cost).
* ``"raise"``: ``ValueError`` if ``samples`` or ``target`` holds a NaN (one device-to-host sync).
* ``"omit"``: a member with a NaN in any event component is dropped *for that observation* by giving it weight 0
  (the remaining weights are renormalised, so with equal weights the score is exactly the score of the valid
  members: ``"fair"`` divides by ``k(k-1)`` for ``k`` valid members). An observation whose target holds a NaN, or
  that keeps fewer valid members than the estimator needs (2 for the fair estimators), has no score: it is NaN
  with ``reduction="none"`` and left out of ``"mean"`` (the mean over the observations that have a score) and
  ``"sum"``. Dropped members get a zero gradient, never NaN. Estimators that pair members by position
  (``"akr"``, ``"akr_circperm"``, ``"pairs"``) cannot drop a member and raise ``ValueError``.
"""

from __future__ import annotations

import torch

__all__ = ["NAN_POLICIES", "check_nan_policy", "finish", "omit_members", "raise_on_nan"]

NAN_POLICIES = ("propagate", "omit", "raise")
#: Estimators that pair members by their position; a dropped member would change the pairs.
POSITIONAL = ("akr", "akr_circperm", "pairs")


def check_nan_policy(nan_policy: str) -> str:
    if not isinstance(nan_policy, str) or nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"nan_policy must be one of {', '.join(repr(p) for p in NAN_POLICIES)}; got {nan_policy!r}"
        )
    return nan_policy


def raise_on_nan(samples: torch.Tensor, target: torch.Tensor) -> None:
    """``ValueError`` naming the argument that holds a NaN."""
    for name, t in (("samples", samples), ("target", target)):
        if isinstance(t, torch.Tensor) and t.is_floating_point() and bool(torch.isnan(t).any()):
            count = int(torch.isnan(t).sum())
            raise ValueError(
                f"{name} contains {count} NaN value(s) and nan_policy='raise'; use nan_policy='omit' to drop NaN "
                "members (and observations with a NaN target), or 'propagate' to return NaN"
            )


def omit_members(
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    *,
    event_rank: int,
    min_members: int,
    estimator: str | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace NaN members by zero-weight copies of the target.

    Args:
        x: members with the sample axis first ``(m, *batch, *event)``.
        y: targets ``(*batch, *event)``.
        w: member weights ``(m,)`` or ``(m, *batch)`` (not normalised) or ``None``.
        event_rank: 0 (univariate) or 1 (multivariate).
        min_members: the fewest members with positive weight the estimator needs.
        estimator: the estimator name (positional estimators are refused).

    Returns:
        ``(x, y, w, ok)``: NaN-free members and targets, weights ``(m, *batch)`` (0 for dropped members, 1 for
        every member of an observation without a score) and the ``(*batch)`` mask of observations with a score.
    """
    if estimator in POSITIONAL:
        raise ValueError(
            f"nan_policy='omit' drops members by giving them weight 0, which estimator={estimator!r} (it pairs "
            "members by position) cannot do; use 'fair' or 'nrg'"
        )
    event_dims = tuple(range(x.dim() - event_rank, x.dim()))
    x_nan = torch.isnan(x)
    bad_member = x_nan.any(dim=event_dims) if event_rank else x_nan  # (m, *batch)
    y_nan = torch.isnan(y)
    bad_target = y_nan.any(dim=tuple(range(y.dim() - event_rank, y.dim()))) if event_rank else y_nan
    batch_shape = bad_member.shape[1:]
    m = x.shape[0]
    if w is None:
        base = torch.ones((m, *batch_shape), dtype=x.dtype, device=x.device)
    else:
        base = w.reshape((m,) + (1,) * len(batch_shape)) if w.dim() == 1 else w
        base = base.expand((m, *batch_shape))
    base = torch.where(bad_member, torch.zeros_like(base), base)
    ok = ~bad_target & ((base > 0).sum(0) >= min_members)
    # Observations without a score: every member counts with weight 1 and a finite value, so nothing is NaN.
    w_out = torch.where(ok, base, torch.ones_like(base))
    y_out = torch.where(bad_target.reshape(batch_shape + (1,) * event_rank) if event_rank else bad_target,
                        torch.zeros_like(y), y)
    fill = y_out.unsqueeze(0).expand_as(x)
    keep = ~bad_member & ok
    keep = keep.reshape(keep.shape + (1,) * event_rank) if event_rank else keep
    x_out = torch.where(keep, x, fill.to(x.dtype))
    return x_out, y_out, w_out, ok


def finish(values: torch.Tensor, ok: torch.Tensor, reduction: str) -> torch.Tensor:
    """NaN where ``ok`` is False; ``"mean"``/``"sum"`` over the observations that have a score."""
    kept = torch.where(ok, values, torch.zeros_like(values))
    if reduction == "none":
        return torch.where(ok, values, torch.full_like(values, float("nan")))
    if reduction == "sum":
        return kept.sum()
    return kept.sum() / ok.sum().to(values.dtype)
