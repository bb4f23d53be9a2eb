"""What every `bwv` command shares: the app context, repeated options, error and JSON output.

Options used by several commands are defined here once, as decorators. Domain errors
raised by the library become one `Error: ...` line and an exit code here, and nowhere
else; heavy libraries are never imported from this module so `bwv --help` stays instant.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine

from bwv.core.errors import BwvError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    """Per-invocation state: where the catalogue is and who is acting."""

    db: str | None = None
    actor_option: str | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from bwv.core.db import database_url, get_engine

            self._engine = get_engine(database_url(self.db))
        return self._engine

    @property
    def actor(self) -> str:
        from bwv.core.audit import resolve_actor

        return resolve_actor(self.actor_option)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


class BwvGroup(click.Group):
    """A click group that turns domain errors into one clear line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with writing_output():
                return super().invoke(ctx)
        except BwvError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)


# A standard output that cannot take what a command prints: a full disk, a closed pipe.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE, errno.EIO})


@contextlib.contextmanager
def writing_output(done: str = "") -> Iterator[None]:
    """Standard output that cannot be written is one clear error, whichever command wrote.

    `done` tells the user what was nevertheless completed (and audited) before the write.
    Flushed on the way out, also when the command ends with its exit code (SystemExit).
    """
    try:
        try:
            yield
        finally:
            sys.stdout.flush()
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        _drop_stdout()
        raise BwvError(f"cannot write the output: {exc.strerror or exc}{done}") from exc


def _drop_stdout() -> None:
    # What stays buffered would fail again in Python's flush at exit and print a traceback
    # after the `Error:` line; pointing the descriptor at the null device discards it.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def echo(line: str = "", *, err: bool = False) -> None:
    """Prints one line of catalogue-derived text made safe for the terminal: a newline
    inside it is shown as `\\n`, never a forged line (`bwv.core.textsafe`)."""
    from bwv.core.textsafe import printable

    click.echo(printable(line), err=err)


def fail(message: str, code: int = 2) -> None:
    """Prints `Error: ...` (one line per problem) to stderr and exits with `code`."""
    from bwv.core.textsafe import printable

    for line in message.splitlines() or [""]:
        click.echo(f"Error: {printable(line)}", err=True)
    sys.exit(code)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


policy_option = click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    help="Policy TOML file (default: $BWV_POLICY or the built-in policy).",
)


def child_threshold(policy_path: Path | None) -> float:
    """The child-probability threshold of the policy in force (`--policy` or $BWV_POLICY)."""
    from compliance.policy import load_policy

    return load_policy(policy_path).child_probability_threshold


def time_range_options(func: F) -> F:
    """`--since` and `--until`, ISO 8601 (local time in the configured zone without offset)."""
    func = click.option("--until", "until", type=TimeParam(), help="Only up to this time.")(func)
    return click.option("--since", "since", type=TimeParam(), help="Only from this time.")(func)


class TimeParam(click.ParamType):
    """An ISO 8601 time; without an offset it is local time in `BWV_TIMEZONE`."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        import warnings

        from bwv.core.timeutil import AmbiguousTimeWarning, parse_time

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AmbiguousTimeWarning)
            try:
                moment = parse_time(str(value))
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        for warning in caught:
            click.echo(f"Warning: {_option_name(param)}: {warning.message}", err=True)
        return moment


def _option_name(param: click.Parameter | None) -> str:
    return param.opts[0] if param is not None and param.opts else "time"


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    from bwv.core.timeutil import json_time

    return json_time(value)
