"""The base class of the score Modules (private)."""

from __future__ import annotations

from torch import nn

from .._internal.reduction import check_reduction


class _Score(nn.Module):
    def __init__(self, *, sample_dim: int, reduction: str) -> None:
        super().__init__()
        if not isinstance(sample_dim, int) or isinstance(sample_dim, bool):
            raise TypeError(f"sample_dim must be an int; got {type(sample_dim).__name__} {sample_dim!r}")
        self.sample_dim = sample_dim
        self.reduction = check_reduction(reduction)
