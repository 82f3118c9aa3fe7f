"""FastAPI runs a dependency that is a plain function on a worker thread, a hand-off that costs
CPU on every request: only the dependencies that wait on the database are plain functions."""

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from api.app import create_app
from truffle.settings import Settings

# Each reads or writes the database.
ON_A_WORKER_THREAD = {
    "caller_workspace",
    "get_admin",
    "get_admin_session",
    "get_form_admin",
    "get_page_workspace",
    "get_partner_workspace",
    "get_session",
    "get_workspace",
    "screening_page_of",
}


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router
            yield from api_routes(route.original_router.routes)


def runs_on_a_thread(call: Any) -> bool:
    function = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
    return not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function))


def threaded_dependencies(dependant: Any) -> Iterator[str]:
    for dependency in dependant.dependencies:
        if runs_on_a_thread(dependency.call):
            yield getattr(dependency.call, "__qualname__", type(dependency.call).__name__)
        yield from threaded_dependencies(dependency)


def test_only_dependencies_that_use_the_database_take_a_worker_thread(settings: Settings) -> None:
    routes = list(api_routes(create_app(settings).routes))
    paths = {route.path for route in routes}
    assert {"/ashby/assessment.start", "/s/{token}/begin", "/s/{token}/submit"} <= paths
    threaded = {name for route in routes for name in threaded_dependencies(route.dependant)}
    assert threaded == ON_A_WORKER_THREAD
    # The candidate's pages and Ashby's start take none beyond the caller's key check.
    hot = [route for route in routes if route.path.startswith("/s/")]
    hot += [route for route in routes if route.path == "/ashby/assessment.start"]
    assert {name for route in hot for name in threaded_dependencies(route.dependant)} == {
        "get_partner_workspace"
    }
