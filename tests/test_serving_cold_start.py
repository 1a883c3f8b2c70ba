"""``POST /items``: a new item's fields go through the run's content encoder and codebook into
the model and the catalogue; it is recommendable on the next request, users' events may name it,
it is still there after a restart, and servers sharing a store take in each other's items. Models without a content encoder refuse with the reason."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from redis_server import redis_server
from serving_runs import pretrained_encoder, train_run

from hymirec.runs.restored import RestoredRun
from hymirec.serving.app import create_app
from hymirec.serving.config import ServeConfig


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYMIREC_DATA_DIR", str(root / "cache"))
        items = {"encoder": {"source": str(pretrained_encoder(root))}, "item_ids": True}
        yield train_run(root, "hymirec", items=items)


def _client(run: RestoredRun, store) -> TestClient:
    config = ServeConfig(store=f"sqlite:{store}", refresh_poll_seconds=3600.0)
    return TestClient(create_app(run, config))


def test_a_new_item_is_encoded_like_the_catalogue_and_recommendable(run_dir, tmp_path):
    run = RestoredRun.load(run_dir)
    model = run.model
    with torch.no_grad():
        # Item 3's text ("title: item 3") through the model without its learned id.
        expected = F.normalize(model.items.proj(model.items.text[3]), dim=-1)
        expected_history = model.history(torch.tensor([3]))[0]
    with _client(run, tmp_path / "serve.sqlite") as client:
        response = client.post("/items", json={"item": "new", "fields": {"title": "item 3"}})
        assert response.status_code == 200, response.text
        added = response.json()
        # 2 one-byte codes + 2 float16 scales; one item added since the codebook was fitted.
        assert added["id"] == 21 and added["item"] == "new" and added["code_bytes"] == 6
        assert added["drift"]["recent_cosine"] == pytest.approx(1.0, abs=0.2)
        torch.testing.assert_close(model.history(torch.tensor([21]))[0], expected_history)
        catalogue = client.app.state.service.catalogue
        torch.testing.assert_close(catalogue.vectors[21], expected, rtol=1e-5, atol=1e-6)
        # Recommendable at once: a user's whole unseen catalogue includes it.
        client.post("/users/fresh/events", json={"events": [{"event_id": "1", "item": "5"}]})
        listed = client.get("/users/fresh/recommendations", params={"k": 30}).json()["items"]
        assert "new" in {r["item"] for r in listed} and len(listed) == 20
        # Events may name it; the model reads it (recent window and long history) and it is seen.
        events = [{"event_id": str(i), "item": item} for i, item in enumerate(["new", "2", "7", "9", "new", "4"])]
        assert client.post("/users/u/events", json={"events": events}).json()["added"] == 6
        served = client.get("/users/u/recommendations", params={"k": 5}).json()
        assert served["summary"] == "miss" and "new" not in {r["item"] for r in served["items"]}
        assert client.post("/items", json={"item": "new", "fields": {"title": "again"}}).status_code == 409
        assert client.post("/items", json={"item": "x", "fields": {}}).status_code == 422
        assert client.post("/items", json={"item": "x", "fields": {"title": "t"}, "extra": 1}).status_code == 422
    # A restart on the same store rebuilds the added item the same way.
    restarted = RestoredRun.load(run_dir)
    with _client(restarted, tmp_path / "serve.sqlite") as client:
        catalogue = client.app.state.service.catalogue
        assert len(catalogue) == 21 and catalogue.item("new") == 21
        torch.testing.assert_close(catalogue.vectors[21], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(restarted.model.items.ids.weight[21].detach().numpy(), 0)


def test_models_without_a_content_encoder_refuse_new_items(tmp_path, monkeypatch):
    monkeypatch.setenv("HYMIREC_DATA_DIR", str(tmp_path / "cache"))
    run = RestoredRun.load(train_run(tmp_path, "sasrec"))
    with _client(run, tmp_path / "serve.sqlite") as client:
        response = client.post("/items", json={"item": "new", "fields": {"title": "t"}})
        assert response.status_code == 409 and "model 'sasrec' has no content encoder" in response.json()["detail"]
        assert len(client.app.state.service.catalogue) == 20


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_servers_sharing_a_store_take_in_each_others_items(run_dir, tmp_path, kind):
    with ExitStack() as stack:
        url = (f"sqlite:{tmp_path / 'serve.sqlite'}" if kind == "sqlite"
               else stack.enter_context(redis_server(tmp_path / "redis")))
        servers = [stack.enter_context(TestClient(create_app(RestoredRun.load(run_dir), ServeConfig(
            store=url, refresh_poll_seconds=3600.0)))) for _ in range(2)]
        a, b = servers
        assert a.post("/items", json={"item": "from-a", "fields": {"title": "item 3"}}).json()["id"] == 21
        # b's next request takes it in: an event may name it.
        events = [{"event_id": "1", "item": "from-a"}, {"event_id": "2", "item": "5"}]
        assert b.post("/users/u/events", json={"events": events}).json()["added"] == 2
        # A race for the next id: a stores item 22 while b, not having seen it, asks the store for
        # id 22 too; b is told it is taken, takes a's item in and stores its own as 23.
        assert a.post("/items", json={"item": "a-again", "fields": {"title": "item 4"}}).json()["id"] == 22
        store_b, looks = b.app.state.service.store, []
        stored_items = store_b.items
        # b's first look at the store comes before a's write lands.
        store_b.items = lambda after=0: looks.append(after) or ([] if len(looks) == 1 else stored_items(after))
        assert b.post("/items", json={"item": "from-b", "fields": {"title": "item 7"}}).json()["id"] == 23
        assert looks == [21, 21, 22]  # looked, lost id 22 to a, took a's item in, then its own
        assert b.post("/items", json={"item": "from-a", "fields": {"title": "x"}}).status_code == 409
        # Both servers hold the same catalogue, scored the same, and recommend the new items.
        for client in servers:
            client.post("/users/fresh/events", json={"events": [{"event_id": "1", "item": "5"}]})
            listed = {r["item"] for r in client.get("/users/fresh/recommendations", params={"k": 30}).json()["items"]}
            assert {"from-a", "a-again", "from-b"} <= listed and len(listed) == 22
        catalogues = [client.app.state.service.catalogue for client in servers]
        assert [c.item(raw) for c in catalogues for raw in ("from-a", "a-again", "from-b")] == [21, 22, 23] * 2
        torch.testing.assert_close(catalogues[0].vectors, catalogues[1].vectors)
