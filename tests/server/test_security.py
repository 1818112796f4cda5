"""DNS rebinding and cross-site requests: a Host or Origin that is not the server's is refused."""
from __future__ import annotations

import pytest

from cnnlab.server.security import allowed_hosts_for


@pytest.mark.parametrize("headers", [
    {"host": "evil.example"},
    {"host": "evil.example:8000"},
    {"host": "127.0.0.1.nip.io"},
    {"origin": "http://evil.example"},
    {"origin": "null"},
    {"origin": "https://testserver"},
])
@pytest.mark.parametrize("method, url", [("GET", "/"), ("GET", "/api/model"), ("POST", "/api/train/start"),
                                         ("GET", "/static/app.js")])
def test_foreign_host_or_origin_is_refused(client, app, headers, method, url):
    r = client.request(method, url, headers=headers, json={"model": "ox_cnn"} if method == "POST" else None)
    assert r.status_code == 403
    assert "refused" in r.json()["error"]
    assert not app.state.job.running  # nothing was started


def test_own_origin_is_accepted(client):
    assert client.get("/api/model", headers={"origin": "http://testserver"}).status_code == 200


def test_allowed_hosts_of_a_local_server():
    assert allowed_hosts_for("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000"}
