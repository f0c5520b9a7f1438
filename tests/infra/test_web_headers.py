"""CloudFront's response headers policy for the web page: the headers the local stack sends,
the same CSP but for the API's origin in connect-src, attached to the page's distribution."""

from __future__ import annotations

from typing import Any

import pytest

from crimecast import security_headers
from local.aws.template import load_template, resources_of_type
from local.gateway import server
from tests.conftest import REPO

# The API's origin as the template spells it (its ApiUrl output, without the stage).
API_ORIGIN = "https://${CrimecastApi}.execute-api.${AWS::Region}.amazonaws.com"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


@pytest.fixture(scope="module")
def headers_config(template: dict[str, Any]) -> dict[str, Any]:
    (policy,) = resources_of_type(template, "AWS::CloudFront::ResponseHeadersPolicy").values()
    return policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]


def test_the_distribution_uses_the_stack_s_own_headers_policy(template: dict[str, Any]) -> None:
    (distribution,) = resources_of_type(template, "AWS::CloudFront::Distribution").values()
    behaviour = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WebResponseHeadersPolicy"}
    assert template["Resources"]["WebResponseHeadersPolicy"]["Type"] == "AWS::CloudFront::ResponseHeadersPolicy"
    assert "CacheBehaviors" not in distribution["Properties"]["DistributionConfig"]  # no path goes without it


def test_the_csp_is_the_local_stack_s_with_the_api_origin(headers_config: dict[str, Any]) -> None:
    csp = headers_config["ContentSecurityPolicy"]
    assert csp["Override"] is True
    deployed = csp["ContentSecurityPolicy"]["Fn::Sub"]
    assert deployed == security_headers.content_security_policy(api_origin=API_ORIGIN)
    local = server.SECURITY_HEADERS["Content-Security-Policy"]
    assert deployed.replace(f"connect-src 'self' {API_ORIGIN};", "connect-src 'self';") == local
    assert "'unsafe-inline'" not in deployed and "'unsafe-eval'" not in deployed
    assert len(deployed) < 1783  # CloudFront's limit on the policy's length


def test_the_other_headers_match_the_local_stack_s(headers_config: dict[str, Any]) -> None:
    sent = server.SECURITY_HEADERS
    hsts = headers_config["StrictTransportSecurity"]
    assert f"max-age={hsts['AccessControlMaxAgeSec']}; includeSubDomains" == sent["Strict-Transport-Security"]
    assert hsts["AccessControlMaxAgeSec"] == 63072000 and hsts["IncludeSubdomains"] is True
    assert headers_config["ContentTypeOptions"] == {"Override": True} and sent["X-Content-Type-Options"] == "nosniff"
    assert headers_config["FrameOptions"]["FrameOption"] == sent["X-Frame-Options"] == "DENY"
    assert headers_config["ReferrerPolicy"]["ReferrerPolicy"] == sent["Referrer-Policy"]
    assert all(section["Override"] is True for section in headers_config.values())
