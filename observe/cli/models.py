"""`observe models` and `observe models slo`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from observe.cli.base import (
    JsonOption,
    _ms,
    _pct,
    _window,
    fail,
    load_settings,
    models_app,
    open_database,
    out,
    print_json,
)

# --- models ------------------------------------------------------------------------------------


@models_app.callback()
def models(
    ctx: typer.Context,
    start: str = typer.Option(
        None, help="Window start: RFC 3339, epoch seconds or -24h (default)."
    ),
    end: str = typer.Option(None, help="Window end (default now)."),
    as_json: bool = JsonOption,
) -> None:
    """List models with traffic, error rate, p50/p95/p99 and SLO status."""
    if ctx.invoked_subcommand is not None:
        return
    from observe.pipeline.overview import list_model_overviews

    start_at, end_at = _window(start, end)
    db = open_database(load_settings())
    with db.sessions() as session:
        overviews = list_model_overviews(session, start=start_at, end=end_at)
    if as_json:
        print_json(
            {
                "start": start_at,
                "end": end_at,
                "models": [o.model_dump(mode="json") for o in overviews],
            }
        )
        return
    table = Table("model", "version", "requests", "error rate", "p50 ms", "p95 ms", "p99 ms", "SLO")
    for model in overviews:
        table.add_row(
            model.name,
            "(all)",
            f"{model.num_requests:,}",
            _pct(model.error_rate),
            _ms(model.p50),
            _ms(model.p95),
            _ms(model.p99),
            _slo_text(model),
        )
        for version in model.versions:
            table.add_row(
                "",
                version.model_version,
                f"{version.num_requests:,}",
                _pct(version.error_rate),
                _ms(version.p50),
                _ms(version.p95),
                _ms(version.p99),
                "",
            )
    out.print(f"{start_at:%Y-%m-%d %H:%M} – {end_at:%Y-%m-%d %H:%M} UTC")
    out.print(table)


@models_app.command("slo")
def models_slo(
    model: str = typer.Argument(..., help="Model name."),
    percentile: float = typer.Option(
        None, help="Latency percentile the objective is about, e.g. 95."
    ),
    latency_ms: float = typer.Option(
        None, help="Latency bound in milliseconds at that percentile."
    ),
    error_rate_pct: float = typer.Option(None, help="Error-rate bound in percent, e.g. 1.0."),
    clear: bool = typer.Option(False, "--clear", help="Remove the model's SLO."),
    as_json: bool = JsonOption,
) -> None:
    """Show a model's SLO, or set it with --percentile/--latency-ms and/or --error-rate-pct."""
    from observe.pipeline.overview import slo_out
    from observe.schemas.reads import Slo
    from observe.storage import models as model_store

    db = open_database(load_settings())
    changing = clear or any(v is not None for v in (percentile, latency_ms, error_rate_pct))
    if changing:
        try:
            slo = (
                Slo()
                if clear
                else Slo(
                    latency_percentile=percentile,
                    latency_ms=latency_ms,
                    error_rate_pct=error_rate_pct,
                )
            )
        except ValidationError as error:
            raise fail(
                "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors()), 2
            ) from None
        with db.write_sessions.begin() as session:
            stored = model_store.set_slo(
                session,
                model,
                latency_percentile=slo.latency_percentile,
                latency_ms=slo.latency_ms,
                error_rate_pct=slo.error_rate_pct,
                now=dt.datetime.now(dt.UTC),
            )
        result = slo_out(stored)
    else:
        with db.sessions() as session:
            info = model_store.get_model(session, model)
        if info is None:
            raise fail(f"no model named {model!r}")
        result = slo_out(info.slo)
    if as_json:
        print_json({"model": model, "slo": result.model_dump(mode="json")})
        return
    latency_part = (
        f"p{result.latency_percentile:g} <= {result.latency_ms:g} ms"
        if result.latency_ms is not None
        else "no latency objective"
    )
    error_part = (
        f"error rate <= {result.error_rate_pct:g}%"
        if result.error_rate_pct is not None
        else "no error-rate objective"
    )
    out.print(f"{model}: {latency_part}; {error_part}")


def _slo_text(model: Any) -> str:
    status = model.slo_status
    breached = []
    if status.latency_ok is False:
        breached.append(f"p{model.slo.latency_percentile:g} > {model.slo.latency_ms:g} ms")
    if status.error_rate_ok is False:
        breached.append(f"errors > {model.slo.error_rate_pct:g}%")
    if breached:
        return "[red]breached: " + ", ".join(breached) + "[/red]"
    return "ok" if status.latency_ok or status.error_rate_ok else "-"
