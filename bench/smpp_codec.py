"""Time encode + decode of submit_sm and submit_sm_resp PDUs with cloudsms.smpp.codec.

Usage: .venv/bin/python bench/smpp_codec.py [N]   (default N = 200,000; capped at 2,000,000)

For each PDU type it measures, separately and then together: encoding N PDU objects, decoding
the N encodings fed to one Decoder as a single stream (in 64 KiB chunks, as a socket read would
deliver them), and the best of three runs is printed as PDUs per second.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable

from cloudsms.smpp.codec import NEED_DATA, Decoder, encode
from cloudsms.smpp.constants import DataCoding, EsmClass, Npi, RegisteredDelivery, Ton
from cloudsms.smpp.pdu import Pdu, SubmitSm, SubmitSmResp

CHUNK = 65_536


def make_submits(n: int) -> list[Pdu]:
    return [
        SubmitSm(
            sequence_number=i + 1,
            source_addr_ton=Ton.ALPHANUMERIC,
            source_addr="CloudSMS",
            dest_addr_ton=Ton.INTERNATIONAL,
            dest_addr_npi=Npi.ISDN,
            destination_addr=f"659{i % 10_000_000:07d}",
            esm_class=EsmClass.DEFAULT,
            registered_delivery=RegisteredDelivery.RECEIPT_ALWAYS,
            data_coding=DataCoding.SMSC_DEFAULT,
            short_message=b"Your verification code is 123456. Do not share it.",
        )
        for i in range(n)
    ]


def make_resps(n: int) -> list[Pdu]:
    return [SubmitSmResp(sequence_number=i + 1, message_id=f"{i:016x}") for i in range(n)]


def encode_all(pdus: list[Pdu]) -> bytes:
    return b"".join([encode(p) for p in pdus])


def decode_all(stream: bytes) -> int:
    decoder = Decoder()
    count = 0
    for start in range(0, len(stream), CHUNK):
        decoder.receive_data(stream[start : start + CHUNK])
        while decoder.next_pdu() is not NEED_DATA:
            count += 1
    return count


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    n = min(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000, 2_000_000)
    print(f"python {sys.version.split()[0]}, N = {n:,}")
    for name, make in (("submit_sm", make_submits), ("submit_sm_resp", make_resps)):
        pdus = make(n)
        stream = encode_all(pdus)
        assert decode_all(stream) == n
        t_enc = best_of(3, functools.partial(encode_all, pdus))
        t_dec = best_of(3, functools.partial(decode_all, stream))
        print(
            f"{name:15s} {len(stream) / n:5.0f} B/PDU  encode {n / t_enc:>10,.0f}/s"
            f"  decode {n / t_dec:>10,.0f}/s  encode+decode {n / (t_enc + t_dec):>10,.0f}/s"
        )


if __name__ == "__main__":
    main()
