"""What moto's Step Functions interpreter (5.2) lacks, patched in so that the retrain state
machine runs as on AWS:

- the Distributed Map's ``ResultWriter`` writes only an empty manifest in moto: here it
  writes the result files too (``SUCCEEDED_0.json``, ``FAILED_0.json``: one entry per child
  execution, its ``Output`` as JSON text), as Step Functions does;
- moto does not enforce ``ToleratedFailurePercentage`` / ``ToleratedFailureCount`` (a Map run
  succeeds whatever its children did): here a Map run with more failed children than
  tolerated fails with ``States.ExceedToleratedFailureThreshold`` (``MapRunFailed``, then the
  state's Catch); its results are then not written (Step Functions writes them).

Child executions of the Distributed Map do not appear in the execution's history (moto keeps
no separate child executions or Map Run history); their outcomes are in the result files.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from local.aws.embedded import patch_once


def _patch_result_writer() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    def put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        outputs = env.stack.pop()  # the children's outputs, None for a child that failed
        # the module's client factory, read at each call: IAM signs it with the machine's role (local/aws/iam.py)
        s3 = resource_eval_s3.boto_client_for(service="s3", region=resource_runtime_part.region,
                                              state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        run_arn = record.map_run_arn
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        folder = f"{prefix}{run_arn.split(':')[-1]}/"
        execution = run_arn.replace(":mapRun:", ":execution:")
        entries: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
        for index, output in enumerate(outputs or []):
            entry = {"ExecutionArn": f"{execution}:{index}", "Name": str(index), "StateMachineArn": record.map_state_machine_arn}
            if output is None:
                entries["FAILED"].append({**entry, "Status": "FAILED", "Error": "States.TaskFailed",
                                          "Cause": "the child execution failed"})
            else:
                entries["SUCCEEDED"].append({**entry, "Status": "SUCCEEDED", "Output": json.dumps(output),
                                             "OutputDetails": {"Included": True}})
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, chunk in entries.items():
            if chunk:
                key = f"{folder}{status}_0.json"
                data = json.dumps(chunk).encode()
                s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=data)
                files[status].append({"Key": key, "Size": len(data)})
        manifest = f"{folder}manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=manifest, Body=json.dumps(
            {"DestinationBucket": parameters["Bucket"], "MapRunArn": run_arn, "ResultFiles": files}).encode())
        env.stack.append({"MapRunArn": run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": manifest}})

    resource_eval_s3.ResourceEvalS3._handle_put_object = staticmethod(put_object)


def _patch_tolerance() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )

    original = distributed.DistributedIterationComponent._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        items = record.item_counter
        _check_tolerance(env, record, items.total.get(), items.failed.get() + items.timed_out.get())

    distributed.DistributedIterationComponent._map_run = map_run
    # moto warns, on each definition it parses, that it ignores the tolerance: here it does not.
    logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor").addFilter(
        lambda record: "declarations currently have no effect" not in record.getMessage())


def _check_tolerance(env: Any, record: Any, total: int, failed: int) -> None:
    """States.ExceedToleratedFailureThreshold when more children failed than the Map tolerates."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    if not failed:
        return
    percentage = float(record.tolerated_failure_percentage or 0)
    count = int(record.tolerated_failure_count or 0)
    if failed <= count or 100.0 * failed / max(total, 1) <= percentage:
        return
    kind = StatesErrorNameType.StatesExceedToleratedFailureThreshold
    cause = (f"The specified tolerated failure threshold was exceeded: {failed} of {total} child executions failed "
             f"(tolerated: {percentage:g}% or {count})")
    raise FailureEventException(failure_event=FailureEvent(
        env=env, error_name=StatesErrorName(typ=kind), event_type=HistoryEventType.MapRunFailed,
        event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(error=kind.to_name(), cause=cause))))


def set_retry_time_scale(scale: float) -> None:
    """Scale the waits of the state machine's Retry (tests: 0.01 makes 2 s 20 ms); 1 is AWS's."""
    import time as real_time
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    retrier_decl.time = SimpleNamespace(sleep=lambda seconds: real_time.sleep(seconds * scale))


def install() -> None:
    """Patch moto's interpreter once per process (the Map's ResultWriter and tolerance)."""
    patch_once(_patch_result_writer)
    patch_once(_patch_tolerance)
