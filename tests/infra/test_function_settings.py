"""Every function's environment in template.yaml satisfies the settings it checks at cold
start (crimecast.settings): a variable a function needs but the template does not give it
fails here, not on AWS at its first cold start."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crimecast import settings
from local.aws.template import SERVERLESS_FUNCTION, load_template, resources_of_type
from tests.conftest import REPO

TEMPLATE = load_template(REPO / "template.yaml")


def _environment(properties: dict[str, Any]) -> dict[str, str]:
    """The variable names the function gets (Globals, then its own), each with a stand-in value;
    a value given literally (e.g. a flag) is kept."""
    names: dict[str, Any] = {}
    for source in (TEMPLATE.get("Globals", {}).get("Function", {}), properties):
        names.update((source.get("Environment") or {}).get("Variables") or {})
    return {name: _value(name, value) for name, value in names.items()}


def _value(name: str, value: Any) -> Any:
    """A literal as it is, a parameter by its default (as a stack deploys it), else a stand-in."""
    if isinstance(value, str | int):
        return value
    parameter = TEMPLATE.get("Parameters", {}).get(value.get("Ref", "") if isinstance(value, dict) else "")
    if parameter is not None and "Default" in parameter:
        return parameter["Default"]
    return f"stand-in-{name.lower()}"


FUNCTIONS = {logical_id: resource["Properties"] for logical_id, resource in resources_of_type(TEMPLATE, SERVERLESS_FUNCTION).items()}


def _checked_groups(properties: dict[str, Any]) -> tuple[type, ...]:
    """The groups the function's handler module checks at import: ``settings.check(*settings.X)``."""
    folder = REPO / str(properties["CodeUri"]).strip("/")
    module = str(properties.get("Handler") or TEMPLATE["Globals"]["Function"].get("Handler")).split(".")[0]
    match = re.search(r"settings\.check\(\*settings\.(\w+)\)", (folder / f"{module}.py").read_text())
    assert match, f"{folder.name}/{module}.py checks no settings at cold start"
    return getattr(settings, match.group(1))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_the_template_gives_each_function_what_its_settings_need(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]
    environ = {name: str(value) for name, value in _environment(properties).items()}
    for group in _checked_groups(properties):
        settings.read(group, environ)  # raises ConfigurationError naming what is missing


def test_the_check_fails_when_the_template_lacks_a_variable() -> None:
    environ = {k: str(v) for k, v in _environment(FUNCTIONS["IngestFunction"]).items() if k != "RETRAIN_STATE_MACHINE_ARN"}
    with pytest.raises(settings.ConfigurationError, match="RETRAIN_STATE_MACHINE_ARN"):
        for group in settings.INGEST:
            settings.read(group, environ)
