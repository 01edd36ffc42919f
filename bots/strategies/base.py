"""Building blocks of the strategy registry: bars, parameter schemas, decisions and the registry itself."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Bars:
    """OHLCV history of one instrument and timeframe, oldest first, as float64 numpy arrays of equal length."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_columns(cls, *, ts, open, high, low, close, volume) -> Bars:  # noqa: A002 - OHLCV names
        columns = {
            "open": np.asarray(open, dtype=np.float64),
            "high": np.asarray(high, dtype=np.float64),
            "low": np.asarray(low, dtype=np.float64),
            "close": np.asarray(close, dtype=np.float64),
            "volume": np.asarray(volume, dtype=np.float64),
        }
        stamps = np.asarray(ts)
        lengths = {len(stamps), *(len(values) for values in columns.values())}
        if len(lengths) != 1:
            raise ValueError("every OHLCV column must have the same length as ts")
        return cls(ts=stamps, **columns)

    def __len__(self) -> int:
        return len(self.close)


BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


_NO_VALUES: dict[str, float] = {}  # Decision's default marker (never stored: each Decision gets its own dict)


@dataclass(frozen=True)
class Decision:
    """What a strategy wants: a signed target position (None: not enough history) and why."""

    target: float | None
    reason: str
    values: dict[str, float] = field(default_factory=dict)

    def __init__(self, target: float | None, reason: str, values: dict[str, float] = _NO_VALUES):
        """The dataclass's own ``__init__`` with the same fields and default (a new empty dict), written out: the
        generated one sets each field through ``object.__setattr__`` (frozen), twice the cost, and the reference
        backtest builds one Decision per bar. ``dataclass`` keeps an ``__init__`` the class defines."""
        fields = self.__dict__
        fields["target"] = target
        fields["reason"] = reason
        fields["values"] = {} if values is _NO_VALUES else values


class StrategyParameterError(ValueError):
    """Invalid parameters; ``errors`` maps each offending field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))


class UnknownStrategy(KeyError):
    pass


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: type  # int, float or bool
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any) -> Any:
        """The value as this parameter's type, or ValueError with a message for the field."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError("Must be true or false.")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"Must be a number ({self.kind.__name__}).")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("Must be a whole number.")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError("Must be a finite number.")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"Must be at least {self.minimum}.")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"Must be at most {self.maximum}.")
        return value

    def as_schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": {int: "integer", float: "number", bool: "boolean"}[self.kind],
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.description,
        }


# What a strategy decides by, and the faster forms of it a strategy may declare (each held equal to the rule).
RULE_METHODS = ("decide", "_decide", "warmup_bars")


