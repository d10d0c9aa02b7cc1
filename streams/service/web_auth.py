"""Who may use the web views: a Host allowlist, a bearer token, POST for changes.

Every request passes :meth:`WebGuard.check` (an aiohttp middleware installed
through Faust's ``web_application_options``, so Faust's own views are covered
too):

1. the ``Host`` header must name an allowed host (``web_allowed_hosts``):
   otherwise 421. A page on another site cannot reach the views through DNS
   rebinding, whose requests carry the attacker's host name;
2. when a token is configured (required beyond loopback), every path but the
   probes ``/health`` and ``/ready`` needs ``Authorization: Bearer <token>``,
   compared in constant time: otherwise 401 with ``WWW-Authenticate``;
3. paths that change state (``/actions/...``) take POST only (405 for GET and
   others) and always need the token, on loopback too (403 when none is
   configured): a link or an image tag can never approve an action.

The token is never logged: refusals log the path, the method and the reason.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

OPEN_PATHS = frozenset({"/health", "/ready"})
STATE_CHANGING_PREFIX = "/actions/"


class WebGuard:
    """The decision for one request; pure (no I/O), so it is unit-tested alone.

    >>> g = WebGuard("s3cret-token-0123456", ["localhost"])
    >>> g.check("GET", "/alerts.json", "localhost:6066", "Bearer s3cret-token-0123456")
    >>> g.check("GET", "/alerts.json", "localhost:6066", None)[0]
    401
    >>> g.check("GET", "/health", "evil.example:6066", None)[0]
    421
    >>> g.check("GET", "/actions/ab12/approve", "localhost", "Bearer s3cret-token-0123456")[0]
    405
    """

    def __init__(self, token: str, allowed_hosts: Iterable[str]) -> None:
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        if not self.allowed_hosts:
            raise ValueError("allowed_hosts must name at least one host")
        self._token = token.encode() if token else b""

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host = host_header.strip().lower()
        if host.startswith("["):  # [v6]:port
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        return host in self.allowed_hosts

    def token_ok(self, authorization: str | None) -> bool:
        if not self._token or not authorization:
            return False
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # constant time: the comparison's duration says nothing about the token
        return hmac.compare_digest(presented.strip().encode(), self._token)

    def check(
        self, method: str, path: str, host: str | None, authorization: str | None
    ) -> tuple[int, str] | None:
        """None when the request may proceed, else (HTTP status, reason)."""
        if not self.host_allowed(host):
            return 421, "host not allowed"
        if path.startswith(STATE_CHANGING_PREFIX):
            if method != "POST":
                return 405, "state-changing paths take POST only"
            if not self._token:
                return 403, "set DISTILLWATCH_WEB_TOKEN to decide actions on the web"
            if not self.token_ok(authorization):
                return 401, "bearer token required"
            return None
        if path in OPEN_PATHS or (path.rstrip("/") in OPEN_PATHS):
            return None
        if self._token and not self.token_ok(authorization):
            return 401, "bearer token required"
        return None


def middleware(guard: WebGuard, on_refused: Callable[..., None]) -> Any:
    """The aiohttp middleware applying ``guard`` to every request."""
    from aiohttp import web

    @web.middleware
    async def guard_requests(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        verdict = guard.check(request.method, request.path, request.headers.get("Host"),
                              request.headers.get("Authorization"))
        if verdict is None:
            return await handler(request)
        status, reason = verdict
        on_refused(status=status, reason=reason, method=request.method, path=request.path[:200],
                   peer=request.remote)
        headers = {"WWW-Authenticate": 'Bearer realm="distillwatch"'} if status == 401 else {}
        if status == 405:
            headers["Allow"] = "POST"
        return web.json_response({"error": reason}, status=status, headers=headers)

    return guard_requests
