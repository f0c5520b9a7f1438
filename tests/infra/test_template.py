"""template.yaml, read as data: the functions' code folders, runtime, tables, routes, layers."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.template import api_routes, dynamodb_table_specs, load_template, resources_of_type
from tests.conftest import REPO

TEMPLATE = REPO / "template.yaml"
PROPHET_FUNCTIONS = {"IngestFunction", "EvaluateFunction", "RetrainPlanFunction", "RetrainTrainFunction"}
API_FUNCTIONS = {"AuthFunction", "PredictFunction", "EvaluateFunction", "IngestFunction", "RetrainFunction"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: res["Properties"] for name, res in resources_of_type(template, "AWS::Serverless::Function").items()}


def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def test_short_tags_are_read_in_long_form(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Globals"]["Function"]["Environment"]["Variables"]["DATA_BUCKET"] == {"Ref": "DataBucket"}
    api_auth = template["Resources"]["CrimecastApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]
    assert api_auth["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}


def test_every_function_has_its_code_folder(functions: dict[str, dict[str, Any]]) -> None:
    assert len(functions) == 10
    for name, properties in functions.items():
        folder = REPO / properties["CodeUri"]
        assert folder.is_dir(), f"{name}: {folder} is missing"
        assert folder.parent.name == "functions", name


def test_runtime_is_python312_everywhere(template: dict[str, Any], functions: dict[str, dict[str, Any]]) -> None:
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"
    assert all(p.get("Runtime", "python3.12") == "python3.12" for p in functions.values())
    for name, layer in resources_of_type(template, "AWS::Serverless::LayerVersion").items():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"], name


def test_tables_have_the_keys_the_code_uses(template: dict[str, Any]) -> None:
    specs = dynamodb_table_specs(template)
    assert set(specs) == {"SeriesTable", "RunsTable", "UsersTable", "LoginAttemptsTable", "IdempotencyTable"}
    assert all(spec["BillingMode"] == "PAY_PER_REQUEST" for spec in specs.values())

    series = specs["SeriesTable"]
    assert keys(series["KeySchema"]) == [("series", "HASH"), ("version", "RANGE")]
    (by_type,) = series["GlobalSecondaryIndexes"]
    assert by_type["IndexName"] == "ByTypeVersion"
    assert keys(by_type["KeySchema"]) == [("type_version", "HASH"), ("series", "RANGE")]
    assert by_type["Projection"] == {"ProjectionType": "ALL"}

    runs = specs["RunsTable"]
    assert keys(runs["KeySchema"]) == [("run_id", "HASH")]
    (by_kind,) = runs["GlobalSecondaryIndexes"]
    assert by_kind["IndexName"] == "ByKind"
    assert keys(by_kind["KeySchema"]) == [("kind", "HASH"), ("started_at", "RANGE")]
    ttl = template["Resources"]["RunsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}

    users = specs["UsersTable"]
    assert keys(users["KeySchema"]) == [("username", "HASH")]
    assert "GlobalSecondaryIndexes" not in users

    attempts = specs["LoginAttemptsTable"]  # the sign-in throttle: per account and client address, expiring
    assert keys(attempts["KeySchema"]) == [("username", "HASH"), ("address", "RANGE")]
    ttl = template["Resources"]["LoginAttemptsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}

    idempotency = specs["IdempotencyTable"]  # Powertools' default attribute names
    assert keys(idempotency["KeySchema"]) == [("id", "HASH")]
    ttl = template["Resources"]["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expiration", "Enabled": True}

    for name, spec in specs.items():  # every key attribute is defined, and only those
        used = {k["AttributeName"] for k in spec["KeySchema"]}
        used |= {k["AttributeName"] for index in spec.get("GlobalSecondaryIndexes", []) for k in index["KeySchema"]}
        assert {a["AttributeName"] for a in spec["AttributeDefinitions"]} == used, name
        assert all(a["AttributeType"] == "S" for a in spec["AttributeDefinitions"]), name


def test_every_api_route_has_a_function(template: dict[str, Any], functions: dict[str, dict[str, Any]]) -> None:
    routes = api_routes(template)
    table = {(r.method, r.path): r for r in routes}
    assert len(table) == len(routes), "a route is declared twice"
    assert {r.function for r in routes} == API_FUNCTIONS
    for route in routes:
        assert route.function in functions
        assert (REPO / route.codeuri).is_dir()
        assert route.handler == "app.lambda_handler"
    public = {(r.method, r.path) for r in routes if r.auth_none}
    assert public == {("POST", "/auth/token"), ("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs")}
    assert {("GET", "/predict"), ("GET", "/predict/map"), ("GET", "/evaluate"), ("POST", "/evaluate"),
            ("GET", "/runs/{run_id}"), ("POST", "/ingest"), ("POST", "/retrain"), ("GET", "/auth/me"),
            ("POST", "/auth/users"), ("DELETE", "/auth/users/{name}")} <= set(table)


def test_only_the_functions_that_need_pandas_carry_prophet(template: dict[str, Any], functions: dict[str, dict[str, Any]]) -> None:
    assert {"Ref": "ProphetLayer"} not in template["Globals"]["Function"]["Layers"]
    with_prophet = {name for name, p in functions.items() if {"Ref": "ProphetLayer"} in p.get("Layers", [])}
    assert with_prophet == PROPHET_FUNCTIONS
    layer = template["Resources"]["ProphetLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"  # keeps prophet_model.bin executable
    assert (REPO / layer["Properties"]["ContentUri"] / "Makefile").is_file()


def test_handlers_of_the_retrain_workflow(functions: dict[str, dict[str, Any]]) -> None:
    handlers = {name: p["Handler"] for name, p in functions.items() if p["CodeUri"] == "functions/retrain/"}
    assert handlers == {"RetrainFunction": "app.lambda_handler", "RetrainPlanFunction": "steps.plan_handler",
                        "RetrainTrainFunction": "steps.train_handler", "RetrainPromoteFunction": "steps.promote_handler",
                        "RetrainFailFunction": "steps.fail_handler"}


def test_retrain_workflow_is_a_distributed_map_over_s3(template: dict[str, Any]) -> None:
    definition = template["Resources"]["RetrainStateMachine"]["Properties"]["Definition"]
    assert definition["StartAt"] == "Plan"
    train = definition["States"]["Train"]
    assert train["Type"] == "Map"
    assert train["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert train["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert train["Next"] == "Promote"
    assert definition["States"]["Promote"]["Next"] == "Outcome"


def test_the_map_writes_its_results_to_s3_and_promote_reads_them_there(template: dict[str, Any]) -> None:
    """The Map's output would be every batch's output (256 KB a state): its ResultWriter puts
    them in the data bucket, where the state machine may write, and Promote gets only where."""
    machine = template["Resources"]["RetrainStateMachine"]["Properties"]
    train, promote = machine["Definition"]["States"]["Train"], machine["Definition"]["States"]["Promote"]
    writer = train["ResultWriter"]
    assert writer["Resource"] == "arn:aws:states:::s3:putObject"
    assert writer["Parameters"]["Bucket"] == "${DataBucket}" and machine["DefinitionSubstitutions"]["DataBucket"] == {
        "Ref": "DataBucket"}
    prefix = writer["Parameters"]["Prefix"]
    assert train["ResultPath"] == "$.results"
    assert promote["Parameters"]["Payload"] == {"run_id.$": "$.plan.run_id", "version.$": "$.plan.version",
                                                "map_results.$": "$.results.ResultWriterDetails"}
    statements = [s for p in machine["Policies"] for s in p.get("Statement", [])]
    (writes,) = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"} <= set(writes["Action"])
    assert writes["Resource"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{DataBucket}}/{prefix}/*"}
