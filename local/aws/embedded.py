"""moto's server in this process, and the template's bucket, tables and signing secret on it."""

from __future__ import annotations

from collections.abc import Callable
import logging
import os
import re
import secrets
import socket
import threading
from typing import Any

from local.aws.template import dynamodb_table_specs, resources_of_type

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: the ARNs the embedded AWS gives
PARTITION = "aws"
DATA_BUCKET = "crimecast-local-data"
_applied: set[str] = set()  # the patches of moto applied in this process
_applying = threading.Lock()


def function_arn(name: str) -> str:
    """A function's ARN on the embedded Lambda."""
    return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"


def table_name(logical_id: str) -> str:
    """The name the embedded AWS gives a template's table (``provision`` creates it so)."""
    return f"crimecast-local-{logical_id}"


def environment_name(logical_id: str) -> str:
    """The variable that names a resource to the functions: ``SeriesTable`` -> ``SERIES_TABLE``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).upper()


def patch_once(patch: Callable[[], None]) -> None:
    """Apply a patch of moto once per process, whichever thread asks first."""
    key = f"{patch.__module__}.{patch.__qualname__}"
    with _applying:
        if key not in _applied:
            patch()
            _applied.add(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> Any:
    """moto's server on a free port; this process's AWS clients (and its children's) pointed at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
    })
    return server


def provision(template: dict[str, Any]) -> dict[str, str]:
    """Create the template's bucket, tables and signing secret; return the functions' environment."""
    import boto3

    env: dict[str, str] = {}
    boto3.client("s3").create_bucket(Bucket=DATA_BUCKET)
    env["DATA_BUCKET"] = DATA_BUCKET
    for logical_id, spec in dynamodb_table_specs(template).items():
        name = table_name(logical_id)
        boto3.client("dynamodb").create_table(TableName=name, **spec)
        env[environment_name(logical_id)] = name
    for logical_id in resources_of_type(template, "AWS::SecretsManager::Secret"):
        secret = boto3.client("secretsmanager").create_secret(Name=f"crimecast-local-{logical_id}",
                                                              SecretString=secrets.token_urlsafe(48))
        env["JWT_SECRET_ARN"] = secret["ARN"]
    return env
