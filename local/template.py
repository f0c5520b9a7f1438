"""Read template.yaml as data: the tables the tests build on moto and the API routes.

CloudFormation's short tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) are read into their long
form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``), so the result is the template as
CloudFormation sees it; nothing here resolves them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
DYNAMODB_TABLE = "AWS::DynamoDB::Table"
# The create_table arguments that a table's properties give directly.
TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also accepts CloudFormation's short-form intrinsic functions."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as a dict, short tags turned into their long form."""
    with open(path, encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return template


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template.get("Resources", {}).items() if res.get("Type") == resource_type}


def dynamodb_table_specs(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per table logical id, the keyword arguments of boto3's ``create_table`` (without TableName).

    Only the keys present in the template are given (no empty GlobalSecondaryIndexes),
    so ``client.create_table(TableName=name, **spec)`` works on moto and on AWS.
    """
    specs = {}
    for logical_id, resource in resources_of_type(template, DYNAMODB_TABLE).items():
        properties = resource.get("Properties", {})
        specs[logical_id] = {key: properties[key] for key in TABLE_KEYS if properties.get(key)}
    return specs


class ApiRoute(NamedTuple):
    method: str  # upper case, e.g. "GET"
    path: str  # API Gateway form, e.g. "/runs/{run_id}"
    function: str  # logical id of the function
    handler: str  # e.g. "app.lambda_handler"
    codeuri: str  # e.g. "functions/predict/"
    auth_none: bool  # True where the route opts out of the default authorizer


def _function_property(template: dict[str, Any], properties: dict[str, Any], name: str) -> Any:
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def api_routes(template: dict[str, Any]) -> list[ApiRoute]:
    """Every ``Type: Api`` event of every function, in template order."""
    routes = []
    for logical_id, resource in resources_of_type(template, SERVERLESS_FUNCTION).items():
        properties = resource.get("Properties", {})
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            spec = event.get("Properties", {})
            auth = spec.get("Auth") or {}
            routes.append(ApiRoute(
                method=str(spec["Method"]).upper(),
                path=str(spec["Path"]),
                function=logical_id,
                handler=str(_function_property(template, properties, "Handler")),
                codeuri=str(_function_property(template, properties, "CodeUri")),
                auth_none=auth.get("Authorizer") == "NONE",
            ))
    return routes


def references(node: Any) -> set[str]:
    """Every logical id ``node`` refers to (``Ref``, ``Fn::GetAtt``), at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt" and isinstance(value, list) and value:
                found.add(str(value[0]))
            else:
                found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def granted_resources(template: dict[str, Any], function: str) -> set[str]:
    """The logical ids a function's ``Policies`` (SAM policy templates and statements) name."""
    return references(template["Resources"][function]["Properties"].get("Policies") or [])
