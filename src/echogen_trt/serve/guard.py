"""Browser-facing hygiene of the service: which Host and Origin it answers, and the security
headers on every response.

A service on 127.0.0.1 is still reachable from every web page the user opens: a page can POST
to it (cross-site requests), and DNS rebinding makes a foreign name resolve to 127.0.0.1 so that
the page counts as same-origin. So the service answers only Host names it is known by (the
loopback names, the bound address and `--allowed-host`), refuses state-changing requests from a
foreign `Origin` (unless `--cors-origin` names it), and tells the browser, with a strict
Content-Security-Policy, to run no script but the page's own file and to let no site frame it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names (no port) the service answers: loopback, the bound address, `extra`."""
    names = {*LOOPBACK_NAMES, *(h.strip().lower().strip("[]") for h in extra if h.strip())}
    if bound not in ANY_ADDRESS:
        names.add(bound.lower().strip("[]"))
    return frozenset(names)


def host_name(host_header: str) -> str:
    """The name of a Host header without its port: `[::1]:8000` -> `::1`, `a:80` -> `a`."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: Host allow-list (421), foreign Origin on POST (403), security headers.

    `on_refusal(reason)` counts what it refuses (metrics). "*" in `hosts` allows any Host.
    """

    def __init__(
        self,
        app: ASGIApp,
        hosts: frozenset[str],
        cors_origins: Iterable[str] = (),
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        self.app, self.hosts = app, hosts
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins)
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], headers)
        if refusal is None:
            await self.app(scope, receive, secured)
            return
        status, reason, message = refusal
        if self.on_refusal is not None:
            self.on_refusal(reason)
        await JSONResponse({"error": message}, status_code=status)(scope, receive, secured)

    def _refusal(self, method: str, headers: Headers) -> tuple[int, str, str] | None:
        host = headers.get("host", "")
        if not host:
            return 400, "host", "request | no Host header. Expected an HTTP/1.1 request."
        if "*" not in self.hosts and host_name(host) not in self.hosts:
            return (
                421,
                "host",
                f"Host {host[:80]!r} | not a name this server answers to. Expected one of "
                f"{', '.join(sorted(self.hosts))}. Hint: start it with --allowed-host NAME.",
            )
        origin = headers.get("origin")
        if method in SAFE_METHODS or origin is None:
            return None
        if origin.rstrip("/").lower() in self.cors_origins or _same_origin(origin, host):
            return None
        return (
            403,
            "origin",
            f"Origin {origin[:80]!r} | a foreign web page may not call this service. Expected "
            "the service's own page. Hint: start it with --cors-origin ORIGIN to allow one.",
        )


def _same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()
