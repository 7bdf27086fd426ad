r"""Differentiable special functions torch lacks or differentiates only partly (private).

- :func:`gammainc` — regularised lower incomplete gamma :math:`P(a, x)`, differentiable in ``a`` and ``x``;
- :func:`betainc` — regularised incomplete beta :math:`I_x(a, b)`, differentiable in ``a``, ``b``, ``x``;
- :func:`exp1_of_exp` — the exponential integral :math:`E_1(e^{-z})`, stable for every real ``z``;
- :func:`log_beta` — :math:`\log B(a, b)`;
- :func:`log1p_div` and :func:`expm1_div` — :math:`\log(1+\xi z)/\xi` and :math:`(e^{\xi w}-1)/\xi`,
  continuous (with every derivative) through :math:`\xi = 0`: the shape-parameter maps of the GEV and GPD.

All iterate to convergence with a host synchronisation in eager mode, and run a fixed number of rounds under
``torch.compile``.
"""

from __future__ import annotations

import torch

__all__ = [
    "EULER_GAMMA",
    "betainc",
    "exp1_of_exp",
    "expm1_div",
    "gammainc",
    "log1p_div",
    "log_beta",
]


def log_beta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


def _tiny(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).tiny ** 0.5


def _converged(delta: torch.Tensor, eps: float) -> bool:
    """Convergence test of the continued fractions (a host synchronisation; skipped under torch.compile)."""
    return bool(((delta - 1.0).abs() <= eps).all())


