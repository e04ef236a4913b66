"""What the API benches share: a sample collection in a fresh home, a real `uvicorn` server process,
and percentiles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ember.platform.samples import export_python_reference
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from ember.platform.types import IngestReport

QUERIES = [
    "how does the with statement work",
    "exception handling try except finally",
    "operator precedence",
    "defining a class with methods",
    "lambda expressions",
    "how are floating point numbers formatted",
    "global and nonlocal names",
    "the import system",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prepare_home(workdir: Path, topics: int, **settings: object) -> tuple[EmberService, IngestReport]:
    """A fresh home under ``workdir`` with the first ``topics`` pydoc topics ingested as 'bench'."""
    shutil.rmtree(workdir, ignore_errors=True)
    home, corpus = workdir / "home", workdir / "topics"
    chosen = sorted(export_python_reference(workdir / "all-topics").glob("*.txt"))[:topics]
    corpus.mkdir(parents=True)
    for path in chosen:
        shutil.copy(path, corpus / path.name)
    service = EmberService(Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}", **settings))
    return service, service.ingest(str(corpus), "bench")


def server_env(service: EmberService, **extra: str) -> dict[str, str]:
    """The environment of a server process over ``service``'s home and database, auth on."""
    s = service.settings
    env = os.environ | {
        "EMBER_HOME": str(s.home),
        "EMBER_DATABASE_URL": s.effective_database_url,
        "EMBER_LLM_MODEL": s.llm_model,
        "EMBER_API_AUTH": "1",
        "EMBER_API_CONCURRENCY_PER_KEY": "64",
    }
    return env | extra


def start_server(env: dict, port: int, source: Path | None = None) -> subprocess.Popen:
    """``ember serve``'s app in a uvicorn process; ``source``: run another checkout's code (an A/B)."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "ember.platform.api.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if source is not None:
        env = env | {"PYTHONPATH": str(source.resolve())}
    server = subprocess.Popen(command, env=env, cwd=source)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the API server did not start within 120 s")
