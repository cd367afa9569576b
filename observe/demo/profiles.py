"""Demo profiler traces: fraud-scorer v6 and v7 run under torch.profiler on this machine.

v7 is v6 with a self-attention block over the request's 16 feature embeddings (the "new
attention kernel" of the canary): its trace has operators v6 never runs and more time in
matmuls, which the profiler diff and the diagnosis point at. Recorded when torch is installed
(the `profiling` extra); skipped otherwise.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from observe.db.engine import Database
from observe.pipeline.profiles import StoredProfile, import_profile_file
from observe.schemas.profiles import ProfileMeta

STEPS = 6
BATCH = 64
TOKENS = 16
WIDTH = 64


def record_demo_profiles(
    db: Database, *, captured_at: dt.datetime, host: str = "gpu-1"
) -> list[StoredProfile]:
    """Record and store a trace of each fraud-scorer version; [] without torch."""
    try:
        import torch
    except ImportError:
        return []
    torch.manual_seed(7)
    stored = []
    with tempfile.TemporaryDirectory() as directory:
        for version, model in (("v6", _scorer(torch, False)), ("v7", _scorer(torch, True))):
            path = Path(directory) / f"fraud-scorer-{version}.json"
            _record(torch, model, path)
            meta = ProfileMeta(
                model="fraud-scorer",
                model_version=version,
                host=host,
                captured_at=captured_at,
                file_name=path.name,
            )
            stored.append(import_profile_file(db.write_sessions, path, meta, now=captured_at))
    return stored


def _scorer(torch: Any, with_attention: bool) -> Any:
    nn = torch.nn

    class Scorer(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(1, WIDTH)
            self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
            self.head = nn.Sequential(nn.Linear(TOKENS * WIDTH, 256), nn.ReLU(), nn.Linear(256, 1))

        def forward(self, x: Any) -> Any:
            tokens = self.embed(x.unsqueeze(-1))
            if with_attention:  # v7: self-attention over the feature tokens
                q, k, v = self.qkv(tokens).chunk(3, dim=-1)
                weights = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / WIDTH**0.5, dim=-1)
                tokens = tokens + torch.bmm(weights, v)
            return torch.sigmoid(self.head(tokens.flatten(1)))

    return Scorer().eval()


def _record(torch: Any, model: Any, path: Path) -> None:
    """Run the model STEPS times after a warm-up step, recording every step."""
    profiler = torch.profiler
    inputs = torch.randn(BATCH, TOKENS)
    plan = profiler.schedule(wait=0, warmup=1, active=STEPS, repeat=1)
    with (
        torch.inference_mode(),
        profiler.profile(
            activities=[profiler.ProfilerActivity.CPU],
            record_shapes=True,
            schedule=plan,
            on_trace_ready=lambda prof: prof.export_chrome_trace(str(path)),
        ) as prof,
    ):
        for _ in range(STEPS + 1):
            model(inputs)
            prof.step()
