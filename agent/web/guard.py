"""What keeps other web pages, opened in the same browser, away from ``vidagent serve``.

Without an API key the server trusts whoever can reach its port, which on 127.0.0.1 is meant to be
the local user only. A page from elsewhere could still reach it through the user's browser:

- **DNS rebinding**: ``evil.example`` resolves to 127.0.0.1, and its page reads the API as its own
  origin. Its requests carry ``Host: evil.example``, so every request must name this server in its
  Host header (:class:`HostPolicy`) or is refused with 400. The port is not compared: a rebinding
  page carries its own host name, whatever the port.
- **Cross-site requests** (a form posting an upload, a ``fetch`` starting perception): a
  state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` is not this server's own, or
  whose ``Sec-Fetch-Site`` says another site sent it, is refused with 403. Clients that are not
  browsers (curl, scripts) send neither header and are not affected.
- **Framing and sniffing**: every response says ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and a Content-Security-Policy. The
  page's policy allows only this origin (its script and style are files under ``/static``, no
  inline code); the API docs (``/docs``, ``/redoc``) load Swagger UI / ReDoc from a CDN with inline
  script, so theirs only forbids framing.

:class:`Guard` is a plain ASGI middleware (not ``BaseHTTPMiddleware``, which would buffer and
detach streamed answers from their client's disconnect).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE = frozenset({"same-origin", "none"})  # none: the user typed the address

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def host_name(value: str) -> str:
    """The host name of a Host header or netloc, lower case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The host names a request may name in its Host header.

    Always the loopback names; the address the server listens on; on a wildcard address (0.0.0.0,
    ::), any IP address (a rebinding page names a host, never an address) and this machine's name;
    and the names given with ``--allowed-host`` (``*``: any)."""

    names: frozenset[str]
    any_ip: bool = False
    any_name: bool = False

    @classmethod
    def of(cls, host: str, allowed: tuple[str, ...] = ()) -> HostPolicy:
        import socket

        names = {*LOOPBACK_NAMES, *(host_name(a) for a in allowed if a.strip() != "*")}
        wildcard = host.strip() in WILDCARD_HOSTS
        if wildcard:
            machine = socket.gethostname().lower()
            names.update({machine, f"{machine}.local"})
        else:
            names.add(host_name(host))
        return cls(frozenset(names), any_ip=wildcard, any_name="*" in (a.strip() for a in allowed))

    def allows(self, name: str) -> bool:
        if not name:
            return False
        return self.any_name or name in self.names or (self.any_ip and is_ip(name))


def _netloc(value: str) -> str:
    """``host[:port]`` lower case, without the scheme's default port."""
    value = value.strip().lower()
    for default in (":80", ":443"):
        value = value.removesuffix(default)
    return value


def cross_site(headers: Headers) -> str | None:
    """Why a state-changing request comes from another site, or None when it does not."""
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        own = _netloc(headers.get("host", ""))
        if parts.scheme not in ("http", "https") or _netloc(parts.netloc) != own:
            return f"Origin {origin!r}"
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in SAME_SITE:
        return f"Sec-Fetch-Site {site!r}"
    return None


class Guard:
    """ASGI middleware: the Host check, the cross-site check, the security headers."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**SECURITY_HEADERS, "content-security-policy": csp}.items():
                    headers.setdefault(name, value)
            await send(message)

        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.policy.allows(host_name(host)):
            detail = (
                f"Host {host!r} is not this server's address; open it as http://localhost:PORT/ "
                "or start it with --allowed-host NAME to accept another name"
            )
            await _refuse(400, detail, send_with_headers)
            return
        if scope["method"] in UNSAFE_METHODS and (why := cross_site(headers)) is not None:
            detail = f"cross-site request refused ({why} is not this server's page)"
            await _refuse(403, detail, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


async def _refuse(status: int, detail: str, send: Send) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
