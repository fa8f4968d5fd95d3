"""The customer self-service portal: a customer's own balance, messages, reports and statistics.

Login is with the customer's AUTH_KEY. The session cookie holds the customer's id and a SHA-256
of the key it logged in with; every request checks that this is still the customer's key and
that the customer is enabled, so rotating the key or disabling the customer ends the session.

The one thing a customer changes here is its opt-out list (``/portal/opt-outs``), audited as
``customer:NAME``. Rule: the customer id of every query and change comes from the session, never
from the request. A message,
report or registration of another customer is "not found", exactly like one that does not exist
(``tests/integration/admin/test_portal.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from cloudsms.admin import auth
from cloudsms.admin.context import AdminContext, parse_time
from cloudsms.admin.errors import message_of, status_of
from cloudsms.admin.pages import (
    check_csrf,
    flash_redirect,
    login_redirect,
    new_prelogin,
    read_form,
    render,
    safe_next,
    set_cookie,
)
from cloudsms.admin.shapes import STATES, lifecycle_json, message_json
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import ConfigError
from cloudsms.services.audit import AuditTrail
from cloudsms.services.opt_outs import OptOutService
from cloudsms.storage.admin_ops import MessageQuery
from cloudsms.storage.interfaces import AdminQueries, AdminStore

PREFIX = "/portal"
COOKIE = "cloudsms_portal"
PRELOGIN = "cloudsms_portal_login"
DAY_MS = 86_400_000


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerSession:
    customer_id: int
    csrf: str


async def session(request: Request) -> CustomerSession | None:
    ctx: AdminContext = request.app.state.admin
    data = ctx.signer.loads(request.cookies.get(COOKIE))
    if not data or data.get("k") != "portal" or not isinstance(data.get("cid"), int):
        return None
    current = await asyncio.to_thread(ctx.store.customer_key_and_state, data["cid"])
    if current is None:
        return None
    key, enabled = current
    if not enabled or not auth.csrf_ok(auth.digest(key), data.get("kd")):
        return None
    return CustomerSession(customer_id=data["cid"], csrf=str(data["csrf"]))


View = Callable[[Request, AdminStore, int], Awaitable[dict[str, Any]]]
Handler = Callable[[Request], Awaitable[Response]]


def page(template: str) -> Callable[[View], Handler]:
    """Decorator: a portal page; the view gets the store and the session's customer id."""

    def wrap(view: View) -> Handler:
        async def handle(request: Request) -> Response:
            s = await session(request)
            if s is None:
                return login_redirect(request, f"{PREFIX}/login")
            store: AdminStore = request.app.state.admin.store
            try:
                customer = await asyncio.to_thread(store.get_customer, s.customer_id)
                values = await view(request, store, s.customer_id)
            except Exception as exc:
                status = status_of(exc)
                if status == 500:
                    raise
                return render(
                    request, "portal/error.html", status_code=status, error=message_of(exc),
                    csrf=s.csrf, customer=None,
                )  # fmt: skip
            return render(request, template, customer=customer, csrf=s.csrf, **values)

        return handle

    return wrap


async def login(request: Request) -> Response:
    ctx: AdminContext = request.app.state.admin
    next_url = safe_next(request.query_params.get("next"), PREFIX, f"{PREFIX}/")
    if request.method == "GET":
        nonce = new_prelogin()
        page_: Response = render(request, "portal/login.html", next=next_url, nonce=nonce)
        set_cookie(ctx, page_, PRELOGIN, nonce, PREFIX)
        return page_
    form = await read_form(request)
    if not auth.csrf_ok(request.cookies.get(PRELOGIN), form.get("nonce")):
        return flash_redirect(ctx, f"{PREFIX}/login", "login form expired: try again", "error")
    key = (form.get("auth_key") or "").strip()
    customer_id = await asyncio.to_thread(ctx.store.customer_id_for_key, key) if key else None
    if customer_id is None:
        await asyncio.sleep(0.2)
        return flash_redirect(ctx, f"{PREFIX}/login", "unknown or disabled AUTH_KEY", "error")
    value = ctx.signer.dumps(
        {"k": "portal", "cid": customer_id, "kd": auth.digest(key), "csrf": auth.new_csrf()}
    )
    response = RedirectResponse(safe_next(form.get("next"), PREFIX, f"{PREFIX}/"), 303)
    set_cookie(ctx, response, COOKIE, value, PREFIX)
    response.delete_cookie(PRELOGIN, path=PREFIX)
    return response


async def logout(request: Request) -> Response:
    s = await session(request)
    if s is not None:
        check_csrf({"csrf": s.csrf}, await read_form(request))
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def _stats(store: AdminQueries, customer_id: int, since_ms: int) -> dict[str, Any]:
    counts = store.state_counts(customer_id=customer_id, since_ms=since_ms)
    delivered = counts.get(MessageState.DELIVERED.value, 0)
    finished = sum(
        n
        for state, n in counts.items()
        if state not in (MessageState.ACCEPTED, MessageState.QUEUED, MessageState.SUBMITTED)
    )
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "delivered": delivered,
        "delivery_rate": delivered / finished if finished else None,
        "fees_micros": store.fees(customer_id, since_ms),
    }


