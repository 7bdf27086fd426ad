"""Type-keyed registries of closed forms (private): the one mechanism behind ``register_crps``,
``register_hyvarinen`` and the other ``register_*`` decorators.

A registry maps a :class:`torch.distributions.Distribution` subclass to a function. Look-ups walk the MRO of the
distribution's type, so the most specific registered class wins and subclasses are covered, as in
:func:`torch.distributions.kl.register_kl`. Results are memoised per type and the memo is cleared on each
registration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from torch.distributions import Distribution

__all__ = ["TypeRegistry"]

F = TypeVar("F", bound=Callable)


class TypeRegistry(Generic[F]):
    """A registry of functions keyed by distribution type, with MRO dispatch.

    Args:
        name: the name of the public decorator (used in error messages), e.g. ``"register_crps"``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._table: dict[type, F] = {}
        self._memo: dict[type, F | None] = {}

    def register(self, type_p: type) -> Callable[[F], F]:
        """A decorator that registers its function for ``type_p`` (a Distribution subclass)."""
        if not isinstance(type_p, type) or not issubclass(type_p, Distribution):
            raise TypeError(
                f"{self.name} expects a subclass of torch.distributions.Distribution; got {type_p!r}"
            )

        def decorator(fn: F) -> F:
            self._table[type_p] = fn
            self._memo.clear()
            return fn

        return decorator

    def types(self) -> tuple[type, ...]:
        """The registered classes, in registration order."""
        return tuple(self._table)

    def dispatch(self, type_q: type) -> F | None:
        """The function registered for the most specific class in ``type_q.__mro__``, or ``None``."""
        if type_q not in self._memo:
            self._memo[type_q] = next(
                (self._table[cls] for cls in type_q.__mro__ if cls in self._table), None
            )
        return self._memo[type_q]
