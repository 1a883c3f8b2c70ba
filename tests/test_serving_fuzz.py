"""The OpenAPI schema fuzzed with schemathesis: whatever a client sends, the answer is never a
5xx, its status is one the schema documents, and its content type the documented one."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from serving_runs import train_run

from hymirec.runs.restored import RestoredRun
from hymirec.serving.app import create_app
from hymirec.serving.config import ServeConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYMIREC_DATA_DIR", str(root / "cache"))
        run = RestoredRun.load(train_run(root, "hymirec"))
        config = ServeConfig(store=f"sqlite:{root / 'serve.sqlite'}", refresh_poll_seconds=3600.0,
                             max_body_bytes=4096)
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(run, config))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 7  # events x2, recommendations, items, healthz, readyz, metrics
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
                  database=None)
        def fuzz(case):
            case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance])

        try:
            fuzz()
        except Unsatisfiable:
            # Invalid input is impossible for a route without parameters or body (GET /healthz).
            assert mode is GenerationMode.NEGATIVE and not operation.path_parameters and not operation.body
