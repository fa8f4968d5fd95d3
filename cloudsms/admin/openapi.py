"""The OpenAPI 3.1 description of the admin API, built from the operations table.

Served at ``/openapi.json``; ``docs/operators-console.md`` shows how to read it. Since the
routes and this description come from the same ``Operation`` rows, they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from cloudsms.admin.api import API_PREFIX, Operation, Param

_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "money": {"type": "string", "pattern": r"^[+-]?[0-9]+(\.[0-9]{1,6})?$"},
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["ok", "error", "status"],
    "properties": {
        "ok": {"const": False},
        "error": {"type": "string", "description": "One readable sentence."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
    },
}


def _schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = dict(_TYPES[param.kind])
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.help:
        schema["description"] = param.help
    return schema


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": p.required, "schema": _schema(p)}
        for p in op.params
        if p.where == "query"
    ]
    body = [p for p in op.params if p.where == "body"]
    # A DELETE takes its query parameters as a JSON body too (cloudsms.admin.api.endpoint).
    body_optional = op.method == "DELETE"
    if body_optional:
        body = [p for p in op.params if p.where == "query"]
    ok = "201" if op.creates else "200"
    spec: dict[str, Any] = {
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag] if op.tag else [],
        "parameters": parameters,
        "responses": {
            ok: {
                "description": 'Success: {"ok": true, "data": …}',
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ok"}}},
            },
            **{
                str(code): {"$ref": f"#/components/responses/{name}"}
                for code, name in _ERRORS
                if op.changes or code not in (403, 409)
            },
        },
    }
    if op.changes:
        spec["description"] = "Needs an admin token; recorded in the audit log."
    if body:
        spec["requestBody"] = {
            "required": not body_optional and any(p.required for p in body),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": [] if body_optional else [p.name for p in body if p.required],
                        "properties": {p.name: _schema(p) for p in body},
                    }
                }
            },
        }
    return spec


_ERRORS = [
    (400, "BadRequest"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "NotFound"),
    (409, "Conflict"),
]


def build_openapi(operations: list[Operation], *, version: str = "1") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(API_PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cloudsms admin API",
            "version": version,
            "description": (
                "Operator configuration, message search and statistics. Authenticate with "
                "`Authorization: Bearer <token>` (`cloudsms admin token create NAME`). Every "
                'error answers `{"ok": false, "error": …, "status": …}`.'
            ),
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR_SCHEMA,
                "Ok": {
                    "type": "object",
                    "required": ["ok", "data"],
                    "properties": {"ok": {"const": True}, "data": {}},
                },
            },
            "responses": {name: {"description": name, "content": error_ref} for _, name in _ERRORS},
        },
    }
