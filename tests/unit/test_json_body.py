"""crimecast.api.bodies.json_body: which bodies are JSON, read without a handler or AWS."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
import pytest

from crimecast.api.bodies import UnsupportedMediaTypeError, json_body
from crimecast.domain.errors import InvalidInputError


def _event(raw: str | None, content_type: str | None) -> APIGatewayProxyEvent:
    headers: dict[str, Any] = {"content-type": content_type} if content_type is not None else {}
    return APIGatewayProxyEvent({"body": raw, "headers": headers, "isBase64Encoded": False})


@pytest.mark.parametrize("content_type", ["application/json", "application/json;charset=utf-8", " APPLICATION/JSON ; q=1",
                                          "application/merge-patch+json", "application/vnd.api+json"])
def test_json_media_types_are_read(content_type: str) -> None:
    assert json_body(_event('{"a": [1, "é"]}', content_type)) == {"a": [1, "é"]}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/jsonx", "application/json+x", "text/json", "json", "", None])
def test_other_media_types_and_none_are_refused(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="application/json"):
        json_body(_event('{"a": 1}', content_type))


def test_an_empty_body_is_none_whatever_its_type() -> None:
    assert json_body(_event(None, "text/plain")) is None and json_body(_event("", None)) is None
    assert json_body(_event("null", "application/json")) is None


def test_the_refusal_repeats_a_bounded_part_of_the_type() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        json_body(_event("{}", "x/" + "y" * 5000))
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(("raw", "reason"), [("{", "Expecting property name"), ("[" * 100_000, "too deep"),
                                             ("9" * 5000, "too long"), ("   ", "Expecting value")])
def test_malformed_json_is_invalid_input_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        json_body(_event(raw, "application/json"))
