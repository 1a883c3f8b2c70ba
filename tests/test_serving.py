"""``hymirec serve`` in-process (ASGI client): served lists equal offline ones for the same users
and state (HyMiRec with near-line summaries, SASRec in one pass), events are idempotent, the
online path's reads do not grow with the history, and bad requests get 4xx with a message."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from redis_server import redis_server
from serving_runs import train_run

from hymirec.cli import main
from hymirec.runs.recommend import recommend, recommend_for_user
from hymirec.runs.restored import RestoredRun
from hymirec.serving.app import create_app
from hymirec.serving.config import ServeConfig
from hymirec.serving.users import CoarseSummaryEncoder, FullHistoryEncoder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYMIREC_DATA_DIR", str(root / "cache"))
        yield {name: RestoredRun.load(train_run(root / name, name)) for name in ("hymirec", "sasrec", "hllm")}


def _client(run: RestoredRun, tmp_path, **settings) -> TestClient:
    # The worker only when a test asks for it: its passes would race the assertions.
    settings = {"refresh_poll_seconds": 3600.0, "store": f"sqlite:{tmp_path / 'serve.sqlite'}", **settings}
    return TestClient(create_app(run, ServeConfig(**settings)))


def _served(client: TestClient, user: str, **params) -> dict:
    response = client.get(f"/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("model", ["hymirec", "sasrec", "hllm"])
def test_served_top_k_equals_offline_top_k(runs, tmp_path, model):
    run = runs[model]
    expected_encoder = CoarseSummaryEncoder if model == "hymirec" else FullHistoryEncoder
    with _client(run, tmp_path) as client:
        assert type(client.app.state.service.encoder) is expected_encoder
        for user in (1, 7, 30):
            for merge in ("max", "round_robin"):
                offline = recommend_for_user(run, user, 5, merge=merge)
                served = _served(client, str(user), k=5, merge=merge)
                assert [r["item"] for r in served["items"]] == [str(r.item) for r in offline]
                np.testing.assert_allclose([r["score"] for r in served["items"]], [r.score for r in offline],
                                           rtol=1e-4, atol=1e-5)
                assert [r["interest"] for r in served["items"]] == [r.interest for r in offline]
                assert served["fallback"] is None and served["items"][0]["title"].startswith("item ")
        if model == "hymirec":
            # The first request of each user computed the summary; the later ones read it.
            text = client.get("/metrics").text
            assert 'hymirec_summary_cache_total{result="miss"} 3.0' in text
            assert 'hymirec_summary_cache_total{result="hit"} 3.0' in text


def test_a_redis_store_serves_the_same_lists(runs, tmp_path):
    run = runs["hymirec"]
    with redis_server(tmp_path / "redis") as url, _client(run, tmp_path, store=url) as client:
        for user in (3, 12):
            offline = recommend_for_user(run, user, 5)
            assert [r["item"] for r in _served(client, str(user), k=5)["items"]] == [str(r.item) for r in offline]
            assert _served(client, str(user), k=5)["summary"] == "hit"


def test_an_hnsw_index_serves_the_exact_lists_of_a_small_catalogue(runs, tmp_path):
    run = runs["hymirec"]
    with _client(run, tmp_path, index="hnsw") as client:
        for user in (2, 9):
            offline = recommend_for_user(run, user, 5)
            assert [r["item"] for r in _served(client, str(user), k=5)["items"]] == [str(r.item) for r in offline]


def test_new_events_are_in_the_next_request_and_the_summary_refreshes_near_line(runs, tmp_path):
    run = runs["hymirec"]
    with _client(run, tmp_path, refresh_events=2) as client:
        service = client.app.state.service
        assert _served(client, "4")["summary"] == "miss"
        new = [{"event_id": f"n{i}", "item": str(item), "timestamp": 10**9 + i} for i, item in enumerate([3, 11])]
        assert client.post("/users/4/events", json={"events": new}).json() == {"user": "4", "added": 2,
                                                                                 "duplicates": 0}
        items, times = run.split.sequences.user(4)
        items, times = np.append(items, [3, 11]), np.append(times, [10**9, 10**9 + 1])
        stale = _served(client, "4", k=5)
        # The new events are read at once (the recent window; their items left out) while the
        # summary lags until the near-line pass.
        assert stale["summary"] == "hit" and not {"3", "11"} & {r["item"] for r in stale["items"]}
        assert client.app.state.refresher.run_once() == 1
        assert client.app.state.refresher.run_once() == 0
        offline = recommend(run.model, items, times, 5, run.cosine, run.max_len, exclude=items,
                            catalogue=run.catalogue())
        fresh = _served(client, "4", k=5)
        assert [r["item"] for r in fresh["items"]] == [str(r.item) for r in offline]
        assert service.metrics.refreshes._value.get() == 1


def test_online_reads_do_not_grow_with_the_history(runs, tmp_path):
    with _client(runs["hymirec"], tmp_path) as client:
        reads = {}
        for length in (10, 400):
            events = [{"event_id": str(i), "item": str(1 + i % 4)} for i in range(length)]
            user = f"long{length}"
            assert client.post(f"/users/{user}/events", json={"events": events}).status_code == 200
            miss = _served(client, user, k=3)
            # A miss also reads the latest max_len (6) events, once, to compute the summary.
            assert miss["summary"] == "miss" and 9 * 16 <= miss["bytes_read"] <= 9 * 16 + 4 * 8
            hit = _served(client, user, k=3)
            assert hit["summary"] == "hit" and {r["item"] for r in hit["items"]}.isdisjoint({"1", "2", "3", "4"})
            reads[length] = hit["bytes_read"]
        # 3 recent events + a [c, H] float32 summary + at most the 4 seen items, found among the
        # candidates: bounded whatever the history's length.
        assert all(3 * 16 + 2 * 32 * 4 <= read <= 3 * 16 + 2 * 32 * 4 + 4 * 8 for read in reads.values())


def test_events_are_idempotent_and_listed_as_stored(runs, tmp_path):
    with _client(runs["sasrec"], tmp_path, import_history=False) as client:
        body = {"events": [{"event_id": "a", "item": "3", "timestamp": 5}, {"event_id": "b", "item": "4"}]}
        assert client.post("/users/x/events", json=body).json()["added"] == 2
        assert client.post("/users/x/events", json=body).json() == {"user": "x", "added": 0, "duplicates": 2}
        listed = client.get("/users/x/events", params={"limit": 10}).json()["events"]
        assert [(e["event_id"], e["item"]) for e in listed] == [("a", "3"), ("b", "4")] and listed[0]["timestamp"] == 5
        assert client.get("/users/x/events", params={"limit": 1}).json()["events"][0]["event_id"] == "b"


def test_unknown_and_empty_users(runs, tmp_path):
    run = runs["sasrec"]
    with _client(run, tmp_path, import_history=False) as client:
        for path in ("/users/ghost/recommendations", "/users/ghost/events"):
            response = client.get(path)
            assert response.status_code == 404 and "user 'ghost' is unknown" in response.json()["detail"]
        assert client.post("/users/new/events", json={"events": []}).json()["added"] == 0
        served = _served(client, "new", k=3)
        counts = np.bincount(run.split.dataset.interactions["item"], minlength=21)
        assert served["fallback"] == "popular" and served["summary"] == "none"
        assert [int(r["item"]) for r in served["items"]] == list(np.argsort(-counts, kind="stable")[:3])
        assert all(r["interest"] is None for r in served["items"])


def test_bad_requests_get_4xx_with_a_message(runs, tmp_path):
    with _client(runs["sasrec"], tmp_path, max_k=50, max_body_bytes=2048, max_events=5) as client:
        for k in (0, -1, 51, "ten"):
            response = client.get("/users/1/recommendations", params={"k": k})
            assert response.status_code == 422 and response.json()["detail"], k
        assert client.get("/users/1/recommendations", params={"merge": "min"}).status_code == 422
        bad_item = {"events": [{"event_id": "ok", "item": "3"}, {"event_id": "bad", "item": "no-such-item"}]}
        response = client.post("/users/1/events", json=bad_item)
        assert response.status_code == 404 and "item 'no-such-item' is not in the catalogue" in response.json()["detail"]
        assert "ok" not in {e["event_id"] for e in client.get("/users/1/events").json()["events"]}
        big = {"events": [{"event_id": str(i) * 40, "item": "3"} for i in range(40)]}
        assert client.post("/users/1/events", json=big).status_code == 413
        many = {"events": [{"event_id": str(i), "item": "3"} for i in range(6)]}
        response = client.post("/users/1/events", json=many)
        assert response.status_code == 422 and "at most 5 items" in str(response.json()["detail"])
        assert client.app.openapi()["components"]["schemas"]["EventsIn"]["properties"]["events"]["maxItems"] == 5
        for body in ({"events": [{"event_id": "", "item": "3"}]}, {"events": [{"item": "3"}]},
                     {"events": [{"event_id": "e", "item": "3", "path": "/etc/passwd"}]}, {"nothing": []},
                     {"events": [{"event_id": "e", "item": "3", "timestamp": -1}]}, [1, 2], "text"):
            assert client.post("/users/1/events", json=body).status_code == 422, body
        assert client.post("/users/1/events", content=b"{not json", headers={"content-type": "application/json"}
                           ).status_code == 422
        assert client.get("/users/" + "u" * 200 + "/events").status_code == 422
        assert client.get("/nowhere").status_code == 404


def test_api_key_health_and_metrics(runs, tmp_path):
    with _client(runs["sasrec"], tmp_path, api_key="sesame") as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "model": "sasrec", "items": 20}
        assert client.get("/users/1/recommendations").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/users/1/recommendations", headers={"X-API-Key": "sesame"}).status_code == 200
        text = client.get("/metrics", headers={"X-API-Key": "sesame"}).text
        assert 'hymirec_requests_total{route="/users/{user}/recommendations",status="401"} 1.0' in text
        assert 'hymirec_request_seconds_count{route="/users/{user}/recommendations"} 2.0' in text
        assert 'hymirec_model_info{encoder="FullHistoryEncoder",model="sasrec"' in text
        assert "hymirec_bytes_read_per_request_count 1.0" in text
        schema = client.get("/openapi.json").json()
        assert "401" in schema["paths"]["/users/{user}/recommendations"]["get"]["responses"]
        assert "security" in schema["paths"]["/metrics"]["get"] and "security" not in schema["paths"]["/healthz"]["get"]
    # Without a key, neither the key nor its 401 is documented: the schema promises what is enforced.
    (tmp_path / "open").mkdir()
    with _client(runs["sasrec"], tmp_path / "open") as client:
        schema = client.get("/openapi.json").json()
        assert not any("security" in op or "401" in op["responses"]
                       for path in schema["paths"].values() for op in path.values())


def test_serve_refuses_a_missing_run_and_bad_settings_before_starting(runs, tmp_path, capsys):
    assert main(["serve", "--run", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'} is not a finished run" in capsys.readouterr().err
    run = str(runs["sasrec"].run_dir)
    for argv, message in ((["--store", "mongodb://x"], "expected sqlite:PATH or redis://HOST:PORT/DB"),
                          (["--max-k", "0"], "serve max_k must be >= 1, got 0"),
                          (["--port", "70000"], "serve port must be in 1..65535, got 70000")):
        assert main(["serve", "--run", run, *argv]) == 2
        assert message in capsys.readouterr().err
