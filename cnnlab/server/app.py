"""The Starlette application: routes, the live model, request checks and JSON errors.

Routes (all JSON unless noted):
    GET  /                      the page (static/index.html); /static/* its CSS and JS modules
    GET  /api/model             the live model: summary, explanation, receptive fields, filters
    POST /api/predict           body: a PNG/JPEG/BMP/GIF picture (the canvas or an upload), or
                                JSON {"example": N} (a test example) -> input pixels,
                                probabilities and every layer's feature maps
    POST /api/explain           {"pixels", "layer", "channel", "row", "col"} -> one unit, forward
                                and backward (for a Dense layer: "channel" is the unit)
    GET  /api/train/options     the Train page's choices and defaults
    POST /api/train/start       settings -> starts the one training run (409 while one runs)
    POST /api/train/stop | /api/train/resume | /api/train/use
    GET  /api/train/status      the run's snapshot; /api/train/events streams it (Server-Sent Events)
    POST /api/play/<name>       a playground's computation (``playgrounds.ENDPOINTS``: conv, pool,
                                params, ...): settings -> every number the page draws
    GET  /api/play/conv-presets the Convolution page's presets, with the live model's first filters

Model work runs in the thread pool under one lock (layers keep caches); training runs in its
own worker thread on its own model.
"""
from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import asdict
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cnnlab.server import inference, playgrounds
from cnnlab.server.security import HostOriginGuard
from cnnlab.server.training_worker import MODEL_DATA, MNIST_LIMIT, TrainingJob, TrainSettings
from cnnlab.server.validation import (MAX_IMAGE_BYTES, BadRequest, check_fields, check_image_bytes, get_int,
                                      get_pixels, read_body, read_json)

STATIC = Path(__file__).resolve().parent / "static"
EVENT_SECONDS = 0.25  # how often the event stream looks for a new snapshot


class LiveModel:
    """The model the Draw, Why and Model pages use, swapped by "Use this model"."""

    def __init__(self, model, label: str):
        self.lock = threading.Lock()
        self.model, self.label = model, label

    def swap(self, model, label: str) -> None:
        inference.image_shape(model)  # the lab draws single-channel images: refuse others first
        with self.lock:
            self.model, self.label = model, label


def _json_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _api(handler):
    """Wrap an endpoint: BadRequest -> its 4xx JSON; anything unexpected -> 500 JSON (logged)."""
    async def endpoint(request: Request):
        try:
            return await handler(request)
        except BadRequest as err:
            return _json_error(err.message, err.status)
        except Exception as err:  # noqa: BLE001  the server must outlive any request
            import traceback

            traceback.print_exc()
            return _json_error(f"internal error: {type(err).__name__}: {err}", 500)
    endpoint.__name__ = handler.__name__
    return endpoint


