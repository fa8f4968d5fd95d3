"""The Kannel configuration both Kannel interop tests run (as our carrier, as our customer)."""

from __future__ import annotations

from pathlib import Path


def kannel_conf(
    tmp: Path,
    *,
    smsc_id: str,
    smsc_port: int,
    username: str,
    password: str,
    admin: int,
    box: int,
    sendsms: int,
) -> str:
    """bearerbox + smsbox: one SMPP transceiver to 127.0.0.1:``smsc_port`` as ``username``,
    sendsms on ``sendsms``; every port on 127.0.0.1, logs under ``tmp``."""
    return f"""
group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = interop
status-password = interop
admin-allow-ip = 127.0.0.1
smsbox-port = {box}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{tmp}/bearerbox.log"
log-level = 0
access-log = "{tmp}/access.log"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = {smsc_id}
host = 127.0.0.1
port = {smsc_port}
transceiver-mode = true
smsc-username = "{username}"
smsc-password = "{password}"
system-type = ""
interface-version = 34
source-addr-ton = 5
source-addr-npi = 0
dest-addr-ton = 1
dest-addr-npi = 1
reconnect-delay = 1
enquire-link-interval = 30

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{tmp}/smsbox.log"
log-level = 0

group = sendsms-user
username = tester
password = tester
concatenation = true
max-messages = 5

group = sms-service
keyword = default
text = "no service"
"""
