"""A loopback stand-in for the Hugging Face Hub's download API, for tests: stdlib only.

It serves one repository's files at one commit through the endpoints `snapshot_download` and
`hf_hub_download` call (repository info with its file list, `resolve/` with HEAD and GET), so the
real download path of `crema_tools.load` and `model_zoo.load_model` runs without the internet.

    with FakeHub("owner/name", "dataset", {"README.md": b"..."}) as hub:
        env = {"HF_ENDPOINT": hub.endpoint}   # set before huggingface_hub is imported
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repo_id: str, repo_type: str, files: dict[str, bytes]):
        self.repo_id, self.repo_type, self.files = repo_id, repo_type, files
        self.requests: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @classmethod
    def from_folder(cls, repo_id: str, repo_type: str, folder: Path) -> "FakeHub":
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return cls(repo_id, repo_type, files)

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(hub: FakeHub):
    prefix = "" if hub.repo_type == "model" else f"/{hub.repo_type}s"
    info_path = re.compile(rf"^/api/{hub.repo_type}s/{re.escape(hub.repo_id)}(/revision/[^/?]+)?/?(\?.*)?$")
    tree_path = re.compile(rf"^/api/{hub.repo_type}s/{re.escape(hub.repo_id)}/tree/[^/?]+/?(\?.*)?$")
    resolve_path = re.compile(rf"^{prefix}/{re.escape(hub.repo_id)}/resolve/[^/]+/(.+?)(\?.*)?$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict, head: bool) -> None:
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _answer(self, head: bool) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            if info_path.match(self.path):
                siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(hub.files.items())]
                body = json.dumps({"id": hub.repo_id, "sha": COMMIT, "siblings": siblings}).encode()
                return self._send(200, body, {"Content-Type": "application/json"}, head)
            if tree_path.match(self.path):
                entries = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                           for name, data in sorted(hub.files.items())]
                folders = sorted({name.rsplit("/", 1)[0] for name in hub.files if "/" in name})
                entries += [{"type": "directory", "path": f, "oid": COMMIT} for f in folders]
                return self._send(200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, head)
            m = resolve_path.match(self.path)
            if m and m.group(1) in hub.files:
                data = hub.files[m.group(1)]
                etag = hashlib.sha256(data).hexdigest()
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
                return self._send(200, data, headers, head)
            self._send(404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"}, head)

        def do_GET(self):
            self._answer(head=False)

        def do_HEAD(self):
            self._answer(head=True)

    return Handler