def _model_routes(live: LiveModel) -> list:
    """The page, and the Draw / Why / Model pages' endpoints on the live model."""
    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def get_model(request):
        def work():
            with live.lock:
                return inference.model_info(live.model, live.label)
        return JSONResponse(await run_in_threadpool(work))

    async def predict(request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            data = await read_json(request)
            check_fields(data, ("example",))
            index = get_int(data, "example", 0, 10**6)

            def work():
                with live.lock:
                    pixels, label = inference.example_pixels(live.model, index)
                    return inference.draw_result(live.model, pixels, label)
        elif ctype.startswith("image/") or ctype == "application/octet-stream":
            body = await read_body(request, MAX_IMAGE_BYTES)
            check_image_bytes(body)

            def work():
                with live.lock:
                    pixels = inference.image_pixels(live.model, body)
                    return inference.draw_result(live.model, pixels)
        else:
            raise BadRequest(f"Content-Type must be image/png (or another image type) or application/json; "
                             f"received {ctype or '(none)'!r}", 415)
        result = await run_in_threadpool(work)
        result["model"] = live.label
        return JSONResponse(result)

    async def explain(request):
        import numpy as np

        data = await read_json(request)
        check_fields(data, ("pixels", "layer", "channel", "row", "col"))

        def work():
            with live.lock:
                m = live.model
                hw = inference.image_shape(m)
                pixels = np.asarray(get_pixels(data, hw), dtype=np.uint8).reshape(hw)  # (H, W)
                layer = get_int(data, "layer", 0, len(m.layers) - 1)
                limit = 10**6
                return inference.explain_unit(m, pixels, layer, get_int(data, "channel", 0, limit, 0),
                                              get_int(data, "row", 0, limit, 0), get_int(data, "col", 0, limit, 0))
        return JSONResponse(await run_in_threadpool(work))

    return [Route("/", index), Route("/api/model", _api(get_model)),
            Route("/api/predict", _api(predict), methods=["POST"]),
            Route("/api/explain", _api(explain), methods=["POST"])]


def _train_routes(job: TrainingJob, live: LiveModel) -> list:
    """The Train page's endpoints: the one training run, its events, and "Use this model"."""
    async def train_options(request):
        return JSONResponse({"models": MODEL_DATA, "defaults": asdict(TrainSettings()), "mnist_limit": MNIST_LIMIT,
                             "toy_defaults": {"ox": {"epochs": 40, "batch_size": 16, "lr": 0.02},
                                              "lines": {"epochs": 15, "batch_size": 16, "lr": 0.02},
                                              "mnist": {"epochs": 2, "batch_size": 64, "lr": 0.001}}})

    async def train_start(request):
        settings = TrainSettings.from_json(await read_json(request))
        job.start(settings)
        return JSONResponse(job.snapshot())

    async def train_stop(request):
        await read_json(request)
        job.stop()
        return JSONResponse(job.snapshot())

    async def train_resume(request):
        await read_json(request)
        job.resume()
        return JSONResponse(job.snapshot())

    async def train_use(request):
        await read_json(request)
        model, label = await run_in_threadpool(job.trained_model)
        live.swap(model, label)
        return JSONResponse({"label": label})

    async def train_status(request):
        return JSONResponse(job.snapshot())

    async def train_events(request):
        async def stream():
            seen = -1
            while not await request.is_disconnected():
                snap = job.snapshot()
                if snap["version"] != seen:
                    seen = snap["version"]
                    yield f"data: {json.dumps(snap, allow_nan=False)}\n\n"
                    if snap["state"] not in ("running", "stopping", "finishing"):
                        return  # the page closes the stream at rest and reopens it on Start/Resume
                await asyncio.sleep(EVENT_SECONDS)
        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return [Route("/api/train/options", _api(train_options)),
            Route("/api/train/start", _api(train_start), methods=["POST"]),
            Route("/api/train/stop", _api(train_stop), methods=["POST"]),
            Route("/api/train/resume", _api(train_resume), methods=["POST"]),
            Route("/api/train/use", _api(train_use), methods=["POST"]),
            Route("/api/train/status", _api(train_status)),
            Route("/api/train/events", _api(train_events))]


def _playground_routes(live: LiveModel) -> list:
    """The playgrounds: POST /api/play/<name> for each of ``playgrounds.ENDPOINTS``, and the
    Convolution page's presets (which read the live model's first-layer filters)."""
    async def conv_presets(request):
        def work():
            with live.lock:
                return playgrounds.conv_presets(live.model, live.label)
        return JSONResponse(await run_in_threadpool(work))

    def play(compute):
        async def endpoint(request):
            data = await read_json(request)
            return JSONResponse(await run_in_threadpool(compute, data))
        endpoint.__name__ = f"play_{compute.__name__}"
        return endpoint

    return [Route("/api/play/conv-presets", _api(conv_presets)),
            *(Route(f"/api/play/{name}", _api(play(compute)), methods=["POST"])
              for name, compute in playgrounds.ENDPOINTS.items())]


async def _not_found(request, exc):
    return _json_error(f"no such page: {request.url.path}", 404)


async def _bad_method(request, exc):
    return _json_error(f"method {request.method} is not allowed for {request.url.path}", 405)


def create_app(model, label: str = "model", *, runs_dir="runs/lab", allowed_hosts=("127.0.0.1:8000",)) -> Starlette:
    """The lab's ASGI app for ``model`` (a single-channel image ``Sequential``).

    Args:
        model: the model the Draw, Why and Model pages start with.
        label: how the page names it (a zoo name or a file name).
        runs_dir: folder of the Train page's run folders (the browser never names a path).
        allowed_hosts: the ``Host`` values this server answers (``host:port``); any other Host
            or a foreign Origin gets 403 (DNS rebinding, cross-site requests).
    """
    inference.image_shape(model)
    live = LiveModel(model, label)
    job = TrainingJob(runs_dir)
    routes = [*_model_routes(live), *_train_routes(job, live), *_playground_routes(live),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, middleware=[Middleware(HostOriginGuard, allowed_hosts=allowed_hosts)],
                    exception_handlers={404: _not_found, 405: _bad_method})
    app.state.live, app.state.job = live, job
    return app
