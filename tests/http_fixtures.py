"""Reading the HTTP request fixtures in tests/data/kserve: payload-logger requests as sent on
the wire (request line, headers, blank line, body)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KSERVE_DATA = Path(__file__).parent / "data" / "kserve"


@dataclass(frozen=True)
class HttpRequest:
    headers: dict[str, str]
    body: bytes

    def sendable_headers(self) -> dict[str, str]:
        """The headers a client may pass on (length and host are its own)."""
        skip = {"content-length", "host", "accept-encoding", "user-agent"}
        return {k: v for k, v in self.headers.items() if k.lower() not in skip}


def read_http(name: str) -> HttpRequest:
    raw = (KSERVE_DATA / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("POST "), lines[0]
    headers = {}
    for line in lines[1:]:
        name_, _, value = line.partition(":")
        headers[name_] = value.strip()
    declared = int(headers["Content-Length"])
    assert declared == len(body), f"{name}: Content-Length {declared} != {len(body)}"
    return HttpRequest(headers, body)
