"""A local Hugging Face hub for tests: stdlib HTTP server backed by real git repositories.

It implements the endpoints the ``huggingface_hub`` 2.x client calls (see
``../shared/design/zoo-hub-pyiron.md`` section 4), so tests drive the real client: commits, tags
and SHAs are real git objects and ETags are git blob ids. Fault injection (``HubServer.faults``)
serves tampered or truncated files, hangs, or throttles transfers.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["Faults", "GitRepos", "HubServer"]

_REPO = r"(?P<repo>[^/]+/[^/]+)"


class GitRepos:
    """Model repositories as real git repositories (``git`` CLI) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()

    def path(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "__")

    def exists(self, repo_id: str) -> bool:
        return (self.path(repo_id) / ".git").is_dir()

    def git(self, repo_id: str, *args: str, data: bytes | None = None) -> bytes:
        result = subprocess.run(
            ["git", "-C", str(self.path(repo_id)), *args], input=data, capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode()}")
        return result.stdout

    def create(self, repo_id: str) -> bool:
        """Create a repository with an initial commit; ``False`` if it exists."""
        with self.lock:
            if self.exists(repo_id):
                return False
            self.path(repo_id).mkdir(parents=True)
            self.git(repo_id, "init", "-q", "-b", "main")
            self.git(repo_id, "config", "user.email", "hub@example.invalid")
            self.git(repo_id, "config", "user.name", "local hub")
            self.git(repo_id, "commit", "-q", "--allow-empty", "-m", "initial commit")
            return True

    def commit(self, repo_id: str, files: dict[str, bytes], *, deletions: tuple[str, ...] = (),
               message: str = "commit") -> str:
        """Write files on ``main``, commit, return the commit SHA."""
        with self.lock:
            work = self.path(repo_id)
            for name, content in files.items():
                target = work / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                self.git(repo_id, "add", "--", name)
            for name in deletions:
                self.git(repo_id, "rm", "-q", "--ignore-unmatch", "--", name)
            self.git(repo_id, "commit", "-q", "--allow-empty", "-m", message)
            return self.git(repo_id, "rev-parse", "HEAD").decode().strip()

    def resolve(self, repo_id: str, revision: str) -> str | None:
        if not self.exists(repo_id):
            return None
        try:
            out = self.git(repo_id, "rev-parse", "--verify", "-q", f"{revision}^{{commit}}")
        except RuntimeError:
            return None
        return out.decode().strip() or None

    def tree(self, repo_id: str, commit: str) -> list[dict[str, Any]]:
        rows = []
        for line in self.git(repo_id, "ls-tree", "-r", "-l", commit).decode().splitlines():
            meta, path = line.split("\t", 1)
            _, kind, oid, size = meta.split()
            if kind == "blob":
                rows.append({"type": "file", "path": path, "oid": oid, "size": int(size)})
        return rows

    def blob(self, repo_id: str, commit: str, path: str) -> tuple[str, bytes] | None:
        try:
            oid = self.git(repo_id, "rev-parse", f"{commit}:{path}").decode().strip()
        except RuntimeError:
            return None
        return oid, self.git(repo_id, "cat-file", "blob", oid)

    def tag(self, repo_id: str, tag: str, commit: str) -> bool:
        with self.lock:
            if self.resolve(repo_id, f"refs/tags/{tag}"):
                return False
            self.git(repo_id, "tag", tag, commit)
            return True

    def refs(self, repo_id: str) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {"branches": [], "tags": [], "converts": []}
        lines = self.git(repo_id, "for-each-ref", "--format=%(refname) %(objectname)")
        for line in lines.decode().splitlines():
            ref, sha = line.split()
            for prefix, key in (("refs/heads/", "branches"), ("refs/tags/", "tags")):
                if ref.startswith(prefix):
                    out[key].append({"name": ref[len(prefix):], "ref": ref, "targetCommit": sha})
        return out


