"""A request body, read as JSON or refused, the same way on every route that reads one.

Standard library and the Powertools event class only (no pydantic): the resolver of every
function imports it, the predict function's included.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from crimecast.domain.errors import InvalidInputError

# application/json, or a type with the +json suffix (RFC 6839), such as application/merge-patch+json
JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9!#$&^_.-]+\+)?json")
MAX_ECHOED_MEDIA_TYPE = 80  # the longest Content-Type a 415 repeats back


class UnsupportedMediaTypeError(Exception):
    """A request body in a media type other than JSON, on a route that reads JSON (a 415)."""


def json_body(event: BaseProxyEvent) -> Any:
    """The request body parsed as JSON; None when there is none (an empty body).

    A body must say it is JSON: ``Content-Type: application/json`` (or a ``+json`` type; a
    charset parameter is ignored, since JSON is UTF-8). Any other type is a 415, and so is a
    body with no Content-Type at all: it is not guessed at, as ``curl -d`` sends a form, which
    would otherwise reach the route as a puzzling field error. A body that does not parse
    (bad syntax, not UTF-8, nested or a number too deep for the parser) is a 400.
    """
    raw = event.body
    if not raw:
        return None
    declared = event.headers.get("content-type")
    if not JSON_MEDIA_TYPE.fullmatch((declared or "").split(";", 1)[0].strip().lower()):
        got = f"Content-Type {declared[:MAX_ECHOED_MEDIA_TYPE]!r}" if declared else "no Content-Type"
        raise UnsupportedMediaTypeError(f"the body must be JSON, sent with Content-Type: application/json; got {got}")
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8") if event.is_base64_encoded else raw
    except UnicodeDecodeError:
        raise InvalidInputError("the body is not valid JSON: it is not UTF-8") from None
    except ValueError:
        raise InvalidInputError("the body is not valid JSON: its base64 encoding is broken") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None
    except (ValueError, RecursionError):  # an integer over Python's 4300 digits, nesting past the parser's depth
        raise InvalidInputError("the body is not valid JSON: a number too long or nesting too deep to read") from None
