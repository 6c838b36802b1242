"""Running the app under uvicorn: bind checks, the API key file, a server in a background thread."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignkit.config.serve import ServeConfig
from alignkit.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def read_api_key(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError("file not found", source=path, field="api_key_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API key: {exc}", source=path, field="api_key_file") from None
    if not key or any(ch.isspace() for ch in key):
        raise ConfigError("expected one API key without spaces", source=path, field="api_key_file")
    return key


def check_bind(cfg: ServeConfig) -> None:
    """Loopback by default; anything else needs an API key, or an explicit opt-out."""
    if not is_loopback(cfg.host) and cfg.api_key_file is None and not cfg.allow_remote_without_key:
        raise ConfigError(
            f"{cfg.host} is reachable from other machines and no API key is set: give --api-key-file FILE, "
            "or allow_remote_without_key=true if the network is yours",
            field="host",
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), so the caller knows the port before uvicorn starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class BackgroundServer:
    """uvicorn serving ``app`` on ``sock`` in a daemon thread (tests, ``--check``)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.url = url_of(sock)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def serve_forever(app: Any, sock: socket.socket, *, announce: Callable[[str], None]) -> None:
    import uvicorn

    announce(f"serving on {url_of(sock)} (OpenAI API under /v1, chat page at /); Ctrl-C stops")
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
