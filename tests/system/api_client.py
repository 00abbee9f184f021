"""The HTTP helpers that conv_harness.Api and api_wait_harness.ApiEnv share: requests to
one flowd with a tenant's API key (the default one, another, or none), and the check of
an RFC 9457 problem answer."""

import requests


class ApiClient:
    """Needs self.url and self.key; subclasses set default_timeout (seconds)."""

    default_timeout = 20

    def call(self, method, path, key=None, timeout=None, **kw):
        headers = dict(kw.pop("headers", None) or {})
        k = self.key if key is None else key
        if k:
            headers["Authorization"] = f"Bearer {k}"
        if timeout is None:
            timeout = self.default_timeout
        return requests.request(method, self.url + path, headers=headers, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, json=body, **kw)


def assert_problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and "detail" in body, body
    return body
