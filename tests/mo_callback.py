"""A customer's MO endpoint for tests: a real threaded HTTP/1.1 server that records each
SMS_PUSH_MO and answers the UIP ANSWER (RESULT_CODE 1), or HTTP 503 while ``down``."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MoCallback:
    """A customer's MO endpoint: answers RESULT_CODE 1, or 503 while ``down``."""

    def __init__(self) -> None:
        self.pushes: list[dict[str, Any]] = []
        self.refused = 0
        self.down = False
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                packet = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if sink.down:
                    sink.refused += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sink.pushes.append(packet)
                answer = json.dumps({
                    "METHOD": packet["METHOD"], "TYPE": "ANSWER", "SERIAL": packet["SERIAL"],
                    "TIME": "2026-01-01 00:00:00", "RESULT_CODE": 1, "RESULT_DESC": "OK",
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(10)

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.pushes) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.pushes)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A platform killed mid-connection (crash tests) resets it: not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
