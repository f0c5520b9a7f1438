"""IAM as template.yaml grants it, enforced on the embedded AWS (moto).

``function_policies`` runs the SAM translator over the template (it expands policy templates
such as ``DynamoDBCrudPolicy`` into the statements CloudFormation gets) and resolves the
statements' ``Ref``/``GetAtt``/``Sub`` to the names and ARNs of the resources the local
stack (or a test) provisioned. ``create_roles`` makes one IAM role per function with those
policies and returns a session of each (STS AssumeRole): a function's calls signed with its
session are allowed what its role allows, and nothing else, once ``enforce`` is on.

What moto checks (moto 5, ``moto.core.authorization``): every request's signature, then its
action against the caller's policies. The resource it checks is the request's own only for
S3, SQS, IAM and STS; for every other service it checks ``*``, which no statement scoped to
an ARN matches. ``enforce`` therefore gives DynamoDB, Step Functions, Secrets Manager and
Lambda requests their resource's ARN (the table or index, the state machine or execution,
the secret, the function), so that the statements' ``Resource`` counts as on AWS.

The decision itself is :func:`decide`'s, IAM's evaluation logic (an explicit Deny wins, else
an Allow, else denied), with the conditions of the statements: moto ignores the operators
it does not know (``StringLike``: an ``s3:prefix`` condition would allow every listing) and
denies on a failed condition (one unmatched Allow would deny what another allows). The
request context has what the template's conditions read: ``s3:prefix`` of a listing.
S3 is held to AWS's rules where moto is lenient: a request is checked against its IAM
action (``s3:ListBucket`` for ListObjectsV2); a CopyObject needs ``s3:GetObject`` on its
source too; DeleteObjects is decided key by key (moto deleted every key when any was
refused); and a missing key is ``AccessDenied``, not ``NoSuchKey``, to a caller who may not
list the bucket (a listing granted only for some prefixes does not count: the GetObject's
request has no ``s3:prefix``).

Not checked: permission boundaries, resource policies (but S3's bucket policies, by moto),
KMS and CloudWatch/X-Ray writes. :func:`decide` also evaluates a resource policy for a
principal (tests of the template's bucket and secret policies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
import copy
import json
import logging
import re
import threading
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from crimecast.adapters.aws import Credentials
from local.template import function_name, queue_name

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only when a function names one by name."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The template as CloudFormation gets it after ``Transform: AWS::Serverless-2016-10-31``."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its feature-toggle warnings

    values = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
              "AWS::StackName": "crimecast-local", **(parameters or {})}
    template = copy.deepcopy(template)
    # The translator takes S3 locations only (sam build and package put the code there): any will do.
    for resource in template["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://crimecast-local-code/{key}.zip"
    if isinstance(template.get("Globals", {}).get("Function", {}).get("CodeUri"), str):
        template["Globals"]["Function"]["CodeUri"] = "s3://crimecast-local-code/CodeUri.zip"
    # samtranslator's transform(), with a session in our region: it asks boto3 for one even
    # when the region is given, and the environment may name none (the tests' controller).
    to_py27_compatible_template(template, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(template, parameter_values=values, get_managed_policy_map=_NoManagedPolicies().load)
    return undo_mark_unicode_str_in_template(translated)  # type: ignore[no-any-return]


# --- resolving the intrinsic functions of policies ----------------------------------------


class Resolver:
    """CloudFormation's intrinsic functions, for the values a stack's IAM policies use.

    ``physical``: per logical id, what ``Ref`` gives (a name or an ARN) and its attributes
    (``Arn``, ``Name``, ``QueueName`` ...); parameters and pseudo parameters are ``Ref`` too."""

    def __init__(self, template: dict[str, Any], physical: dict[str, dict[str, str]],
                 parameters: dict[str, str] | None = None) -> None:
        self.template = template
        self.physical = physical
        defaults = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self.parameters = {**defaults, **(parameters or {}), "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                           "AWS::Partition": PARTITION, "AWS::StackName": "crimecast-local",
                           "AWS::URLSuffix": "amazonaws.com"}

    def ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise KeyError(f"no value for Ref {name}")

    def get_att(self, name: str, attribute: str) -> str:
        try:
            return self.physical[name][attribute]
        except KeyError:
            raise KeyError(f"no value for GetAtt {name}.{attribute}") from None

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in variables:
                return str(self.value(variables[key]))
            if "." in key and not key.startswith("AWS::"):
                return self.get_att(*key.split(".", 1))
            return self.ref(key)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic function
        """``node`` with every intrinsic function resolved (``AWS::NoValue`` entries dropped)."""
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self._sub(text, variables)
            if key == "Fn::Join":
                return str(self.value(arg[0])).join(str(v) for v in self.value(arg[1]))
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise ValueError(f"{key} is not resolved here")
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not _NO_VALUE}


_NO_VALUE = object()
# Where a translated resource names the role it runs with.
ROLE_PROPERTY = {"AWS::Lambda::Function": "Role", "AWS::StepFunctions::StateMachine": "RoleArn"}


def function_policies(template: dict[str, Any], physical: dict[str, dict[str, str]],
                      parameters: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per function and state machine (logical id of the SAM template), its role's inline
    policies (``{"PolicyName", "PolicyDocument"}``), resolved to the stack's names and ARNs."""
    translated = translate(template, parameters)
    resolver = Resolver(translated, physical, parameters)
    resources = translated["Resources"]
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        role_property = ROLE_PROPERTY.get(resource["Type"])
        if role_property is None:
            continue
        role = (resource["Properties"].get(role_property) or {}).get("Fn::GetAtt", [None])[0]
        if role is None or role not in resources:
            continue
        policies = resolver.value(resources[role]["Properties"].get("Policies") or [])
        found[logical_id] = [p for p in policies if isinstance(p, dict) and "PolicyDocument" in p]
    return found


