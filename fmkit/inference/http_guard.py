"""Access rules shared by every fmkit HTTP server (`fmkit serve`, `fmkit ui`, `fmkit app support|monitor serve`).

One policy, implemented once:

* **Key.** A server bound to this machine only (127.0.0.1, localhost, ::1) needs no key. Bound beyond it,
  an API server (`fmkit serve`, `app support serve`) refuses to start without `--api-key` / FMKIT_API_KEY,
  because its clients are programs that must be configured with the key anyway; a browser dashboard
  (`fmkit ui`, `app monitor serve`) generates a key and prints the URL holding it, because a person opens it.
  Browsers bring the key once in `?token=` and then carry it in an HttpOnly SameSite=Strict cookie; programs
  send `Authorization: Bearer KEY` or `X-API-Key: KEY`. Keys are compared in constant time.
* **Host.** Every server answers only to the names it is bound to (plus localhost, 127.0.0.1, [::1] and the
  names given with `--allowed-hosts`), so a web page on evil.example whose name was re-pointed at 127.0.0.1
  (DNS rebinding) gets 421 instead of the runs, models and data. Bound to every interface (0.0.0.0, ::),
  the machine's host names and any IP address are accepted: a page cannot serve itself from an IP literal.
* **Errors.** Bad bodies (malformed JSON, invalid UTF-8) answer a readable 422, and error bodies are
  ASCII-escaped JSON so that text the client sent (a lone surrogate, say) can never turn a 4xx into a 500.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fmkit.errors import ConfigError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
KEY_ENV = "FMKIT_API_KEY"
HOSTS_ENV = "FMKIT_ALLOWED_HOSTS"  # --allowed-hosts, passed on to `fmkit serve --workers N` processes
COOKIE_PREFIX = "fmkit_token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ServerKind = Literal["api", "browser"]


def is_local(bind_host: str) -> bool:
    return normalise_host(bind_host) in LOCAL_HOSTS


def normalise_host(name: str) -> str:
    """'LocalHost.' -> 'localhost', '[::1]' -> '::1': the form host names are compared in."""
    name = name.strip().lower().rstrip(".")
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def host_of(header: str) -> str:
    """The host part of a Host header: 'a.b:8000' -> 'a.b', '[::1]:8000' -> '::1'."""
    header = header.strip()
    if header.startswith("["):
        return normalise_host(header[: header.find("]") + 1] if "]" in header else header)
    if header.count(":") == 1:  # name:port (a bare IPv6 address has several colons and no port)
        header = header.split(":", 1)[0]
    return normalise_host(header)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def parse_host_list(text: str | None) -> list[str]:
    """'--allowed-hosts a.example, b.example' -> ['a.example', 'b.example']."""
    return [normalise_host(part) for part in (text or "").split(",") if part.strip()]


@dataclass(frozen=True)
class AllowedHosts:
    """The Host names a server answers to. `any_ip`: every IP literal too; `anything`: no check at all."""

    names: frozenset[str]
    any_ip: bool = False
    anything: bool = False

    @classmethod
    def for_bind(cls, bind_host: str, extra: Iterable[str] = ()) -> AllowedHosts:
        extra = [normalise_host(name) for name in extra]
        if "*" in extra:  # behind a reverse proxy that checks Host itself
            return cls(frozenset(), anything=True)
        bind = normalise_host(bind_host)
        names = set(LOCAL_HOSTS) | set(extra)
        wildcard = bind in WILDCARD_HOSTS
        if wildcard:
            names |= _machine_names()
        else:
            names.add(bind)
        return cls(frozenset(names), any_ip=wildcard)

    def allows(self, header: str | None) -> bool:
        # No Host header at all (HTTP/1.0) is no rebinding attack: browsers always send one.
        if self.anything or header is None:
            return True
        host = host_of(header)
        return host in self.names or (self.any_ip and _is_ip(host))

    def describe(self) -> str:
        if self.anything:
            return "any host"
        return ", ".join(sorted(self.names)) + (" and any IP address" if self.any_ip else "")


def _machine_names() -> set[str]:
    names = set()
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names.add(normalise_host(name))
    return names


def resolve_key(bind_host: str, given: str | None, kind: ServerKind, flag: str = "--api-key",
                env: str | None = KEY_ENV) -> str | None:
    """The key a server requires, or None for a local-only server started without one.

    `given` (the flag) wins over the environment variable `env`. Beyond localhost an API server without
    a key is a configuration error (ConfigError: the CLI exits 2); a browser dashboard gets a fresh
    random key, which the caller prints in its URL.
    """
    key = given or (os.environ.get(env) if env else None) or None
    if key or is_local(bind_host):
        return key
    if kind == "api":
        where = f"{flag} KEY or {env}=KEY" if env else f"{flag} KEY"
        raise ConfigError(f"listening on {bind_host} makes this server reachable from the network: give it a key with "
                          f"{where} (clients send 'Authorization: Bearer KEY'), or bind to 127.0.0.1.")
    return secrets.token_urlsafe(16)


def server_url(host: str, port: int, key: str | None = None, path: str = "/") -> str:
    """The URL to print at start-up; it holds the key as ?token= so that a browser can open it as it is."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}" + (f"?token={key}" if key else "")


