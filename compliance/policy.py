"""The compliance policy: every threshold the checks use, from one TOML file.

Forces differ in what they require (how early recording must start, how much child
speech counts as captured), so no threshold is hard-coded in the checks. The built-in
defaults are `default_policy.toml`, shipped beside this module; `--policy FILE` (or the
standing `BWV_POLICY`) overrides any subset of keys, and a bad file is refused outright
rather than half-applied.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from bwv.core.child_speech import DEFAULT_THRESHOLD
from bwv.core.errors import BwvError

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")


@dataclass(frozen=True)
class Policy:
    min_speaking_age: int = 3
    child_probability_threshold: float = DEFAULT_THRESHOLD
    min_child_speech_s: float = 2.0
    start_grace_s: float = 60.0
    stop_grace_s: float = 60.0
    link_pre_arrival_s: float = 300.0
    link_post_departure_s: float = 300.0
    flag_below_points: float = 20.0
    flag_min_attendances: int = 5
    child_voice_age: int = 12
    other_voice_compliant: bool = False
    source: str = "built-in"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def link_window(self) -> tuple[float, float]:
        return (self.link_pre_arrival_s, self.link_post_departure_s)


# Upper bounds keep a typo (seconds entered as milliseconds) from silently passing.
_LIMITS: dict[str, tuple[type, float, float]] = {
    "min_speaking_age": (int, 0, 17),
    "child_probability_threshold": (float, 0.0, 1.0),
    "min_child_speech_s": (float, 0.0, 3600.0),
    "start_grace_s": (float, 0.0, 86400.0),
    "stop_grace_s": (float, 0.0, 86400.0),
    "link_pre_arrival_s": (float, 0.0, 86400.0),
    "link_post_departure_s": (float, 0.0, 86400.0),
    "flag_below_points": (float, 0.0, 100.0),
    "flag_min_attendances": (int, 1, 1_000_000),
    "child_voice_age": (int, 1, 18),
    "other_voice_compliant": (bool, 0, 1),
}


def load_policy(path: Path | None = None) -> Policy:
    """`path`, else the standing `BWV_POLICY` file, else the built-in defaults."""
    chosen = path or _standing_policy_path()
    if chosen is None:
        return Policy()
    values = _read_toml(chosen)
    return replace(Policy(), source=str(chosen), **_validated(values, chosen))


def _standing_policy_path() -> Path | None:
    value = os.environ.get("BWV_POLICY", "").strip()
    return Path(value) if value else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise BwvError(f"policy file {path} does not exist") from None
    except IsADirectoryError:
        raise BwvError(f"policy file {path} is a folder") from None
    except OSError as exc:
        raise BwvError(f"cannot read policy file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BwvError(f"policy file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BwvError(f"policy file {path} is not valid TOML: {exc}") from None


def _validated(values: dict[str, Any], path: Path) -> dict[str, Any]:
    problems: list[str] = []
    result: dict[str, Any] = {}
    for key, value in values.items():
        try:
            result[key] = _checked(key, value)
        except ValueError as exc:
            problems.append(f"policy file {path}: {key}: {exc}")
    if problems:
        raise BwvError("\n".join(problems))
    return result


def _checked(key: str, value: Any) -> int | float:
    if key not in _LIMITS:
        known = ", ".join(f.name for f in fields(Policy) if f.name != "source")
        raise ValueError(f"unknown setting (known: {known})")
    kind, low, high = _LIMITS[key]
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if kind is int and not isinstance(value, int):
        raise ValueError("must be a whole number")
    if not low <= value <= high:
        raise ValueError(f"must be between {low:g} and {high:g}, not {value}")
    return kind(value)
