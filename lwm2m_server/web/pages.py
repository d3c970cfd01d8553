"""Page routes of the dashboard (``/``, ``/login``, ``/devices/{ep}``, ``/models``, ``/rollouts[/{id}]``,
``/events``) and the ``/static`` assets. Each page is a shell: its data comes from the REST API from JS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from lwm2m_server import __version__

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

router = APIRouter(include_in_schema=False)
# Validated like the API's own path parameters (the page reads them back from its URL, never from the server).
EndpointParam = Annotated[str, PathParam(min_length=1, max_length=256)]
RolloutParam = Annotated[str, PathParam(min_length=1, max_length=64)]

NAV = (("fleet", "/", "Fleet"), ("models", "/models", "Models"), ("rollouts", "/rollouts", "Rollouts"),
       ("events", "/events", "Events & audit"))  # fmt: skip


def setup(app: FastAPI, server: Any) -> None:
    """Called by ``create_app``: serve the package's static assets."""
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def _page(request: Request, page: str, title: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, f"{page}.html",
        {"page": page, "title": title, "nav": NAV, "version": __version__, **context},
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


@router.get("/", response_class=HTMLResponse)
async def fleet_page(request: Request) -> HTMLResponse:
    return _page(request, "fleet", "Fleet")


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login", "Log in")


@router.get("/devices/{endpoint}", response_class=HTMLResponse)
async def device_page(request: Request, endpoint: EndpointParam) -> HTMLResponse:
    return _page(request, "device", "Device")


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request) -> HTMLResponse:
    return _page(request, "models", "Models")


@router.get("/rollouts", response_class=HTMLResponse)
async def rollouts_page(request: Request) -> HTMLResponse:
    return _page(request, "rollouts", "Rollouts")


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
async def rollout_page(request: Request, rollout_id: RolloutParam) -> HTMLResponse:
    return _page(request, "rollout", "Rollout")


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request) -> HTMLResponse:
    return _page(request, "events", "Events & audit")
