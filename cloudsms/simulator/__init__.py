"""The built-in SMSC simulator: an SMPP 3.4 server with configurable outcomes and misbehaviours.

Embedded::

    sim = SmscSimulator("127.0.0.1", 0, accounts={"acme": "secret"},
                        behaviour=Throttling(every_n=10),
                        receipts=ReceiptPolicy(delivered=0.9, undeliverable=0.1), seed=1)
    await sim.start(); ...; await sim.stop()

Standalone: ``cloudsms smsc-sim --port 2775 --account acme:secret``
(see :mod:`cloudsms.cli.simulator`).
"""

from __future__ import annotations

from cloudsms.simulator.behaviours import (
    Behaviour,
    Decision,
    DisconnectMidWindow,
    ErrorOnSubmit,
    Happy,
    NoResponse,
    RejectBind,
    SlowResponse,
    Throttling,
    parse_behaviour,
)
from cloudsms.simulator.reassembly import Reassembler, ReceivedMessage
from cloudsms.simulator.receipts import (
    Exponential,
    Fixed,
    ReceiptPolicy,
    Rule,
    Uniform,
    parse_delay,
)
from cloudsms.simulator.server import DeliveryRecord, SegmentRecord, SmscSimulator

__all__ = [
    "Behaviour",
    "Decision",
    "DeliveryRecord",
    "DisconnectMidWindow",
    "ErrorOnSubmit",
    "Exponential",
    "Fixed",
    "Happy",
    "NoResponse",
    "Reassembler",
    "ReceiptPolicy",
    "ReceivedMessage",
    "RejectBind",
    "Rule",
    "SegmentRecord",
    "SlowResponse",
    "SmscSimulator",
    "Throttling",
    "Uniform",
    "parse_behaviour",
    "parse_delay",
]
