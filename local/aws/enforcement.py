"""moto's IAM enforcement, held to AWS's rules: each function's calls allowed what its role grants.

What moto checks (moto 5, ``moto.core.authorization``): every request's signature, then its
action against the caller's policies. The resource it checks is the request's own only for
S3, SQS, IAM and STS; for every other service it checks ``*``, which no statement scoped to
an ARN matches. Here DynamoDB, Step Functions, Secrets Manager and Lambda requests get their
resource's ARN (the table or index, the state machine or execution, the secret, the function),
so that the statements' ``Resource`` counts as on AWS.

The decision itself is ``local.aws.policy.decide``'s (IAM's evaluation logic), with the
conditions of the statements: moto ignores the operators it does not know and denies on a
failed condition (one unmatched Allow would deny what another allows). The request context
has what the template's conditions read: ``s3:prefix`` of a listing. S3 is held to AWS's rules
where moto is lenient: a request is checked against its IAM action (``s3:ListBucket`` for
ListObjectsV2); a CopyObject needs ``s3:GetObject`` on its source too; DeleteObjects is decided
key by key (moto deleted every key when any was refused); and a missing key is
``AccessDenied``, not ``NoSuchKey``, to a caller who may not list the bucket (a listing granted
only for some prefixes does not count: the GetObject's request has no ``s3:prefix``).

Each decision for a role of the template is recorded for the role coverage check
(``local.aws.iam_calls``). Not checked: permission boundaries, resource policies (but S3's
bucket policies, by moto), KMS and CloudWatch/X-Ray writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.aws import iam_calls
from local.aws.embedded import PARTITION
from local.aws.policy import Context, Decision, decide
from local.http_headers import header

# --- moto's enforcement, with each request's resource -----------------------------------


def _json_body(handler: Any) -> dict[str, Any]:
    raw = getattr(handler, "raw_body", None) or getattr(handler, "body", None) or b"{}"
    try:
        doc = json.loads(raw if isinstance(raw, (str, bytes)) else "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _dynamodb_resource(handler: Any) -> str:
    body = _json_body(handler)
    table = body.get("TableName")
    if table is None:  # BatchGetItem, BatchWriteItem: moto checks one resource; the first table
        table = next(iter(body.get("RequestItems") or {}), None)
    if table is None:
        items = body.get("TransactItems") or []
        for item in items:
            for operation in item.values():
                table = table or operation.get("TableName")
    if table is None:
        return "*"
    resource = f"arn:{PARTITION}:dynamodb:{handler.region}:{handler.current_account}:table/{table}"
    return f"{resource}/index/{body['IndexName']}" if body.get("IndexName") else resource


def _stepfunctions_resource(handler: Any) -> str:
    body = _json_body(handler)
    return str(body.get("stateMachineArn") or body.get("executionArn") or "*")


def _secretsmanager_resource(handler: Any) -> str:
    secret_id = _json_body(handler).get("SecretId")
    if not secret_id:
        return "*"
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return str(secretsmanager_backends[handler.current_account][handler.region].describe_secret(secret_id).arn)
    except Exception:  # noqa: BLE001 - an unknown secret: moto answers ResourceNotFound after the check
        return "*"


def _lambda_resource(handler: Any) -> str:
    found = re.search(r"/functions/([^/]+)", getattr(handler, "path", "") or "")
    if not found:
        return "*"
    named = unquote(found.group(1))  # the interpreter names a function by its (quoted) ARN
    name = named.split(":")[6] if named.startswith("arn:") else named.split(":")[0]  # no qualifier
    return f"arn:{PARTITION}:lambda:{handler.region}:{handler.current_account}:function:{name}"


# What these JSON services answer where moto renders IAM's XML errors (botocore then sees code
# "403"): DynamoDB, Step Functions, Secrets Manager and Lambda answer JSON, in these words.
JSON_ERRORS = {"AccessDenied": "AccessDeniedException", "InvalidClientTokenId": "UnrecognizedClientException",
               "SignatureDoesNotMatch": "InvalidSignatureException"}


def _json_errors(check: Any) -> Any:
    def checked(self: Any, resource: str = "*") -> None:
        from moto.core.exceptions import JsonRESTError

        try:
            check(self, resource)
        except Exception as exc:
            error_type = getattr(exc, "error_type", None)
            if error_type not in JSON_ERRORS:
                raise
            message = str(getattr(exc, "message", "")) + (f" on resource: {resource}" if error_type == "AccessDenied" else "")
            error = JsonRESTError(JSON_ERRORS[error_type], message)
            error.code = 403 if self.service_name == "lambda" or error_type != "AccessDenied" else 400
            raise error from None

    checked.crimecast_json_errors = True  # type: ignore[attr-defined]
    return checked


def _s3_iam_actions() -> None:
    """S3 requests are checked against their IAM action, as on AWS: ``s3:ListBucket`` for
    ListObjectsV2, ``s3:GetObject`` for HeadObject. moto 5.2.6 checks the API operation's name
    instead (``s3:ListObjectsV2``, an action no policy can grant); moto's S3 still records the
    IAM action in ``data["Action"]`` (its ACTION_MAP), which is what 5.2.5 and earlier checked."""
    from moto.iam.access_control import S3IAMRequest

    init = S3IAMRequest.__init__
    if getattr(init, "crimecast_iam_action", False):
        return

    def with_iam_action(self: Any, *args: Any, data: dict[str, str], action: str, **kwargs: Any) -> None:
        init(self, *args, data=data, action=data.get("Action") or action, **kwargs)

    with_iam_action.crimecast_iam_action = True  # type: ignore[attr-defined]
    S3IAMRequest.__init__ = with_iam_action  # type: ignore[method-assign]


def _caller_decision(request: Any, action: str, resource: str, context: Context | None = None,
                     recorded: bool = True) -> Decision:
    """:func:`decide` over the policies of the caller of a moto request (its user's or role's),
    recorded for the role coverage check (``local.aws.iam_calls``) unless ``recorded`` is false."""
    from moto.iam.access_control import IAMPolicy

    documents = [IAMPolicy(policy)._policy_json for policy in request._access_key.collect_policies()]
    decision = decide(documents, action, resource, context)
    if recorded:
        iam_calls.record(request._access_key, action, resource, context, decision == "Allow")
    return decision


def _request_context(request: Any) -> dict[str, str]:
    """The condition keys of a request that the template's policies read: ``s3:prefix`` of a
    listing (absent when the listing names no prefix)."""
    context = {}
    if request._action.lower() in ("s3:listbucket", "s3:listbucketversions"):
        query = parse_qs(urlsplit(request._path).query, keep_blank_values=True)
        if "prefix" in query:
            context["s3:prefix"] = query["prefix"][0]
    return context


def _is_delete_objects(request: Any, resource: str) -> bool:
    return request._action == "s3:DeleteObject" and "/" not in resource.split(":::", 1)[-1] and \
        "delete" in parse_qs(urlsplit(request._path).query, keep_blank_values=True)


def _object_exists(account: str, bucket_name: str, key: str) -> bool:
    from moto.s3.models import FakeKey, s3_backends

    bucket = s3_backends[account][PARTITION].buckets.get(bucket_name)
    if bucket is None:  # NoSuchBucket answers, as it would
        return True
    return key in bucket.keys and isinstance(bucket.keys[key], FakeKey)


def _check_s3_rules(request: Any, resource: str) -> None:
    """What AWS checks of an S3 request beyond its own action on its own resource."""
    path = resource.split(":::", 1)[-1]
    if request._action == "s3:PutObject" and (source := header(request._headers, "x-amz-copy-source")):
        copied, _, query = unquote(source).lstrip("/").partition("?")
        action = "s3:GetObjectVersion" if "versionId=" in query else "s3:GetObject"
        if _caller_decision(request, action, f"arn:{PARTITION}:s3:::{copied}") != "Allow":
            request._raise_access_denied()  # CopyObject reads its source with the caller's rights
    elif request._action == "s3:GetObject" and "/" in path and "versionId" not in urlsplit(request._path).query:
        bucket_name, key = path.split("/", 1)
        # S3 says NoSuchKey only to who may list the bucket. Not recorded: no call of the code's,
        # and a refusal the adapter answers by listing the key's prefix (BlobStore.get_bytes).
        if not _object_exists(request.account_id, bucket_name, key) and _caller_decision(
                request, "s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket_name}", recorded=False) != "Allow":
            request._raise_access_denied()


# Operations whose IAM action has another name (moto checks "<service>:<operation>").
IAM_ACTION_OF_OPERATION = {"lambda:Invoke": "lambda:InvokeFunction"}


def _check_action_permitted(self: Any, resource: str) -> None:
    """moto's ``IAMRequestBase.check_action_permitted``, decided by :func:`decide` (conditions
    included) and held to S3's rules; moto's check of the role's trust policy is kept."""
    from moto.iam.access_control import S3IAMRequest

    if self._action == "sts:GetCallerIdentity":  # always allowed, as moto and AWS do
        return
    s3 = isinstance(self, S3IAMRequest)
    if s3 and _is_delete_objects(self, resource):
        return  # DeleteObjects is decided key by key (_delete_objects_key_by_key)
    action = IAM_ACTION_OF_OPERATION.get(self._action, self._action)
    permitted = _caller_decision(self, action, resource, _request_context(self)) == "Allow"
    if permitted and self._is_assuming_role_operation(resource):
        permitted = self._check_role_trust_relationship(resource)
    if not permitted:
        self._raise_access_denied()
    if s3:
        _check_s3_rules(self, resource)