def physical_names(template: dict[str, Any], env: dict[str, str], stage: str = "dev") -> dict[str, dict[str, str]]:
    """What ``Ref`` and ``GetAtt`` give for the template's resources on the embedded AWS: the
    names the stack provisioned (``env``: DATA_BUCKET, SERIES_TABLE, JWT_SECRET_ARN,
    RETRAIN_STATE_MACHINE_ARN ...), else a name of the same form for the rest."""
    names: dict[str, dict[str, str]] = {}
    arn = f"arn:{PARTITION}:{{service}}:{REGION}:{ACCOUNT}:{{rest}}"
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        env_name = re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).upper()
        if kind == "AWS::S3::Bucket":
            name = env.get(env_name, f"crimecast-local-{logical_id.lower()}")
            names[logical_id] = {"Ref": name, "Arn": f"arn:{PARTITION}:s3:::{name}"}
        elif kind == "AWS::DynamoDB::Table":
            name = env.get(env_name, f"crimecast-local-{logical_id}")
            names[logical_id] = {"Ref": name, "Arn": arn.format(service="dynamodb", rest=f"table/{name}")}
        elif kind == "AWS::SecretsManager::Secret":
            secret = env.get("JWT_SECRET_ARN") if logical_id == "JwtSigningKey" else None
            secret = secret or arn.format(service="secretsmanager", rest=f"secret:crimecast-local-{logical_id}")
            names[logical_id] = {"Ref": secret, "Arn": secret}
        elif kind == "AWS::Serverless::StateMachine":
            machine = env.get("RETRAIN_STATE_MACHINE_ARN") or arn.format(
                service="states", rest=f"stateMachine:crimecast-retrain-{stage}")
            names[logical_id] = {"Ref": machine, "Arn": machine, "Name": machine.rsplit(":", 1)[-1]}
        elif kind == "AWS::SQS::Queue":
            name = queue_name(template, logical_id, stage)  # as the local stack creates it
            names[logical_id] = {"Ref": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}", "QueueName": name,
                                 "Arn": arn.format(service="sqs", rest=name)}
        elif kind == "AWS::Serverless::Function":
            name = function_name(template, logical_id, stage)  # as the embedded Lambda names it
            names[logical_id] = {"Ref": name, "Arn": arn.format(service="lambda", rest=f"function:{name}")}
        else:
            names[logical_id] = {"Ref": f"crimecast-local-{logical_id}",
                                 "Arn": arn.format(service="local", rest=logical_id)}
    return names


