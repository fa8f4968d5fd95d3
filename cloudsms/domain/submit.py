"""Turning one accepted message into the submit_sm PDUs a connector sends (SPEC §5).

Strategy: the encoding chosen at acceptance is kept when the connector takes its data_coding;
otherwise GSM 7-bit falls back to UCS-2 (a carrier without DCS 0) and Latin-1 to UCS-2 (one
without DCS 3). The charge made at acceptance stands either way. Long messages follow the
connector's ``long_mode``: UDH concatenation with an 8- or 16-bit reference (esm_class UDHI,
SMPP 3.4 §5.2.12), the sar_* TLVs (§5.3.2.22-24), or the whole text in one message_payload TLV
(§5.3.2.32). Every PDU asks for a delivery receipt (registered_delivery 1, §5.2.17), and carries
the message's own deadline, when it has one, as an absolute validity_period (§7.1.1).
"""

from __future__ import annotations

import datetime as dt

from cloudsms.domain.routing import ConnectorConfig, source_address_params
from cloudsms.smpp.constants import EsmClass, Tag
from cloudsms.smpp.encoding import DATA_CODING, Encoding, encode_text, split_for_submit, udh_concat
from cloudsms.smpp.pdu import SubmitSm
from cloudsms.smpp.times import format_smpp_time
from cloudsms.smpp.tlv import Tlv

REGISTERED_DELIVERY_FINAL = 0x01


def encoding_for(encoding: Encoding, connector: ConnectorConfig) -> Encoding:
    """The encoding to send with on this connector."""
    if DATA_CODING[encoding] in connector.data_codings:
        return encoding
    return "ucs2"


def build_submits(
    *,
    sender: str,
    destination: str,
    text: str,
    encoding: Encoding,
    connector: ConnectorConfig,
    reference: int,
    expires_ms: int | None = None,
) -> list[SubmitSm]:
    """The submit_sm PDUs for one message; ``reference`` numbers its parts (mod 256 / 65536);
    ``expires_ms``, the message's own deadline, becomes their validity_period."""
    encoding = encoding_for(encoding, connector)
    ton, npi = source_address_params(sender, connector)
    common = {
        "sequence_number": 0,
        "source_addr_ton": ton,
        "source_addr_npi": npi,
        "source_addr": sender,
        "dest_addr_ton": connector.dest_ton,
        "dest_addr_npi": connector.dest_npi,
        "destination_addr": destination,
        "registered_delivery": REGISTERED_DELIVERY_FINAL,
        "validity_period": ""
        if expires_ms is None
        else format_smpp_time(dt.datetime.fromtimestamp(expires_ms / 1000, dt.UTC)),
        "data_coding": DATA_CODING[encoding],
    }
    if connector.long_mode == "payload":
        payload = encode_text(text, encoding)
        if len(payload) <= 254:
            return [SubmitSm(short_message=payload, **common)]  # type: ignore[arg-type]
        tlv = Tlv(Tag.MESSAGE_PAYLOAD, payload)
        return [SubmitSm(short_message=b"", tlvs=(tlv,), **common)]  # type: ignore[arg-type]
    sixteen_bit = connector.long_mode == "udh16"
    parts = split_for_submit(text, encoding, sixteen_bit=sixteen_bit)
    if len(parts) == 1:
        return [SubmitSm(short_message=parts[0], **common)]  # type: ignore[arg-type]
    total = len(parts)
    if connector.long_mode == "sar":
        ref = reference % 65536
        return [
            SubmitSm(
                short_message=part,
                tlvs=(
                    Tlv.uint16(Tag.SAR_MSG_REF_NUM, ref),
                    Tlv.uint8(Tag.SAR_TOTAL_SEGMENTS, total),
                    Tlv.uint8(Tag.SAR_SEGMENT_SEQNUM, seq),
                ),
                **common,  # type: ignore[arg-type]
            )
            for seq, part in enumerate(parts, start=1)
        ]
    ref = reference % (65536 if sixteen_bit else 256)
    return [
        SubmitSm(
            esm_class=EsmClass.UDHI,
            short_message=udh_concat(ref, total, seq, sixteen_bit) + part,
            **common,  # type: ignore[arg-type]
        )
        for seq, part in enumerate(parts, start=1)
    ]
