"""The template's IAM roles on the embedded AWS (moto), each function's as template.yaml grants it.

``function_policies`` runs the SAM translator over the template (it expands policy templates
such as ``DynamoDBCrudPolicy`` into the statements CloudFormation gets) and resolves the
statements' ``Ref``/``GetAtt``/``Sub`` to the names and ARNs of the resources the local
stack (or a test) provisioned. ``create_roles`` makes one IAM role per function with those
policies and returns a session of each (STS AssumeRole): a function's calls signed with its
session are allowed what its role allows, and nothing else, once ``local.aws.enforcement`` is on.
"""

from __future__ import annotations

from collections.abc import Callable
import copy
import json
import logging
import re
from typing import Any

from crimecast.adapters.aws import Credentials
from local.aws.embedded import ACCOUNT, PARTITION, REGION, environment_name, table_name
from local.aws.template import function_name, queue_name

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
        env_name = environment_name(logical_id)
        if kind == "AWS::S3::Bucket":
            name = env.get(env_name, f"crimecast-local-{logical_id.lower()}")
            names[logical_id] = {"Ref": name, "Arn": f"arn:{PARTITION}:s3:::{name}"}
        elif kind == "AWS::DynamoDB::Table":
            name = env.get(env_name, table_name(logical_id))
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
        _use_client_factory(original)
        return

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        unsigned = original(region, service, state_credentials)
        return boto3.client(service, region_name=region, endpoint_url=unsigned.meta.endpoint_url, config=unsigned.meta.config,
                            aws_access_key_id=credentials.access_key_id, aws_secret_access_key=credentials.secret_access_key,
                            aws_session_token=credentials.session_token)

    boto_client_for.crimecast_original = original  # type: ignore[attr-defined]
    _use_client_factory(boto_client_for)


def _use_client_factory(factory: Callable[..., Any]) -> None:
    """``factory`` in place of ``boto_client_for`` in every module of the interpreter that holds it."""
    import importlib

    for name in _INTERPRETER_CLIENT_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            module.boto_client_for = factory  # type: ignore[attr-defined]
