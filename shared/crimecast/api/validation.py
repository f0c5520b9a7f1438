"""Powertools' request validation, reading a route's body with :func:`crimecast.api.bodies.json_body`.

Powertools reads a body by its Content-Type: JSON, a form (whose pairs then fail the route's
model with a puzzling field error) or multipart, and raises on anything else, which reached
the caller as a 500. Here every body is JSON or refused: a 415 for another media type, a 400
for JSON that does not parse. Only routes that declare a body read one.

Its own module because it imports Powertools' validation, which loads pydantic.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware

from crimecast.api.bodies import json_body


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Validates parameters and body as Powertools does; the body is read as JSON only."""

    def _get_body(self, app: Any) -> Any:
        return json_body(app.current_event)
