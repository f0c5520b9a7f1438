"""IAM's evaluation logic over policy documents: an explicit Deny wins, else an Allow, else denied.

:func:`decide` judges the statements' actions, resources, principals and conditions, with the
condition operators the template uses (moto ignores those it does not know: ``StringLike`` on
``s3:prefix`` would allow every listing); it also evaluates a resource policy for a principal
(tests of the template's bucket and secret policies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import re
from typing import Any, Literal

from local.aws.embedded import PARTITION

Decision = Literal["Allow", "Deny", "None"]  # an explicit Allow, an explicit Deny, no statement applies
Context = Mapping[str, str | list[str]]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """A policy value as IAM compares it (YAML's ``false`` is the string ``"false"``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters (none too), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own."""
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(given) == 6 and all(like(w, g) for w, g in zip(wanted, given, strict=True))


# Per operator: how one expected value matches one value of the request, and whether it is a
# negation (true when no expected value matches; also when the key is absent from the request).
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda e, v: e == v, False),
    "StringNotEquals": (lambda e, v: e == v, True),
    "StringEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), True),
    "StringLike": (like, False),
    "StringNotLike": (like, True),
    "ArnEquals": (lambda e, v: e == v, False),
    "ArnNotEquals": (lambda e, v: e == v, True),
    "ArnLike": (_arn_like, False),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda e, v: e.lower() == v.lower(), False),
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    """One operator on one key, as IAM evaluates it: any expected value may match (OR); a key the
    request lacks fails it, but for a negated operator, ``...IfExists`` and ``Null``."""
    expected = [_text(e) for e in listed(expected)]
    present = key in context
    if operator == "Null":
        return (not present) == (expected[0] == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS:  # not guessed at: a statement local IAM cannot judge is an error
        raise ValueError(f"condition operator {operator} is not evaluated by local/aws/policy.py")
    match, negated = _OPERATORS[base]
    if not present:
        return if_exists or negated
    found = any(match(e, _text(v)) for e in expected for v in listed(context[key]))
    return not found if negated else found


def _principal_matches(statement: dict[str, Any], principal: str | None) -> bool:
    """A resource policy's ``Principal`` (``*``, or AWS account roots or ARNs) against the caller's ARN."""
    if "NotPrincipal" in statement:
        raise ValueError("NotPrincipal is not evaluated by local/aws/policy.py")
    named = statement.get("Principal")
    if named is None:  # an identity policy: its statement is the caller's own
        return True
    if named == "*":
        return True
    if principal is None:
        return False
    account = principal.split(":")[4] if principal.count(":") >= 5 else None
    for arn in listed(named.get("AWS", [])):
        arn = _text(arn)
        if arn in ("*", principal) or (account and arn in (account, f"arn:{PARTITION}:iam::{account}:root")):
            return True
    return principal in [_text(s) for s in listed(named.get("Service", []))]


def statement_applies(statement: dict[str, Any], action: str, resource: str, context: Context | None = None,
                      principal: str | None = None) -> bool:
    """Whether ``statement`` speaks of this request: its action, resource, principal and every condition."""
    context = context or {}
    if "Action" in statement:
        if not any(like(_text(a), action, ignore_case=True) for a in listed(statement["Action"])):
            return False
    elif any(like(_text(a), action, ignore_case=True) for a in listed(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(like(_text(r), resource) for r in listed(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(like(_text(r), resource) for r in listed(statement["NotResource"])):
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
        for statement in listed(document.get("Statement", [])):
            if statement_applies(statement, action, resource, context, principal):
                if statement["Effect"] == "Deny":
                    return "Deny"
                allowed = True
    return "Allow" if allowed else "None"
