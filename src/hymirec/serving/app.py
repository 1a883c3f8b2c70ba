"""The FastAPI app of ``hymirec serve``.

The lifespan builds the service once (the restored run's model, its catalogue and codebook, the
store; the dataset histories imported when asked) and starts the near-line refresher; requests
only read and append. Every failure a client can cause is a 4xx with a message: an unknown user
or item 404, an invalid body or query 422 (FastAPI's validation shape; every limit is in the
schema), an item the run cannot add 409, a body over the limit 413, a missing or wrong API key 401
(only a server with a key documents and asks for one). The schema is fuzzed under every
schemathesis check (``tests/test_serving_fuzz.py``).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations at definition
# time, and their limits come from the config in scope there.
import gc
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from pydantic import Field, create_model

from hymirec import __version__
from hymirec.runs.restored import RestoredRun
from hymirec.serving.catalogue import UnknownItem
from hymirec.serving.cold_start import ColdStartError
from hymirec.serving.config import ServeConfig
from hymirec.serving.limits import BodyLimit
from hymirec.serving.metrics import ServingMetrics
from hymirec.serving.refresher import Refresher
from hymirec.serving.schemas import (
    AppendOut,
    DriftOut,
    ErrorOut,
    EventOut,
    EventIn,
    EventsIn,
    EventsOut,
    ItemIn,
    ItemOut,
    RecommendationsOut,
    RecommendedItem,
)
from hymirec.serving.service import ItemExists, NewEvent, RecommendationService, UnknownUser
from hymirec.serving.store import open_store

UserId = Annotated[str, Path(min_length=1, max_length=128)]
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False)


def _errors(**codes: str) -> dict:
    """OpenAPI entries of the 4xx answers a route gives beside FastAPI's 422 (``E404="..."``)."""
    return {int(code[1:]): {"model": ErrorOut, "description": text} for code, text in codes.items()}


UNAUTHORISED = "no valid X-API-Key header"
TOO_LARGE = "the body is over the size limit"
UNKNOWN_USER = "the user is unknown"


def create_app(run: RestoredRun, config: ServeConfig) -> FastAPI:
    """The app serving ``run`` with ``config`` (the service starts in the lifespan)."""
    metrics = ServingMetrics()
    app = FastAPI(title="hymirec", version=__version__, lifespan=_lifespan(run, config, metrics))
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.state.metrics = metrics
    _measure_requests(app, metrics)
    _answer_client_errors(app)
    # The key and its 401 are in the schema only where the server asks for a key: the documented
    # security is the enforced one (a client generator would otherwise send a key for nothing).
    guarded = [Depends(_authoriser(config.api_key))] if config.api_key is not None else []
    refused = _errors(E401=UNAUTHORISED) if guarded else {}
    app.include_router(_user_routes(config), dependencies=guarded, responses=refused)
    app.include_router(_item_routes(), dependencies=guarded, responses=refused)
    app.include_router(_health_routes(metrics, guarded, refused))
    return app


def _lifespan(run: RestoredRun, config: ServeConfig, metrics: ServingMetrics):
    """The lifespan: the service and its near-line refresher built once, stopped at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(config.store)
        service = RecommendationService(run, store, config, metrics)
        if config.import_history:
            service.import_history()
        refresher = Refresher(service)
        refresher.start()
        app.state.service, app.state.refresher = service, refresher
        # What is loaded lives as long as the server: out of the collector's sight, a full
        # collection no longer walks the run's millions of objects in the middle of a request.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            refresher.stop()
            store.close()

    return lifespan


def _authoriser(api_key: str) -> Callable[..., None]:
    """A dependency refusing a request without the server's API key."""

    def authorised(key: str | None = Depends(API_KEY)) -> None:
        if not (key and hmac.compare_digest(key, api_key)):
            raise HTTPException(401, "a valid X-API-Key header is required")

    return authorised


def _measure_requests(app: FastAPI, metrics: ServingMetrics) -> None:
    """Count every request and time it, per route and status."""

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - start)
        return response


def _answer_client_errors(app: FastAPI) -> None:
    """The service's exceptions a client can cause, as 4xx answers with the message."""

    # A well-formed request naming what is not there is a 404; one the run's state refuses (the
    # raw id exists, the run cannot encode new items) a 409. 422 stays FastAPI's validation error,
    # so that every 422 has the one shape the schema documents.
    @app.exception_handler(UnknownUser)
    @app.exception_handler(UnknownItem)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ItemExists)
    @app.exception_handler(ColdStartError)
    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)


