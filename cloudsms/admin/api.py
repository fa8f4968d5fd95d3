"""The admin REST API machinery: declared operations, argument checking, auth, dispatch.

Strategy: every operation is one ``Operation`` row (``cloudsms.admin.operations.OPERATIONS``):
method, path, summary, typed parameters and a plain function that calls the service layer
(``Operator``, ``CarrierOperator`` — the same the CLI calls). From that one table come

* the REST routes under ``/api/v1`` (``api_routes``),
* the OpenAPI description (``cloudsms.admin.openapi``),
* the console's form actions (``cloudsms.admin.console`` posts a form to an operation by id),

so a rule (who may call it, what it takes, what it records in the audit log) is written once.
Operations run in a worker thread (the store is blocking). A change — any method but GET — needs
an admin token, and is recorded in the audit log after it succeeds.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudsms.admin import auth
from cloudsms.admin.context import AdminContext
from cloudsms.admin.errors import ApiError, Forbidden, Unauthorized, json_error
from cloudsms.exceptions import ConfigError
from cloudsms.services.audit import AuditTrail
from cloudsms.services.carrier import CarrierOperator
from cloudsms.services.operator import Operator
from cloudsms.storage.interfaces import AdminStore

ParamKind = Literal["string", "integer", "boolean", "money"]
#: Largest JSON body the admin API reads.
MAX_BODY = 65_536
API_PREFIX = "/api/v1"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: ParamKind = "string"
    required: bool = False
    help: str = ""
    #: "body" (JSON object member) or "query" (URL query string).
    where: Literal["body", "query"] = "body"
    enum: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    #: Stable id (``customers.top_up``): the OpenAPI operationId and the console's action name.
    id: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    #: Starlette path under ``/api/v1``, ``{name}`` segments are path parameters.
    path: str
    summary: str
    run: Callable[[Call], Any]
    params: tuple[Param, ...] = ()
    tag: str = ""
    #: Answer 201 (something was created).
    creates: bool = False
    #: What the result holds, for the OpenAPI description.
    returns: str = "object"

    @property
    def changes(self) -> bool:
        return self.method != "GET"

    @property
    def path_params(self) -> list[str]:
        return [seg[1:-1] for seg in self.path.split("/") if seg.startswith("{")]


@dataclass
class Call:
    """One invocation of an operation: who, with what, against which store."""

    ctx: AdminContext
    principal: auth.Principal
    #: Path parameters (always strings) and checked arguments (typed per ``Param``).
    path: dict[str, str]
    args: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> AdminStore:
        return self.ctx.store

    @property
    def operator(self) -> Operator:
        return Operator(self.ctx.store, actor=self.principal.actor)

    @property
    def carrier(self) -> CarrierOperator:
        return CarrierOperator(self.ctx.store)

    def arg(self, name: str, default: Any = None) -> Any:
        value = self.args.get(name)
        return default if value is None else value


# -- arguments --------------------------------------------------------------------------------


def check_args(op: Operation, raw: Mapping[str, Any], *, from_form: bool = False) -> dict[str, Any]:
    """Typed arguments from a JSON body / query / form; unknown or mistyped ones are refused."""
    known = {p.name: p for p in op.params}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    args: dict[str, Any] = {}
    for param in op.params:
        value = raw.get(param.name)
        if from_form and isinstance(value, str) and value == "" and param.kind != "boolean":
            value = None
        if value is None:
            if param.required:
                raise ConfigError(f"{param.name} is required")
            continue
        args[param.name] = _coerce(param, value, from_text=from_form or param.where == "query")
    return args


def _coerce(param: Param, value: Any, *, from_text: bool) -> Any:
    name = param.name
    if param.kind == "boolean":
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off", ""):
                return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if param.kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    if param.kind == "money":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            raise ConfigError(f'{name}: send amounts as strings ("12.50"): floats are inexact')
        if isinstance(value, str):
            return value
        raise ConfigError(f'{name} must be a decimal amount as a string, like "12.50"')
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {type(value).__name__}")
    if param.enum and value not in param.enum:
        raise ConfigError(f"{name} {value!r}: one of {', '.join(param.enum)}")
    return value


# -- running an operation ---------------------------------------------------------------------


def execute(op: Operation, call: Call) -> Any:
    """Run ``op`` (blocking) and, for a change, write its audit entry."""
    if op.changes and not call.principal.can_change:
        raise Forbidden()
    result = op.run(call)
    if op.changes:
        target = "/".join(call.path.values()) or _target(call.args)
        detail = {**call.path, **call.args} or None
        AuditTrail(call.store, call.principal.actor).record(op.id, target, detail)
    return result


def _target(args: Mapping[str, Any]) -> str | None:
    for key in ("name", "customer", "number", "route"):
        if args.get(key):
            return str(args[key])
    return None


async def authenticate(ctx: AdminContext, request: Request) -> auth.Principal:
    """The operator behind ``Authorization: Bearer``; 401 without a valid, enabled token."""
    token = auth.bearer(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized()
    found = await asyncio.to_thread(ctx.store.admin_token_by_digest, auth.digest(token))
    if found is None:
        raise Unauthorized("unknown or revoked token")
    await asyncio.to_thread(ctx.store.touch_admin_token, found.id, ctx.store.now_ms())
    return auth.Principal(kind="operator", name=found.name, role=found.role, id=found.id)


def json_response(data: Any, status: int = 200) -> Response:
    body = orjson.dumps(
        {"ok": True, "data": data}, default=_default, option=orjson.OPT_NON_STR_KEYS
    )
    return Response(body, status_code=status, media_type="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    raise TypeError


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"body over {MAX_BODY} bytes")
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("body must be a JSON object")
    return data


def endpoint(ctx: AdminContext, op: Operation) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        try:
            principal = await authenticate(ctx, request)
            if op.changes and not principal.can_change:
                raise Forbidden()
            raw: dict[str, Any] = dict(request.query_params)
            # Every method but GET takes its parameters from the query string and a JSON body
            # alike (DELETE /customers/x/networks {"cidr": …} too); a body is never ignored.
            body = await read_json(request)
            if body and op.method == "GET":
                raise ConfigError("GET takes its parameters in the query string, not a body")
            clash = set(raw) & set(body)
            if clash:
                raise ConfigError(f"{', '.join(sorted(clash))} given twice (query and body)")
            raw.update(body)
            call = Call(ctx, principal, dict(request.path_params), check_args(op, raw))
            result = await asyncio.to_thread(execute, op, call)
            return json_response(result, 201 if op.creates else 200)
        except Exception as exc:  # the one error shape, whatever went wrong
            return json_error(exc)

    functools.update_wrapper(handle, op.run)
    return handle


def api_routes(ctx: AdminContext, operations: list[Operation]) -> list[Route]:
    """One Starlette route per path, dispatching on method (so 405 is answered, not 404)."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = op
    routes = []
    for path, methods in by_path.items():
        handlers = {m: endpoint(ctx, op) for m, op in methods.items()}

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            handler = handlers.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                return json_error(ApiError(405, f"method {request.method} not allowed: {allowed}"))
            response: Response = await handler(request)
            return response

        routes.append(Route(API_PREFIX + path, dispatch, methods=list(ALL_METHODS)))
    return routes
