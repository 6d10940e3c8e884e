"""The read-only web app over a results store (``lrpilot dashboard``): Starlette, served by uvicorn.

Pages (all GET, HTML rendered server-side, figures inline SVG; nothing is fetched from another host):

- ``/``: the stored tasks;
- ``/task/{task}``: run settings, the decision, the ranked table (``?by=&fn=&status=&budget=&seeds=&sort=&desc=&
  page=&per=``; ``refresh=1`` recomputes the ranking); pick policies to draw or compare;
- ``/task/{task}/curves?p=POLICY&p=...&budget=&band=minmax|std``: their curves with seed bands and their runs;
- ``/task/{task}/compare?p=A&p=B&budget=``: the paired difference of two policies on validation and test;
- ``/task/{task}/run/{id}?policy=POLICY``: one run (record, distilled policy, cost, fingerprint);
- ``/task/{task}/range-tests``: the stored range tests.

A bad parameter is a 400 page naming it; an unknown task or run a 404 page.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

from lrpilot.decision.ranking import ORDERS
from lrpilot.errors import LRPilotError
from lrpilot.extras import require
from lrpilot.present import figures, views
from lrpilot.present.render import render
from lrpilot.vocabulary import clip

WHAT = "lrpilot dashboard"


def open_store(db: str | None) -> Any:
    """The store at ``db`` (a path or URL; default as every command), refusing an SQLite file that does not exist
    (a read-only dashboard creates no store)."""
    from lrpilot.store import Store
    from lrpilot.store.urls import mask, resolve

    url = resolve(db)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise LRPilotError(f"no results store at {mask(url)}: pass --db with an existing store (or set LRPILOT_DB)")
    return Store(db)


def make_app(store: Any, ttl: float = 30.0) -> Any:
    """The Starlette app over ``store`` (see the module for its pages)."""
    require("starlette", "dashboard", WHAT)
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    pages = Pages(views.Views(store, ttl), store)

    def route(path: str, method: Any) -> Route:
        def endpoint(request: Any) -> HTMLResponse:
            try:
                return HTMLResponse(method(request.path_params, request.query_params))
            except NotFound as e:
                return HTMLResponse(_error(str(e)), status_code=404)
            except LRPilotError as e:
                return HTMLResponse(_error(str(e)), status_code=400)
        return Route(path, endpoint)

    return Starlette(routes=[route("/", pages.tasks), route("/task/{task}", pages.task),
                             route("/task/{task}/curves", pages.curves), route("/task/{task}/compare", pages.compare),
                             route("/task/{task}/run/{run_id:int}", pages.run),
                             route("/task/{task}/range-tests", pages.range_tests)])


class NotFound(LRPilotError):
    """A task or run that the store does not hold."""


def _error(message: str) -> str:
    return render("error.html", title="lrpilot dashboard: error", crumbs=[("tasks", "/")], message=message)


class Pages:
    """One method per page: (path parameters, query parameters) -> HTML."""

    def __init__(self, views_: views.Views, store: Any):
        self.views, self.store = views_, store

    def tasks(self, path: Any, query: Any) -> str:
        return render("tasks.html", title="lrpilot dashboard", crumbs=[], tasks=self.views.tasks(),
                      store=self.store.where)

    def _task(self, path: Any) -> tuple[str, dict[str, Any]]:
        name = path["task"]
        try:
            return name, self.views.task(name)
        except LRPilotError as e:
            raise NotFound(str(e)) from None

    def task(self, path: Any, query: Any) -> str:
        name, row = self._task(path)
        q = views.Query.parse(query)
        ranking, records, at = self.views.ranking(name, q.by, refresh=query.get("refresh") == "1")
        return render("task.html", title=f"task {name}", crumbs=_crumbs(name), task=name, table=views.table(ranking, q),
                      settings=views.settings(row, records), decisions=views.decisions(ranking),
                      computed=time.strftime("%H:%M:%S", time.localtime(at)), orders=list(ORDERS),
                      statuses=views.STATUSES, bands=figures.BANDS)

    def _picked(self, name: str, query: Any) -> tuple[Any, list[Any], str]:
        """The ranking, the policies picked (``p``, in order; none: the default overlay) and the band."""
        budget = views.Query.parse({"budget": query.get("budget", "")}).budget
        band = figures.check_band(query.get("band") or "minmax")
        ranking, _, _ = self.views.ranking(name)
        return ranking, views.overlay(ranking, query.getlist("p"), budget), band

    def curves(self, path: Any, query: Any) -> str:
        name, _ = self._task(path)
        _, picked, band = self._picked(name, query)
        groups = self.views.curves(name, picked)
        other = "std" if band == "minmax" else "minmax"
        params = [(k, v) for k, v in query.multi_items() if k != "band"] + [("band", other)]
        return render("curves.html", title=f"task {name}: curves", crumbs=_crumbs(name, ("curves", None)), task=name,
                      figure=figures.curves_svg(groups, band), groups=groups, band=band, other=other,
                      other_band=urlencode(params), bands=figures.BANDS,
                      caption=f"Mean over seeds with a band ({figures.BANDS[band]}) of: " + "; ".join(groups))

    def compare(self, path: Any, query: Any) -> str:
        name, _ = self._task(path)
        if len(query.getlist("p")) != 2:
            raise LRPilotError(f"pick exactly two policies to compare, not {len(query.getlist('p'))}: tick two "
                               "boxes in the ranking")
        _, (a, b), band = self._picked(name, query)
        runs = [self.views.policy_runs(name, r.policy, r.budget) for r in (a, b)]
        tops = {split: tuple(self._top(r, split) for r in (a, b)) for split in ("val", "test")}
        return render("compare.html", title=f"task {name}: A vs B", crumbs=_crumbs(name, ("compare", None)),
                      task=name, a=a, b=b, a_label=views.label(a), b_label=views.label(b),
                      differences=views.compare(*runs), tops=tops, method=views.method(), band=band,
                      bands=figures.BANDS, figure=figures.curves_svg(self.views.curves(name, [a, b]), band))

    @staticmethod
    def _top(row: Any, split: str) -> float:
        return row.mean["val_top1" if split == "val" else "top1"]

    def run(self, path: Any, query: Any) -> str:
        name, _ = self._task(path)
        policy = query.get("policy")
        if not policy:
            raise LRPilotError("a run's page needs its policy: ?policy=POLICY_TEXT (the links in the pages give it)")
        try:
            run = self.views.run(name, policy, path["run_id"])
        except LRPilotError as e:
            raise NotFound(str(e)) from None
        return render("run.html", title=f"run {run.id}: {clip(run.policy)} seed {run.seed}",
                      crumbs=_crumbs(name, (f"run {run.id}", None)), d=views.run_details(run),
                      figure=figures.curves_svg({f"seed {run.seed}": [run]}))

    def range_tests(self, path: Any, query: Any) -> str:
        name, _ = self._task(path)
        return render("range_tests.html", title=f"task {name}: range tests", crumbs=_crumbs(name, ("range tests", None)),
                      task=name, tests=views.range_tests(self.store.analyses(task=name)))


def _crumbs(task: str, *more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    from urllib.parse import quote

    return [("tasks", "/"), (task, f"/task/{quote(task, safe='')}"), *more]


def serve(db: str | None, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the dashboard of the store ``db`` on ``host:port`` until interrupted."""
    uvicorn = require("uvicorn", "dashboard", WHAT)
    with open_store(db) as store:
        app = make_app(store)
        print(f"lrpilot dashboard of {store.where} on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")


@contextlib.contextmanager
def serve_in_thread(db: str | None, ttl: float = 30.0) -> Iterator[str]:
    """The dashboard of ``db`` served on 127.0.0.1 and a free port in a background thread; yields its base URL
    (for tests and benchmarks) and stops it on exit."""
    uvicorn = require("uvicorn", "dashboard", WHAT)
    with open_store(db) as store, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        server = uvicorn.Server(uvicorn.Config(make_app(store, ttl), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise LRPilotError(f"the dashboard did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join()
