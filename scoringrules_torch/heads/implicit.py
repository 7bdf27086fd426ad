"""EAR's implicit MLP generator head, trained by a sample-based proper scoring rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from scoringrules_torch._internal.checks import check_choice, check_floating
from scoringrules_torch._internal.reduction import check_reduction
from scoringrules_torch.functional.crps_sample import CRPS_ESTIMATORS, crps_ensemble
from scoringrules_torch.functional.energy import ENERGY_ESTIMATORS, energy_score_terms
from scoringrules_torch.functional.kernel import KERNEL_ESTIMATORS, kernel_score
from scoringrules_torch.functional.multi_target import multi_target_energy_score
from scoringrules_torch.functional.variogram import variogram_score
from scoringrules_torch.heads._layers import (
    DEFAULT_DEPTH,
    AdaLNBlock,
    ModulatedFinalLayer,
    default_noise_dim,
    default_width,
    xavier_init,
    zero_init,
)
from scoringrules_torch.heads.base import HeadBase, Temperature, check_int, check_real

__all__ = ["ImplicitGeneratorHead", "ScoreTerms"]

_SCORES = ("energy", "kernel", "crps", "energy+variogram")
_NOISES = ("uniform", "gaussian")

ScoreFn = Callable[..., torch.Tensor]


class ScoreTerms(NamedTuple):
    """The two terms of an energy-type training loss, masked means over positions (detached).

    ``loss = accuracy - train_temperature * spread (+ variogram)`` with ``accuracy = E||X - y||^beta`` and
    ``spread = 1/2 E||X - X'||^beta``, as estimated by the chosen estimator.
    """

    accuracy: torch.Tensor
    spread: torch.Tensor


def _build_score(
    score: str | ScoreFn,
    *,
    estimator: str,
    score_kwargs: dict[str, Any],
) -> tuple[ScoreFn | None, bool]:
    """Return ``(extra_fn, energy)``: ``energy`` says whether the energy terms are part of the loss and
    ``extra_fn(samples, target) -> (N,)`` is any other per-position score to add (or the whole score).

    ``"pairs"`` maps to ``"akr_circperm"`` for the kernel score and the CRPS: with an even ``m`` the circular
    partner of sample ``i`` is sample ``i + m/2``, so that estimator is exactly the disjoint-pairs one.
    """
    if callable(score):
        fn = score

        def user_score(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return fn(samples, target, reduction="none", **score_kwargs)

        return user_score, False
    check_choice("score", score, _SCORES)
    pairs_like = "akr_circperm" if estimator == "pairs" else estimator
    if score == "energy":
        if score_kwargs:
            raise ValueError(
                f"score_kwargs is not used with score='energy' (use beta and estimator); got "
                f"{sorted(score_kwargs)}"
            )
        return None, True
    if score == "energy+variogram":
        kwargs = {"estimator": "nrg" if estimator == "nrg" else "fair", **score_kwargs}

        def variogram(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return variogram_score(samples, target, reduction="none", **kwargs)

        return variogram, True
    if score == "kernel":
        check_choice("estimator (for score='kernel')", estimator, KERNEL_ESTIMATORS + ("pairs",))

        def kernel(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return kernel_score(
                samples, target, estimator=pairs_like, reduction="none", **score_kwargs
            )

        return kernel, False
    # CRPS of each token dimension, summed
    if score_kwargs:
        raise ValueError(f"score_kwargs is not used with score='crps'; got {sorted(score_kwargs)}")
    check_choice("estimator (for score='crps')", estimator, CRPS_ESTIMATORS + ("pairs",))

    def crps(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return crps_ensemble(samples, target, estimator=pairs_like, reduction="none").sum(-1)

    return crps, False


class ImplicitGeneratorHead(HeadBase):
    r"""EAR's implicit generator: an MLP that maps (hidden state, noise) to a token, trained by a score.

    The head represents the predictive distribution only through samples ``x = g(z, eps)``. Following the
    official EAR code (Shao, Meng & Zhou 2025):

    - noise ``eps ~ U[-1/2, 1/2]^noise_dim`` (or ``N(0, I)`` with ``noise="gaussian"``), embedded linearly,
      ``e = Linear(eps)``;
    - the residual stream starts from the condition, ``h_0 = Linear(z)`` (computed once per position and
      shared by all ``m`` samples: the condition is repeated *after* the backbone, never through it);
    - ``depth`` blocks ``h <- h + gate * FFN(LN(h) * (1 + scale) + shift)``, with
      ``[shift, scale, gate] = Linear(SiLU(e))`` per block, ``LN`` affine with eps 1e-6 and
      ``FFN = Linear(W, W) - SiLU - Linear(W, W)``;
    - a final layer ``Linear(W, token_dim)(LN_noaffine(h) * (1 + scale_f) + shift_f)`` with
      ``[shift_f, scale_f] = Linear(SiLU(e))``;
    - xavier-uniform weights and zero biases everywhere, except the modulation and output layers, which start
      at zero: the initial head outputs exactly 0 for every noise, so the ``m`` samples coincide at step 0
      (the scores' gradients are finite there).

    **Training.** ``loss`` draws ``m = num_samples`` samples per position in one generator pass and returns
    the masked mean of a sample-based proper score (negatively oriented). For ``score="energy"``:

    .. math::
        \ell(z, y) = \widehat{E}\|X - y\|^\beta - \tau_{train}\,\tfrac12\,\widehat{E}\|X - X'\|^\beta ,

    with the expectations estimated by ``estimator``: ``"pairs"`` (EAR: sample ``i`` is paired with sample
    ``i + m/2``; O(m)) or ``"fair"`` (all pairs, unbiased). With ``estimator="pairs"``, ``beta=1`` and
    ``num_samples=2`` the loss is exactly one half of EAR's ``||x1 - y|| + ||x2 - y|| - tau ||x1 - x2||``;
    EAR's ``score_batch_mul = k`` corresponds to ``num_samples = 2k``.

    ``train_temperature`` (EAR's tau_train) < 1 down-weights the spread term. **The loss is then not a proper
    scoring rule**: its minimiser is sharper (less diverse) than the data distribution. EAR uses 0.99 in its
    short second training stage; keep 1.0 unless you want that trade-off.

    Other scores: ``"kernel"`` (kernel score, Gaussian kernel by default, see ``score_kwargs``), ``"crps"`` (the
    CRPS of each token dimension, summed; proper but not strictly proper for the joint law), ``"energy+variogram"``
    (energy score plus the variogram score, which adds sensitivity to the dependence between dimensions), or any
    callable ``score(samples, target, reduction="none", **score_kwargs) -> (N,)``.

    **Sampling.** ``sample(z, temperature, num_samples=m)`` draws ``m`` tokens per position (one when
    ``num_samples`` is None) in one generator pass. Two knobs, each a number or a tensor broadcastable to the
    positions:

    - ``temperature`` is EAR's inference temperature: it multiplies only the residual blocks' AdaLN shifts
      (bias included); scales, gates, the final layer and the noise range are untouched. It is what the EAR
      reference uses (0.7 for EAR-B), but it is **not a spread control**: on a trained head it moves the draws
      rather than widening or narrowing them in a predictable way.
    - ``spread`` scales each draw's deviation from the generator's central output ``g(z, 0)`` (the output at
      the noise law's centre): ``x = g(z, 0) + spread * (g(z, eps) - g(z, 0))``. The predictive standard
      deviation is exactly ``spread`` times the trained one, and the shape of the law is kept; ``spread=0``
      gives the point forecast ``g(z, 0)``. It costs one extra generator pass per position (not per draw).

    ``temperature=1, spread=1`` samples the trained model.

    Args:
        token_dim: token size ``d``.
        cond_dim: hidden-state size ``D``.
        width: generator width ``W``; default from the sizes, ``max(16 d, D/2)`` rounded up to a power of
            two and clamped to ``[64, 1024]`` (EAR-B 1024, L 1280, H 1536: :meth:`ear_preset`).
        depth: number of residual blocks (default 3; EAR-B 6, L 8, H 12).
        noise_dim: noise size (default ``4 d`` clamped to ``[8, 64]``; EAR: 64).
        noise: ``"uniform"`` (``U[-1/2, 1/2]``, EAR) or ``"gaussian"`` (``N(0, 1)``).
        num_samples: samples per position for the training loss, ``m >= 2`` (even for ``"pairs"``).
        score: ``"energy"`` (default), ``"kernel"``, ``"crps"``, ``"energy+variogram"`` or a callable.
        beta: energy-score exponent, strictly proper for ``0 < beta < 2``.
        estimator: ``"pairs"`` (EAR, default), ``"fair"``, ``"nrg"``, ``"akr"``, ``"akr_circperm"`` (for the
            kernel score and the CRPS ``"pairs"`` runs ``"akr_circperm"``, which with an even ``m`` is the same
            disjoint-pairs estimator; the CRPS also takes ``"pwm"``, ``"int"``, ``"qd"``; the variogram part of
            ``"energy+variogram"`` uses ``"fair"``, or ``"nrg"`` if ``estimator="nrg"``).
        train_temperature: weight on the spread term (EAR's tau_train); < 1 is improper (see above).
        score_kwargs: extra keywords for the kernel/variogram/callable score (e.g. ``{"bandwidth": 2.0}``).
        log_terms: if True, ``loss`` stores the detached energy terms in ``last_terms`` (:class:`ScoreTerms`).

    Shape:
        - z: ``(*positions, cond_dim)``; target: ``(*positions, token_dim)``; mask: ``(*positions)``
        - ``loss``: scalar in float32 or wider, ``(*positions)`` with ``reduction="none"``
        - ``sample``: ``(*positions, token_dim)``, or ``(m, *positions, token_dim)`` with ``num_samples=m``,
          in ``z``'s dtype
        - ``forward(z, noise)``: noise ``(*S, *positions, noise_dim)`` -> ``(*S, *positions, token_dim)``

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import ImplicitGeneratorHead
        >>> _ = torch.manual_seed(0)
        >>> head = ImplicitGeneratorHead(2, 8, width=32, depth=2, num_samples=4)
        >>> z, y = torch.randn(5, 3, 8), torch.randn(5, 3, 2)
        >>> loss = head.loss(z, y)            # energy score, EAR's pairs estimator
        >>> loss.backward()
        >>> head.sample(z, temperature=0.7).shape
        torch.Size([5, 3, 2])
        >>> head.sample(z, num_samples=10, spread=1.5).shape
        torch.Size([10, 5, 3, 2])
        >>> ImplicitGeneratorHead(1, 48).width        # small default for a small target
        64
        >>> bool(torch.all(head.sample(z) == 0))   # zero-initialised: every sample is 0 at step 0
        True

    References:
        Shao, Meng & Zhou, "Continuous Visual Autoregressive Generation via Score Maximization", ICML 2025.
        Gneiting & Raftery, "Strictly Proper Scoring Rules, Prediction, and Estimation", JASA 2007.
    """

    #: EAR's generator sizes (width, depth) for its model sizes (official code: B, L, H); noise size 64.
    EAR_SIZES = {"B": (1024, 6), "L": (1280, 8), "H": (1536, 12)}

    def __init__(
        self,
        token_dim: int,
        cond_dim: int,
        *,
        width: int | None = None,
        depth: int | None = None,
        noise_dim: int | None = None,
        noise: str = "uniform",
        num_samples: int = 2,
        score: str | ScoreFn = "energy",
        beta: float = 1.0,
        estimator: str = "pairs",
        train_temperature: float = 1.0,
        score_kwargs: dict[str, Any] | None = None,
        log_terms: bool = False,
    ) -> None:
        super().__init__(token_dim, cond_dim)
        width = (
            default_width(token_dim, cond_dim) if width is None else check_int("width", width, 1)
        )
        depth = DEFAULT_DEPTH if depth is None else check_int("depth", depth, 0)
        noise_dim = (
            default_noise_dim(token_dim)
            if noise_dim is None
            else check_int("noise_dim", noise_dim, 1)
        )
        check_choice("noise", noise, _NOISES)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int):
            raise TypeError(
                f"num_samples must be an int >= 2; got {type(num_samples).__name__} {num_samples!r}"
            )
        if num_samples < 2:
            raise ValueError(
                f"num_samples must be an int >= 2 (a sample-based score needs two samples per position "
                f"to see the spread); got {num_samples!r}"
            )
        if not callable(score):
            if not isinstance(score, str):
                raise TypeError(
                    f"score must be one of {', '.join(map(repr, _SCORES))} or a callable; got "
                    f"{type(score).__name__}"
                )
            check_choice("score", score, _SCORES)
        if not isinstance(estimator, str):
            raise TypeError(f"estimator must be a string; got {type(estimator).__name__}")
        if not callable(score) and score in ("energy", "energy+variogram"):
            check_choice("estimator", estimator, ENERGY_ESTIMATORS)
        if estimator == "pairs" and num_samples % 2:
            raise ValueError(
                f"estimator='pairs' pairs sample i with sample i + m/2, so num_samples must be even; got "
                f"num_samples={num_samples}"
            )
        beta = check_real("beta", beta, low=0.0, high=2.0, low_open=True)
        train_temperature = check_real("train_temperature", train_temperature, low=0.0)
        is_energy = not callable(score) and score in ("energy", "energy+variogram")
        if train_temperature != 1.0 and not is_energy:
            raise ValueError(
                f"train_temperature != 1 is only defined for score='energy' or 'energy+variogram'; got "
                f"train_temperature={train_temperature!r} with score={score!r}"
            )
        if score_kwargs is not None and not isinstance(score_kwargs, dict):
            raise TypeError(
                f"score_kwargs must be a dict or None; got {type(score_kwargs).__name__}"
            )
        if not isinstance(log_terms, bool):
            raise TypeError(f"log_terms must be a bool; got {type(log_terms).__name__}")
        self.width = width
        self.depth = depth
        self.noise_dim = noise_dim
        self.noise = noise
        self.num_samples = num_samples
        self.score = score
        self.beta = beta
        self.estimator = estimator
        self.train_temperature = train_temperature
        self.log_terms = log_terms
        self.last_terms: ScoreTerms | None = None
        self._extra_score, self._energy = _build_score(
            score, estimator=estimator, score_kwargs=dict(score_kwargs or {})
        )

        self.noise_embed = nn.Linear(noise_dim, width)
        self.input_proj = nn.Linear(cond_dim, width)
        self.blocks = nn.ModuleList(AdaLNBlock(width) for _ in range(depth))
        self.final = ModulatedFinalLayer(width, token_dim)
        self.reset_parameters()

    @classmethod
    def ear_preset(
        cls, token_dim: int, cond_dim: int, size: str = "B", **kwargs: Any
    ) -> ImplicitGeneratorHead:
        """The generator at EAR's size ``"B"`` (width 1024, depth 6), ``"L"`` (1280, 8) or ``"H"`` (1536, 12),
        noise size 64; other keywords (``num_samples``, ``train_temperature``, ...) pass through.

        Examples:
            >>> head = ImplicitGeneratorHead.ear_preset(16, 768, "B", num_samples=4)
            >>> head.width, head.depth, head.noise_dim
            (1024, 6, 64)
            >>> round(sum(p.numel() for p in head.parameters()) / 1e6, 1)   # millions of parameters
            34.5
        """
        check_choice("size", size, tuple(cls.EAR_SIZES))
        width, depth = cls.EAR_SIZES[size]
        for name in ("width", "depth", "noise_dim"):
            if name in kwargs:
                raise ValueError(f"ear_preset sets {name}; build the head directly to choose it")
        return cls(token_dim, cond_dim, width=width, depth=depth, noise_dim=64, **kwargs)

    def reset_parameters(self) -> None:
        """EAR's initialisation: xavier-uniform/zero bias, then zero modulation and output layers."""
        xavier_init(self)
        for block in self.blocks:
            zero_init(block.modulation)
        zero_init(self.final.modulation)
        zero_init(self.final.linear)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, width={self.width}, depth={self.depth}, noise_dim={self.noise_dim}, "
            f"noise={self.noise!r}, num_samples={self.num_samples}, score={self.score!r}, "
            f"beta={self.beta}, estimator={self.estimator!r}, train_temperature={self.train_temperature}"
        )

    # -- generator --------------------------------------------------------------------------------------
    def draw_noise(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Noise of shape ``(*shape, noise_dim)`` with the dtype and device of ``like``."""
        size = (*shape, self.noise_dim)
        if self.noise == "uniform":
            return torch.rand(size, dtype=like.dtype, device=like.device) - 0.5
        return torch.randn(size, dtype=like.dtype, device=like.device)

    def forward(
        self,
        z: torch.Tensor,
        noise: torch.Tensor,
        temperature: float | torch.Tensor = 1.0,
        spread: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """Deterministic generator ``g(z, noise)``; ``noise`` may carry leading sample dimensions.

        ``z (*positions, D)`` and ``noise (*S, *positions, noise_dim)`` give ``(*S, *positions, d)``;
        ``temperature`` multiplies the residual blocks' AdaLN shifts; ``spread`` scales the output's deviation
        from the central output ``g(z, 0)``: ``g(z, 0) + spread * (g(z, noise) - g(z, 0))``. Tensor values
        must be shaped ``(*positions, 1)``.
        """
        out = self._generate(z, noise, temperature)
        if isinstance(spread, float) and spread == 1.0:
            return out
        center = self._generate(
            z, torch.zeros_like(noise[(0,) * (noise.dim() - z.dim())]), temperature
        )
        return center + spread * (out - center)

    def _generate(
        self, z: torch.Tensor, noise: torch.Tensor, temperature: float | torch.Tensor
    ) -> torch.Tensor:
        h = self.input_proj(z)
        c = F.silu(self.noise_embed(noise))
        if self.depth == 0:
            h = h.expand(*c.shape[:-1], self.width)
        for block in self.blocks:
            h = block(h, c, temperature)
        return self.final(h, c)

    # -- protocol ---------------------------------------------------------------------------------------
    def sample(
        self,
        z: torch.Tensor,
        temperature: Temperature = 1.0,
        *,
        num_samples: int | None = None,
        spread: Temperature = 1.0,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draws ``(*positions, token_dim)``, or ``(m, *positions, token_dim)`` with ``num_samples=m``, in
        ``z``'s dtype, from one generator pass (see the class docstring and :class:`PredictiveHead`).

        Args:
            temperature: EAR's inference temperature (multiplies the residual blocks' AdaLN shifts): a
                number or a tensor broadcastable to the positions.
            num_samples: draws per position (sample-first output).
            spread: scales each draw's deviation from the central output ``g(z, 0)`` (a number ``>= 0`` or a
                tensor broadcastable to the positions): the predictive standard deviation is exactly
                proportional to it; 1 (the default) samples the trained model, 0 gives ``g(z, 0)``.
            noise: fixes the draw: ``(*positions, noise_dim)``, or ``(m, *positions, noise_dim)`` with
                ``num_samples=m``.

        The draw is a differentiable function of ``z`` and the parameters (wrap in ``torch.no_grad()`` for
        generation).
        """
        self._check_z(z)
        positions = z.shape[:-1]
        temperature = self._check_temperature(temperature, positions)
        spread = self._check_temperature(spread, positions, name="spread")
        m = self._check_num_samples(num_samples)
        shape = tuple(positions) if m is None else (m, *positions)
        if noise is None:
            noise = self.draw_noise(shape, z)
        else:
            check_floating("noise", noise)
            if tuple(noise.shape) != (*shape, self.noise_dim):
                raise ValueError(
                    f"noise must have shape {'(m, ' if m else '('}*positions, noise_dim) = "
                    f"{(*shape, self.noise_dim)}; got {tuple(noise.shape)}"
                )
        t = self._per_position(temperature, z)
        s = self._per_position(spread, z)
        return self(z, noise.to(z.dtype), t, s).to(z.dtype)

    def sample_n(self, z: torch.Tensor, num: int, temperature: Temperature = 1.0) -> torch.Tensor:
        """``num`` draws per position: ``sample(z, temperature, num_samples=num)`` (kept for old code)."""
        return self.sample(z, temperature, num_samples=num)

    def loss(
        self,
        z: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
        noise: torch.Tensor | None = None,
        target_dim: int | None = None,
    ) -> torch.Tensor:
        r"""The training score per position, reduced as the protocol says (see class docstring).

        Args:
            reduction: ``"mean"`` (masked mean), ``"sum"`` or ``"none"`` (see :class:`PredictiveHead`).
            noise: optional fixed noise ``(num_samples, *positions, noise_dim)`` (for reproducibility).
            target_dim: ``None`` (default): ``target`` is one point per position, ``(*positions, token_dim)``.
                An int: ``target`` holds ``n`` target *samples* per position along that axis (e.g. draws
                from an autoencoder's posterior of the true token, as CALM trains), ``(n, *positions,
                token_dim)`` for ``target_dim=0``. Only for ``score="energy"``: the accuracy term becomes
                the mean over all ``m x n`` model/target pairs, :math:`\frac{1}{mn}\sum_{i,j}\|x_i -
                y_j\|^\beta` (the cross term of :func:`~scoringrules_torch.functional.multi_target.
                multi_target_energy_score`), the spread term is unchanged; with ``n = 1`` this is the
                one-target loss.

        Examples:
            >>> import torch
            >>> from scoringrules_torch.heads import ImplicitGeneratorHead
            >>> _ = torch.manual_seed(0)
            >>> head = ImplicitGeneratorHead(2, 8, width=32, depth=1, num_samples=4, estimator="fair")
            >>> z, ys = torch.randn(5, 8), torch.randn(16, 5, 2)   # 16 target samples per position
            >>> head.loss(z, ys, target_dim=0, reduction="none").shape
            torch.Size([5])
        """
        check_reduction(reduction)
        if target_dim is not None:
            return self._multi_target_loss(z, target, mask, reduction, noise, target_dim)
        z, target, mask, positions = self._flatten(z, target, mask)
        n = z.shape[0]
        m = self.num_samples
        if noise is None:
            noise = self.draw_noise((m, n), z)
        else:
            check_floating("noise", noise)
            if tuple(noise.shape) != (m, *positions, self.noise_dim):
                raise ValueError(
                    f"noise must have shape (num_samples={m}, *positions, noise_dim={self.noise_dim}); "
                    f"got {tuple(noise.shape)}"
                )
            noise = noise.reshape(m, n, self.noise_dim)
        dtype = self._loss_dtype(z)
        samples = self(z, noise).to(dtype)  # (m, N, d)
        target = target.to(dtype)
        values = torch.zeros((), dtype=dtype, device=z.device)
        if self._energy:
            terms = energy_score_terms(
                samples, target, beta=self.beta, estimator=self.estimator, reduction="none"
            )
            values = terms.accuracy - self.train_temperature * terms.spread
            if self.log_terms:
                self.last_terms = ScoreTerms(
                    self._masked_mean(terms.accuracy, mask).detach(),
                    self._masked_mean(terms.spread, mask).detach(),
                )
        if self._extra_score is not None:
            values = values + self._extra_score(samples, target)
        return self._reduce(values, mask, reduction, positions)

    def _multi_target_loss(
        self,
        z: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor | None,
        reduction: str,
        noise: torch.Tensor | None,
        target_dim: int,
    ) -> torch.Tensor:
        """``loss`` against ``n`` target samples per position (``target_dim`` indexes them)."""
        if isinstance(target_dim, bool) or not isinstance(target_dim, int):
            raise TypeError(f"target_dim must be None or an int; got {type(target_dim).__name__}")
        if self.score != "energy":
            raise ValueError(
                f"target_dim (several target samples per position) is only supported with "
                f"score='energy'; this head has score={self.score!r}"
            )
        check_floating("target", targets)
        if not -targets.dim() <= target_dim < targets.dim():
            raise ValueError(
                f"target_dim={target_dim} is out of range for target of shape {tuple(targets.shape)}"
            )
        targets = targets.movedim(target_dim, 0)
        if targets.shape[0] < 1:
            raise ValueError(f"target has no target samples along target_dim={target_dim}")
        # shape checks (and masking of z) on the first target sample
        z, _, mask, positions = self._flatten(z, targets[0], mask)
        n_t = targets.shape[0]
        targets = targets.reshape(n_t, -1, self.token_dim)
        if mask is not None:
            keep = (mask != 0)[None, :, None]
            zero = torch.zeros((), dtype=targets.dtype, device=targets.device)
            targets = torch.where(keep, targets, zero)
        n = z.shape[0]
        m = self.num_samples
        if noise is None:
            noise = self.draw_noise((m, n), z)
        else:
            check_floating("noise", noise)
            if tuple(noise.shape) != (m, *positions, self.noise_dim):
                raise ValueError(
                    f"noise must have shape (num_samples={m}, *positions, noise_dim={self.noise_dim}); "
                    f"got {tuple(noise.shape)}"
                )
            noise = noise.reshape(m, n, self.noise_dim)
        dtype = self._loss_dtype(z)
        samples = self(z, noise).to(dtype)  # (m, N, d)
        targets = targets.to(dtype)
        # spread = 1/2 E||X - X'||^beta with the head's estimator (it does not involve the target)
        spread = energy_score_terms(
            samples, targets[0], beta=self.beta, estimator=self.estimator, reduction="none"
        ).spread
        # accuracy = mean over the m x n cross pairs: the multi-target score plus its own (fair) spread
        fair_spread = (
            spread
            if self.estimator == "fair"
            else energy_score_terms(
                samples, targets[0], beta=self.beta, estimator="fair", reduction="none"
            ).spread
        )
        accuracy = (
            multi_target_energy_score(
                samples, targets, beta=self.beta, estimator="fair", reduction="none"
            )
            + fair_spread
        )
        values = accuracy - self.train_temperature * spread
        if self.log_terms:
            self.last_terms = ScoreTerms(
                self._masked_mean(accuracy, mask).detach(),
                self._masked_mean(spread, mask).detach(),
            )
        return self._reduce(values, mask, reduction, positions)