def _decide_with_conditions() -> None:
    from moto.iam.access_control import IAMRequestBase

    IAMRequestBase.check_action_permitted = _check_action_permitted  # type: ignore[method-assign]


_deleting = threading.local()  # the caller's decision per key, during one DeleteObjects request


def _enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _delete_objects_key_by_key() -> None:
    """DeleteObjects as on AWS: each key needs ``s3:DeleteObject`` on it, a refused key is an
    ``AccessDenied`` entry of the answer's Errors, the others are deleted. (moto checked the
    action on the bucket's ARN and, refused, deleted every key the bucket policy allowed.)"""
    from moto.iam.access_control import PermissionResult, S3IAMRequest
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    delete_keys = S3Response._bucket_response_delete_keys
    if getattr(delete_keys, "crimecast_key_by_key", False):
        return
    bucket_permission = FakeBucket.get_permission

    def permission(self: Any, action: str, resource: str) -> Any:
        allowed = getattr(_deleting, "allowed", None)
        if allowed is not None and action == "s3:DeleteObject" and not allowed(resource):
            return PermissionResult.DENIED
        return bucket_permission(self, action, resource)

    def key_by_key(self: Any, bucket_name: str, authenticated: bool = True) -> Any:
        if not _enforcing():
            return delete_keys(self, bucket_name, authenticated)
        caller = S3IAMRequest(account_id=self.current_account, method=self.method, path=self.raw_path, data=self.data,
                              body=self.raw_body, headers=self.headers, action="DeleteObject")
        _deleting.allowed = lambda arn: authenticated and _caller_decision(caller, "s3:DeleteObject", arn) == "Allow"
        try:
            return delete_keys(self, bucket_name, True)
        finally:
            _deleting.allowed = None

    key_by_key.crimecast_key_by_key = True  # type: ignore[attr-defined]
    S3Response._bucket_response_delete_keys = key_by_key  # type: ignore[method-assign]
    FakeBucket.get_permission = permission  # type: ignore[method-assign]


