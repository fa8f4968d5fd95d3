"""The operator console: server-rendered pages over the admin operations.

Strategy: pages read through the same ``Operation`` functions the REST API serves (``read``),
and every form posts to ``/console/do/<operation id>`` (``act``), which checks the session's
CSRF token and role, runs the operation (so the audit log records it like an API call, under
``token:<name>``), and redirects back with a flash message. A new page is therefore a template
and a few ``read`` calls; it cannot grow a second set of rules.

Sessions: the login form takes an admin token; the signed cookie holds the token's id and the
session's CSRF token. Every request re-reads the token, so a revoked token logs its sessions out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from cloudsms.admin import auth
from cloudsms.admin.api import Call, check_args, execute
from cloudsms.admin.context import AdminContext
from cloudsms.admin.errors import ApiError, message_of, status_of
from cloudsms.admin.operations import BY_ID, KINDS
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
from cloudsms.admin.shapes import STATES
from cloudsms.storage.admin_ops import MAX_SEARCH

PREFIX = "/console"
COOKIE = "cloudsms_console"
PRELOGIN = "cloudsms_console_login"
#: Operations whose answer holds a secret: shown once on a page, never put in a redirect.
SECRET_RESULTS = {"customers.create", "customers.rotate_key"}
#: Messages per page when the query names no ``limit``.
PAGE_SIZE = 50


async def session(request: Request) -> tuple[auth.Principal, dict[str, Any]] | None:
    ctx: AdminContext = request.app.state.admin
    data = ctx.signer.loads(request.cookies.get(COOKIE))
    if not data or data.get("k") != "console" or not isinstance(data.get("tid"), int):
        return None
    token = await asyncio.to_thread(ctx.store.admin_token_by_id, data["tid"])
    if token is None or not token.enabled:
        return None
    principal = auth.Principal(kind="operator", name=token.name, role=token.role, id=token.id)
    return principal, data


async def read(request: Request, principal: auth.Principal, op_id: str, **raw: Any) -> Any:
    """Run a read operation for a page, with arguments as text (like a query string)."""
    ctx: AdminContext = request.app.state.admin
    op = BY_ID[op_id]
    path = {k: str(raw.pop(k)) for k in op.path_params}
    args = check_args(op, {k: v for k, v in raw.items() if v is not None}, from_form=True)
    return await asyncio.to_thread(execute, op, Call(ctx, principal, path, args))


View = Callable[[Request, auth.Principal], Awaitable[dict[str, Any]]]
Handler = Callable[[Request], Awaitable[Response]]


def page(template: str) -> Callable[[View], Handler]:
    """Decorator: a console page that needs a login; the view returns the template's values."""

    def wrap(view: View) -> Handler:
        async def handle(request: Request) -> Response:
            found = await session(request)
            if found is None:
                return login_redirect(request, f"{PREFIX}/login")
            principal, data = found
            try:
                values = await view(request, principal)
            except Exception as exc:
                status = status_of(exc)
                if status == 500:
                    raise
                return render(
                    request,
                    "console/error.html",
                    status_code=status,
                    principal=principal,
                    csrf=data["csrf"],
                    error=message_of(exc),
                )
            return render(request, template, principal=principal, csrf=data["csrf"], **values)

        return handle

    return wrap


# -- login ------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    ctx: AdminContext = request.app.state.admin
    next_url = safe_next(request.query_params.get("next"), PREFIX, f"{PREFIX}/")
    if request.method == "GET":
        nonce = new_prelogin()
        page_: Response = render(request, "console/login.html", next=next_url, nonce=nonce)
        set_cookie(ctx, page_, PRELOGIN, nonce, PREFIX)
        return page_
    form = await read_form(request)
    if not auth.csrf_ok(request.cookies.get(PRELOGIN), form.get("nonce")):
        return flash_redirect(ctx, f"{PREFIX}/login", "login form expired: try again", "error")
    token = (form.get("token") or "").strip()
    found = await asyncio.to_thread(ctx.store.admin_token_by_digest, auth.digest(token))
    if not token or found is None:
        await asyncio.sleep(0.2)  # a little friction for guessing (tokens have 256 bits anyway)
        url = f"{PREFIX}/login?next={quote(next_url)}"
        return flash_redirect(ctx, url, "unknown or revoked token", "error")
    value = ctx.signer.dumps({"k": "console", "tid": found.id, "csrf": auth.new_csrf()})
    response = RedirectResponse(safe_next(form.get("next"), PREFIX, f"{PREFIX}/"), 303)
    set_cookie(ctx, response, COOKIE, value, PREFIX)
    response.delete_cookie(PRELOGIN, path=PREFIX)
    return response


async def logout(request: Request) -> Response:
    found = await session(request)
    if found is not None:
        check_csrf(found[1], await read_form(request))
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# -- actions ----------------------------------------------------------------------------------


