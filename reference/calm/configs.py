"""Typed configuration of the reference CALM run, with presets and a JSON form.

One :class:`RunConfig` describes a run completely; it is written as ``config.json`` in the run folder and inside
every checkpoint. Presets: ``default`` (the KJV job, <= 25 minutes on 2 CPU cores) and ``tiny`` (a toy text,
seconds; used by the tests). Any field can be overridden with ``--set section.field=value`` (JSON-parsed when
possible).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "EvalConfig", "RunConfig", "preset", "apply_overrides"]


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value < 1:
            where = f"{type(obj).__name__[:-6].lower()}.{name}"
            raise ValueError(f"config {where} must be >= 1; got {value!r}")


def _check(obj: Any) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        where = f"{type(obj).__name__[:-6].lower()}.{f.name}"
        if typing.get_origin(hint) is tuple:
            if not isinstance(value, tuple) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                raise TypeError(f"config {where} must be a tuple of numbers; got {value!r}")
            continue
        allowed = typing.get_args(hint) or (hint,)
        allowed = tuple(a for a in allowed if isinstance(a, type))
        ok = any(
            (a is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (a is int and isinstance(value, int) and not isinstance(value, bool))
            or (a not in (int, float) and isinstance(value, a))
            for a in allowed
        )
        if not ok:
            names = " or ".join(a.__name__ for a in allowed)
            raise TypeError(f"config {where} must be {names}; got {type(value).__name__} {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"config {where} must be >= 0; got {value!r}")


@dataclass
class DataConfig:
    source: str = "kjv"  # "kjv" (Debian bible-kjv) | "text" (text_path)
    text_path: str | None = None
    heldout_books: int = 4  # kjv: the last N books are held out
    heldout_fraction: float = 0.05  # text: the last fraction of lines is held out
    num_merges: int = 768  # BPE merges (vocabulary 256 + num_merges)

    def __post_init__(self) -> None:
        _check(self)
        if self.source not in ("kjv", "text"):
            raise ValueError(f"config data.source must be 'kjv' or 'text'; got {self.source!r}")


@dataclass
class ModelConfig:
    chunk: int = 4  # K tokens per continuous vector
    latent_dim: int = 32  # size of the AE latent (the continuous token)
    ae_embed: int = 64  # AE token-embedding size
    ae_hidden: int = 256  # AE MLP width
    ae_token_dropout: float = 0.15  # input tokens replaced by [MASK] (CALM: 0.15)
    ae_latent_dropout: float = 0.15  # dropout on the sampled latent (CALM)
    kl_weight: float = 1e-3  # CALM: 1e-3
    kl_clamp: float = 0.5  # free-bits floor per latent dimension (CALM: 0.5)
    width: int = 128  # transformer width (both LMs)
    depth: int = 4
    num_heads: int = 4
    context: int = 128  # tokens of context (the continuous LM sees context / chunk positions)
    head_width: int = 128
    head_depth: int = 2
    num_samples: int = 4  # model samples per position in the energy loss (CALM: 8; see docs/calm.md)
    target_samples: int = 32  # AE-posterior samples per position (CALM: 100)

    def __post_init__(self) -> None:
        _check(self)
        if self.width % self.num_heads:
            raise ValueError(f"config model.width ({self.width}) must be divisible by num_heads")
        if self.context % self.chunk or self.context // self.chunk < 2:
            raise ValueError(
                f"config model.context ({self.context}) must be a multiple of model.chunk ({self.chunk}) "
                f"with at least 2 chunks"
            )
        _positive(self, "chunk", "latent_dim", "ae_embed", "ae_hidden", "width", "depth", "num_heads",
                  "head_width", "target_samples")
        if self.chunk < 4:
            raise ValueError(
                f"config model.chunk must be >= 4: BrierLM scores 4-token continuations and one draw of the "
                f"continuous model gives one chunk (CALM's extra roll-out steps for K < 4 are not "
                f"implemented); got {self.chunk}"
            )
        if self.num_samples < 2:
            raise ValueError(f"config model.num_samples must be >= 2; got {self.num_samples}")


@dataclass
class TrainConfig:
    seed: int = 0
    threads: int = 2
    ae_steps: int = 4000
    ae_batch: int = 256  # chunks per AE step
    ae_lr: float = 2e-3
    lm_flops: float = 8.0e12  # training FLOPs of EACH language model (equal budgets)
    lm_batch: int = 16  # sequences of `context` tokens per LM step
    lm_lr: float = 3e-3
    warmup: int = 100
    grad_clip: float = 1.0
    ae_minutes: float = 4.0  # wall-clock caps (the fraction completed is reported when one is hit)
    lm_minutes: float = 9.0
    log_every: int = 50

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "threads", "ae_steps", "ae_batch", "lm_batch", "log_every")
        if self.lm_flops <= 0 or self.ae_lr <= 0 or self.lm_lr <= 0:
            raise ValueError("config train.lm_flops, train.ae_lr and train.lm_lr must be > 0")


@dataclass
class EvalConfig:
    block: int = 128  # BrierLM evaluation block: fixed windows of this many held-out tokens
    max_blocks: int = 128  # held-out blocks scored (both models see the same ones)
    candidates: int = 64  # draws per step for the likelihood-free temperature sampler
    temperatures: tuple[float, float] = (1.0, 0.5)  # of the form 1/n (n integer) for the sampler
    sample_tokens: int = 48
    prompt_tokens: int = 16

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "block", "max_blocks", "candidates", "sample_tokens", "prompt_tokens")
        for t in self.temperatures:
            n = 1.0 / t if t > 0 else 0.0
            if t <= 0 or abs(n - round(n)) > 1e-6:
                raise ValueError(f"config eval.temperatures must be of the form 1/n; got {t}")


@dataclass
class RunConfig:
    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "sample_tokens"):
            if getattr(self.eval, name) % self.model.chunk:
                raise ValueError(
                    f"config eval.{name} ({getattr(self.eval, name)}) must be a multiple of model.chunk "
                    f"({self.model.chunk})"
                )
        if self.eval.block % self.model.chunk or self.eval.block > self.model.context:
            raise ValueError(
                f"config eval.block ({self.eval.block}) must be a multiple of model.chunk and at most "
                f"model.context ({self.model.context})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return _from_dict(cls, data, "config")


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be a JSON object; got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid fields are {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def preset(name: str) -> RunConfig:
    """``default`` (KJV, 2 CPU cores, <= 25 min) or ``tiny`` (seconds, for tests)."""
    if name == "default":
        return RunConfig()
    if name == "tiny":
        return RunConfig(
            name="tiny",
            data=DataConfig(source="text", num_merges=40, heldout_fraction=0.2),
            model=ModelConfig(
                latent_dim=8, ae_embed=16, ae_hidden=32, width=32, depth=1, num_heads=2, context=16,
                head_width=32, head_depth=1, num_samples=4, target_samples=4,
            ),
            train=TrainConfig(
                threads=1, ae_steps=20, ae_batch=32, lm_flops=2e8, lm_batch=4, warmup=2,
                ae_minutes=0.5, lm_minutes=0.5, log_every=5,
            ),
            eval=EvalConfig(block=16, max_blocks=2, candidates=8, sample_tokens=8, prompt_tokens=4),
        )
    raise ValueError(f"unknown preset {name!r}; choose 'default' or 'tiny'")


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.field=value`` strings (value parsed as JSON when possible) and re-validate."""
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set expects section.field=value; got {item!r}")
        key, raw = item.split("=", 1)
        section, name = key.split(".", 1)
        if section not in data or not isinstance(data[section], dict):
            raise ValueError(f"--set {item!r}: unknown section {section!r}")
        if name not in data[section]:
            raise ValueError(
                f"--set {item!r}: unknown field {name!r}; valid fields are {sorted(data[section])}"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        data[section][name] = value
    return RunConfig.from_dict(data)
