"""Record a PyTorch profiler trace and upload it to observe.

    from observe.profiling import capture

    with capture(model="fraud-scorer", version="v7", url="http://observe:8080",
                 api_key="obs_...") as prof:
        for batch in batches:
            model(batch)
            prof.step()

`capture` wraps ``torch.profiler.profile`` (CPU activity, plus CUDA when available,
``record_shapes=True``, and every step recorded and annotated as ``ProfilerStep#N`` unless a
``schedule`` says otherwise; any other keyword goes to the profiler) and yields
the profiler. Each trace the profiler produces (one at exit, or one per cycle of a
``schedule``) is exported as chrome-trace JSON, gzipped on the way and uploaded with
`observe.client.Client.upload_profile`, which retries like the SDK's other calls. The answers
are in ``prof.observe_uploads`` after the block. A block that raises uploads nothing.

torch is imported only when `capture` is called: observe itself does not need it (install the
``profiling`` extra: ``pip install 'observe[profiling]'``).
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from observe.client import Client


@contextmanager
def capture(
    *,
    model: str,
    version: str,
    host: str | None = None,
    url: str = "http://127.0.0.1:8080",
    api_key: str | None = None,
    client: Client | None = None,
    **profiler_options: Any,
) -> Iterator[Any]:
    """Profile the block with torch.profiler and upload the trace(s) on a normal exit.

    Args:
        model: model name the trace belongs to.
        version: model version.
        host: host name to file it under; default this machine's.
        url: observe's base URL (ignored when `client` is given).
        api_key: a key with the ingest scope (ignored when `client` is given).
        client: an existing `Client` to upload with.
        **profiler_options: passed to ``torch.profiler.profile`` (``activities``,
            ``schedule``, ``record_shapes``, ``with_stack``, ``on_trace_ready``, ...).

    Yields:
        The ``torch.profiler.profile`` object; call ``.step()`` on it once per step.

    Raises:
        ImportError: torch is not installed.
        observe.client.UploadError: the server refused a trace or could not be reached.
    """
    profiler_module = _torch_profiler()
    with tempfile.TemporaryDirectory(prefix="observe-capture-") as directory:
        traces: list[Path] = []
        options = _options(profiler_module, profiler_options, _exporter(Path(directory), traces))
        with profiler_module.profile(**options) as prof:
            yield prof
        prof.observe_uploads = _upload(
            traces, client, url=url, api_key=api_key, model=model, version=version, host=host
        )


def _torch_profiler() -> Any:
    try:
        import torch.profiler
    except ImportError as error:
        raise ImportError(
            "observe.profiling.capture needs torch: pip install 'observe[profiling]'"
        ) from error
    return torch.profiler


def _options(
    profiler_module: Any, given: dict[str, Any], export: Callable[[Any], None]
) -> dict[str, Any]:
    options = dict(given)
    if "activities" not in options:
        import torch

        activities = [profiler_module.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(profiler_module.ProfilerActivity.CUDA)
        options["activities"] = activities
    options.setdefault("record_shapes", True)
    if options.get("schedule") is None:
        # Without a schedule torch records no ProfilerStep#N annotations: record every step.
        options["schedule"] = _record_every_step(profiler_module)
    user_handler = options.pop("on_trace_ready", None)

    def on_trace_ready(prof: Any) -> None:
        export(prof)
        if user_handler is not None:
            user_handler(prof)

    options["on_trace_ready"] = on_trace_ready
    return options


def _record_every_step(profiler_module: Any) -> Callable[[int], Any]:
    record = profiler_module.ProfilerAction.RECORD

    def schedule(_step: int) -> Any:
        return record

    return schedule


def _exporter(directory: Path, traces: list[Path]) -> Callable[[Any], None]:
    def export(prof: Any) -> None:
        path = directory / f"trace-{len(traces)}.json"
        prof.export_chrome_trace(str(path))
        traces.append(path)

    return export


def _upload(
    traces: list[Path],
    client: Client | None,
    *,
    url: str,
    api_key: str | None,
    model: str,
    version: str,
    host: str | None,
) -> list[dict[str, Any]]:
    uploader = client or Client(url, api_key=api_key)
    try:
        return [
            uploader.upload_profile(
                path,
                model=model,
                model_version=version,
                host=host or socket.gethostname(),
                file_name=f"{model}-{version}-{path.name}",
            )
            for path in traces
        ]
    finally:
        if client is None:
            uploader.close()
