"""A small Hugging Face Hub for tests: the HTTP endpoints the real ``huggingface_hub`` client calls to create a
repo, commit files and download them, served on 127.0.0.1 by a threaded ``http.server``.

Routes (as ``huggingface_hub`` 2.x builds them, see ``HfApi.create_repo``, ``_commit_api._fetch_upload_modes``,
``_commit_api._send_commit``, ``HfApi.model_info``, ``HfApi.list_repo_tree``, ``file_download``):

* ``POST /api/repos/create`` (JSON ``{"name", "organization", "type", "visibility"}``): 200 ``{"url"}``, 409 if it
  exists;
* ``POST /api/validate-yaml``: the README metadata must be a YAML mapping (400 with ``errors`` otherwise);
* ``POST /api/models/{repo}/preupload/{rev}``: every file is uploaded ``"regular"`` (inline base64 in the
  commit), so neither LFS nor Xet is involved;
* ``POST /api/models/{repo}/commit/{rev}``: NDJSON (a ``header`` line, then ``file`` / ``deletedFile`` lines);
  one call = one commit;
* ``GET /api/models/{repo}[/revision/{rev}]``: the repo's info with ``sha`` and ``siblings``;
* ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: a file, with ``X-Repo-Commit``, ``ETag`` (the git blob id) and
  ``Content-Length``.

Authorisation: ``Authorization: Bearer <token>``; tokens map to a user and a role (``"write"`` or ``"read"``).
Creating or committing needs a write token of the namespace's owner (else 401 without a valid token, 403 with
another one); reading a private repo needs a valid token of its owner (401 / 403). A missing repo gives 404 with
``X-Error-Code: RepoNotFound``, as the Hub does.

Faults for error tests: :meth:`FakeHub.fail` queues status codes that the next matching requests get instead of
their normal answer. Every request is logged in :attr:`FakeHub.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml


def git_blob_id(content: bytes) -> str:
    """The git object id of a file (what the Hub returns as a regular file's ``oid``/``ETag``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    summary: str
    description: str
    files: dict[str, bytes]


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool = False
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit | None:
        return self.commits[-1] if self.commits else None

    def files_at(self, revision: str) -> tuple[Commit | None, dict[str, bytes]] | None:
        """``(commit, files)`` at ``revision`` (a branch name means the head), None if the revision is unknown."""
        if revision in ("main", "HEAD"):
            head = self.head
            return head, dict(head.files) if head else {}
        for commit in self.commits:
            if commit.oid == revision:
                return commit, dict(commit.files)
        return None


_EMPTY_REPO_SHA = "0" * 40


class FakeHub:
    """The server's state and control surface; :meth:`start` serves it on ``127.0.0.1:<free port>``."""

    def __init__(self, tokens: dict[str, tuple[str, str]] | None = None) -> None:
        #: token -> (user name, "write" | "read")
        self.tokens: dict[str, tuple[str, str]] = dict(tokens or {})
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._faults: list[tuple[str, re.Pattern[str], int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------------------------- control

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail(self, method: str, path_regex: str, *statuses: int) -> None:
        """The next ``len(statuses)`` requests whose method and path match get these status codes."""
        with self._lock:
            for status in statuses:
                self._faults.append((method.upper(), re.compile(path_regex), status))

    def add_repo(self, repo_id: str, files: dict[str, bytes], private: bool = False, owner: str | None = None) -> Repo:
        """A repo with one commit holding ``files`` (for download tests)."""
        repo = Repo(repo_id=repo_id, owner=owner or repo_id.split("/")[0], private=private)
        repo.commits.append(Commit(_commit_oid(repo_id, 0, files), "initial commit", "", dict(files)))
        with self._lock:
            self.repos[repo_id] = repo
        return repo

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        return sum(1 for m, p, _ in self.requests if m == method and pattern.search(p))

    def _take_fault(self, method: str, path: str) -> int | None:
        with self._lock:
            for i, (m, pattern, status) in enumerate(self._faults):
                if m == method and pattern.search(path):
                    del self._faults[i]
                    return status
        return None


def _commit_oid(repo_id: str, index: int, files: dict[str, bytes]) -> str:
    digest = hashlib.sha1(f"{repo_id}\0{index}\0".encode())
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + git_blob_id(files[path]).encode())
    return digest.hexdigest()


class _HttpError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.extra = extra


_REPO = r"(?P<repo>[\w.\-]+/[\w.\-]+)"


class _Handler(BaseHTTPRequestHandler):
    server_hub: FakeHub
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the hub keeps its own log
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _user(self) -> tuple[str, str] | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.server_hub.tokens.get(auth[len("Bearer ") :].strip())

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.server_hub.requests.append((self.command, urlsplit(self.path).path, status))

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, err: _HttpError, head: bool = False) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": err.message}
        if err.error_code:
            headers["X-Error-Code"] = err.error_code
        self._send(err.status, json.dumps({"error": err.message, **err.extra}).encode(), headers, head=head)

    def _dispatch(self, head: bool = False) -> None:
        path = unquote(urlsplit(self.path).path)
        body = self._body() if self.command in ("POST", "PUT") else b""
        fault = self.server_hub._take_fault(self.command, path)
        if fault is not None:
            self._error(_HttpError(fault, f"injected {fault}"), head=head)
            return
        try:
            self._route(path, body, head)
        except _HttpError as err:
            self._error(err, head=head)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_POST(self) -> None:
        self._dispatch()

    # ---------------------------------------------------------------------------------------------- routes

    def _route(self, path: str, body: bytes, head: bool) -> None:
        m = self.command
        if m == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"))
        if m == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        if match := re.fullmatch(rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", path):
            return self._preupload(match["repo"], json.loads(body or b"{}"))
        if match := re.fullmatch(rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", path):
            return self._commit(match["repo"], match["rev"], body)
        if m == "GET" and (match := re.fullmatch(rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", path)):
            return self._tree(match["repo"], match["rev"], match["sub"] or "")
        if m == "GET" and (match := re.fullmatch(rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?", path)):
            return self._info(match["repo"], match["rev"] or "main")
        if m in ("GET", "HEAD") and (match := re.fullmatch(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)):
            return self._resolve(match["repo"], match["rev"], match["file"], head)
        raise _HttpError(404, f"no route for {m} {path}")

    def _require_writer(self, namespace: str) -> str:
        user = self._user()
        if user is None:
            raise _HttpError(401, "Invalid credentials in Authorization header")
        name, role = user
        if role != "write" or name != namespace:
            raise _HttpError(403, f"You don't have the rights to write to {namespace}")
        return name

    def _repo_for_reading(self, repo_id: str) -> Repo:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            raise _HttpError(404, "Repository not found", "RepoNotFound")
        if repo.private:
            user = self._user()
            if user is None:
                raise _HttpError(401, "Invalid credentials in Authorization header")
            if user[0] != repo.owner:
                raise _HttpError(403, f"You don't have access to {repo_id}")
        return repo

    def _create_repo(self, payload: dict[str, Any]) -> None:
        name = str(payload.get("name") or "")
        namespace = payload.get("organization")
        user = self._user()
        if user is None:
            raise _HttpError(401, "Invalid credentials in Authorization header")
        namespace = str(namespace or user[0])
        self._require_writer(namespace)
        repo_id = f"{namespace}/{name}"
        url = f"{self.server_hub.url}/{repo_id}"
        with self.server_hub._lock:
            if repo_id in self.server_hub.repos:
                raise _HttpError(409, "You already created this model repo", url=url)
            self.server_hub.repos[repo_id] = Repo(
                repo_id=repo_id, owner=namespace, private=payload.get("visibility") == "private"
            )
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        content = str(payload.get("content", ""))
        match = re.match(r"^---\n(.*?)\n---", content, flags=re.S)
        if match is None:
            return self._json(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            meta = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            return self._json(400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []})
        if not isinstance(meta, dict):
            return self._json(400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []})
        return self._json(200, {"errors": [], "warnings": []})

    def _writable_repo(self, repo_id: str) -> Repo:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            raise _HttpError(404, "Repository not found", "RepoNotFound")
        self._require_writer(repo.owner)
        return repo

    def _preupload(self, repo_id: str, payload: dict[str, Any]) -> None:
        repo = self._writable_repo(repo_id)
        head = repo.head
        files = []
        for entry in payload.get("files", []):
            existing = head.files.get(entry["path"]) if head else None
            files.append(
                {
                    "path": entry["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_id(existing) if existing is not None else None,
                }
            )
        self._json(200, {"files": files, "commitOid": head.oid if head else _EMPTY_REPO_SHA})

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        repo = self._writable_repo(repo_id)
        if revision not in ("main", "HEAD"):
            raise _HttpError(400, f"commits go to main here, not {revision}")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HttpError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        files = dict(repo.head.files) if repo.head else {}
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":
                if value.get("encoding") != "base64":
                    raise _HttpError(400, "files must be base64")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:
                raise _HttpError(400, f"this hub only takes regular files, not {key}")
        with self.server_hub._lock:
            oid = _commit_oid(repo_id, len(repo.commits), files)
            repo.commits.append(Commit(oid, str(header.get("summary", "")), str(header.get("description", "")), files))
        url = f"{self.server_hub.url}/{repo_id}/commit/{oid}"
        self._json(200, {"success": True, "commitOid": oid, "commitUrl": url, "pullRequestUrl": None})

    def _info(self, repo_id: str, revision: str) -> None:
        repo = self._repo_for_reading(repo_id)
        state = repo.files_at(revision)
        if state is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        commit, files = state
        stamp = "2026-01-01T00:00:00.000Z"
        self._json(
            200,
            {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": repo.owner,
                "sha": commit.oid if commit else _EMPTY_REPO_SHA,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": stamp,
                "createdAt": stamp,
                "siblings": [{"rfilename": path} for path in sorted(files)],
            },
        )

    def _tree(self, repo_id: str, revision: str, sub: str) -> None:
        repo = self._repo_for_reading(repo_id)
        state = repo.files_at(revision)
        if state is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        _, files = state
        prefix = sub.rstrip("/") + "/" if sub else ""
        entries = [
            {"type": "file", "path": path, "size": len(content), "oid": git_blob_id(content)}
            for path, content in sorted(files.items())
            if path.startswith(prefix)
        ]
        self._json(200, entries)

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        repo = self._repo_for_reading(repo_id)
        state = repo.files_at(revision)
        if state is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        commit, files = state
        if filename not in files:
            raise _HttpError(404, "Entry not found", "EntryNotFound")
        content = files[filename]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{git_blob_id(content)}"',
            "X-Repo-Commit": commit.oid if commit else _EMPTY_REPO_SHA,
            "Accept-Ranges": "bytes",
            "Last-Modified": formatdate(usegmt=True),
        }
        start = 0
        range_header = self.headers.get("Range")
        if range_header and (match := re.fullmatch(r"bytes=(\d+)-", range_header.strip())):
            start = min(int(match.group(1)), len(content))
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            return self._send(206, content[start:], headers, head=head)
        self._send(200, content, headers, head=head)


def client_env(hub: FakeHub, token: str, home: Path) -> dict[str, str]:
    """The environment variables that point huggingface_hub at ``hub`` as the owner of ``token`` (set them before
    a subprocess starts: ``HF_HOME`` is read at import), with Xet and telemetry off."""
    return {
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(home),
    }
