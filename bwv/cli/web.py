"""`bwv serve` and `bwv user ...`: the web app and who may sign in to it.

FastAPI, uvicorn and argon2 are imported inside the commands so `bwv --help` stays instant.
"""

from __future__ import annotations

import click

from bwv.cli.common import AppContext, pass_app

ROLES = ("evidence_officer", "inspector", "trainer", "admin")


@click.command("serve", short_help="Serve the web app over the catalogue.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="Server processes; each judges and keeps the verdicts itself (memory per process).",
)
@pass_app
def serve_command(app: AppContext, host: str, port: int, workers: int) -> None:
    """Serve incidents, clips, the review queue and examples to signed-in users."""
    import os

    import uvicorn

    from bwv.web.app import SERVE_DATABASE, create_app

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"Warning: serving on {host}: reachable from other machines", err=True)
    click.echo(f"Serving bwv on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    if workers == 1:
        uvicorn.run(create_app(app.engine), host=host, port=port, log_level="warning")
        return
    os.environ[SERVE_DATABASE] = app.engine.url.render_as_string(hide_password=False)
    uvicorn.run("bwv.web.app:app_from_environment", factory=True, workers=workers,
                host=host, port=port, log_level="warning")  # fmt: skip


@click.group("user", short_help="Add, disable and list users of the web app.")
def user_group() -> None:
    """Users of `bwv serve`, each with one role."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.password_option(help="Prompted (twice) when not given; at least 10 characters.")
@pass_app
def user_add(app: AppContext, name: str, role: str, password: str) -> None:
    """Add a user; the password is hashed with argon2 and never stored or shown."""
    from bwv.services.users import add_user

    added = add_user(name, role, password, engine=app.engine, actor=app.actor)
    click.echo(f"Added {added.role} {added.name}.")


@user_group.command("disable")
@click.argument("name")
@pass_app
def user_disable(app: AppContext, name: str) -> None:
    """Disable a leaver: no more sign-ins, and their open sessions end now."""
    from bwv.services.users import disable_user

    disabled = disable_user(name, engine=app.engine, actor=app.actor)
    click.echo(f"Disabled {disabled.name}; their sessions have ended.")


@user_group.command("list")
@pass_app
def user_list(app: AppContext) -> None:
    """List users, their roles and whether they are disabled or locked."""
    from bwv.core.textsafe import printable
    from bwv.services.users import list_users

    for user in list_users(engine=app.engine, actor=app.actor):
        state = "disabled" if user.disabled else "active"
        if user.locked_until is not None and not user.disabled:
            state += f", locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{printable(user.name)}\t{user.role}\t{state}")


COMMANDS: list[click.Command] = [serve_command, user_group]