@dataclass
class Faults:
    """Misbehaviour to inject, keyed by ``(repo_id, path)``.

    Attributes:
        tamper: Serve these bytes instead of the committed file (HEAD and GET agree on the size).
        truncate: Serve only the first half of the body, then drop the connection, this many
            times (``-1``: always).
        hang: Requests whose URL path contains one of these strings never get an answer.
        stall: Files whose body stops after the first half (the connection stays open).
        throttle: ``(chunk_bytes, delay_s)`` for file bodies.
    """

    tamper: dict[tuple[str, str], bytes] = field(default_factory=dict)
    truncate: dict[tuple[str, str], int] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    stall: set[tuple[str, str]] = field(default_factory=set)
    throttle: tuple[int, float] | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ---------------------------------------------------------------- plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None,
              error_code: str | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_code:
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", error_code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self) -> None:
        body = self._body()  # always drain: keep-alive connections reuse this handler
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.server.hub.log.append((self.command, path))
        if any(marker in path for marker in self.server.hub.faults.hang):
            self.server.hub.release.wait(30)
            self.close_connection = True
            return
        routes = [
            ("POST", r"^/api/repos/create$", self._create_repo),
            ("POST", r"^/api/validate-yaml$", self._validate_yaml),
            ("POST", rf"^/api/models/{_REPO}/preupload/(?P<rev>.+)$", self._preupload),
            ("POST", rf"^/api/models/{_REPO}/commit/(?P<rev>.+)$", self._commit),
            ("POST", rf"^/api/models/{_REPO}/tag/(?P<rev>.+)$", self._tag),
            ("POST", rf"^/api/models/{_REPO}/paths-info/(?P<rev>.+)$", self._paths_info),
            ("GET", rf"^/api/models/{_REPO}/refs$", self._refs),
            ("GET", rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$", self._tree),
            ("GET", rf"^/api/models/{_REPO}(?:/revision/(?P<rev>.+))?$", self._model_info),
            ("GET", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self._resolve),
            ("HEAD", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self._resolve),
        ]
        for method, pattern, handler in routes:
            match = re.match(pattern, path)
            if method == self.command and match:
                handler(body=body, **{k: v for k, v in match.groupdict().items()})
                return
        self._send(404, {"error": f"no route {self.command} {path}"})

    do_GET = do_POST = do_HEAD = _dispatch  # noqa: N815 - stdlib naming

    # ---------------------------------------------------------------- helpers
    @property
    def repos(self) -> GitRepos:
        return self.server.hub.repos

    def _commit_or_404(self, repo: str, rev: str) -> str | None:
        if not self.repos.exists(repo):
            self._send(404, {"error": "Repository not found"}, error_code="RepoNotFound")
            return None
        commit = self.repos.resolve(repo, rev)
        if commit is None:
            self._send(404, {"error": f"Invalid rev id: {rev}"}, error_code="RevisionNotFound")
        return commit

    # ---------------------------------------------------------------- write endpoints
    def _create_repo(self, body: bytes) -> None:
        data = json.loads(body or b"{}")
        repo = f"{data['organization']}/{data['name']}" if data.get("organization") else (
            data["name"])
        url = f"{self.server.hub.url}/{repo}"
        if not self.repos.create(repo):
            self._send(409, {"error": "You already created this model repo", "url": url})
            return
        self._send(200, {"url": url, "name": repo})

    def _validate_yaml(self, body: bytes) -> None:
        self._send(200, {})

    def _preupload(self, body: bytes, repo: str, rev: str) -> None:
        if self._commit_or_404(repo, rev) is None:
            return
        files = json.loads(body).get("files", [])
        self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                    "shouldIgnore": False} for f in files],
                         "commitOid": self.repos.resolve(repo, rev)})

    def _commit(self, body: bytes, repo: str, rev: str) -> None:
        if self._commit_or_404(repo, rev) is None:
            return
        files: dict[str, bytes] = {}
        deletions: list[str] = []
        message = "commit"
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item["key"] == "header":
                message = item["value"].get("summary") or message
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                deletions.append(item["value"]["path"])
            else:
                self._send(400, {"error": f"unsupported commit item {item['key']}"})
                return
        sha = self.repos.commit(repo, files, deletions=tuple(deletions), message=message)
        self._send(200, {"commitUrl": f"{self.server.hub.url}/{repo}/commit/{sha}",
                         "commitOid": sha, "pullRequestUrl": None})

    def _tag(self, body: bytes, repo: str, rev: str) -> None:
        commit = self._commit_or_404(repo, rev)
        if commit is None:
            return
        tag = json.loads(body)["tag"]
        if not self.repos.tag(repo, tag, commit):
            self._send(409, {"error": f"tag {tag} already exists"})
            return
        self._send(200, {})

    # ---------------------------------------------------------------- read endpoints
    def _refs(self, body: bytes, repo: str) -> None:
        if not self.repos.exists(repo):
            self._send(404, {"error": "Repository not found"}, error_code="RepoNotFound")
            return
        self._send(200, self.repos.refs(repo))

    def _tree(self, body: bytes, repo: str, rev: str, sub: str | None) -> None:
        commit = self._commit_or_404(repo, rev)
        if commit is None:
            return
        rows = self.repos.tree(repo, commit)
        if sub:
            rows = [r for r in rows if r["path"] == sub or r["path"].startswith(sub + "/")]
        self._send(200, rows)

    def _paths_info(self, body: bytes, repo: str, rev: str) -> None:
        commit = self._commit_or_404(repo, rev)
        if commit is None:
            return
        text = body.decode()
        try:
            wanted = set(json.loads(text).get("paths", []))
        except json.JSONDecodeError:  # form-encoded
            from urllib.parse import parse_qs

            wanted = set(parse_qs(text).get("paths", []))
        self._send(200, [r for r in self.repos.tree(repo, commit) if r["path"] in wanted])

    def _model_info(self, body: bytes, repo: str, rev: str | None) -> None:
        commit = self._commit_or_404(repo, rev or "main")
        if commit is None:
            return
        self._send(200, {
            "id": repo, "modelId": repo, "sha": commit, "private": False, "disabled": False,
            "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "siblings": [{"rfilename": r["path"]} for r in self.repos.tree(repo, commit)],
        })

    def _resolve(self, body: bytes, repo: str, rev: str, file: str) -> None:
        commit = self._commit_or_404(repo, rev)
        if commit is None:
            return
        found = self.repos.blob(repo, commit, file)
        if found is None:
            self._send(404, {"error": f"{file} not found"}, error_code="EntryNotFound")
            return
        oid, content = found
        hub = self.server.hub
        key = (repo, file)
        content = hub.faults.tamper.get(key, content)
        start = 0
        status = 200
        range_header = self.headers.get("Range")
        if self.command == "GET" and range_header:
            match = re.match(r"bytes=(\d+)-$", range_header)
            if match:
                start = int(match.group(1))
                status = 206
        payload = content[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("ETag", f'"{oid}"')
        self.send_header("X-Repo-Commit", commit)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with hub.lock:
            remaining = hub.faults.truncate.get(key, 0)
            if remaining:
                hub.faults.truncate[key] = remaining - 1 if remaining > 0 else remaining
        if remaining or key in hub.faults.stall:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            if key in hub.faults.stall:
                hub.release.wait(30)
            self.close_connection = True
            return
        chunk, delay = hub.faults.throttle or (len(payload) or 1, 0.0)
        for offset in range(0, len(payload), chunk):
            self.wfile.write(payload[offset:offset + chunk])
            self.wfile.flush()
            if delay:
                time.sleep(delay)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubServer


class HubServer:
    """A running local hub on ``127.0.0.1`` (use as a context manager)."""

    def __init__(self, root: Path) -> None:
        self.repos = GitRepos(root)
        self.faults = Faults()
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def add_model(self, repo_id: str, files: dict[str, bytes], message: str = "add model") -> str:
        """Create ``repo_id`` (if needed) and commit ``files`` on ``main``; returns the SHA."""
        self.repos.create(repo_id)
        return self.repos.commit(repo_id, files, message=message)

    def requests_to(self, fragment: str) -> list[tuple[str, str]]:
        """Logged requests whose path contains ``fragment``."""
        return [entry for entry in self.log if fragment in entry[1]]
