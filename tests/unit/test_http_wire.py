"""Response bytes and request paths of the UIP listener (cloudsms.api.http_wire, api.routes).

The protocol itself, over real sockets: tests/integration/test_http_protocol.py.
"""

from __future__ import annotations

import doctest

import pytest

from cloudsms.api import http_wire, routes
from cloudsms.api.routes import request_path


def test_doctests() -> None:
    for module in (http_wire, routes):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_a_response_is_framed_by_its_content_length() -> None:
    data = http_wire.response(405, b'{"a":1}', close=True, extra=b"allow: POST\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 405 Method Not Allowed"
    assert b"content-length: 7" in lines and b"connection: close" in lines
    assert b"allow: POST" in lines and any(line.startswith(b"date: ") for line in lines)
    assert body == b'{"a":1}'


def test_a_head_answer_keeps_the_length_and_drops_the_body() -> None:
    data = http_wire.response(200, b'{"status":"ok"}', http_wire.JSON, head=True)
    assert data.endswith(b"content-length: 15\r\n" + http_wire.date_line() + b"\r\n")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (b"/dave/io", b"/dave/io"),
        (b"/dave/io?x=1", b"/dave/io"),
        (b"/dave/io#frag", b"/dave/io"),
        (b"/dave%2Fio", b"/dave/io"),
        (b"http://uip.example:1815/dave/io", b"/dave/io"),
        (b"/", b"/"),
    ],
)
def test_request_path(url: bytes, path: bytes) -> None:
    assert request_path(url) == path