class Strategy:
    """A named decision function with its parameter schema. Subclasses set ``name``, ``description``,
    ``params`` and implement ``warmup_bars`` and ``_decide``; ``check`` adds rules across parameters."""

    name: str = ""
    description: str = ""
    params: tuple[ParamSpec, ...] = ()

    def __init_subclass__(cls, **kwargs):
        """A subclass that changes the rule (``RULE_METHODS``) without declaring a form of its own is no longer
        described by its parent's forms: it decides one by one in the tick (``decide_many``) and backtests bar by
        bar (``vectorized_targets``, ``reference_targets``), never by the rule it replaced."""
        super().__init_subclass__(**kwargs)
        if not any(name in cls.__dict__ for name in RULE_METHODS):
            return
        if "decide_many" not in cls.__dict__:
            cls.decide_many = Strategy.decide_many
        if "vectorized_targets" not in cls.__dict__:
            cls.has_vectorized_form = False
            cls.vectorized_targets = Strategy.vectorized_targets
        if "reference_targets" not in cls.__dict__:
            cls.reference_targets = Strategy.reference_targets

    def rule_patched(self) -> bool:
        """Whether this instance was given its own ``decide``, ``_decide`` or ``warmup_bars`` (a test double does
        that): its class's forms do not describe it."""
        return any(name in vars(self) for name in RULE_METHODS)

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [spec.as_schema() for spec in self.params],
        }

    def validate(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise StrategyParameterError({"parameters": ["Must be an object of parameter values."]})
        known = {spec.name: spec for spec in self.params}
        errors: dict[str, list[str]] = {
            name: [f"Unknown parameter for strategy {self.name}; known: {', '.join(sorted(known))}."]
            for name in params
            if name not in known
        }
        clean: dict[str, Any] = {}
        for spec in self.params:
            try:
                clean[spec.name] = spec.coerce(params.get(spec.name, spec.default))
            except ValueError as exc:
                errors.setdefault(spec.name, []).append(str(exc))
        if not errors:
            errors.update(self.check(clean))
        if errors:
            raise StrategyParameterError(errors)
        return clean

    def check(self, params: dict[str, Any]) -> dict[str, list[str]]:
        return {}

    def parameters_hash(self, params: Mapping[str, Any]) -> str:
        canonical = json.dumps(
            {"strategy": self.name, "parameters": self.validate(params)}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def warmup_bars(self, params: dict[str, Any]) -> int:
        raise NotImplementedError

    def decide(self, params: dict[str, Any], bars: Bars, position: float) -> Decision:
        needed = self.warmup_bars(params)
        short = self.short_history(needed, bars)
        if short is not None:
            return short
        window = Bars(*(getattr(bars, name)[-needed:] for name in BAR_COLUMNS))
        return self._decide(params, window, float(position))

    @staticmethod
    def short_history(needed: int, bars: Bars) -> Decision | None:
        """The INSUFFICIENT_HISTORY decision when ``bars`` are fewer than the ``needed`` warm-up, else None."""
        if len(bars) < needed:
            return Decision(
                None, "INSUFFICIENT_HISTORY", {"bars_needed": float(needed), "bars_available": float(len(bars))}
            )
        return None

    def decide_many(
        self, param_sets: Sequence[dict[str, Any]], bars: Bars, positions: Sequence[float]
    ) -> list[Decision]:
        """One decision per (parameters, position) pair on the same bars, each equal to ``decide(params, bars,
        position)``: the live tick decides all the bots of a batch that share a strategy in one call.

        This default decides one by one. A strategy overrides it to share the work between parameter sets (an
        indicator over the same window length computed once for every bot that reads it); the override must give
        the same targets, reasons and values, which ``tests/bots/test_decide_many.py`` holds it to."""
        return [self.decide(params, bars, position) for params, position in paired(param_sets, positions)]

    def _decide(self, params: dict[str, Any], bars: Bars, position: float) -> Decision:
        raise NotImplementedError

    # A strategy may declare a vectorized form: the target after each bar (NaN before warmup), equal to calling
    # ``decide`` bar by bar with the position equal to the previous target (exits that depend on the position are a
    # latch over the earlier bars' signals, see donchian_breakout). The backtest engine uses it when every order is certain to fill completely and
    # tests it trade for trade against the bar-by-bar reference.
    has_vectorized_form: bool = False

    def vectorized_targets(self, params: dict[str, Any], bars: Bars):
        raise NotImplementedError

    # A strategy may also declare a reference form: the target ``_decide`` returns at each bar of a whole series,
    # for each side the position it is given may be on, with the indicators computed once over the series (exact:
    # the same floats, or the same comparisons, as the window of ``warmup_bars`` bars ending at that bar). The
    # reference backtest then reads the target by index instead of calling ``_decide`` per bar; it applies only to
    # a strategy whose target depends on the position through its sign alone, or is the position itself (a hold),
    # and only while the class that declares it also defines the rule in use (a subclass that changes it loses the
    # form, ``__init_subclass__``; an instance given its own rule is ``rule_patched``). ``tests/backtests/test_reference_forms.py`` holds each form to ``_decide``.

    def reference_targets(self, params: dict[str, Any], bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The target after each bar when the position is flat, long and short: three float arrays as long as
        ``bars``, NaN where ``_decide`` holds (returns the position it was given); read from bar
        ``warmup_bars - 1`` on (earlier entries are anything). Strategies without the form do not override it."""
        raise NotImplementedError


def paired(param_sets: Sequence[dict[str, Any]], positions: Sequence[float]):
    """``decide_many``'s (parameters, position) pairs; a length mismatch is a caller's bug, never silently cut."""
    if len(param_sets) != len(positions):
        raise ValueError(f"{len(param_sets)} parameter sets but {len(positions)} positions")
    return zip(param_sets, positions)


_REGISTRY: dict[str, Strategy] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    instance = cls()
    if not instance.name or instance.name in _REGISTRY:
        raise ValueError(f"strategy name {instance.name!r} is empty or already registered")
    _REGISTRY[instance.name] = instance
    return cls


def get_strategy(name: str) -> Strategy:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownStrategy(f"unknown strategy {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def available_strategies() -> list[Strategy]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
