"""Index versions: a rebuild under load switches every request to the new version without a failed
request; a failed build leaves the previous version serving."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from app.extensions import db
from app.models import IndexBuild
from indexer.versions import current_version

LOAD_CLIENTS = 3


@pytest.fixture
def live_server(chat_app):
    server = make_server("127.0.0.1", 0, chat_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _index_root(chat_app):
    return chat_app.config["INDEX_DIR"]


@pytest.mark.slow
def test_rebuild_under_load_swaps_without_a_failed_request(chat_app, live_server):
    old = current_version(_index_root(chat_app))
    stop = threading.Event()
    statuses: list[int] = []
    versions: list[str] = []

    def load():
        with requests.Session() as http:
            while not stop.is_set():
                response = http.post(f"{live_server}/api/v1/chat", json={"message": "여행자 휴대품 면세한도"}, timeout=60)
                statuses.append(response.status_code)
                if response.ok:
                    versions.append(response.json()["index_version"])

    clients = [threading.Thread(target=load) for _ in range(LOAD_CLIENTS)]
    for c in clients:
        c.start()
    try:
        result = chat_app.test_cli_runner().invoke(args=["index", "build"])
        assert result.exit_code == 0, result.output
        new = current_version(_index_root(chat_app))
        assert new != old
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not versions or versions[-1] != new):
            time.sleep(0.2)
    finally:
        stop.set()
        for c in clients:
            c.join()
    assert statuses and set(statuses) == {200}, f"failed requests during the swap: {set(statuses)}"
    assert old in versions and versions[-1] == new


def test_failed_build_keeps_the_previous_version(chat_app, monkeypatch):
    import kg.graph

    before = current_version(_index_root(chat_app))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while writing the graph")

    monkeypatch.setattr(kg.graph.KnowledgeGraph, "build", broken)
    result = chat_app.test_cli_runner().invoke(args=["index", "build"])
    assert result.exit_code != 0
    assert current_version(_index_root(chat_app)) == before
    with chat_app.app_context():
        last = db.session.scalars(select(IndexBuild).order_by(IndexBuild.id.desc())).first()
        assert last.status == "failed" and "disk full" in last.error
    leftovers = [p.name for p in _index_root(chat_app).iterdir() if p.is_dir() and last.version in p.name]
    assert leftovers == []
    response = chat_app.test_client().post("/api/v1/chat", json={"message": "면세한도"})
    assert response.status_code == 200 and response.get_json()["index_version"] == before
