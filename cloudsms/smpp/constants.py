"""SMPP 3.4 numeric constants: command ids, statuses, TON/NPI, data codings, TLV tags.

Every value is the one the SMPP v3.4 specification (Issue 1.2, 12-Oct-1999) assigns; the section
that defines each table is named in the class docstring. Names keep the specification's spelling
(``ESME_RINVCMDLEN``, ``sar_msg_ref_num`` → ``SAR_MSG_REF_NUM``) so a grep of the PDF finds them.
"""

from __future__ import annotations

import enum

#: SMPP 3.4 §3.2: the PDU header is four 4-octet integers.
HEADER_LENGTH = 16

#: SMPP 3.4 §3.2: sequence numbers range from 0x00000001 to 0x7FFFFFFF.
MAX_SEQUENCE_NUMBER = 0x7FFFFFFF

#: SMPP 3.4 §5.2.4 (interface_version): 0x34 means "SMPP version 3.4".
SMPP_VERSION_34 = 0x34

#: SMPP 3.4 §3.1: a response's command_id is the request's with bit 31 set.
RESPONSE_BIT = 0x80000000


class CommandId(enum.IntEnum):
    """command_id values, SMPP 3.4 §5.1.2.1."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(enum.IntEnum):
    """command_status values (error codes), SMPP 3.4 §5.1.3.

    The 0xC0–0xC4 codes carry their 3.4 names; SMPP 5.0 renamed them (``ESME_RINVTLVSTREAM`` and
    so on) and those names are provided as aliases because carriers' documents use both.
    """

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF
    # SMPP 5.0 names of the same values (aliases: same members as above).
    ESME_RINVTLVSTREAM = 0x000000C0
    ESME_RTLVNOTALLWD = 0x000000C1
    ESME_RINVTLVLEN = 0x000000C2
    ESME_RMISSINGTLV = 0x000000C3
    ESME_RINVTLVVAL = 0x000000C4


class Ton(enum.IntEnum):
    """Type of Number, SMPP 3.4 §5.2.5."""

    UNKNOWN = 0x00
    INTERNATIONAL = 0x01
    NATIONAL = 0x02
    NETWORK_SPECIFIC = 0x03
    SUBSCRIBER_NUMBER = 0x04
    ALPHANUMERIC = 0x05
    ABBREVIATED = 0x06


class Npi(enum.IntEnum):
    """Numbering Plan Indicator, SMPP 3.4 §5.2.6."""

    UNKNOWN = 0x00
    ISDN = 0x01  # E.163/E.164
    DATA = 0x03  # X.121
    TELEX = 0x04  # F.69
    LAND_MOBILE = 0x06  # E.212
    NATIONAL = 0x08
    PRIVATE = 0x09
    ERMES = 0x0A
    INTERNET = 0x0E  # IP
    WAP_CLIENT_ID = 0x12


class DataCoding(enum.IntEnum):
    """data_coding values, SMPP 3.4 §5.2.19 (only the non-reserved ones)."""

    SMSC_DEFAULT = 0x00  # usually GSM 03.38, carrier dependent
    IA5 = 0x01  # IA5 (CCITT T.50) / ASCII
    OCTET_UNSPECIFIED_2 = 0x02  # 8-bit binary
    LATIN_1 = 0x03  # ISO-8859-1
    OCTET_UNSPECIFIED = 0x04  # 8-bit binary
    JIS = 0x05  # X 0208-1990
    CYRILLIC = 0x06  # ISO-8859-5
    LATIN_HEBREW = 0x07  # ISO-8859-8
    UCS2 = 0x08  # ISO/IEC-10646
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A  # music codes
    EXTENDED_KANJI = 0x0D  # JIS X 0212-1990
    KS_C_5601 = 0x0E


class EsmClass(enum.IntFlag):
    """esm_class bits, SMPP 3.4 §5.2.12.

    Bits 1-0 are the messaging mode (a 2-bit number, not flags), bits 5-2 the message type and
    bits 7-6 the GSM network features. ``MESSAGE_TYPE_MASK`` isolates the message type.
    """

    DEFAULT = 0x00
    DATAGRAM_MODE = 0x01
    FORWARD_MODE = 0x02
    STORE_AND_FORWARD_MODE = 0x03
    DELIVERY_RECEIPT = 0x04  # SMSC delivery receipt (deliver_sm from SMSC)
    DELIVERY_ACK = 0x08  # SME delivery acknowledgement
    MANUAL_USER_ACK = 0x10  # SME manual/user acknowledgement
    CONVERSATION_ABORT = 0x18  # Korean CDMA
    INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40  # short_message starts with a User Data Header
    REPLY_PATH = 0x80

    MESSAGING_MODE_MASK = 0x03
    MESSAGE_TYPE_MASK = 0x3C


class RegisteredDelivery(enum.IntFlag):
    """registered_delivery bits, SMPP 3.4 §5.2.17."""

    NONE = 0x00
    RECEIPT_ALWAYS = 0x01  # SMSC receipt on success and failure
    RECEIPT_ON_FAILURE = 0x02
    SME_DELIVERY_ACK = 0x04
    SME_MANUAL_ACK = 0x08
    INTERMEDIATE_NOTIFICATION = 0x10

    RECEIPT_MASK = 0x03


class SmppMessageState(enum.IntEnum):
    """message_state values (query_sm_resp and the message_state TLV), SMPP 3.4 §5.2.28."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