# --- roles and sessions on the embedded AWS ---------------------------------------------


def role_name(prefix: str, function: str) -> str:
    """The name of a function's (or state machine's) role made by :func:`create_roles`."""
    return f"{prefix}-{function}"[:64]


def create_roles(iam: Any, sts: Any, policies: dict[str, list[dict[str, Any]]],
                 prefix: str = "crimecast-local") -> dict[str, Credentials]:
    """One role per function with its policies; a session of each (made before ``enforce``:
    moto would check the caller may assume it, and the trust policy names Lambda)."""
    sessions = {}
    for function, documents in policies.items():
        role = role_name(prefix, function)
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
        for document in documents:
            # SAM writes no Version (IAM then takes 2008-10-17, which moto refuses): the same statements.
            policy = {"Version": "2012-10-17", **document["PolicyDocument"]}
            iam.put_role_policy(RoleName=role, PolicyName=document["PolicyName"], PolicyDocument=json.dumps(policy))
        keys = sts.assume_role(RoleArn=arn, RoleSessionName=function[:64])["Credentials"]
        sessions[function] = Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
    return sessions


def create_admin(iam: Any, credentials: Credentials, name: str = "crimecast-local-admin") -> None:
    """A user allowed everything, whose keys are ``credentials`` (the ones the process, its tools
    and the CLI already use: "local" on the stack): the set-up, start-up training and tools keep
    working once ``enforce`` is on; a function's calls are signed with its role's session instead.
    IAM picks a user's keys itself: they are set in moto's backend (this process's)."""
    from moto.iam.models import iam_backends

    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="everything", PolicyDocument=json.dumps(ADMIN_POLICY))
    created = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    backend = iam_backends[ACCOUNT][PARTITION]
    key = backend.access_keys.pop(created)
    key.access_key_id, key.secret_access_key = credentials.access_key_id, credentials.secret_access_key
    backend.access_keys[key.access_key_id] = key


# --- IAM's evaluation of a policy --------------------------------------------------------