def betainc(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Regularised incomplete beta :math:`I_x(a, b)`, with :math:`y = 1 - x` passed separately for accuracy.

    Lentz's evaluation of the continued fraction (Numerical Recipes 6.4), applied to :math:`I_x(a,b)` when
    :math:`x < (a+1)/(a+b+2)` and to :math:`1 - I_y(b, a)` otherwise; differentiable in ``a``, ``b``, ``x``
    to every order (autograd through the converged iteration).
    """
    a, b, x, y = torch.broadcast_tensors(a, b, x, y)
    dtype = x.dtype
    tiny, eps = _tiny(dtype), torch.finfo(dtype).eps
    swap = x > (a + 1.0) / (a + b + 2.0)
    aa, bb = torch.where(swap, b, a), torch.where(swap, a, b)
    xx, yy = torch.where(swap, y, x), torch.where(swap, x, y)
    edge = (xx <= 0) | (yy <= 0)
    xx = torch.where(edge, 0.25, xx)
    yy = torch.where(edge, 0.75, yy)

    def fix(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t.abs() < tiny, tiny, t)

    qab, qap, qam = aa + bb, aa + 1.0, aa - 1.0
    c = torch.ones_like(xx)
    d = 1.0 / fix(1.0 - qab * xx / qap)
    h = d
    compiling = torch.compiler.is_compiling()
    extra = 0
    for m in range(1, 1001):
        m2 = 2 * m
        num = m * (bb - m) * xx / ((qam + m2) * (aa + m2))
        d = 1.0 / fix(1.0 + num * d)
        c = fix(1.0 + num / c)
        h = h * d * c
        num = -(aa + m) * (qab + m) * xx / ((aa + m2) * (qap + m2))
        d = 1.0 / fix(1.0 + num * d)
        c = fix(1.0 + num / c)
        delta = d * c
        h = h * delta
        if compiling:
            if m >= 200:
                break
        elif extra or (m % 4 == 0 and _converged(delta, eps)):
            extra += 1  # two more rounds so that derivatives converge as well
            if extra > 2:
                break
    front = torch.exp(aa * torch.log(xx) + bb * torch.log(yy) - log_beta(aa, bb)) / aa
    val = front * h
    val = torch.where(swap, 1.0 - val, val)
    val = torch.where(x <= 0, 0.0, val)
    return torch.where(y <= 0, 1.0, val)


def gammainc(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Regularised lower incomplete gamma :math:`P(a, x)`, differentiable in ``a`` and ``x`` to every order.

    Series for :math:`x < a + 1`, Lentz's continued fraction for :math:`Q = 1 - P` otherwise (Numerical Recipes
    6.2), iterated to convergence. Own evaluation because torch has no derivative of ``gammainc`` in ``a`` and
    its ``gammainc``/``gammaincc`` lose about 1e-9 relative accuracy near :math:`x \approx a` for
    :math:`a \gtrsim 20` (torch 2.13).
    """
    a, x = torch.broadcast_tensors(a, x)
    dtype = x.dtype
    tiny, eps = _tiny(dtype), torch.finfo(dtype).eps
    zero = x <= 0
    series = x < a + 1.0
    xs = torch.where(series & ~zero, x, 0.5 * a)  # kept inside the series' domain
    xc = torch.where(series, a + 2.0, x)  # kept inside the continued fraction's domain

    # series: sum_{n>=0} x^n / ((a+1)...(a+n)) / a
    term = 1.0 / a
    total = term
    # continued fraction for Q
    bcf = xc + 1.0 - a
    c = torch.full_like(xc, 1.0 / tiny)
    d = 1.0 / bcf
    h = d

    def fix(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t.abs() < tiny, tiny, t)

    compiling = torch.compiler.is_compiling()
    extra = 0
    for n in range(1, 2001):
        term = term * xs / (a + n)
        total = total + term
        an = -n * (n - a)
        bcf = bcf + 2.0
        d = 1.0 / fix(an * d + bcf)
        c = fix(bcf + an / c)
        delta = d * c
        h = h * delta
        if compiling:
            if n >= 300:
                break
        elif extra or (
            n % 4 == 0 and _converged(delta, eps) and bool((term.abs() <= total.abs() * eps).all())
        ):
            extra += 1
            if extra > 2:
                break
    p_series = total * torch.exp(-xs + a * torch.log(xs) - torch.lgamma(a))
    q_cf = h * torch.exp(-xc + a * torch.log(xc) - torch.lgamma(a))
    value = torch.where(series, p_series, 1.0 - q_cf)
    return torch.where(zero, 0.0, value)


EULER_GAMMA = 0.57721566490153286060651209008240243


def _exp1_cf(u: torch.Tensor) -> torch.Tensor:
    """E1(u) for u >= 1 by Lentz's continued fraction (Numerical Recipes 6.3), iterated to convergence."""
    dtype = u.dtype
    tiny, eps = _tiny(dtype), torch.finfo(dtype).eps
    b = u + 1.0
    c = torch.full_like(u, 1.0 / tiny)
    d = 1.0 / b
    h = d
    compiling = torch.compiler.is_compiling()
    for k in range(1, 501):
        an = -float(k * k)
        b = b + 2.0
        d = an * d + b
        d = 1.0 / torch.where(d.abs() < tiny, tiny, d)
        c = b + an / c
        c = torch.where(c.abs() < tiny, tiny, c)
        delta = d * c
        h = h * delta
        if compiling:
            if k >= 80:
                break
        elif k % 4 == 0 and _converged(delta, eps):
            break
    return h * torch.exp(-u)


class _Exp1Large(torch.autograd.Function):
    """E1(u), u >= 1, with the exact derivative -exp(-u)/u (itself differentiable: every order works)."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return _exp1_cf(u)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return -grad * torch.exp(-u) / u


def exp1_of_exp(z: torch.Tensor) -> torch.Tensor:
    r"""Exponential integral :math:`E_1(e^{-z})`, stable for every real ``z`` and differentiable to every order.

    For :math:`z \ge 0` (:math:`u = e^{-z} \le 1`) the series :math:`E_1(u) = -\gamma + z - \sum_{k\ge1}
    (-u)^k/(k\,k!)` (25 terms reach double precision) keeps :math:`\log u = -z` exact even where :math:`u`
    underflows; for :math:`z < 0` the continued fraction.
    """
    small = z >= 0
    us = torch.exp(-torch.where(small, z, 0.0))
    term = torch.ones_like(us)
    total = torch.zeros_like(us)
    for k in range(1, 26):
        term = term * (-us / k)
        total = total + term / k
    e1_small = -EULER_GAMMA + z - total
    ul = torch.exp(-torch.where(small, 0.0, z)).clamp(max=1000.0)  # E1(1000) underflows to 0 anyway
    return torch.where(small, e1_small, _Exp1Large.apply(ul))


_SERIES_CUT = 1e-3  # |t| below which the 6-term series of log1p(t)/t and expm1(t)/t is exact to double precision


def log1p_div(xi: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 + \xi z)/\xi`, equal to :math:`z` at :math:`\xi = 0`, for :math:`1 + \xi z > 0`.

    A series in :math:`t = \xi z` where :math:`|t| < 10^{-3}` (value and derivatives exact, also at
    :math:`\xi = 0`), ``log1p`` elsewhere. Where :math:`1 + \xi z \le 0` the result is ``nan`` or ``-inf``
    (the caller masks it).
    """
    xi, z = torch.broadcast_tensors(xi, z)
    t = xi * z
    small = t.abs() < _SERIES_CUT
    ts = torch.where(small, t, 0.0)
    series = z * (1.0 - ts * (1.0 / 2 - ts * (1.0 / 3 - ts * (1.0 / 4 - ts * (1.0 / 5 - ts / 6)))))
    xi_safe = torch.where(small, 1.0, xi)
    tb = torch.where(small, 0.0, t)
    return torch.where(small, series, torch.log1p(tb) / xi_safe)


def expm1_div(xi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r""":math:`(e^{\xi w} - 1)/\xi`, equal to :math:`w` at :math:`\xi = 0` (series where :math:`|\xi w| < 10^{-3}`)."""
    xi, w = torch.broadcast_tensors(xi, w)
    t = xi * w
    small = t.abs() < _SERIES_CUT
    ts = torch.where(small, t, 0.0)
    series = w * (
        1.0 + ts * (1.0 / 2 + ts * (1.0 / 6 + ts * (1.0 / 24 + ts * (1.0 / 120 + ts / 720))))
    )
    xi_safe = torch.where(small, 1.0, xi)
    tb = torch.where(small, 0.0, t)
    return torch.where(small, series, torch.expm1(tb) / xi_safe)
