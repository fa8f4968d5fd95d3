"""Packet keys: unique per packet's bytes, and in the order of the clients' TIME."""

from __future__ import annotations

import hashlib

from cloudsms.domain.replay_keys import KEY_MARK, legacy_digest_prefix, packet_key


def test_keys_follow_the_clients_time_whatever_the_body() -> None:
    times = [
        "2026-12-07 01:55:00",
        "2026-12-07 01:55:01",
        "2026-12-07 01:56:00",
        "2027-01-01 00:00:00",
    ]
    keys = [packet_key(7, t, 9 - i, f'{{"N": {65535 - i}}}'.encode()) for i, t in enumerate(times)]
    assert keys == sorted(keys)
    assert all(len(k) == 64 and k.startswith(KEY_MARK + "2026120701") for k in keys[:3])


def test_same_bytes_same_key_and_any_difference_another() -> None:
    body = b'{"SERIAL": 1, "TIME": "x"}'
    assert packet_key(1, "x", 1, body) == packet_key(1, "x", 1, body)
    assert packet_key(1, "x", 1, body) != packet_key(2, "x", 1, body)  # another customer
    assert packet_key(1, "x", 1, body) != packet_key(1, "x", 1, body + b" ")


def test_within_a_second_keys_follow_the_serial() -> None:
    keys = [packet_key(3, "2026-12-07 01:55:00", serial, b"{}") for serial in (1, 2, 10, 65535)]
    assert keys == sorted(keys)


def test_a_time_without_digits_leaves_the_digest_in_front() -> None:
    key = packet_key(1, "Please input your local time", 42, b"{}")
    assert key.startswith(KEY_MARK + "0" * 14 + "00042") and len(key) == 64


def test_an_older_releases_key_is_found_by_the_digest_prefix() -> None:
    body = b'{"SERIAL": 9}'
    older = hashlib.sha256((5).to_bytes(8, "big") + body).hexdigest()  # the bare digest
    prefix = legacy_digest_prefix(packet_key(5, "2026-12-07 01:55:00", 9, body))
    assert older.startswith(prefix) and older < "g" <= KEY_MARK


def test_the_time_digits_are_the_ones_keys_were_always_made_of() -> None:
    # An ASCII TIME takes a regex pass, any other the per-character str.isdigit: both give
    # the characters str.isdigit accepts, so a key made before is made the same now.
    for time in ("2026-12-06 23:45:00", "20261206", "now", "", "٣٤ 2026²", "2026-12-06 ２３"):
        digits = "".join(c for c in time if c.isdigit())[:14].ljust(14, "0")
        assert packet_key(7, time, 12, b"{}")[1:15] == digits