async def act(request: Request) -> Response:
    """POST /console/do/{op}: run an operation from a form (path params as ``path.NAME``)."""
    ctx: AdminContext = request.app.state.admin
    found = await session(request)
    if found is None:
        return login_redirect(request, f"{PREFIX}/login")
    principal, data = found
    form = await read_form(request)
    back = safe_next(form.pop("next", None), PREFIX, f"{PREFIX}/")
    try:
        check_csrf(data, form)
        form.pop("csrf", None)
        op = BY_ID.get(request.path_params["op"])
        if op is None or not op.changes:
            raise ApiError(404, f"no console action {request.path_params['op']!r}")
        path = {k[5:]: form.pop(k) for k in list(form) if k.startswith("path.")}
        missing = set(op.path_params) - set(path)
        if missing:
            raise ApiError(400, f"missing {', '.join(sorted(missing))}")
        call = Call(ctx, principal, path, check_args(op, form, from_form=True))
        result = await asyncio.to_thread(execute, op, call)
    except Exception as exc:
        if status_of(exc) == 500:
            raise
        return flash_redirect(ctx, back, message_of(exc), "error")
    if op.id in SECRET_RESULTS:
        return render(
            request, "console/secret.html", principal=principal, csrf=data["csrf"],
            result=result, op=op, back=back,
        )  # fmt: skip
    return flash_redirect(ctx, back, f"done: {op.summary.split(';')[0].rstrip('.')}")


async def data(request: Request) -> Response:
    """GET /console/data/{op}: a read operation as JSON for the dashboard's live updates."""
    found = await session(request)
    if found is None:
        return JSONResponse({"ok": False, "error": "not logged in", "status": 401}, 401)
    op = BY_ID.get(request.path_params["op"])
    if op is None or op.changes:
        return JSONResponse({"ok": False, "error": "no such data", "status": 404}, 404)
    try:
        result = await read(request, found[0], op.id, **dict(request.query_params))
    except Exception as exc:
        status = status_of(exc)
        if status == 500:
            raise
        return JSONResponse({"ok": False, "error": message_of(exc), "status": status}, status)
    return JSONResponse({"ok": True, "data": result})


# -- pages ------------------------------------------------------------------------------------


@page("console/dashboard.html")
async def dashboard(request: Request, p: auth.Principal) -> dict[str, Any]:
    summary = await read(request, p, "stats.summary")
    customers = await read(request, p, "customers.list")
    ctx: AdminContext = request.app.state.admin
    low = [c for c in customers if c["enabled"] and c["balance_micros"] < ctx.low_balance_micros]
    return {"summary": summary, "low": low, "nav": "dashboard"}


@page("console/messages.html")
async def messages(request: Request, p: auth.Principal) -> dict[str, Any]:
    """The newest messages, narrowed by any filter set; "Older" pages back by SMS_UID (keyset).

    With no filter the page lists the most recent messages: an operator opening it wants to
    see traffic, not an empty form. One row more than the page is read to know whether an
    older page exists, so the link never leads to an empty page and no count is needed.
    """
    q = {k: v for k, v in request.query_params.items() if v}
    args = check_args(BY_ID["messages.search"], q, from_form=True)  # bad input: a clear error
    size = max(1, min(args.get("limit", PAGE_SIZE), MAX_SEARCH - 1))
    found = await read(request, p, "messages.search", **{**q, "limit": str(size + 1)})
    customers = await read(request, p, "customers.list")
    return {
        "q": q,
        "results": found[:size],
        "older": found[size - 1]["sms_uid"] if len(found) > size else None,
        "customers": customers,
        "states": STATES,
        "nav": "messages",
    }


@page("console/message.html")
async def message(request: Request, p: auth.Principal) -> dict[str, Any]:
    life = await read(request, p, "messages.get", sms_uid=request.path_params["sms_uid"])
    return {"life": life, "nav": "messages"}


@page("console/customers.html")
async def customers(request: Request, p: auth.Principal) -> dict[str, Any]:
    return {
        "customers": await read(request, p, "customers.list"),
        "price_lists": await read(request, p, "prices.list"),
        "nav": "customers",
    }


@page("console/customer.html")
async def customer(request: Request, p: auth.Principal) -> dict[str, Any]:
    name = request.path_params["name"]
    return {
        "c": await read(request, p, "customers.get", name=name),
        "ledger": await read(request, p, "customers.ledger", name=name, limit="20"),
        "price_lists": await read(request, p, "prices.list"),
        "routes": await read(request, p, "routes.list"),
        "opt_outs": await read(request, p, "opt_outs.list", name=name),
        "accounts": await read(request, p, "smpp_accounts.list", customer=name),
        "sessions": await read(request, p, "smpp_sessions.list"),
        "numbers": await read(request, p, "inbound_numbers.list", customer=name),
        "nav": "customers",
    }


