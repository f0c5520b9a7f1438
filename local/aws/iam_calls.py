"""Every role proven both ways: the AWS calls IAM decided, recorded per role, against the grants.

While ``CRIMECAST_IAM_CALLS`` names a file, the embedded AWS (``local.aws.enforcement``) appends to it
each decision it makes for a role made from the repository's template (:func:`register`): the
function or state machine, the IAM action, the resource and the request's condition keys,
allowed or refused. Resources are written with the template's reference names
(``physical_names(template, {})``: ``crimecast-local-databucket``, ...), whatever the stack or
the test called the bucket, so that records of the tests, of their pytest-xdist workers and of
the local stacks they start (which inherit the variable) add up in one file.

:func:`check` then holds the recorded calls against a template's grants, both ways: a call a
role's grants do not allow is a problem (unless the test that made it expected the refusal:
:func:`refusal_expected`), and so is a grant no recorded call used: an action of a written-out
statement no call made on one of its resources, a resource of it no call touched, or a SAM
policy template (``DynamoDBCrudPolicy`` ...) none of whose statements allowed a call.
``UNREACHABLE`` lists the grants the tests cannot use, each with why.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import threading
from typing import Any

from local.aws import iam
from local.aws.policy import decide, like, listed, statement_applies
from local.aws.template import references

RECORD_ENV = "CRIMECAST_IAM_CALLS"

# Grants no test can use, each with why; keyed as check() names them ("<role>: <action or resource>").
# Everything else a role is granted must be used by a call recorded while the tests run.
UNREACHABLE: dict[str, str] = {
    # Lambda sends a failed asynchronous invocation's record to the OnFailure queue with the
    # function's role; the local stack does so for the ingest function (tests/functions/
    # test_async_invocations.py), while no test makes the retrain function fail asynchronously.
    "RetrainFunction: sqs:SendMessage": "Lambda's OnFailure destination, sent by AWS with the role",
    "RetrainFunction: arn:aws:sqs:us-east-1:123456789012:crimecast-async-failures-dev":
        "Lambda's OnFailure destination, sent by AWS with the role",
    "RetrainFunction: SQSSendMessagePolicy (AsyncFailureQueue)": "the same queue, granted as a SAM policy template",
    # Step Functions' Distributed Map runs its children as executions of the machine itself
    # (StartExecution, DescribeExecution, StopExecution on them) and its ResultWriter writes by
    # multipart upload; moto's interpreter runs the children in its own process and writes one
    # PutObject per file, so none of these calls is made locally.
    "RetrainStateMachine: states:StartExecution": "the Distributed Map's child executions (AWS's, not moto's)",
    "RetrainStateMachine: arn:aws:states:us-east-1:123456789012:stateMachine:crimecast-retrain-dev":
        "the Distributed Map's child executions (AWS's, not moto's)",
    "RetrainStateMachine: states:DescribeExecution": "the Distributed Map's child executions (AWS's, not moto's)",
    "RetrainStateMachine: states:StopExecution": "the Distributed Map's child executions (AWS's, not moto's)",
    "RetrainStateMachine: arn:aws:states:us-east-1:123456789012:execution:crimecast-retrain-dev/*":
        "the Distributed Map's child executions (AWS's, not moto's)",
    "RetrainStateMachine: s3:ListMultipartUploadParts": "the ResultWriter's multipart upload (AWS's, not moto's)",
    "RetrainStateMachine: s3:AbortMultipartUpload": "the ResultWriter's multipart upload (AWS's, not moto's)",
    "RetrainStateMachine: s3:GetObject": "the ResultWriter's multipart upload (AWS's, not moto's)",
}


# --- recording (in the process that runs the embedded AWS) -----------------------------------


@dataclass
class _Recorder:
    roles: dict[str, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)  # role -> (logical id, renames)
    written: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_recorder = _Recorder()
_expected: ContextVar[bool] = ContextVar("crimecast_refusal_expected", default=False)


@contextmanager
def refusal_expected() -> Iterator[None]:
    """The calls of this block are a test's probes of what a role may not do: their refusals are
    what the test asserts, not code paths lacking a grant (recorded, left out of :func:`check`)."""
    token = _expected.set(True)
    try:
        yield
    finally:
        _expected.reset(token)


def _renames(template: dict[str, Any], physical: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    """(this stack's ARN, the reference ARN) per resource named otherwise, longest first; a state
    machine's executions too (``...:execution:<machine name>``)."""
    reference = iam.physical_names(template, {})
    pairs = {}
    for logical_id, names in physical.items():
        ours, theirs = names.get("Arn"), reference.get(logical_id, {}).get("Arn")
        if ours and theirs and ours != theirs:
            pairs[ours] = theirs
            if ":stateMachine:" in ours:
                pairs[ours.replace(":stateMachine:", ":execution:")] = theirs.replace(":stateMachine:", ":execution:")
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def register(roles: Mapping[str, str], template: dict[str, Any], physical: Mapping[str, Mapping[str, str]],
             recorded: bool = True) -> None:
    """Record the decisions for these roles (role name -> the template's logical id), made from
    the repository's template with these names; ``recorded`` false: roles of another template
    (a copy with a grant taken out) that may reuse the names, whose calls are not recorded."""
    renames = _renames(template, physical) if recorded else []
    with _recorder.lock:
        for role, logical_id in roles.items():
            if recorded:
                _recorder.roles[role] = (logical_id, renames)
            else:
                _recorder.roles.pop(role, None)


def _reference(resource: str, renames: list[tuple[str, str]]) -> str:
    for ours, theirs in renames:
        if resource == ours or resource.startswith((ours + "/", ours + ":")):
            return theirs + resource[len(ours):]
    return resource


def record(access_key: Any, action: str, resource: str, context: Mapping[str, Any] | None, allowed: bool) -> None:
    """One decision of moto's IAM for a registered role (its caller's access key), once per process."""
    path = os.environ.get(RECORD_ENV)
    role = getattr(access_key, "_owner_role_name", None)
    if not path or role not in _recorder.roles:
        return
    logical_id, renames = _recorder.roles[role]
    line = json.dumps({"role": logical_id, "action": action, "resource": _reference(resource, renames),
                       "context": dict(context or {}), "allowed": allowed, "expected_refusal": _expected.get(),
                       "test": os.environ.get("PYTEST_CURRENT_TEST", "")}, sort_keys=True)
    key = path + line.rsplit(', "test":', 1)[0]
    with _recorder.lock:
        if key in _recorder.written:
            return
        _recorder.written.add(key)
        # one write per line, appended: the workers' and stacks' lines never interleave
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, (line + "\n").encode())
        finally:
            os.close(descriptor)


