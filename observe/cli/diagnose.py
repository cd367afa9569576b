"""`observe diagnose`."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from observe.cli.base import JsonOption, app, fail, load_settings, open_database, out, print_json

# --- diagnose ----------------------------------------------------------------------------------

STATUS_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow", "skipped": "dim"}


@app.command()
def diagnose(
    model: str = typer.Option(..., "--model", help="Model to diagnose."),
    start: str = typer.Option(
        None, help="Window start: RFC 3339, epoch seconds or -2h (default: an hour before the end)."
    ),
    end: str = typer.Option(None, help="Window end (default now)."),
    baseline_start: str = typer.Option(None, help="Baseline start (default: same length before)."),
    baseline_end: str = typer.Option(None, help="Baseline end (default: the window's start)."),
    as_json: bool = JsonOption,
) -> None:
    """Walk the isolate -> data -> infra -> model checklist for a window and rank the causes."""
    from observe.api.errors import ApiError
    from observe.api.params import parse_time, resolve_window
    from observe.pipeline.diagnosis import Windows, run_diagnosis
    from observe.storage import models as model_store

    try:
        start_at, end_at = resolve_window(start, end, default_seconds=3600)
        windows = Windows.resolve(
            start_at,
            end_at,
            parse_time(baseline_start, "baseline-start"),
            parse_time(baseline_end, "baseline-end"),
        )
    except ApiError as error:
        raise fail(error.detail, 2) from None
    except ValueError as error:
        raise fail(str(error), 2) from None
    settings = load_settings()
    db = open_database(settings)
    with db.sessions() as session:
        if model_store.get_model(session, model) is None:
            raise fail(f"no model named {model!r}")
        diagnosis = run_diagnosis(
            session, model=model, windows=windows, rollup_tags=settings.rollup_tags
        )
    if as_json:
        print_json(diagnosis.as_dict())
        return
    _print_diagnosis(diagnosis)


def _print_diagnosis(diagnosis: Any) -> None:
    symptom = diagnosis.symptom
    out.print(
        f"[bold]{diagnosis.model}[/bold] {diagnosis.window[0]:%Y-%m-%d %H:%M} – "
        f"{diagnosis.window[1]:%H:%M} UTC against {diagnosis.baseline[0]:%Y-%m-%d %H:%M} – "
        f"{diagnosis.baseline[1]:%H:%M}"
    )
    steps = Table("step", "check", "status", "finding")
    for step in diagnosis.steps:
        style = STATUS_STYLE[step.status]
        steps.add_row(step.step, step.check, f"[{style}]{step.status}[/{style}]", step.summary)
    out.print(steps)
    if not diagnosis.causes:
        verdict = "regressed" if symptom.is_regression else "did not regress"
        out.print(f"Nothing stands out ({symptom.metric} {verdict}).")
        return
    causes = Table("#", "cause", "score", "scope", "evidence", "action")
    for rank, cause in enumerate(diagnosis.causes, start=1):
        scope = ", ".join(f"{k}={v}" for k, v in cause.scope.items())
        causes.add_row(
            str(rank), cause.kind, f"{cause.score:.2f}", scope, cause.summary, cause.action
        )
    out.print(causes)