@page("console/prices.html")
async def prices(request: Request, p: auth.Principal) -> dict[str, Any]:
    return {"price_lists": await read(request, p, "prices.list"), "nav": "prices"}


@page("console/routes.html")
async def routes(request: Request, p: auth.Principal) -> dict[str, Any]:
    return {
        "routes": await read(request, p, "routes.list"),
        "connectors": await read(request, p, "connectors.list"),
        "customers": await read(request, p, "customers.list"),
        "nav": "routes",
    }


@page("console/connectors.html")
async def connectors(request: Request, p: auth.Principal) -> dict[str, Any]:
    statuses = {s["name"]: s for s in await read(request, p, "connectors.status")}
    return {
        "connectors": await read(request, p, "connectors.list"),
        "statuses": statuses,
        "nav": "connectors",
    }


@page("console/smpp.html")
async def smpp(request: Request, p: auth.Principal) -> dict[str, Any]:
    """Every customer's SMPP accounts with their live session counts, and the create form."""
    return {
        "accounts": await read(request, p, "smpp_accounts.list"),
        "sessions": await read(request, p, "smpp_sessions.list"),
        "customers": await read(request, p, "customers.list"),
        "routes": await read(request, p, "routes.list"),
        "nav": "smpp",
    }


@page("console/smpp_sessions.html")
async def smpp_sessions(request: Request, p: auth.Principal) -> dict[str, Any]:
    """The live sessions of this process's SMPP server (none when it runs elsewhere)."""
    ctx: AdminContext = request.app.state.admin
    return {
        "sessions": await read(request, p, "smpp_sessions.list"),
        "serving": ctx.smpp_sessions is not None,
        "nav": "smpp",
    }


@page("console/inbound.html")
async def inbound(request: Request, p: auth.Principal) -> dict[str, Any]:
    """Inbound numbers and the latest MOs (filtered like ``GET /inbound-messages``).

    A stored MO names its customer by id: the page maps ids to names from the customer list
    rather than asking the store for a join the API does not have.
    """
    q = {k: v for k, v in request.query_params.items() if v}
    customers = await read(request, p, "customers.list")
    return {
        "numbers": await read(request, p, "inbound_numbers.list"),
        "mos": await read(request, p, "inbound_messages.list", **{"limit": "50", **q}),
        "customers": customers,
        "names": {c["id"]: c["name"] for c in customers},
        "q": q,
        "nav": "inbound",
    }


@page("console/blacklist.html")
async def blacklist(request: Request, p: auth.Principal) -> dict[str, Any]:
    return {
        "entries": await read(request, p, "blacklist.list"),
        "customers": await read(request, p, "customers.list"),
        "nav": "blacklist",
    }


@page("console/policies.html")
async def policies(request: Request, p: auth.Principal) -> dict[str, Any]:
    return {"policies": await read(request, p, "policies.list"), "nav": "policies"}


@page("console/approvals.html")
async def approvals(request: Request, p: auth.Principal) -> dict[str, Any]:
    status = request.query_params.get("status") or "pending"
    lists = {
        kind: await read(request, p, "registrations.list", kind=kind, status=status or None)
        for kind in KINDS
    }
    return {
        "lists": lists,
        "status": status,
        "customers": await read(request, p, "customers.list"),
        "nav": "approvals",
    }


@page("console/audit.html")
async def audit(request: Request, p: auth.Principal) -> dict[str, Any]:
    q = {k: v for k, v in request.query_params.items() if v}
    return {"entries": await read(request, p, "audit.list", **q), "q": q, "nav": "audit"}


def console_routes() -> list[BaseRoute]:
    return [
        Route(f"{PREFIX}/", dashboard),
        Route(f"{PREFIX}/login", login, methods=["GET", "POST"]),
        Route(f"{PREFIX}/logout", logout, methods=["POST"]),
        Route(f"{PREFIX}/do/{{op}}", act, methods=["POST"]),
        Route(f"{PREFIX}/data/{{op}}", data),
        Route(f"{PREFIX}/messages", messages),
        Route(f"{PREFIX}/messages/{{sms_uid}}", message),
        Route(f"{PREFIX}/customers", customers),
        Route(f"{PREFIX}/customers/{{name}}", customer),
        Route(f"{PREFIX}/prices", prices),
        Route(f"{PREFIX}/routes", routes),
        Route(f"{PREFIX}/connectors", connectors),
        Route(f"{PREFIX}/smpp", smpp),
        Route(f"{PREFIX}/smpp/sessions", smpp_sessions),
        Route(f"{PREFIX}/inbound", inbound),
        Route(f"{PREFIX}/blacklist", blacklist),
        Route(f"{PREFIX}/policies", policies),
        Route(f"{PREFIX}/approvals", approvals),
        Route(f"{PREFIX}/audit", audit),
    ]