# --- checking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    role: str
    action: str
    resource: str
    context: dict[str, Any]
    allowed: bool
    expected_refusal: bool
    test: str


def read_calls(path: str | Path) -> list[Call]:
    """The calls recorded in ``path`` (none if it is not there: nothing ran under IAM)."""
    file = Path(path)
    if not file.exists():
        return []
    return [Call(**json.loads(line)) for line in file.read_text().splitlines() if line.strip()]


def _policy_template(entry: Any) -> str | None:
    """The SAM policy template a ``Policies`` entry uses and what it names (``DynamoDBCrudPolicy
    (RunsTable)``), None for statements."""
    if isinstance(entry, dict) and "Fn::If" in entry:
        entry = entry["Fn::If"][1]
    if isinstance(entry, dict) and len(entry) == 1 and "Statement" not in entry:
        ((name, parameters),) = entry.items()
        return f"{name} ({', '.join(sorted(references(parameters)))})"
    return None


@dataclass
class _Grant:
    """One unit a role is granted: an action or a resource of a written-out statement, or a
    SAM policy template as a whole; used once a recorded call is allowed through it."""

    name: str
    used: bool = False


@dataclass
class _Role:
    documents: list[dict[str, Any]]
    # per policy document: its statements, each with (its action grants, its resource grants), or one grant for the whole
    statements: list[list[tuple[dict[str, Any], dict[str, _Grant], dict[str, _Grant]]]]
    templates: list[_Grant | None]


def _roles(template: dict[str, Any]) -> dict[str, _Role]:
    policies = iam.function_policies(template, iam.physical_names(template, {}))
    roles = {}
    for logical_id, documents in policies.items():
        properties = template["Resources"][logical_id].get("Properties") or {}
        originals = properties.get("Policies") or []
        statements, templates = [], []
        for document in documents:
            prefix = f"{logical_id}RolePolicy"
            index = document["PolicyName"].removeprefix(prefix)
            sam = _policy_template(originals[int(index)]) if index.isdigit() and index != document["PolicyName"] else None
            units = []
            for statement in listed(document["PolicyDocument"].get("Statement", [])):
                if statement.get("Effect") != "Allow":
                    continue
                actions = {str(a): _Grant(f"{logical_id}: {a}") for a in listed(statement.get("Action", []))}
                resources = {str(r): _Grant(f"{logical_id}: {r}") for r in listed(statement.get("Resource", []))}
                units.append((statement, actions, resources))
            statements.append(units)
            templates.append(_Grant(f"{logical_id}: {sam}") if sam else None)
        roles[logical_id] = _Role([d["PolicyDocument"] for d in documents], statements, templates)
    return roles


def check(calls: Iterable[Call], template: dict[str, Any], unreachable: Mapping[str, str] = UNREACHABLE,
          unused: bool = True) -> list[str]:
    """What is wrong, both ways, with ``template``'s grants for these recorded calls: a call its
    role's grants do not allow (a probe a test expected refused aside), and, with ``unused``, a
    grant no call used that ``unreachable`` does not name. Empty: every role proven both ways."""
    roles = _roles(template)
    refused: dict[str, set[str]] = {}
    for call in calls:
        if call.expected_refusal:
            continue
        role = roles.get(call.role)
        if role is None:
            refused.setdefault(f"{call.role} (no such role in the template) calls {call.action}", set()).add(call.test)
            continue
        if decide(role.documents, call.action, call.resource, call.context) != "Allow":
            refused.setdefault(f"{call.role} calls {call.action} on {call.resource}, which its role is not granted",
                               set()).add(call.test)
            continue
        for units, sam in zip(role.statements, role.templates, strict=True):
            for statement, actions, resources in units:
                if not statement_applies(statement, call.action, call.resource, call.context):
                    continue
                if sam is not None:
                    sam.used = True
                for pattern, grant in actions.items():
                    grant.used = grant.used or like(pattern, call.action, ignore_case=True)
                for pattern, grant in resources.items():
                    grant.used = grant.used or like(pattern, call.resource)
    problems = [f"{what} (recorded in {', '.join(sorted(t for t in tests if t)[:3]) or 'a stack'})"
                for what, tests in sorted(refused.items())]
    if unused:
        names: set[str] = set()
        for role in roles.values():
            for units, sam in zip(role.statements, role.templates, strict=True):
                if sam is not None:
                    names |= {sam.name} if not sam.used else set()
                    continue
                names |= {g.name for _, actions, resources in units for g in (*actions.values(), *resources.values())
                          if not g.used}
        problems += [f"{name} is granted and no recorded call used it" for name in sorted(names - set(unreachable))]
        problems += [f"{name} is listed as unreachable by the tests, yet a recorded call used it: take it off the list"
                     for name in sorted(set(unreachable) - names)]
    return problems
