"""What django-ninja leaves out of the OpenAPI document: the error answers and the links between operations.

Every operation may answer with the contract's error body, so every operation declares it for the
4xx codes the contract names; clients (and schemathesis) then know what a refusal looks like.

Links say "the id in this answer is the `{x_id}` of these operations", so a client (or a stateful
fuzzer) can follow create → read → act. They are derived from the paths: a POST to `/things`
that answers an object with an `id` links to every operation on `/things/{thing_id}...`, and an
operation on `/things/{thing_id}...` that answers links onward to the other operations on the same thing.

Every write also declares the optional `Idempotency-Key` header that timebank/ops/idempotency.py honours.
"""

from __future__ import annotations

import re
from typing import Any

ERROR_SCHEMA_NAME = "ErrorOut"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                "message": {"type": "string"},
                "fields": {"type": "object"},
            },
        }
    },
}

# The contract's error statuses, with what each means.
ERROR_STATUSES: dict[str, str] = {
    "400": "Malformed request",
    "401": "Not logged in",
    "403": "Not allowed (also objects outside the caller's part of the org tree)",
    "404": "Unknown (or another bank's)",
    "405": "Method not allowed",
    "409": "Conflict: an invalid transition, an insufficient balance, a duplicate, a reused idempotency key",
    "422": "Bad input",
    "429": "Too many requests: a login locked for a while after failed attempts, or a limit per client address",
}

_PARAM = re.compile(r"\{(\w+)\}")
METHODS = ("get", "post", "put", "patch", "delete")
WRITE_METHODS = ("post", "put", "patch", "delete")

# timebank/ops/idempotency.py reads it on every API write; ninja knows nothing of middleware.
IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Optional, 1 to 64 visible characters, unique per request (a UUID will do). The write and its 2xx "
        "answer are stored together: a retry with the same key and the same request gets the stored answer "
        "(header `Idempotent-Replayed: true`) and changes nothing; the same key on a different request is "
        "409 idempotency_key_reused. A 4xx does not use up the key. Keys are remembered for 30 days by default "
        "(`manage.py purge_idempotency --days N` forgets older ones)."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[!-~]+$"},
}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
    }


def _success(op: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    # ninja keys the responses by int, a loaded document by str.
    for status in (201, "201", 200, "200"):
        if status in op.get("responses", {}):
            return str(status), op["responses"][status]
    return None


def _answer_properties(schema: dict[str, Any], response: dict[str, Any]) -> set[str]:
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        return set()
    component = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    return set(component.get("properties", {}))


def _link_name(op: dict[str, Any]) -> str:
    return str(op["operationId"]).removeprefix("timebank_")


def add_error_responses(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            responses = op.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, _error_response(description))


def add_idempotency_header(schema: dict[str, Any]) -> None:
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            if method not in WRITE_METHODS:
                continue
            params = op.setdefault("parameters", [])
            if not any(p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER["name"] for p in params):
                params.append(dict(IDEMPOTENCY_HEADER))


def add_links(schema: dict[str, Any]) -> None:
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    # Operations on one thing, by the path up to and including its id parameter: "/x/{x_id}" → [(path, op)].
    on_thing: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path, ops in paths.items():
        params = _PARAM.findall(path)
        if len(params) != 1:
            continue
        head = path[: path.index("{" + params[0] + "}") + len(params[0]) + 2]
        for method, op in ops.items():
            if method in METHODS and "operationId" in op:
                on_thing.setdefault(head, []).append((path, op))

    for path, ops in paths.items():
        params = _PARAM.findall(path)
        for method, op in ops.items():
            if method not in METHODS or (success := _success(op)) is None:
                continue
            _status, response = success
            links: dict[str, Any] = {}
            properties = _answer_properties(schema, response)
            if not params and method == "post" and "id" in properties:
                # POST /things → /things/{thing_id}...: the new object's id.
                for head, targets in on_thing.items():
                    if head.rsplit("/", 1)[0] != path:
                        continue
                    name = _PARAM.findall(head)[0]
                    for _target_path, target in targets:
                        links[_link_name(target)] = {
                            "operationId": target["operationId"],
                            "parameters": {name: "$response.body#/id"},
                        }
            elif len(params) == 1:
                # /things/{thing_id}/verb → the other operations on the same thing.
                name = params[0]
                head = path[: path.index("{" + name + "}") + len(name) + 2]
                for target_path, target in on_thing.get(head, []):
                    if target is op or (target_path == path and method == "get"):
                        continue
                    links[_link_name(target)] = {
                        "operationId": target["operationId"],
                        "parameters": {name: f"$request.path.{name}"},
                    }
            # An answer carrying `thing_id` → reading that thing (an order's recipient, a transfer's transaction).
            for head, targets in on_thing.items():
                name = _PARAM.findall(head)[0]
                if not name.endswith("_id") or name not in properties or (params and name == params[0]):
                    continue
                for target_path, target in targets:
                    if "get" in paths[target_path] and paths[target_path]["get"] is target:
                        links.setdefault(
                            _link_name(target),
                            {"operationId": target["operationId"], "parameters": {name: f"$response.body#/{name}"}},
                        )
            if links:
                response["links"] = links


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    add_error_responses(schema)
    add_idempotency_header(schema)
    add_links(schema)
    return schema
