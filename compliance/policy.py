"""The compliance policy: every threshold the checks use, from one TOML file.

Forces differ in what they require (how early recording must start, how much child
speech counts as captured), so no threshold is hard-coded in the checks. The built-in
defaults are `default_policy.toml`, shipped beside this module; `--policy FILE` (or the
standing `BWV_POLICY`) overrides any subset of keys, and a bad file is refused outright
rather than half-applied.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from bwv.core.child_speech import DEFAULT_THRESHOLD
from bwv.core.errors import BwvError

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")
TARGETS = "first_arrival_target_s"
DEFAULT_PRIORITY = "default"  # the target's key for incidents with no (or no listed) priority
PRIORITY_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,15}")
# Minutes from report to first arrival, as command-and-control grades commonly set them
# (P1 emergency 15, P2 priority 60, P3 scheduled 4 hours); a force sets its own.
DEFAULT_MARKING = "OFFICIAL-SENSITIVE"  # Government Security Classifications handling caveat
MAX_MARKING = 100
DEFAULT_TARGETS = (("P1", 900.0), ("P2", 3600.0), ("P3", 14400.0), (DEFAULT_PRIORITY, 3600.0))


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
    # (priority, seconds) pairs, `default` last: a tuple so the policy stays hashable.
    first_arrival_target_s: tuple[tuple[str, float], ...] = DEFAULT_TARGETS
    protective_marking: str = DEFAULT_MARKING
    child_voice_age: int = 12
    other_voice_compliant: bool = False
    source: str = "built-in"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data[TARGETS] = dict(self.first_arrival_target_s)
        return data

    @property
    def priorities(self) -> list[str]:
        """The incident priorities this policy sets a target for."""
        return [key for key, _ in self.first_arrival_target_s if key != DEFAULT_PRIORITY]

    def arrival_target(self, priority: str) -> float:
        """Seconds allowed from report to first arrival; unlisted priorities get the default."""
        targets = dict(self.first_arrival_target_s)
        return targets.get(priority) or targets[DEFAULT_PRIORITY]

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
_TARGET_LIMITS = (float, 1.0, 7 * 86400.0)  # up to a week: a scheduled appointment


def load_policy(path: Path | None = None) -> Policy:
    """`path`, else the standing `BWV_POLICY` file, else the built-in defaults."""
    chosen = path or _standing_policy_path()
    if chosen is None:
        return Policy()
    values = _read_toml(chosen)
    targets = values.pop(TARGETS, None)
    marking = values.pop("protective_marking", None)
    checked = _validated(values, chosen)
    if targets is not None:
        checked[TARGETS] = _checked_targets(targets, chosen)
    if marking is not None:
        checked["protective_marking"] = _checked_marking(marking, chosen)
    return replace(Policy(), source=str(chosen), **checked)


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
    return _within(_LIMITS[key], value)


def _within(limits: tuple[type, float, float], value: Any) -> int | float:
    kind, low, high = limits
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


def _checked_targets(table: Any, path: Path) -> tuple[tuple[str, float], ...]:
    """The `[first_arrival_target_s]` table merged over the defaults, key by key."""
    where = f"policy file {path}: {TARGETS}"
    if not isinstance(table, dict):
        raise BwvError(f"{where}: must be a table of priority = seconds, e.g. P1 = 900")
    merged = dict(DEFAULT_TARGETS)
    problems: list[str] = []
    for key, value in table.items():
        name = key if key == DEFAULT_PRIORITY else key.strip().upper()
        if name != DEFAULT_PRIORITY and not PRIORITY_PATTERN.fullmatch(name):
            problems.append(f"{where}: {key!r}: a priority is letters, digits, - or _ (at most 16)")
            continue
        try:
            merged[name] = float(_within(_TARGET_LIMITS, value))
        except ValueError as exc:
            problems.append(f"{where}: {key}: {exc}")
    if problems:
        raise BwvError("\n".join(problems))
    default = merged.pop(DEFAULT_PRIORITY)
    return (*sorted(merged.items()), (DEFAULT_PRIORITY, default))


def _checked_marking(value: Any, path: Path) -> str:
    """The marking printed on every child record: one short line of printable text."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_MARKING or not text.isprintable():
        raise BwvError(
            f"policy file {path}: protective_marking: must be one line of text "
            f"(1 to {MAX_MARKING} printable characters), e.g. OFFICIAL-SENSITIVE"
        )
    return text
