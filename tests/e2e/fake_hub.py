"""A fake Hugging Face Hub on loopback, for ``turbobot download`` (``HF_ENDPOINT`` points here).

It serves what ``huggingface_hub``'s ``snapshot_download`` asks for, with the shapes the hub
uses: ``GET /api/models/{repo}/revision/{rev}`` (the commit), ``GET /api/models/{repo}/tree/
{rev}?recursive=…`` (files with sizes, git blob ids and LFS sha256), and ``HEAD``/``GET
/{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (``X-Linked-Etag`` and
``X-Linked-Size`` for LFS files) and ``Range`` requests answered with ``206``.

Switches for the tests: ``cut_once`` (a path whose first transfer stops halfway and drops the
connection) and ``corrupt`` (paths served with other bytes of the same size).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aiohttp import web

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def blob_id(self) -> str:
        body = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(body) + body, usedforsecurity=False).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {len(self.data)}\n"
        ).encode()


@dataclass
class FakeHub:
    repos: dict[str, dict[str, HubFile]]
    cut_once: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)
    ranges: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header) seen
    gets: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeHub:
        app = web.Application()
        app.router.add_get("/api/models/{org}/{name}/revision/{rev}", self._info)
        app.router.add_get("/api/models/{org}/{name}/tree/{rev}", self._tree)
        app.router.add_route("HEAD", "/{org}/{name}/resolve/{rev}/{path:.+}", self._head)
        app.router.add_get("/{org}/{name}/resolve/{rev}/{path:.+}", self._get, allow_head=False)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _repo(self, request: web.Request) -> dict[str, HubFile]:
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        if repo not in self.repos:
            raise web.HTTPNotFound(headers={"X-Error-Code": "RepoNotFound"})
        return self.repos[repo]

    async def _info(self, request: web.Request) -> web.Response:
        files = self._repo(request)
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        siblings = [{"rfilename": path} for path in files]
        return web.json_response({"id": repo, "sha": COMMIT, "siblings": siblings})

    async def _tree(self, request: web.Request) -> web.Response:
        entries = []
        for path, file in self._repo(request).items():
            entry: dict[str, object] = {
                "type": "file",
                "path": path,
                "size": len(file.data),
                "oid": file.blob_id,
            }
            if file.lfs:
                entry["lfs"] = {
                    "oid": file.sha256,
                    "size": len(file.data),
                    "pointerSize": len(file.pointer),
                }
            entries.append(entry)
        return web.json_response(entries)

    def _file(self, request: web.Request) -> tuple[str, HubFile]:
        path = request.match_info["path"]
        files = self._repo(request)
        if path not in files:
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"})
        return path, files[path]

    def _headers(self, file: HubFile) -> dict[str, str]:
        headers = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if file.lfs:
            headers |= {"X-Linked-Etag": f'"{file.sha256}"', "X-Linked-Size": str(len(file.data))}
        else:
            headers["ETag"] = f'"{file.blob_id}"'
        return headers

    async def _head(self, request: web.Request) -> web.Response:
        _, file = self._file(request)
        headers = self._headers(file) | {"Content-Length": str(len(file.data))}
        return web.Response(status=200, headers=headers)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        path, file = self._file(request)
        self.gets.append(path)
        data = bytes(reversed(file.data)) if path in self.corrupt else file.data
        start = 0
        if "Range" in request.headers:
            self.ranges.append((path, request.headers["Range"]))
            start = int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
        response = web.StreamResponse(status=206 if start else 200, headers=self._headers(file))
        response.content_length = len(data) - start
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await response.prepare(request)
        if path in self.cut_once:
            self.cut_once.discard(path)
            await response.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-file
            return response
        await response.write(data[start:])
        await response.write_eof()
        return response
