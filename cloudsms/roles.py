"""The role table: what a process started with ``--role`` runs.

One table, read by the composition root (``cloudsms.runtime``, which builds a process's components
from it) and by the connector leases (``cloudsms.workers.leases``, which share the connectors out
among the processes that dispatch). It lives below both, beside the ``role`` setting
(``cloudsms.config``), so that neither imports the other. docs/operations.md shows the
multi-process deployments.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Components a role can run: the UIP endpoint (with the group-commit writer and the backlog
#: gauge), the customers' SMPP server (with the same writer and gauge; it runs in an API process
#: too when ``smpp_port`` is set), the dispatcher (SMPP links, routing, receipts) and the report
#: pusher (with expiry).
API = "api"
SMPP = "smpp"
DISPATCH = "dispatch"
REPORTS = "reports"

#: Role → the components its processes run. ``all`` is the default: everything in one process.
ROLES: Mapping[str, frozenset[str]] = {
    "all": frozenset({API, DISPATCH, REPORTS}),
    "api": frozenset({API}),
    "worker": frozenset({DISPATCH, REPORTS}),
    "dispatcher": frozenset({DISPATCH}),
    "reports": frozenset({REPORTS}),
    "smpp": frozenset({SMPP}),
}

#: Roles whose processes serve the UIP endpoint.
API_ROLES = frozenset(role for role, parts in ROLES.items() if API in parts)
#: Roles whose processes accept messages (the group-commit writer, the backlog gauge) and run the
#: customers' SMPP server when ``smpp_port`` / ``smpp_tls_port`` is set.
ACCEPT_ROLES = frozenset(role for role, parts in ROLES.items() if parts & {API, SMPP})
#: Roles whose processes dispatch (and so count for the connectors' fair share). Role
#: ``reports`` registers as a worker too (``cloudsms.workers.report_lease``) and owns no connector.
DISPATCHING_ROLES = frozenset(role for role, parts in ROLES.items() if DISPATCH in parts)
#: Roles whose processes push delivery reports and expire old ones.
REPORT_ROLES = frozenset(role for role, parts in ROLES.items() if REPORTS in parts)

__all__ = [
    "ACCEPT_ROLES",
    "API",
    "API_ROLES",
    "DISPATCH",
    "DISPATCHING_ROLES",
    "REPORTS",
    "REPORT_ROLES",
    "ROLES",
    "SMPP",
]