def keys_match(given: bytes | str, key: bytes | str) -> bool:
    """Constant-time comparison, so the time a wrong key takes to reject says nothing about the right one."""
    given_bytes = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else given
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.compare_digest(given_bytes, key_bytes)


def header_key(headers: dict[str, bytes]) -> bytes | None:
    """The key an API client sent: `Authorization: Bearer KEY`, else `X-API-Key: KEY`."""
    auth = headers.get("authorization", b"")
    if auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key") or headers.get("x-fmkit-token")


def _headers(scope: Scope) -> dict[str, bytes]:
    return {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()  # ASCII-escaped: a Host or path echoed back cannot break the encoding
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


class HostGuard:
    """ASGI middleware: 421 for a Host header the server is not bound to (DNS rebinding)."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = _headers(scope).get("host")
            header = raw.decode("latin-1") if raw is not None else None
            if not self.allowed.allows(header):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send_json(send, 421, {"detail": f"this server does not answer to the host name "
                                                      f"'{host_of(header or '')}' (it answers to "
                                                      f"{self.allowed.describe()}). If the name is yours, start the "
                                                      "server with --allowed-hosts NAME."})
                return
        await self.app(scope, receive, send)


def install_host_guard(app: FastAPI, allowed: AllowedHosts) -> FastAPI:
    """Add the Host check as the outermost middleware (call it after the app's own middleware)."""
    app.add_middleware(HostGuard, allowed=allowed)
    return app


class KeyGuard:
    """ASGI middleware for servers browsers and programs both use (the dashboard, the monitor).

    The key arrives as a header (programs), as `?token=` (a browser, once) or in the cookie set then.
    The cookie's name holds the port: two dashboards on one machine share a cookie jar, not a key.
    """

    def __init__(self, app: ASGIApp, key: str, public_paths: Collection[str] = ()) -> None:
        self.app = app
        self.key = key.encode("utf-8")
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        cookie_name = f"{COOKIE_PREFIX}_{(scope.get('server') or ('', 0))[1] or 0}"
        headers = _headers(scope)
        from_query = _query_token(scope)
        given = header_key(headers) or from_query or _cookie(headers, cookie_name) or b""
        if not keys_match(given, self.key):
            await send_json(send, 401, {"detail": "access key required: open the URL the server printed (it holds "
                                                  "?token=KEY), or send 'Authorization: Bearer KEY'."},
                            {"WWW-Authenticate": "Bearer"})
            return
        if from_query is None:
            await self.app(scope, receive, send)
            return
        cookie = (f"{cookie_name}={self.key.decode()}; HttpOnly; SameSite=Strict; Path=/")

        async def set_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, set_cookie)


def _query_token(scope: Scope) -> bytes | None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query, encoding="utf-8", errors="surrogateescape").get("token")
    return values[0].encode("utf-8", "surrogateescape") if values else None


def _cookie(headers: dict[str, bytes], name: str) -> bytes | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", b"").decode("latin-1"))
    except Exception:  # http.cookies raises CookieError on junk: treat it as no cookie
        return None
    morsel = jar.get(name)
    return morsel.value.encode("latin-1") if morsel is not None else None


def install_key_guard(app: FastAPI, key: str | None, public_paths: Collection[str] = ()) -> FastAPI:
    if key:
        app.add_middleware(KeyGuard, key=key, public_paths=public_paths)
    return app


# --- readable errors -----------------------------------------------------------------------------------

class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate the client sent is echoed as \\ud800, never a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=str).encode()


def explain_invalid(exc: RequestValidationError, example: str) -> str:
    """One sentence per problem (at most five), e.g. "texts.0: Input should be a valid string"."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')}); send {example}")
        elif err.get("type") == "missing" and where == "body":
            parts.append(f"the body is empty; send {example}")
        else:
            parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, example: str) -> FastAPI:
    """422 with a readable `detail` for bad bodies (malformed JSON, invalid UTF-8, wrong types)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return SafeJSONResponse({"detail": explain_invalid(exc, example)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):  # FastAPI answers 400 "error parsing the body" for these
            return SafeJSONResponse({"detail": f"the body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} "
                                               f"at position {cause.start}); send {example} encoded as UTF-8"},
                                    status_code=422)
        return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app
