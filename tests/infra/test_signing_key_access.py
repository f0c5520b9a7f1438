"""Only the auth function and the authorizer may read the JWT signing key, and API Gateway
caches the authorizer's answer for at most a minute (revoked tokens stop passing soon)."""

from __future__ import annotations

import json

from local.aws.template import load_template, resources_of_type
from tests.conftest import REPO

KEY_READERS = {"AuthFunction", "AuthorizerFunction"}


def test_only_the_auth_functions_can_read_the_signing_key() -> None:
    functions = resources_of_type(load_template(REPO / "template.yaml"), "AWS::Serverless::Function")
    readers = {name for name, res in functions.items() if "JwtSigningKey" in json.dumps(res["Properties"].get("Policies", []))}
    assert readers == KEY_READERS


def test_the_authorizer_cache_is_a_minute_at_most() -> None:
    template = load_template(REPO / "template.yaml")
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        for authorizer in api["Properties"].get("Auth", {}).get("Authorizers", {}).values():
            assert 0 <= authorizer["Identity"]["ReauthorizeEvery"] <= 60
