"""Thin ``nn.Module`` wrappers of the categorical scores (classification and language-model heads)."""

from __future__ import annotations

import torch

from ..functional.categorical import (
    brier_score,
    brier_score_from_logits,
    rps_score,
    spherical_score,
    spherical_score_from_logits,
)
from ._base import _Score

__all__ = ["BrierScore", "RankedProbabilityScore", "SphericalScore"]


def _check_chunk(chunk_size):
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or a positive int (rows per chunk); got {chunk_size!r}")
    return chunk_size


class BrierScore(_Score):
    r"""Brier score loss :math:`\sum_k (p_k - \mathbf 1\{y = k\})^2`, from logits (default) or probabilities.

    With ``from_logits=True`` (the default, for classifier and language-model heads) ``forward(logits, target)``
    calls :func:`~scoringrules_torch.functional.categorical.brier_score_from_logits` (stable, chunked, exact
    gradient); with ``from_logits=False`` it calls :func:`~scoringrules_torch.functional.categorical.brier_score`
    on probabilities.

    Args:
        from_logits: the prediction is logits (else probabilities).
        class_dim: the class axis.
        chunk_size: rows per chunk for logits (``None``: automatic).
        ignore_index: (logits only) target value to skip, as in ``nn.CrossEntropyLoss``.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - prediction: :math:`(*\text{batch}, K)`; target: :math:`(*\text{batch})` class indices
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.scores.categorical import BrierScore
        >>> logits = torch.zeros(2, 4, requires_grad=True)  # uniform over 4 classes
        >>> loss = BrierScore()(logits, torch.tensor([0, 3]))  # 0.75^2 + 3 * 0.25^2
        >>> loss.backward()
        >>> loss
        tensor(0.7500, grad_fn=<MeanBackward0>)
    """

    def __init__(
        self,
        *,
        from_logits: bool = True,
        class_dim: int = -1,
        chunk_size: int | None = None,
        ignore_index: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.class_dim = class_dim
        self.chunk_size = _check_chunk(chunk_size)
        if ignore_index is not None and not from_logits:
            raise ValueError("ignore_index is supported with from_logits=True only")
        self.ignore_index = ignore_index

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.from_logits:
            return brier_score_from_logits(
                prediction,
                target,
                class_dim=self.class_dim,
                chunk_size=self.chunk_size,
                ignore_index=self.ignore_index,
                reduction=self.reduction,
            )
        return brier_score(prediction, target, class_dim=self.class_dim, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"from_logits={self.from_logits}, reduction={self.reduction!r}"


class SphericalScore(_Score):
    r"""Spherical score loss :math:`1 - p_y/\|p\|_2`, from logits (default) or probabilities.

    See :func:`~scoringrules_torch.functional.categorical.spherical_score_from_logits` and
    :func:`~scoringrules_torch.functional.categorical.spherical_score`. Bounded in :math:`[0, 1]`.

    Args:
        from_logits: the prediction is logits (else probabilities).
        class_dim: the class axis.
        chunk_size: rows per chunk for logits (``None``: automatic).
        ignore_index: (logits only) target value to skip.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - prediction: :math:`(*\text{batch}, K)`; target: :math:`(*\text{batch})` class indices
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.scores.categorical import SphericalScore
        >>> SphericalScore()(torch.zeros(1, 4), torch.tensor([2]))  # 1 - 0.25 / 0.5
        tensor(0.5000)
    """

    def __init__(
        self,
        *,
        from_logits: bool = True,
        class_dim: int = -1,
        chunk_size: int | None = None,
        ignore_index: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.class_dim = class_dim
        self.chunk_size = _check_chunk(chunk_size)
        if ignore_index is not None and not from_logits:
            raise ValueError("ignore_index is supported with from_logits=True only")
        self.ignore_index = ignore_index

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.from_logits:
            return spherical_score_from_logits(
                prediction,
                target,
                class_dim=self.class_dim,
                chunk_size=self.chunk_size,
                ignore_index=self.ignore_index,
                reduction=self.reduction,
            )
        return spherical_score(prediction, target, class_dim=self.class_dim, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"from_logits={self.from_logits}, reduction={self.reduction!r}"


class RankedProbabilityScore(_Score):
    r"""Ranked probability score loss over ordered categories (a discrete CRPS), from probabilities or logits.

    See :func:`~scoringrules_torch.functional.categorical.rps_score`. With ``from_logits=True`` the prediction is
    passed through a softmax (in float32 or wider) first.

    Args:
        from_logits: the prediction is logits (else probabilities).
        class_dim: the class axis.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - prediction: :math:`(*\text{batch}, K)`; target: :math:`(*\text{batch})` indices or
          :math:`(*\text{batch}, K)` one-hot
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.scores.categorical import RankedProbabilityScore
        >>> RankedProbabilityScore()(torch.tensor([[0.2, 0.5, 0.3]]), torch.tensor([2]))
        tensor(0.5300)
    """

    def __init__(self, *, from_logits: bool = False, class_dim: int = -1, reduction: str = "mean") -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.class_dim = class_dim

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.from_logits:
            up = torch.float32 if prediction.dtype in (torch.float16, torch.bfloat16) else prediction.dtype
            prediction = torch.softmax(prediction.to(up), dim=self.class_dim)
        return rps_score(prediction, target, class_dim=self.class_dim, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"from_logits={self.from_logits}, reduction={self.reduction!r}"
