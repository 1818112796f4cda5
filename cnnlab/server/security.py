"""Refuse requests whose ``Host`` or ``Origin`` is not the server's own.

A web page from another site can make the browser send requests to 127.0.0.1 (cross-site
requests), and DNS rebinding can even make ``evil.example`` resolve to 127.0.0.1 so that the
browser treats the lab as same-origin with the attacker. Both are stopped by checking that
the ``Host`` header names this server (a rebound name does not) and that an ``Origin``
header, when the browser sends one, is ``http://`` + one of those hosts.
"""
from __future__ import annotations

import json


def allowed_hosts_for(host: str, port: int) -> set[str]:
    """The ``Host`` values of a server bound to ``host:port`` (127.0.0.1 is also ``localhost``)."""
    names = {host}
    if host in ("127.0.0.1", "localhost", "::1"):
        names |= {"127.0.0.1", "localhost"}
    return {f"{name}:{port}" for name in names} | ({"[::1]:" + str(port)} if host == "::1" else set())


class HostOriginGuard:
    """ASGI middleware: 403 JSON for a ``Host`` outside ``allowed_hosts`` or a foreign ``Origin``."""

    def __init__(self, app, allowed_hosts):
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        hosts = headers.get("host", [])
        problem = None
        if len(hosts) != 1 or hosts[0].lower() not in self.allowed_hosts:
            problem = f"Host {hosts[0] if hosts else '(none)'!r} is not this server's; expected one of " \
                      f"{sorted(self.allowed_hosts)} (requests for other names are refused: DNS rebinding)"
        else:
            for origin in headers.get("origin", []):
                if origin.lower() not in {f"http://{h}" for h in self.allowed_hosts}:
                    problem = f"Origin {origin!r} is not this server's; cross-site requests are refused"
        if problem is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": problem}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