def _install_resources() -> None:
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    for cls, find in ((DynamoHandler, _dynamodb_resource), (StepFunctionResponse, _stepfunctions_resource),
                      (SecretsManagerResponse, _secretsmanager_resource), (LambdaResponse, _lambda_resource)):
        cls._determine_resource = find  # type: ignore[attr-defined]
        check = cls._authenticate_and_authorize_normal_action
        if not getattr(check, "crimecast_json_errors", False):
            cls._authenticate_and_authorize_normal_action = _json_errors(check)  # type: ignore[method-assign]
    _s3_iam_actions()
    _decide_with_conditions()
    _delete_objects_key_by_key()


def _set_enforcement(no_auth_count: float, request_count: int = 0) -> tuple[float, int]:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    before = settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count
    settings.INITIAL_NO_AUTH_ACTION_COUNT = no_auth_count
    ActionAuthenticatorMixin.request_count = request_count
    return before


def enforce_from_now() -> None:
    """moto checks every request's signature and permission from now on, in this process (the
    in-process server, or ``mock_aws``): moto's INITIAL_NO_AUTH_ACTION_COUNT set to 0."""
    _install_resources()
    _set_enforcement(0)


@contextmanager
def _enforcement(no_auth_count: float) -> Iterator[None]:
    before = _set_enforcement(no_auth_count)
    try:
        yield
    finally:
        _set_enforcement(*before)


def paused() -> AbstractContextManager[None]:
    """No checks until the end of the block (creating roles and assuming them as the admin)."""
    return _enforcement(float("inf"))


def enforce() -> AbstractContextManager[None]:
    """``enforce_from_now`` until the end of the block."""
    _install_resources()
    return _enforcement(0)
