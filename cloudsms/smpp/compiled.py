"""Straight-line encoders and decoders per PDU class, generated from the codec's operations.

Why: the generic encoder and decoder of :mod:`cloudsms.smpp.codec` walk a list of operations per
PDU with a branch per field; on the carrier hot path (a submit_sm out, its submit_sm_resp and a
deliver_sm receipt in, per message) that walk cost more than the work itself (py-spy of the
worker under ``../shared/anchors``: decoding ~8 % of its samples; ``bench/smpp_codec.py``). The
same operations are turned once, at import, into Python source per class — one or two
statements per field, with its constants bound as default arguments — the technique
``dataclasses`` uses for ``__init__``. The layout stays declared once, in
:mod:`cloudsms.smpp.pdu`.

The encoders replace the generic walk for every class. The decoders are a fast path only: one
accepts exactly the well-formed bodies (every mandatory field present, every string terminated
within its limit, the TLVs filling the body) and raises on anything else, and the codec then runs
its generic decoder, which gives every leniency and every error status it documents. So a fast
decoder needs no error handling of its own; the property tests check that both give the same
PDU whenever the fast one gives one. Classes with the submit_multi lists are left to the generic
decoder (they are not on the hot path).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from cloudsms.smpp.pdu import MAX_SHORT_MESSAGE, Pdu
from cloudsms.smpp.tlv import Tlv

# The codec's operation kinds (its ``_compile``): the first element of each operation tuple.
OP_CSTR: Final = 0  # (kind, name, index, max_octets_including_nul, status)
OP_BYTE: Final = 1  # (kind, name, index)
OP_GROUP: Final = 2  # (kind, names, index, struct, index_end)
OP_SM: Final = 3  # (kind, name, index, status)
OP_DESTS: Final = 4  # (kind, name, index, status)
OP_UNSUCCESS: Final = 5  # (kind, name, index, status)

Op = tuple[Any, ...]
Encoder = Callable[[Pdu], bytes]
#: (command_status, sequence_number, body) → the PDU; raises on anything not well formed.
FastDecoder = Callable[[int, int, bytes], Pdu]

_HEADER = struct.Struct(">IIII")
_TLV_HEADER = struct.Struct(">HH")


class NotWellFormed(Exception):
    """Internal: the fast decoder leaves this body to the generic one."""


def make_encoder(
    cls: type[Pdu], ops: tuple[Op, ...], list_encoders: dict[int, Callable[[Any], bytes]]
) -> Encoder:
    """``encode`` for ``cls``: raises what the generic walk raised for a bad value
    (UnicodeEncodeError, struct.error, ValueError, TypeError); ``encode`` wraps it."""
    env: dict[str, Any] = {
        "_header": _HEADER.pack, "_tlv_header": _TLV_HEADER.pack, "_nul": b"\0",
        "_cid": int(cls.command_id),
    }  # fmt: skip
    parts: list[str] = []
    for i, op in enumerate(ops):
        kind = op[0]
        if kind == OP_CSTR:
            parts.append(f"pdu.{op[1]}.encode('latin-1'), _nul")
        elif kind == OP_GROUP:
            env[f"_group{i}"] = op[3].pack
            parts.append(f"_group{i}(" + ", ".join(f"pdu.{n}" for n in op[1]) + ")")
        elif kind == OP_BYTE:
            parts.append(f"bytes((pdu.{op[1]},))")
        elif kind == OP_SM:
            parts.append(f"bytes((len(pdu.{op[1]}),)), pdu.{op[1]}")
        else:
            env[f"_list{i}"] = list_encoders[kind]
            parts.append(f"_list{i}(pdu.{op[1]})")
    body = "b''.join((" + ", ".join(parts) + ",))" if parts else "b''"
    source = f"""
def encode_{cls.__name__}(pdu):
    body = {body}
    tlvs = pdu.tlvs
    if tlvs:
        body += b''.join([_tlv_header(t.tag, len(t.value)) + t.value for t in tlvs])
    return _header(16 + len(body), _cid, pdu.command_status, pdu.sequence_number) + body
