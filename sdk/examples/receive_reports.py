"""Receive delivery reports and print one line per report (the integration guide's sample).

    pip install './sdk[serve]'
    CLOUDSMS_AUTH_KEY=… python sdk/examples/receive_reports.py [HOST] [PORT]

HOST defaults to 0.0.0.0 and PORT to 8080; give the platform's operator the URL
``http://<this host>:<PORT>/`` as your callback. Replace ``on_report`` with code that stores
the report: the receiver answers OK only after it returned, so a report is never lost.
"""

from __future__ import annotations

import os
import sys

from cloudsms_client import Report, ReportReceiver, serve_receiver


def on_report(report: Report) -> None:
    print(report.sms_uid, report.sms_state.name, report.result_desc, report.fee, report.currency,
          report.customer_body, flush=True)  # fmt: skip


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "0.0.0.0"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
    receiver = ReportReceiver(os.environ["CLOUDSMS_AUTH_KEY"], on_report)
    print(f"listening on http://{host}:{port}/", flush=True)
    serve_receiver(receiver, host, port)
