"""User Data Headers of concatenated messages (3GPP TS 23.040 §9.2.3.24.1 and .8).

Read by whatever reassembles parts an ESME submitted: the built-in SMSC simulator and the
customers' SMPP server.
"""

from __future__ import annotations


def split_udh(payload: bytes) -> tuple[tuple[int, int, int, bool] | None, bytes]:
    """((reference, total, seq, sixteen_bit) or None, user data without the UDH).

    >>> split_udh(bytes.fromhex("050003 2a 03 01") + b"hi")
    ((42, 3, 1, False), b'hi')
    """
    if not payload:
        return None, payload
    udhl = payload[0]
    end = 1 + udhl
    if end > len(payload):
        return None, payload  # not a valid UDH: treat everything as text
    concat: tuple[int, int, int, bool] | None = None
    p = 1
    while p + 2 <= end:
        iei, length = payload[p], payload[p + 1]
        data = payload[p + 2 : p + 2 + length]
        if iei == 0x00 and length == 3:
            concat = (data[0], data[1], data[2], False)
        elif iei == 0x08 and length == 4:
            concat = ((data[0] << 8) | data[1], data[2], data[3], True)
        p += 2 + length
    return concat, payload[end:]
