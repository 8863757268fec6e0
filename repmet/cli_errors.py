"""Command-line entry points print user errors as one line, without a traceback."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click

from repmet.errors import UserError


def report_user_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; resume with --resume", err=True)
            sys.exit(130)

    return wrapper