"""
    encoder: Encoder = _define(source, f"encode_{cls.__name__}", env)
    return encoder


def make_fast_decoder(
    cls: type[Pdu],
    ops: tuple[Op, ...],
    setters: tuple[Callable[[Any, Any], None], ...],
    index_status: int,
    index_tlvs: int,
) -> FastDecoder | None:
    """The fast path for decoding ``cls`` (module docstring); None for the submit_multi lists."""
    if any(op[0] in (OP_DESTS, OP_UNSUCCESS) for op in ops):
        return None
    env: dict[str, Any] = {
        "_new": object.__new__, "_cls": cls, "_slow": NotWellFormed, "_nul": b"\0",
        "_tlvs": read_tlvs, "_max_sm": MAX_SHORT_MESSAGE,
    }  # fmt: skip
    lines: list[str] = []
    values = {0: "seq", index_status: "status", index_tlvs: "tlvs"}
    for i, op in enumerate(ops):
        kind, index = op[0], op[2]
        if kind == OP_CSTR:
            lines += [
                "z = find(_nul, p)",
                f"if z < 0 or z - p >= {op[3]}: raise _slow",
                f"v{index} = body[p:z].decode('latin-1')",
                "p = z + 1",
            ]
            values[index] = f"v{index}"
        elif kind == OP_GROUP:
            env[f"_group{i}"] = op[3].unpack_from
            names = [f"v{j}" for j in range(index, op[4])]
            lines += [
                f"if p + {op[3].size} > n: raise _slow",
                f"{', '.join(names)}, = _group{i}(body, p)",
                f"p += {op[3].size}",
            ]
            values.update({j: f"v{j}" for j in range(index, op[4])})
        elif kind == OP_BYTE:
            lines += ["if p >= n: raise _slow", f"v{index} = body[p]", "p += 1"]
            values[index] = f"v{index}"
        else:  # OP_SM
            lines += [
                "if p >= n: raise _slow",
                "end = p + 1 + body[p]",
                "if end - p - 1 > _max_sm or end > n: raise _slow",
                f"v{index} = body[p + 1 : end]",
                "p = end",
            ]
            values[index] = f"v{index}"
    for j, setter in enumerate(setters):
        env[f"_set{j}"] = setter
    assigns = [f"_set{j}(pdu, {values[j]})" for j in range(len(setters))]
    body = "\n    ".join([*lines, "tlvs = _tlvs(body, p, n) if p < n else ()", "pdu = _new(_cls)",
                         *assigns, "return pdu"])  # fmt: skip
    source = f"""
def decode_{cls.__name__}(status, seq, body):
    n = len(body)
    find = body.find
    p = 0
    {body}
"""
    decoder: FastDecoder = _define(source, f"decode_{cls.__name__}", env)
    return decoder


_new_tlv: Callable[[type[Tlv]], Tlv] = object.__new__
_set_tag: Callable[[Tlv, int], None] = vars(Tlv)["tag"].__set__
_set_value: Callable[[Tlv, bytes], None] = vars(Tlv)["value"].__set__


def read_tlvs(body: bytes, p: int, n: int) -> tuple[Tlv, ...]:
    """The TLVs filling ``body[p:n]`` exactly (§3.2.4); NotWellFormed otherwise."""
    tlvs: list[Tlv] = []
    unpack = _TLV_HEADER.unpack_from
    while p < n:
        if n - p < 4:
            raise NotWellFormed
        tag, length = unpack(body, p)
        p += 4
        end = p + length
        if end > n:
            raise NotWellFormed
        tlv = _new_tlv(Tlv)
        _set_tag(tlv, tag)
        _set_value(tlv, body[p:end])
        tlvs.append(tlv)
        p = end
    return tuple(tlvs)


def _define(source: str, name: str, env: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<cloudsms.smpp.compiled {name}>", "exec"), env, namespace)
    return namespace[name]
