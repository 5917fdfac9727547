"""The arena web app (FastAPI) and ``make_server``, which runs it with uvicorn in a background thread.

Pages are static HTML files that talk to the JSON API; the map libraries (Leaflet, topojson-client) and the
world outline (world-atlas countries-50m) are served from ``<data_dir>/web`` under /static/vendor/ --
fetched by ``make setup`` from npm, never from a CDN, so the arena works with no network at all.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .api import router
from .chat import ChatConfig, ChatRoom, IrcBridge
from .db import Database
from .games import ArenaError, GameService
from .worlds import load_worlds

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PAGES = {"/": "index.html", "/stats": "stats.html"}
GAME_PAGES = {"play": "play.html", "overlay": "overlay.html"}
BOT_TOKEN_ENV = "PIGEON_ARENA_BOT_TOKEN"  # the operator's bot token, when not passed in
VENDOR_FILES = ("leaflet.js", "leaflet.css", "topojson-client.min.js", "countries-50m.json")
MAX_BODY_BYTES = 64 * 1024
DRAIN_BYTES = 1024 * 1024  # oversized bodies up to this size are read and discarded before the 413 (no reset)
MAX_PREDICTIONS_BYTES = 512 * 1024  # a 4096-point heat map is ~150 KB of JSON
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' "
        b"'unsafe-inline'; script-src 'self'; connect-src 'self'; object-src 'none'",
    ),
]


def default_vendor_dir() -> Path:
    from model.paths import data_dir  # lazy: only the path rule is needed, not the polygon tooling

    return data_dir() / "web"


def check_vendor_dir(vendor_dir: Path) -> Path:
    missing = [f for f in VENDOR_FILES if not (vendor_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"arena web assets missing in {vendor_dir}: {', '.join(missing)}; run `make setup` "
            "(it fetches leaflet@1.9.4, topojson-client@3.1.0 and world-atlas from npm)"
        )
    return vendor_dir


class BodyLimitMiddleware:
    """Answers 413 to request bodies over the limit (declared or streamed) before any handler sees them,
    and adds security headers (and ``Cache-Control: no-store`` on API answers) to every response."""

    def __init__(self, app: Callable, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = MAX_PREDICTIONS_BYTES if scope["path"] == "/api/predictions" else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            if declared.isdigit() and int(declared) <= DRAIN_BYTES:
                await self._drain(receive)
            return await self._reject(scope, send, 413 if declared.isdigit() else 400, limit)
        body, more = bytearray(), True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # client went away
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > limit:
                if more:
                    await self._drain(receive, len(body))
                return await self._reject(scope, send, 413, limit)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        is_api = scope["path"].startswith("/api/")

        async def send_with_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", [])) + SECURITY_HEADERS
                if is_api and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, replay, send_with_headers)

    @staticmethod
    async def _drain(receive: Callable, seen: int = 0) -> None:
        """Read and discard the rest of an oversized body (up to DRAIN_BYTES in all) before answering, so the
        client is still reading when the 413 arrives instead of getting a connection reset mid-upload."""
        more = True
        while more and seen <= DRAIN_BYTES:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            seen += len(msg.get("body", b""))
            more = msg.get("more_body", False)

    async def _reject(self, scope: dict, send: Callable, status: int, limit: int) -> None:
        detail = f"request body larger than {limit} bytes" if status == 413 else "bad Content-Length"
        await JSONResponse({"detail": detail}, status_code=status, headers={"connection": "close"})(
            scope, None, send
        )


def create_app(service: GameService, vendor_dir: Path) -> FastAPI:
    """The ASGI app over ``service``; ``vendor_dir`` must hold the Leaflet/topojson/world-atlas files."""
    check_vendor_dir(vendor_dir)
    # no /docs or /redoc: FastAPI's pages load Swagger UI from a CDN, and the arena works offline
    app = FastAPI(
        title="pigeon arena",
        version="1",
        description="A local GeoGuessr-like game for humans and bots.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.chat = ChatRoom(lambda gid: service.summary(None, gid))  # viewers' guesses (arena/chat.py)

    @app.exception_handler(ArenaError)
    async def arena_error(_: Request, exc: ArenaError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # the default handler echoes the input back; NaN in it would not even serialise
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.include_router(router)
    for route, page in PAGES.items():
        app.add_api_route(route, _page(page), include_in_schema=False, methods=["GET"])
    for prefix, page in GAME_PAGES.items():
        app.add_api_route(f"/{prefix}/{{gid}}", _page(page), include_in_schema=False, methods=["GET"])
    app.mount("/static/vendor", StaticFiles(directory=vendor_dir), name="vendor")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return BodyLimitMiddleware(app)  # type: ignore[return-value]


def _page(name: str) -> Callable[..., FileResponse]:
    path = HERE / "templates" / name

    def page() -> FileResponse:
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})

    return page


class ArenaServer:
    """A running arena: ``url``, ``port``, ``service``, ``db``; ``stop()`` shuts it down (or use ``with``)."""

    def __init__(self, service: GameService, vendor_dir: Path, host: str, port: int) -> None:
        import uvicorn

        self.service, self.db, self.host = service, service.db, host
        app = create_app(service, vendor_dir)
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
        # without it keep-alive responses (headers, then body) stall ~40 ms on Nagle + delayed ACK
        self._sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        # listen now: connections made between printing the URL and uvicorn's start wait in the backlog
        self._sock.listen(512)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=512,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.chat: ChatRoom = app.app.state.chat if hasattr(app, "app") else app.state.chat
        self.chat_bridge: IrcBridge | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "ArenaServer":
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="arena-uvicorn", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"arena server on {self.url} did not start within {timeout_s} s")
            time.sleep(0.01)
        log.info("arena listening on %s", self.url)
        self.start_chat()
        return self

    def start_chat(self, cfg: ChatConfig | None = None) -> IrcBridge | None:
        """Connect the chat bridge (``cfg``, else ``ChatConfig.from_env()``; nothing when neither is set)."""
        cfg = cfg or ChatConfig.from_env()
        if cfg is not None and self.chat_bridge is None:
            self.chat_bridge = IrcBridge(cfg, self.chat).start()
        return self.chat_bridge

    def serve_forever(self) -> None:
        """Run in the calling thread (the CLI); Ctrl-C stops it."""
        self._server.run(sockets=[self._sock])

    def stop(self) -> None:
        if self.chat_bridge is not None:
            self.chat_bridge.stop()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()
        self.db.close()

    def __enter__(self) -> "ArenaServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def resolve_bot_token(bot_token: str | None) -> str:
    """The operator's bot token: ``bot_token``, else $PIGEON_ARENA_BOT_TOKEN, else a fresh random one that is
    also put into this process's environment (so a bot started in the same process, as ``pigeon duel`` and
    the tests do, can register; nobody else learns it)."""
    token = bot_token or os.environ.get(BOT_TOKEN_ENV)
    if not token:
        token = secrets.token_urlsafe(24)
        os.environ[BOT_TOKEN_ENV] = token
        log.info("no bot token configured: generated one for this process ($%s)", BOT_TOKEN_ENV)
    return token


def build_server(
    world_dirs: list[str | Path],
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    split: str = "test",
    vendor_dir: Path | None = None,
    rng: random.Random | None = None,
    bot_token: str | None = None,
    **service_kwargs: Any,
) -> ArenaServer:
    """An arena bound to ``host:port`` (0 = any free port) but not yet serving; ``bot_token`` as in
    ``resolve_bot_token``."""
    worlds = load_worlds(list(world_dirs), split)
    vendor = check_vendor_dir(vendor_dir or default_vendor_dir())
    service = GameService(
        Database(db_path), worlds, rng=rng, bot_token=resolve_bot_token(bot_token), **service_kwargs
    )
    return ArenaServer(service, vendor, host, port)


def make_server(
    world_dir: str | Path | list[str | Path],
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    **kwargs: Any,
) -> ArenaServer:
    """Start an arena with uvicorn in a daemon thread and return it once it accepts connections.

    ``world_dir`` is one dataset folder or a list of them; extra keyword arguments go to ``build_server``
    (``split``, ``vendor_dir``, ``rng``, and GameService options such as ``intermission_s``).
    """
    dirs = list(world_dir) if isinstance(world_dir, (list, tuple)) else [world_dir]
    return build_server(dirs, db_path, host, port, **kwargs).start()
