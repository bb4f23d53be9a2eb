"""`bwv` commands for compliance; registered on the main group by bwv.cli."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