def _service(request: Request) -> RecommendationService:
    return request.app.state.service


def _user_routes(config: ServeConfig) -> APIRouter:
    """Events in and out, and recommendations (their limits from ``config``)."""
    router = APIRouter()
    # The events limit is the server's setting; a body model of its own puts it in the schema.
    Events = create_model("EventsIn", __base__=EventsIn,
                          events=(list[EventIn], Field(max_length=config.max_events)))

    @router.post("/users/{user}/events", response_model=AppendOut,
                 responses=_errors(E404="an event's item is not in the catalogue (nothing is stored)",
                                   E413=TOO_LARGE, E400="a malformed Content-Length"))
    def post_events(user: UserId, body: Events, request: Request) -> AppendOut:
        """Append the user's events (registering the user; an empty list only registers them).
        Idempotent by event id; acknowledged only once stored durably."""
        events = [NewEvent(e.event_id, e.item, e.timestamp) for e in body.events]
        added, duplicates = _service(request).append(user, events)
        return AppendOut(user=user, added=added, duplicates=duplicates)

    @router.get("/users/{user}/events", response_model=EventsOut,
                responses=_errors(E404=UNKNOWN_USER))
    def get_events(user: UserId, request: Request,
                   limit: Annotated[int, Query(ge=1, le=config.max_events)] = 50) -> EventsOut:
        """The user's latest events as stored, oldest first."""
        rows = _service(request).events(user, limit)
        return EventsOut(user=user, events=[EventOut(event_id=e, item=i, timestamp=t) for e, i, t in rows])

    @router.get("/users/{user}/recommendations", response_model=RecommendationsOut,
                responses=_errors(E404=UNKNOWN_USER))
    def get_recommendations(user: UserId, request: Request,
                            k: Annotated[int, Query(ge=1, le=config.max_k)] = 10,
                            merge: Literal["max", "round_robin"] | None = None) -> RecommendationsOut:
        """The user's top k with scores, titles and the interest each came from; seen items left out."""
        svc = _service(request)
        served = svc.recommend(user, k, merge)
        titles, raw_ids = svc.catalogue.titles, svc.catalogue.raw_ids
        items = [RecommendedItem(item=raw_ids[r.item - 1], title=titles[r.item - 1], score=r.score,
                                 interest=r.interest or None) for r in served.items]
        return RecommendationsOut(user=user, k=k, merge=merge or svc.run.merge, fallback=served.fallback,
                                  summary=served.summary, bytes_read=served.bytes_read, items=items)

    return router


def _item_routes() -> APIRouter:
    """New items: the cold-start path."""
    router = APIRouter()

    @router.post("/items", response_model=ItemOut,
                 responses=_errors(E409="the raw id is already in the catalogue, or this run cannot add the item (no "
                                   "content encoder; fields that give none of its item text)", E413=TOO_LARGE,
                                   E400="a malformed Content-Length"))
    def post_item(body: ItemIn, request: Request) -> ItemOut:
        """Add a new item from its fields (content encoder -> codebook -> model -> catalogue);
        recommendable from the next request on."""
        new = _service(request).add_item(body.item, body.fields)
        drift = None if new.drift is None else DriftOut(recent_cosine=new.drift.recent_cosine,
                                                        baseline_cosine=new.drift.baseline_cosine,
                                                        needs_refresh=new.drift.needs_refresh)
        code_bytes = new.codes.nbytes + (0 if new.scales is None else new.scales.nbytes)
        return ItemOut(item=body.item, id=new.item, code_bytes=code_bytes, drift=drift)

    return router


def _health_routes(metrics: ServingMetrics, guarded: list, refused: dict) -> APIRouter:
    """Liveness and readiness (open to all), and the Prometheus metrics (behind the key, if any)."""
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "still loading"}})
    def readyz(request: Request) -> JSONResponse:
        """The model, catalogue and store are loaded."""
        svc = getattr(request.app.state, "service", None)
        if svc is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model": svc.run.config.model_name, "items": len(svc.catalogue)})

    @router.get("/metrics", dependencies=guarded, response_class=PlainTextResponse, responses=refused)
    def prometheus() -> PlainTextResponse:
        """Prometheus text: requests and latency per route, summary hits and misses, bytes read."""
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    return router
