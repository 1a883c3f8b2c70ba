"""The OpenAPI schema fuzzed with schemathesis under every check it has (the CLI's ``--checks all``):
whatever a client sends, the answer is never a 5xx; its status, content type, headers and body are
the ones the schema documents; invalid input is refused and valid input accepted; a method the
route lacks is refused with its ``Allow`` header."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from serving_runs import train_run

from hymirec.runs.restored import RestoredRun
from hymirec.serving.app import create_app
from hymirec.serving.config import ServeConfig

pytestmark = pytest.mark.slow
# An invalid body over the size limit is refused by its size (413) before it is read: a rejection
# schemathesis does not list by default.
REJECTIONS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYMIREC_DATA_DIR", str(root / "cache"))
        yield RestoredRun.load(train_run(root, "hymirec"))


@pytest.fixture(params=[None, "sesame"], ids=["open", "api-key"])
def api_schema(run, tmp_path, request):
    config = ServeConfig(store=f"sqlite:{tmp_path / 'serve.sqlite'}", refresh_poll_seconds=3600.0,
                         max_body_bytes=4096, api_key=request.param)
    settings = {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
    if request.param is not None:  # the right key: ignored_auth then checks that a wrong one is refused
        settings["headers"] = {"X-API-Key": request.param}
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(run, config),
                                          config=SchemathesisConfig.from_dict(settings))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(api_schema, mode):
    load_all_checks()
    checks = CHECKS.get_all()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 7  # events x2, recommendations, items, healthz, readyz, metrics
    statuses = set()
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
                  database=None)
        def fuzz(case):
            statuses.add((case.operation.path, case.call_and_validate(checks=checks).status_code))

        try:
            fuzz()
        except Unsatisfiable:
            # Invalid input is impossible for a route without parameters or body (GET /healthz).
            assert mode is GenerationMode.NEGATIVE and not operation.path_parameters and not operation.body
    # The fuzz got past the key (where the server asks for one) into the guarded routes: a 401 comes
    # before validation, so a 200 or a 422 there says the key was sent and accepted.
    reached = {status for path, status in statuses if path not in ("/healthz", "/readyz")}
    assert reached & ({200} if mode is GenerationMode.POSITIVE else {422}), statuses
