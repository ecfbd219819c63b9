"""A loopback HTTP file server for tests: stdlib only, Range support, switchable faults.

    with MediaServer({"AudioWAV/a.wav": b"..."}) as server:
        server.cut_once["AudioWAV/a.wav"] = 100   # close the connection after 100 body bytes, once
        server.corrupt.add("AudioWAV/a.wav")       # serve different bytes of the same length
        server.not_found.add("AudioWAV/a.wav")     # answer 404
        server.ignore_range = True                 # answer 200 with the whole file to Range requests
        fetch(..., base_url=server.base_url)
        server.requests                            # [Request(path, range, status), ...]
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    status: int


class MediaServer:
    """Serves `files` (relative path -> bytes) at `base_url` on 127.0.0.1, on a free port."""

    def __init__(self, files: dict[str, bytes] | None = None):
        self.files: dict[str, bytes] = dict(files or {})
        self.cut_once: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self.not_found: set[str] = set()
        self.ignore_range = False
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="MediaServer", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MediaServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _log(self, path: str, range_header: str | None, status: int) -> None:
        with self._lock:
            self.requests.append(Request(path, range_header, status))

    def _take_cut(self, path: str) -> int | None:
        with self._lock:
            return self.cut_once.pop(path, None)


def corrupted(data: bytes) -> bytes:
    """Same length, different bytes: only a hash check can tell."""
    return bytes(b ^ 0xFF for b in data)


def _handler_for(server: MediaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
            range_header = self.headers.get("Range")
            if path in server.not_found or path not in server.files:
                server._log(path, range_header, 404)
                self.send_error(404, "Not Found")
                return
            data = server.files[path]
            if path in server.corrupt:
                data = corrupted(data)
            start = _range_start(range_header) if not server.ignore_range else None
            if start is not None and start >= len(data):
                server._log(path, range_header, 416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 200 if start is None else 206
            server._log(path, range_header, status)
            body = data if start is None else data[start:]
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = server._take_cut(path)
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            if cut is not None:
                self.close_connection = True

        def log_message(self, *args) -> None:
            pass  # keep test output clean

    return Handler


def _range_start(header: str | None) -> int | None:
    """The first byte of `bytes=N-` or `bytes=N-M` (the end is ignored: clients here ask to the end)."""
    match = re.fullmatch(r"bytes=(\d+)-\d*", header or "")
    return int(match.group(1)) if match else None
