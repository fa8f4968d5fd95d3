"""Logging in to the console and the portal as a browser would (cookies, hidden form fields)."""

from __future__ import annotations

import re

import httpx


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no hidden field {name!r} in the page"
    return found.group(1)


def login(client: httpx.Client, area: str, secret: str) -> httpx.Response:
    """Log in to ``/console`` (admin token) or ``/portal`` (AUTH_KEY); returns the landing page."""
    page = client.get(f"/{area}/login")
    assert page.status_code == 200
    field = "token" if area == "console" else "auth_key"
    response = client.post(
        f"/{area}/login",
        data={"nonce": hidden(page.text, "nonce"), "next": f"/{area}/", field: secret},
        follow_redirects=True,
    )
    return response


def csrf_of(html: str) -> str:
    return hidden(html, "csrf")
