"""UIP fuzz run: Hypothesis and schemathesis against /dave/io, counting cases and failures.

Uses the strategies and the answer invariant of ``tests/integration/test_hostile_http.py`` (the
bounded version in the suite) on a fresh SQLite platform with one seeded customer:

1. **in-process**: ``--asgi`` Hypothesis cases through the UIP listener on a private event loop,
   one keep-alive client in the same thread (fast; the flag keeps its old name);
2. **http**: ``--http`` cases through real HTTP (the listener in a server thread on 127.0.0.1);
3. **schemathesis**: ``--schemathesis`` positive and as many negative cases generated from
   ``docs/openapi-uip.yaml``, half of them carrying the real AUTH_KEY.

Every case must get HTTP 200/403/405/413 with a JSON ANSWER whose RESULT_CODE is documented and
not Unknown_error, within ``--timeout-s`` (else a hang), and nothing may be logged at ERROR.
Failures are counted, not stopped at: each case's exception is recorded and the run goes on.

    .venv/bin/python bench/fuzz_uip.py [--asgi 5000] [--http 1000] [--schemathesis 1000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

import httpx  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from platform_fixtures import RunningServer  # noqa: E402
from test_hostile_http import (  # noqa: E402
    FUZZ_SETTINGS,
    OPENAPI,
    InProcess,
    bodies,
    check_answer,
    content_types,
    methods,
    seeded_db,
)

from cloudsms.config import Settings  # noqa: E402


class Tally:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cases = 0
        self.failures: Counter[str] = Counter()
        self.hangs = 0
        self.examples: dict[str, str] = {}

    def run(self, call: Any, describe: Any) -> None:
        self.cases += 1
        try:
            call()
        except (TimeoutError, httpx.TimeoutException):
            self.hangs += 1
        except Exception as exc:
            key = f"{type(exc).__name__}: {str(exc)[:160]}"
            self.failures[key] += 1
            self.examples.setdefault(key, describe()[:300])

    def report(self, seconds: float) -> int:
        failures = sum(self.failures.values())
        print(
            f"{self.name}: {self.cases:,} cases in {seconds:.1f}s: "
            f"{failures} failures ({len(self.failures)} distinct), {self.hangs} hangs"
        )
        for key, count in self.failures.most_common(10):
            print(f"   {count}x {key}\n      e.g. {self.examples[key]!r}")
        return failures + self.hangs


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def options(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def asgi_phase(url: str, key: str, route: str, examples: int) -> Tally:
    tally = Tally("in-process")
    target = InProcess(url)

    @options(examples)
    @given(methods, bodies(key, route), content_types)
    def case(method: str, body: bytes, content_type: str | None) -> None:
        def call() -> None:
            response = target.request(method, body, content_type)
            check_answer(response.status_code, response.content)

        tally.run(call, lambda: f"{method} {body!r}")

    try:
        case()
    finally:
        target.close()
    return tally


def http_phase(server: RunningServer, key: str, route: str, examples: int, timeout: float) -> Tally:
    tally = Tally("real HTTP (Hypothesis)")
    with httpx.Client(timeout=timeout) as client:

        @options(examples)
        @given(methods, bodies(key, route), content_types)
        def case(method: str, body: bytes, content_type: str | None) -> None:
            headers = {"content-type": content_type} if content_type else {}

            def call() -> None:
                response = client.request(method, server.url, content=body, headers=headers)
                check_answer(response.status_code, response.content)

            tally.run(call, lambda: f"{method} {body!r}")

        case()
    return tally


def schemathesis_phase(server: RunningServer, key: str, examples: int, timeout: float) -> Tally:
    tally = Tally("schemathesis (docs/openapi-uip.yaml)")
    operation = schemathesis.openapi.from_path(str(OPENAPI))["/dave/io"]["POST"]
    base_url = f"http://127.0.0.1:{server.port}"
    excluded = [
        schemathesis.checks.negative_data_rejection,
        schemathesis.checks.positive_data_acceptance,
    ]
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

        @options(examples)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            if isinstance(case.body, dict) and tally.cases % 2:
                case.body["AUTH_KEY"] = key

            def call() -> None:
                response = case.call_and_validate(
                    base_url=base_url, excluded_checks=excluded, timeout=timeout
                )
                check_answer(response.status_code, response.content)

            tally.run(call, lambda: repr(case.body))

        run()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--asgi", type=int, default=5000)
    parser.add_argument("--http", type=int, default=1000)
    parser.add_argument("--schemathesis", type=int, default=1000)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    args = parser.parse_args()

    errors = ErrorLog()
    for name in ("cloudsms", "uvicorn.error"):
        logging.getLogger(name).addHandler(errors)
    logging.getLogger("cloudsms.security").setLevel(logging.ERROR)  # expected, and many
    workdir = Path(tempfile.mkdtemp(prefix="cloudsms-fuzz-"))
    url, seeded = seeded_db(workdir)
    total_cases = 0
    bad = 0

    started = time.monotonic()
    tally = asgi_phase(url, seeded.auth_key, seeded.route, args.asgi)
    bad += tally.report(time.monotonic() - started)
    total_cases += tally.cases

    server_settings = Settings.load(environ={}, database_url=url, **FUZZ_SETTINGS)
    with RunningServer(server_settings) as server:
        started = time.monotonic()
        tally = http_phase(server, seeded.auth_key, seeded.route, args.http, args.timeout_s)
        bad += tally.report(time.monotonic() - started)
        total_cases += tally.cases
        started = time.monotonic()
        tally = schemathesis_phase(server, seeded.auth_key, args.schemathesis, args.timeout_s)
        bad += tally.report(time.monotonic() - started)
        total_cases += tally.cases

    print(f"ERROR log records: {len(errors.messages)}")
    for message in errors.messages[:10]:
        print("  ", message[:300])
    bad += len(errors.messages)
    print(f"total: {total_cases:,} cases, {bad} failures/hangs/errors")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
