"""The API's OpenAPI document, made in-process as ``/openapi.json`` serves it, and the check of
one answer against it: its route, its status and its body's schema for that status."""

from __future__ import annotations

from functools import cache
import json
import re
from typing import Any

import jsonschema

from crimecast.api import openapi

Operation = tuple[str, dict[str, Any]]  # the document's path (template) and its operation


@cache
def api_document() -> dict[str, Any]:
    return json.loads(openapi.openapi_json())


def _path_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")


def find_operation(method: str, path: str) -> Operation | None:
    """The documented operation that answers ``method path`` (a concrete path, or a template
    as the document writes it); a path without parameters before one with them."""
    paths = api_document()["paths"]
    candidates = [path] if path in paths else [t for t in paths if _path_pattern(t).match(path)]
    for template in candidates:
        operation = paths[template].get(method.lower())
        if operation is not None:
            return template, operation
    return None


def answer_problem(method: str, path: str, status: int, content_type: str, body: bytes) -> str | None:
    """Why this answer is not one the document describes (None when it is): the route, its
    status, its media type, and its body against the schema of that status."""
    where = f"{method} {path} -> {status}"
    found = find_operation(method, path)
    if found is None:
        return f"{where}: the OpenAPI document has no {method} route for {path}"
    template, operation = found
    response = operation["responses"].get(str(status))
    if response is None:
        return f"{where}: {method} {template} documents no {status} (only {', '.join(operation['responses'])})"
    media_type = content_type.split(";")[0].strip().lower()
    content = response.get("content") or {}
    if not content:
        return None if not body else f"{where}: documented without a body, answered {len(body)} bytes"
    if media_type not in content:
        return f"{where}: answered {media_type or 'no media type'}, documented {', '.join(content)}"
    schema = content[media_type].get("schema") or {}
    value: Any = body.decode("utf-8") if media_type.startswith("text/") else json.loads(body)
    validator = jsonschema.Draft202012Validator({**schema, "components": api_document().get("components", {})})
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    shown = "; ".join(f"at {e.json_path}: {e.message[:200]}" for e in errors[:5])
    return f"{where}: the body does not match {method} {template}'s {status} schema ({len(errors)} problems): {shown}"
