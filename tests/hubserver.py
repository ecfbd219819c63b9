"""A loopback stand-in for the Hugging Face Hub, for tests: stdlib only, everything in memory.

Downloads: repository info with its file list, `tree`, and `resolve/` (HEAD, GET, byte ranges),
the endpoints `snapshot_download`, `hf_hub_download`, `list_repo_files` and `datasets` call.
Uploads: `create_repo`, `create_branch` and `upload_folder` without Xet (HF_HUB_DISABLE_XET=1):
preupload, the Git LFS batch API with single-part PUT, and the commit endpoint. Files whose first
512 bytes hold a NUL byte go through LFS, the others inline, as on the Hub. Writes need a bearer
token; `auth` records the ones received.

    with FakeHub("owner/name", "dataset", {"README.md": b"..."}) as hub:   # a repo to download
        env = hub_env(home, hub.endpoint)     # helpers.py: HF_ENDPOINT is read when huggingface_hub is imported
    with FakeHub() as hub:                     # receives uploads
        hub.files("dataset", "owner/name", "main")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from helpers import files as folder_files

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_TYPES = "models|datasets|spaces"
_REPO = r"[^/]+/[^/]+?"


def is_lfs(data: bytes) -> bool:
    return b"\0" in data[:512]


def oid(data: bytes) -> str:
    """What the Hub reports for a file: sha256 for LFS files, the git blob sha1 for the others."""
    if is_lfs(data):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> files
    messages: list[str] = field(default_factory=list)

    def snapshot(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        commit = self.branches.get(revision, revision)
        return (commit, self.commits[commit]) if commit in self.commits else None

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = self.branches.get(branch, "")
        digest = hashlib.sha1((parent + message).encode())
        for name in sorted(files):
            digest.update(name.encode() + oid(files[name]).encode())
        sha = digest.hexdigest()
        self.commits[sha], self.branches[branch] = dict(files), sha
        self.messages.append(message)
        return sha


class FakeHub:
    def __init__(self, repo_id: str | None = None, repo_type: str = "model", files: dict[str, bytes] | None = None):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        if repo_id is not None:
            repo = self.repos[(repo_type, repo_id)] = Repo(branches={"main": COMMIT})
            repo.commits[COMMIT] = dict(files or {})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @classmethod
    def from_folder(cls, repo_id: str, repo_type: str, folder: Path) -> "FakeHub":
        return cls(repo_id, repo_type, folder_files(folder))

    def files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes] | None:
        """The files of a repository at a branch or commit; None if either does not exist."""
        repo = self.repos.get((repo_type, repo_id))
        found = repo.snapshot(revision) if repo else None
        return found[1] if found else None

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
    api = re.compile(rf"^/api/(?P<type>{_TYPES})/(?P<repo>{_REPO})"
                     r"(?:/(?P<op>revision|tree|branch|preupload|commit)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?/?$")
    resolve = re.compile(rf"^/(?P<prefix>datasets/|spaces/)?(?P<repo>{_REPO})/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
    batch = re.compile(rf"^/(?P<prefix>datasets/|spaces/)?(?P<repo>{_REPO})\.git/info/lfs/objects/batch$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, status: int, body: bytes | dict | list, headers: dict | None = None) -> None:
            if not isinstance(body, bytes):
                body, headers = json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
            self.send_response(status)
            for k, v in {**(headers or {}), "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, message: str, code: str = "") -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message} if code else None)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _authorised(self) -> bool:
            token = self.headers.get("Authorization", "")
            if not token.startswith("Bearer "):
                self._error(401, "Invalid credentials in Authorization header")
                return False
            hub.auth.add(token.removeprefix("Bearer "))
            return True

        def _route(self) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            self.body = self._body() if self.command in ("POST", "PUT") else b""
            path = urlsplit(self.path).path
            if m := api.match(path):
                return self._api(m.group("type")[:-1], m.group("repo"), m.group("op"), unquote(m.group("rev") or "main"),
                                 unquote(m.group("path") or ""))
            if m := resolve.match(path):
                return self._resolve(_type(m.group("prefix")), m.group("repo"), unquote(m.group("rev")), unquote(m.group("path")))
            if self.command == "POST" and path == "/api/repos/create":
                return self._create_repo(json.loads(self.body))
            if self.command == "POST" and path == "/api/validate-yaml":
                return self._send(200, {"errors": [], "warnings": []})
            if self.command == "POST" and batch.match(path):
                return self._lfs_batch(json.loads(self.body))
            if self.command == "PUT" and path.startswith("/lfs/"):
                data = self.body
                if hashlib.sha256(data).hexdigest() != path.removeprefix("/lfs/"):
                    return self._error(400, "sha256 mismatch")
                with hub.lock:
                    hub.lfs[path.removeprefix("/lfs/")] = data
                return self._send(200, b"")
            self._error(404, "not found", "EntryNotFound")

        def _api(self, repo_type: str, repo_id: str, op: str | None, rev: str, sub: str) -> None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                return self._error(404, f"Repository {repo_id} not found", "RepoNotFound")
            if op in ("branch", "preupload", "commit"):
                if self.command != "POST":
                    return self._error(405, "method not allowed")
                if not self._authorised():
                    return None
            elif repo.private and not self.headers.get("Authorization"):
                return self._error(401, f"Repository {repo_id} is private", "RepoNotFound")
            if op == "branch":
                with hub.lock:
                    if rev in repo.branches:
                        return self._error(409, f"Reference {rev} already exists")
                    start = json.loads(self.body or b"{}").get("startingPoint") or "main"
                    repo.branches[rev] = repo.branches.get(start, start)
                return self._send(200, {})
            snapshot = repo.snapshot(rev)
            if snapshot is None:
                return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            commit, files = snapshot
            if op == "preupload":
                wanted = json.loads(self.body)["files"]
                return self._send(200, {"files": [
                    {"path": f["path"], "shouldIgnore": False, "oid": oid(files[f["path"]]) if f["path"] in files else None,
                     "uploadMode": "lfs" if is_lfs(base64.b64decode(f["sample"])) else "regular"} for f in wanted]})
            if op == "commit":
                return self._commit(repo_type, repo_id, repo, rev, dict(files))
            if op == "tree":
                under = sub.rstrip("/") + "/" if sub else ""
                names = sorted(n for n in files if n.startswith(under))
                folders = sorted({under + n[len(under):].split("/")[0] for n in names if "/" in n[len(under):]})
                if "recursive=true" in urlsplit(self.path).query.lower():
                    folders = sorted({n.rsplit("/", i)[0] for n in names for i in range(1, n[len(under):].count("/") + 1)})
                else:
                    names = [n for n in names if "/" not in n[len(under):]]
                entries = [{"type": "file", "path": n, "size": len(files[n]), "oid": oid(files[n])} for n in names]
                entries += [{"type": "directory", "path": f, "oid": commit} for f in folders]
                return self._send(200, entries)
            siblings = [{"rfilename": n, "size": len(d)} for n, d in sorted(files.items())]
            self._send(200, {"id": repo_id, "sha": commit, "private": repo.private, "siblings": siblings})

        def _resolve(self, repo_type: str, repo_id: str, rev: str, name: str) -> None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo and repo.private and not self.headers.get("Authorization"):
                return self._error(401, f"Repository {repo_id} is private", "RepoNotFound")
            snapshot = repo.snapshot(rev) if repo else None
            if snapshot is None or name not in snapshot[1]:
                return self._error(404, "Entry not found", "EntryNotFound")
            data = snapshot[1][name]
            headers = {"X-Repo-Commit": snapshot[0], "ETag": f'"{oid(data)}"', "Accept-Ranges": "bytes",
                       "Content-Type": "application/octet-stream"}
            if m := re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", "")):
                start = int(m.group(1) or 0)
                end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                return self._send(206, data[start:end + 1], headers)
            self._send(200, data, headers)

        def _create_repo(self, body: dict) -> None:
            if not self._authorised():
                return
            repo_type, repo_id = body.get("type") or "model", f"{body['organization']}/{body['name']}"
            url = f"{hub.endpoint}/{PREFIX[repo_type]}{repo_id}"
            with hub.lock:
                if (repo_type, repo_id) in hub.repos:
                    return self._send(409, {"error": "You already created this repo", "url": url})
                repo = hub.repos[(repo_type, repo_id)] = Repo(private=body.get("visibility") == "private")
                repo.commit("main", {}, "initial commit")
            self._send(200, {"url": url})

        def _lfs_batch(self, body: dict) -> None:
            if not self._authorised():
                return
            objects = [{"oid": o["oid"], "size": o["size"]} if o["oid"] in hub.lfs else
                       {"oid": o["oid"], "size": o["size"], "actions": {"upload": {"href": f"{hub.endpoint}/lfs/{o['oid']}"}}}
                       for o in body["objects"]]
            self._send(200, {"transfer": "basic", "objects": objects})

        def _commit(self, repo_type: str, repo_id: str, repo: Repo, branch: str, files: dict[str, bytes]) -> None:
            message = ""
            for line in self.body.splitlines():
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    message = value["summary"]
                elif key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        return self._error(400, f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = hub.lfs[value["oid"]]
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    files = {n: d for n, d in files.items() if not n.startswith(value["path"].rstrip("/") + "/")}
            if branch not in repo.branches:
                return self._error(400, f"{branch} is not a branch")
            with hub.lock:
                sha = repo.commit(branch, files, message)
            url = f"{hub.endpoint}/{PREFIX[repo_type]}{repo_id}/commit/{sha}"
            self._send(200, {"commitUrl": url, "commitOid": sha, "pullRequestUrl": None, "success": True})

        do_GET = do_HEAD = do_POST = do_PUT = _route

    return Handler


def _type(prefix: str | None) -> str:
    return {"datasets/": "dataset", "spaces/": "space"}.get(prefix or "", "model")