Decision = Literal["Allow", "Deny", "None"]  # an explicit Allow, an explicit Deny, no statement applies
Context = Mapping[str, str | list[str]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """A policy value as IAM compares it (YAML's ``false`` is the string ``"false"``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters (none too), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own."""
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(given) == 6 and all(_like(w, g) for w, g in zip(wanted, given, strict=True))


# Per operator: how one expected value matches one value of the request, and whether it is a
# negation (true when no expected value matches; also when the key is absent from the request).
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda e, v: e == v, False),
    "StringNotEquals": (lambda e, v: e == v, True),
    "StringEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "ArnEquals": (lambda e, v: e == v, False),
    "ArnNotEquals": (lambda e, v: e == v, True),
    "ArnLike": (_arn_like, False),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda e, v: e.lower() == v.lower(), False),
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    """One operator on one key, as IAM evaluates it: any expected value may match (OR); a key the
    request lacks fails it, but for a negated operator, ``...IfExists`` and ``Null``."""
    expected = [_text(e) for e in _listed(expected)]
    present = key in context
    if operator == "Null":
        return (not present) == (expected[0] == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS:  # not guessed at: a statement local IAM cannot judge is an error
        raise ValueError(f"condition operator {operator} is not evaluated by local/iam.py")
    match, negated = _OPERATORS[base]
    if not present:
        return if_exists or negated
    found = any(match(e, _text(v)) for e in expected for v in _listed(context[key]))
    return not found if negated else found


def _principal_matches(statement: dict[str, Any], principal: str | None) -> bool:
    """A resource policy's ``Principal`` (``*``, or AWS account roots or ARNs) against the caller's ARN."""
    if "NotPrincipal" in statement:
        raise ValueError("NotPrincipal is not evaluated by local/iam.py")
    named = statement.get("Principal")
    if named is None:  # an identity policy: its statement is the caller's own
        return True
    if named == "*":
        return True
    if principal is None:
        return False
    account = principal.split(":")[4] if principal.count(":") >= 5 else None
    for arn in _listed(named.get("AWS", [])):
        arn = _text(arn)
        if arn in ("*", principal) or (account and arn in (account, f"arn:{PARTITION}:iam::{account}:root")):
            return True
    return principal in [_text(s) for s in _listed(named.get("Service", []))]


def statement_applies(statement: dict[str, Any], action: str, resource: str, context: Context | None = None,
                      principal: str | None = None) -> bool:
    """Whether ``statement`` speaks of this request: its action, resource, principal and every condition."""
    context = context or {}
    if "Action" in statement:
        if not any(_like(_text(a), action, ignore_case=True) for a in _listed(statement["Action"])):
            return False
    elif any(_like(_text(a), action, ignore_case=True) for a in _listed(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_like(_text(r), resource) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(_like(_text(r), resource) for r in _listed(statement["NotResource"])):
        return False
    if not _principal_matches(statement, principal):
        return False
    return all(_condition_holds(operator, key, expected, context)
               for operator, block in (statement.get("Condition") or {}).items() for key, expected in block.items())


def decide(documents: Iterable[dict[str, Any]], action: str, resource: str, context: Context | None = None,
           principal: str | None = None) -> Decision:
    """IAM's decision over policy documents: ``Deny`` if any statement that applies denies, else
    ``Allow`` if one allows, else ``None`` (denied: nothing allows it)."""
    allowed = False
    for document in documents:
        for statement in _listed(document.get("Statement", [])):
            if statement_applies(statement, action, resource, context, principal):
                if statement["Effect"] == "Deny":
                    return "Deny"
                allowed = True
    return "Allow" if allowed else "None"


# --- the state machine's own calls ---------------------------------------------------------

# moto's Step Functions interpreter makes its calls (Lambda tasks, the Map's ItemReader and
# ResultWriter, ...) with clients from this function, each module holding its own reference.
_INTERPRETER_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.utils.boto_client",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
)


def sign_workflow_calls(credentials: Credentials | None) -> None:
    """The interpreter's calls signed with the state machine's role session, as Step Functions
    makes them on AWS (moto signs them with keys "ak"/"sk", which its IAM does not know: with
    enforcement on, every Lambda task failed UnrecognizedClientException); None: moto's own again."""
    import importlib

    import boto3

    base = importlib.import_module(_INTERPRETER_CLIENT_MODULES[0])
    original = getattr(base.boto_client_for, "crimecast_original", base.boto_client_for)
    if credentials is None:
        for name in _INTERPRETER_CLIENT_MODULES:
            module = importlib.import_module(name)
            if hasattr(module, "boto_client_for"):
                module.boto_client_for = original  # type: ignore[attr-defined]
        return

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        unsigned = original(region, service, state_credentials)
        return boto3.client(service, region_name=region, endpoint_url=unsigned.meta.endpoint_url, config=unsigned.meta.config,
                            aws_access_key_id=credentials.access_key_id, aws_secret_access_key=credentials.secret_access_key,
                            aws_session_token=credentials.session_token)

    boto_client_for.crimecast_original = original  # type: ignore[attr-defined]
    for name in _INTERPRETER_CLIENT_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


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
    recorded for the role coverage check (local/iam_calls.py) unless ``recorded`` is false."""
    from moto.iam.access_control import IAMPolicy

    from local import iam_calls

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


def _header(request: Any, name: str) -> str | None:
    return next((value for key, value in request._headers.items() if key.lower() == name), None)


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
    if request._action == "s3:PutObject" and (source := _header(request, "x-amz-copy-source")):
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
def paused() -> Iterator[None]:
    """No checks until the end of the block (creating roles and assuming them as the admin)."""
    before = _set_enforcement(float("inf"))
    try:
        yield
    finally:
        _set_enforcement(*before)


@contextmanager
def enforce() -> Iterator[None]:
    """``enforce_from_now`` until the end of the block."""
    _install_resources()
    before = _set_enforcement(0)
    try:
        yield
    finally:
        _set_enforcement(*before)
