"""The command-line app, its command groups and the helpers every command uses."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from observe.config import Settings
from observe.db import migrate
from observe.db.engine import Database, create_database

#: The order `observe --help` lists the commands in: running it, then data in, then analysis.
COMMAND_ORDER = (
    "serve",
    "demo",
    "db",
    "keys",
    "models",
    "import",
    "collect",
    "analyze",
    "diagnose",
    "report",
)


class _OrderedGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: index for index, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    cls=_OrderedGroup,
    help="observe: ML observability and root-cause diagnosis.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
models_app = typer.Typer(help="Models, their traffic and SLOs.", invoke_without_command=True)
import_app = typer.Typer(
    help="Import records, labels, events, metrics, spans or profiler traces from files.",
    no_args_is_help=True,
)
collect_app = typer.Typer(
    help="Collect GPU and host metrics and send them to an observe server.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(import_app, name="import")
analyze_app = typer.Typer(
    help="Run an analysis of one model now: latency regressions, drift, training-serving skew.",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")
app.add_typer(collect_app, name="collect")

# Wide enough for tables when output goes to a file or pipe (rich assumes 80 columns there).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
# Messages are not wrapped: a path or URL broken across lines cannot be copied or grepped.
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise fail(f"invalid settings: {problems}") from None


def open_database(settings: Settings, *, upgrade: bool = True) -> Database:
    """Connect and bring the schema up to date (or refuse if it is not and `upgrade` is off)."""
    db = create_database(
        settings.database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    try:
        if upgrade:
            migrate.upgrade(db.engine)
        elif not migrate.is_up_to_date(db.engine):
            raise fail("the database schema is not up to date: run `observe db upgrade`")
    except typer.Exit:
        raise
    except Exception as error:
        raise fail(
            f"cannot use the database {safe_url(settings.database_url)}: {first_line(error)}"
        ) from None
    return db


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


P = ParamSpec("P")
T = TypeVar("T")


def _parse_option(parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`parse(*args, **kwargs)` with one of the API's parameter parsers (observe.api.params);
    a value it refuses is reported as a usage error (exit code 2)."""
    from observe.api.errors import ApiError

    try:
        return parse(*args, **kwargs)
    except ApiError as error:
        raise fail(error.detail, 2) from None


def _window(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    from observe.api.params import resolve_window

    return _parse_option(resolve_window, start, end)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _time_option(value: str | None, name: str) -> dt.datetime | None:
    from observe.api.params import parse_time

    return _parse_option(parse_time, value, name)


def _validation_message(error: ValidationError) -> str:
    from observe.schemas.common import describe_error

    return "; ".join(
        f"--{(field or '').replace('_', '-')}: {message}"
        for field, message in (describe_error(detail) for detail in error.errors())
    )