@page("portal/overview.html")
async def overview(request: Request, store: AdminStore, cid: int) -> dict[str, Any]:
    now = store.now_ms()

    def load() -> dict[str, Any]:
        recent = store.search_messages(MessageQuery(customer_id=cid, limit=10))
        return {
            "day": _stats(store, cid, now - DAY_MS),
            "week": _stats(store, cid, now - 7 * DAY_MS),
            "recent": [message_json(m) for m in recent],
        }

    return await asyncio.to_thread(load)


def _query(request: Request, cid: int) -> MessageQuery:
    q = request.query_params
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise ConfigError(f"state {state!r}: one of {', '.join(STATES)}")
    return MessageQuery(
        sms_uid=q.get("sms_uid") or None,
        number=q.get("number") or None,
        customer_id=cid,
        state=MessageState(state) if state else None,
        since_ms=parse_time(q.get("since"), "since"),
        until_ms=parse_time(q.get("until"), "until"),
        before=q.get("before") or None,
        limit=50,
    )


@page("portal/messages.html")
async def messages(request: Request, store: AdminStore, cid: int) -> dict[str, Any]:
    query = _query(request, cid)
    found = await asyncio.to_thread(store.search_messages, query)
    q = {k: v for k, v in request.query_params.items() if v}
    return {"results": [message_json(m) for m in found], "q": q, "states": STATES}


@page("portal/message.html")
async def message(request: Request, store: AdminStore, cid: int) -> dict[str, Any]:
    uid = request.path_params["sms_uid"]
    life = await asyncio.to_thread(store.message_lifecycle, uid, cid)
    return {"life": lifecycle_json(life)}


@page("portal/reports.html")
async def reports(request: Request, store: AdminStore, cid: int) -> dict[str, Any]:
    return {"reports": await asyncio.to_thread(store.customer_reports, cid, 100)}


@page("portal/registrations.html")
async def registrations(request: Request, store: AdminStore, cid: int) -> dict[str, Any]:
    def load() -> dict[str, Any]:
        return {
            kind: [dataclasses.asdict(r) for r in store.list_registrations(kind, cid)]
            for kind in ("signature", "template", "sender")
        }

    return {"lists": await asyncio.to_thread(load)}


@page("portal/opt_outs.html")
async def opt_outs(request: Request, store: AdminStore, cid: int) -> dict[str, Any]:
    return {"opt_outs": await asyncio.to_thread(store.list_opt_outs, cid)}


async def opt_out_change(request: Request) -> Response:
    """POST /portal/opt-outs/{add|remove}: the customer edits its own list (CSRF-checked).

    The customer is the session's, never the form's; a change is audited as ``customer:NAME``.
    """
    ctx: AdminContext = request.app.state.admin
    s = await session(request)
    if s is None:
        return login_redirect(request, f"{PREFIX}/opt-outs")
    back = f"{PREFIX}/opt-outs"
    action = request.path_params["action"]
    if action not in ("add", "remove"):
        return JSONResponse({"ok": False, "error": "no such action", "status": 404}, 404)
    adding = action == "add"
    try:
        form = await read_form(request)
        check_csrf({"csrf": s.csrf}, form)

        def change() -> str:
            service = OptOutService(ctx.store)
            raw = form.get("number", "")
            number = (
                service.add(s.customer_id, raw, via="customer")
                if adding
                else service.remove(s.customer_id, raw)
            )
            name = ctx.store.get_customer(s.customer_id).name
            AuditTrail(ctx.store, f"customer:{name}").record(
                "opt_outs.add" if adding else "opt_outs.remove", name, {"number": number}
            )
            return number

        number = await asyncio.to_thread(change)
    except Exception as exc:
        if status_of(exc) == 500:
            raise
        return flash_redirect(ctx, back, message_of(exc), "error")
    done = "added to" if adding else "removed from"
    return flash_redirect(ctx, back, f"{number} {done} your opt-out list")


async def series(request: Request) -> Response:
    """GET /portal/data/series?by=state|country: the customer's own messages over time."""
    s = await session(request)
    if s is None:
        return JSONResponse({"ok": False, "error": "not logged in", "status": 401}, 401)
    store: AdminStore = request.app.state.admin.store
    q = request.query_params
    try:
        by = q.get("by", "state")
        if by not in ("state", "country"):
            raise ConfigError("by: state or country")
        now = store.now_ms()
        since = parse_time(q.get("since"), "since") or now - DAY_MS
        bucket_s = int(q.get("bucket_s") or 3600)
        result = await asyncio.to_thread(
            store.message_series,
            by,  # type: ignore[arg-type]
            since_ms=since,
            until_ms=now,
            bucket_ms=bucket_s * 1000,
            customer_id=s.customer_id,
        )
    except (ConfigError, ValueError) as exc:
        return JSONResponse({"ok": False, "error": str(exc), "status": 400}, 400)
    return JSONResponse({"ok": True, "data": dataclasses.asdict(result)})


def portal_routes() -> list[BaseRoute]:
    return [
        Route(f"{PREFIX}/", overview),
        Route(f"{PREFIX}/login", login, methods=["GET", "POST"]),
        Route(f"{PREFIX}/logout", logout, methods=["POST"]),
        Route(f"{PREFIX}/messages", messages),
        Route(f"{PREFIX}/messages/{{sms_uid}}", message),
        Route(f"{PREFIX}/reports", reports),
        Route(f"{PREFIX}/registrations", registrations),
        Route(f"{PREFIX}/opt-outs", opt_outs),
        Route(f"{PREFIX}/opt-outs/{{action:str}}", opt_out_change, methods=["POST"]),
        Route(f"{PREFIX}/data/series", series),
    ]
