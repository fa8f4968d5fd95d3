"""``MemoryOptOuts``: customers' opt-out lists in ``MemoryStore``, as ``storage/opt_out_ops.py``.

Same semantics as the SQL operations, pinned by the contract tests: a change bumps the
configuration version (the config cache reloads), a customer is named by id or name (NotFound
otherwise), adding a listed number or removing an unlisted one answers False.
"""

from __future__ import annotations

from collections.abc import Callable

from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import OptOut, OptVia
from cloudsms.exceptions import NotFound
from cloudsms.storage.config_ops import CustomerRef
from cloudsms.storage.memory_state import MemoryState, _now


class MemoryOptOuts(MemoryState):
    """Opt-out lists and country policies' keywords, in memory."""

    def __init__(self, *, clock: Callable[[], int] = _now) -> None:
        super().__init__(clock=clock)
        #: (customer_id, number) → entry
        self._opt_outs: dict[tuple[int, str], OptOut] = {}

    def _customer_id(self, ref: CustomerRef) -> int:
        for cid, row in self._customers.items():
            if (cid if isinstance(ref, int) else row.info.name) == ref:
                return cid
        raise NotFound(f"no customer {ref!r}")

    def add_opt_out(
        self, customer: CustomerRef, number: str, *, via: OptVia, keyword: str | None = None
    ) -> bool:
        with self._lock:
            cid = self._customer_id(customer)
            self._version += 1
            if (cid, number) in self._opt_outs:
                return False
            self._opt_outs[cid, number] = OptOut(
                customer_id=cid, customer=self._customers[cid].info.name, number=number,
                via=via, keyword=keyword, created_ms=self.now_ms(),
            )  # fmt: skip
            return True

    def remove_opt_out(self, customer: CustomerRef, number: str) -> bool:
        with self._lock:
            cid = self._customer_id(customer)
            self._version += 1
            return self._opt_outs.pop((cid, number), None) is not None

    def list_opt_outs(self, customer: CustomerRef | None = None) -> list[OptOut]:
        with self._lock:
            cid = None if customer is None else self._customer_id(customer)
            found = [o for o in self._opt_outs.values() if cid is None or o.customer_id == cid]
            return sorted(found, key=lambda o: (o.customer, o.number))

    def opt_outs_by_customer(self) -> dict[int, frozenset[str]]:
        """The snapshot's view (``ConfigSnapshot.opt_outs_by_customer``)."""
        with self._lock:
            by: dict[int, set[str]] = {}
            for cid, number in self._opt_outs:
                by.setdefault(cid, set()).add(number)
            return {cid: frozenset(numbers) for cid, numbers in by.items()}

    def get_policy(self, country_code: int) -> CountryPolicy | None:
        """A policy set with ``set_snapshot_fields(policies=…)``."""
        with self._lock:
            policies: dict[int, CountryPolicy] = self._snapshot_fields.get("policies", {})
            return policies.get(country_code)