class Tag(enum.IntEnum):
    """Optional parameter (TLV) tags, SMPP 3.4 §5.3.2 (the "Optional Parameter Tag" table)."""

    DEST_ADDR_SUBUNIT = 0x0005  # §5.3.2.1
    DEST_NETWORK_TYPE = 0x0006  # §5.3.2.3
    DEST_BEARER_TYPE = 0x0007  # §5.3.2.5
    DEST_TELEMATICS_ID = 0x0008  # §5.3.2.7
    SOURCE_ADDR_SUBUNIT = 0x000D  # §5.3.2.2
    SOURCE_NETWORK_TYPE = 0x000E  # §5.3.2.4
    SOURCE_BEARER_TYPE = 0x000F  # §5.3.2.6
    SOURCE_TELEMATICS_ID = 0x0010  # §5.3.2.8
    QOS_TIME_TO_LIVE = 0x0017  # §5.3.2.9
    PAYLOAD_TYPE = 0x0019  # §5.3.2.10
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D  # §5.3.2.11
    RECEIPTED_MESSAGE_ID = 0x001E  # §5.3.2.12
    MS_MSG_WAIT_FACILITIES = 0x0030  # §5.3.2.13
    PRIVACY_INDICATOR = 0x0201  # §5.3.2.14
    SOURCE_SUBADDRESS = 0x0202  # §5.3.2.15
    DEST_SUBADDRESS = 0x0203  # §5.3.2.16
    USER_MESSAGE_REFERENCE = 0x0204  # §5.3.2.17
    USER_RESPONSE_CODE = 0x0205  # §5.3.2.18
    SOURCE_PORT = 0x020A  # §5.3.2.20
    DESTINATION_PORT = 0x020B  # §5.3.2.21
    SAR_MSG_REF_NUM = 0x020C  # §5.3.2.22
    LANGUAGE_INDICATOR = 0x020D  # §5.3.2.19
    SAR_TOTAL_SEGMENTS = 0x020E  # §5.3.2.23
    SAR_SEGMENT_SEQNUM = 0x020F  # §5.3.2.24
    SC_INTERFACE_VERSION = 0x0210  # §5.3.2.25
    CALLBACK_NUM_PRES_IND = 0x0302  # §5.3.2.37
    CALLBACK_NUM_ATAG = 0x0303  # §5.3.2.38
    NUMBER_OF_MESSAGES = 0x0304  # §5.3.2.39
    CALLBACK_NUM = 0x0381  # §5.3.2.36
    DPF_RESULT = 0x0420  # §5.3.2.28
    SET_DPF = 0x0421  # §5.3.2.29
    MS_AVAILABILITY_STATUS = 0x0422  # §5.3.2.30
    NETWORK_ERROR_CODE = 0x0423  # §5.3.2.31
    MESSAGE_PAYLOAD = 0x0424  # §5.3.2.32
    DELIVERY_FAILURE_REASON = 0x0425  # §5.3.2.33
    MORE_MESSAGES_TO_SEND = 0x0426  # §5.3.2.34
    MESSAGE_STATE = 0x0427  # §5.3.2.35
    USSD_SERVICE_OP = 0x0501  # §5.3.2.44
    DISPLAY_TIME = 0x1201  # §5.3.2.26
    SMS_SIGNAL = 0x1203  # §5.3.2.40
    MS_VALIDITY = 0x1204  # §5.3.2.27
    ALERT_ON_MESSAGE_DELIVERY = 0x130C  # §5.3.2.41
    ITS_REPLY_TYPE = 0x1380  # §5.3.2.42
    ITS_SESSION_INFO = 0x1383  # §5.3.2.43
