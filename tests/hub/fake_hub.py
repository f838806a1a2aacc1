"""A stand-in for the Hugging Face Hub on 127.0.0.1: the few endpoints `snapshot_download` calls.

Repositories are built by the tests; the server logs every request so tests can check what the client
asked for (a Range header on resume) and that it asked a bounded number of times. Failure modes are
switched on per repository or per file: wrong tokens (401), gated repos (403), unknown repos and
revisions (404), a connection dropped or stalled halfway through a file."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    files: dict[str, bytes]
    gated: bool = False
    sha: str = ""

    def __post_init__(self):
        digest = hashlib.sha1()
        for name in sorted(self.files):
            digest.update(name.encode() + hashlib.sha1(self.files[name]).digest())
        self.sha = digest.hexdigest()


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)  # tokens the hub accepts; gated repos need one
    drop: set[str] = field(default_factory=set)  # files whose next full GET is cut off halfway, once
    stall: set[str] = field(default_factory=set)  # files whose next full GET stops sending halfway
    cut_at: int = 0  # bytes sent before a drop or stall
    log: list[Logged] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def requests(self, method: str | None = None, contains: str = "") -> list[Logged]:
        return [r for r in self.log if (method is None or r.method == method) and contains in r.path]


_API = re.compile(r"^/api/models/([^/]+/[^/]+)/(revision|tree)/([^/?]+)")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean; the hub keeps its own log
            pass

        def do_HEAD(self):
            self._serve(body=False)

        def do_GET(self):
            self._serve(body=True)

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                   send_body: bool = True) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _error(self, status: int, code: str | None, message: str, send_body: bool) -> None:
            headers = {"X-Error-Message": message, "Content-Type": "application/json"}
            if code:
                headers["X-Error-Code"] = code
            self._reply(status, json.dumps({"error": message}).encode(), headers, send_body)

        def _access(self, repo_id: str, revision: str, send_body: bool) -> Repo | None:
            """The repo, or None after answering with the error the real hub gives."""
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            if token is not None and token not in hub.tokens:
                self._error(401, None, "Invalid credentials in Authorization header", send_body)
                return None
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found", send_body)
                return None
            if repo.gated and token is None:
                self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                                              "to it and be authenticated to access it.", send_body)
                return None
            if revision not in ("main", repo.sha):
                self._error(404, "RevisionNotFound", "Invalid rev id", send_body)
                return None
            return repo

        def _serve(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.log.append(Logged(self.command, self.path, dict(self.headers)))
            if m := _API.match(path):
                repo = self._access(m[1], m[3], body)
                if repo is None:
                    return
                if m[2] == "revision":
                    info = {"id": m[1], "modelId": m[1], "sha": repo.sha, "private": False,
                            "gated": "auto" if repo.gated else False,
                            "siblings": [{"rfilename": name} for name in sorted(repo.files)]}
                else:
                    info = [{"type": "file", "path": name, "size": len(data),
                             "oid": hashlib.sha1(data).hexdigest()} for name, data in sorted(repo.files.items())]
                return self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
            if m := _RESOLVE.match(path):
                repo = self._access(m[1], m[2], body)
                if repo is None:
                    return
                data = repo.files.get(m[3])
                if data is None:
                    return self._error(404, "EntryNotFound", "Entry not found", body)
                headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": repo.sha,
                           "Accept-Ranges": "bytes"}
                return self._send_file(m[3], data, headers, body)
            self._error(404, None, "no such endpoint", body)

        def _send_file(self, name: str, data: bytes, headers: dict[str, str], body: bool) -> None:
            start = 0
            if r := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                start = int(r[1])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            elif body and (name in hub.drop or name in hub.stall):
                return self._cut(name, data, headers)
            self._reply(206 if start else 200, data[start:], headers, body)

        def _cut(self, name: str, data: bytes, headers: dict[str, str]) -> None:
            """Promise the whole file, send part of it, then hang up (drop) or go quiet (stall)."""
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:hub.cut_at])
            self.wfile.flush()
            if name in hub.stall:
                hub.stall.discard(name)
                hub.stalled.set()
                hub.release.wait(timeout=30)
            hub.drop.discard(name)
            self.close_connection = True

    return Handler


class HubServer:
    """Runs a FakeHub on a free loopback port in a background thread."""

    def __init__(self, hub: FakeHub):
        self.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
        self.server.daemon_threads = True
        hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self.hub

    def __exit__(self, *exc) -> None:
        self.hub.release.set()
        self.server.shutdown()
        self.server.server_close()
