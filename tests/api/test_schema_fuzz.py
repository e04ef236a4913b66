"""schemathesis over the served OpenAPI schema, against a real server with auth on: never a 5xx.

Every operation gets generated cases in schemathesis' two modes: positive (valid by the schema) and
negative (invalid on purpose: it must be turned away with a 4xx). Two in three positive cases are
steered at what exists (the served model, the real collection, a real conversation and upload job) so
that they get past the 404s into the code that does the work. Chat cases decode at most
FUZZ_MAX_TOKENS tokens. Operations are driven one by one with hypothesis (schemathesis' own pytest
plugin does not run under pytest 9). The counts are printed for docs/benchmarks.md (`pytest -s`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, not_a_server_error, response_schema_conformance

from ember.platform.errors import NotFoundError
from ember.platform.service import EmberService
from tests.api.conftest import FUZZ_MAX_TOKENS

CASES_PER_OPERATION = 12  # per operation and mode: about 300 cases, half a minute
SLOW_CASES_PER_OPERATION = 80  # about 2,000 cases
COLLECTION = "notes"  # the real collection: read, searched, uploaded to, never deleted or renamed
SCRATCH = "scratch"  # steered deletes and renames land here; recreated whenever one removed it

# Turning invalid data away: schemathesis' list, plus 413 for a body over Ember's size limit.
REJECTION_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTION_STATUSES}}}
)


def errors_in_openai_shape(ctx, response, case) -> None:  # noqa: ANN001 - a schemathesis check
    """Every 4xx carries {"error": {"message", "type", ...}}, which the OpenAI SDKs read."""
    if response.status_code < 400:
        return
    error = response.json().get("error")
    assert isinstance(error, dict), f"{response.status_code} without an 'error' object: {response.text[:300]}"
    assert isinstance(error.get("message"), str) and isinstance(error.get("type"), str), error


# Response bodies are only declared as JSON objects, so schema conformance is a light check; the
# error shape above is the stricter one.
POSITIVE_CHECKS = [not_a_server_error, response_schema_conformance, errors_in_openai_shape]
NEGATIVE_CHECKS = [not_a_server_error, negative_data_rejection, errors_in_openai_shape]


def modes_for(operation) -> list[GenerationMode]:  # noqa: ANN001 - a schemathesis APIOperation
    """Both modes, unless nothing in the request can be made invalid: a string path parameter is valid
    whatever it holds, and hypothesis would spend seconds failing to negate one."""
    negatable = bool(list(operation.body)) or any(
        p.location.value != "path" or p.definition.get("schema", {}).get("type") != "string"
        for p in operation.iter_parameters()
    )
    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negatable else [GenerationMode.POSITIVE]


def is_multipart(operation) -> bool:  # noqa: ANN001 - a schemathesis APIOperation
    return any(body.media_type == "multipart/form-data" for body in operation.body)


@dataclass
class Fuzz:
    schema: schemathesis.BaseSchema
    base_url: str
    service: EmberService
    headers: dict[str, str]
    model_id: str
    session: requests.Session = field(default_factory=requests.Session)
    statuses: Counter = field(default_factory=Counter)
    by_operation: dict[str, Counter] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    job_ids: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def run(self, examples: int) -> None:
        for result in self.schema.get_all_operations():
            operation = result.ok()
            for mode in modes_for(operation):
                self._run_operation(operation, mode, examples)

    def _run_operation(self, operation, mode: GenerationMode, examples: int) -> None:  # noqa: ANN001
        checks = POSITIVE_CHECKS if mode == GenerationMode.POSITIVE else NEGATIVE_CHECKS
        if is_multipart(operation) and mode == GenerationMode.NEGATIVE:
            # A multipart file part is bytes whatever it holds: schemathesis' "became a number" is a
            # valid upload of a file whose text is a number, so only the server-error checks apply.
            checks = [not_a_server_error, errors_in_openai_shape]
        statuses = self.by_operation.setdefault(f"{operation.label} ({mode.value})", Counter())

        # No shrinking, to keep the run bounded: a failure's message has the curl line that reproduces it.
        # Derandomized: every run sends the same cases, so a red CI is reproducible, not a roll of the dice.
        @given(case=operation.as_strategy(generation_mode=mode), aim=st.sampled_from([True, True, False]))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def one_case(case, aim: bool) -> None:  # noqa: ANN001
            if aim and mode == GenerationMode.POSITIVE:
                self.steer(case)
            response = case.call(session=self.session, headers=self.headers, timeout=120)
            self.statuses[response.status_code] += 1
            statuses[response.status_code] += 1
            if response.status_code == 202:
                self.job_ids.append(response.json()["id"])
            case.validate_response(response, checks=checks, headers=self.headers)

        try:
            one_case()
        except Exception as exc:  # noqa: BLE001 - collected, so that one run reports every failing operation
            self.failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]

    def steer(self, case) -> None:  # noqa: ANN001
        """Point the case at things that exist, keeping the generated values everywhere else."""
        params, body = case.path_parameters or {}, case.body
        if "name" in params:
            mutating = case.method.upper() in ("PATCH", "DELETE")
            params["name"] = SCRATCH if mutating else COLLECTION
            if mutating:
                self._ensure_scratch()
        if "model_id" in params:
            params["model_id"] = self.model_id
        if "conversation_id" in params:
            params["conversation_id"] = self._newest_conversation()
        if "job_id" in params and self.job_ids:
            params["job_id"] = self.job_ids[-1]
        if case.query and "collection" in case.query:
            case.query["collection"] = COLLECTION
        if not isinstance(body, dict):
            return
        if "model" in body:
            body["model"] = self.model_id
        if "collections" in body:
            body["collections"] = [COLLECTION]
        for cap in ("max_tokens", "max_completion_tokens"):  # under the cap: decoding, not a 400
            if isinstance(body.get(cap), int):
                body[cap] = min(body[cap], FUZZ_MAX_TOKENS)
        if isinstance(body.get("ember"), dict):
            body["ember"]["collection"] = COLLECTION
            if "conversation_id" in body["ember"]:
                body["ember"]["conversation_id"] = self._newest_conversation()

    def _ensure_scratch(self) -> None:
        try:
            self.service.get_collection(SCRATCH)
        except NotFoundError:
            self.service.create_collection(SCRATCH)

    def _newest_conversation(self) -> int:
        return max((c.id for c in self.service.list_conversations()), default=1)

    def start_conversation(self) -> None:
        """One real RAG answer, so that the conversation routes have something to read and delete."""
        body = {
            "model": self.model_id,
            "messages": [{"role": "user", "content": "How fast does the kettle boil?"}],
            "max_tokens": FUZZ_MAX_TOKENS,
            "ember": {"collection": COLLECTION},
        }
        response = self.session.post(
            f"{self.base_url}/v1/chat/completions", json=body, headers=self.headers, timeout=120
        )
        assert response.status_code == 200, response.text

    def unfinished_jobs(self, timeout_s: float = 60) -> list[str]:
        """Upload jobs still queued or running after ``timeout_s``: every job must end."""
        deadline = time.monotonic() + timeout_s
        pending = list(self.job_ids)
        while pending and time.monotonic() < deadline:
            pending = [job for job in pending if self._job_status(job) in ("queued", "running")]
            if pending:
                time.sleep(0.2)
        return pending

    def _job_status(self, job_id: str) -> str:
        response = self.session.get(f"{self.base_url}/v1/jobs/{job_id}", headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["status"]

    def report(self, seconds: float) -> str:
        lines = [
            f"{label}: {dict(sorted(statuses.items()))}"
            for label, statuses in self.by_operation.items()
            if statuses
        ]
        by_class = Counter(f"{status // 100}xx" for status in self.statuses.elements())
        lines.append(
            f"schema fuzz: {self.cases} cases, {self.server_errors} 5xx, {len(self.failures)} failing "
            f"operation/mode pairs, {len(self.job_ids)} upload jobs, {seconds:.0f} s; "
            f"statuses {dict(sorted(by_class.items()))}"
        )
        return "\n".join(lines)


@pytest.fixture
def fuzz(fuzz_service, fuzz_base_url) -> Fuzz:
    _, key = fuzz_service.create_key(f"fuzz-{time.monotonic_ns()}", ["admin"])
    schema = schemathesis.openapi.from_url(f"{fuzz_base_url}/openapi.json", config=CONFIG)
    model_id = Path(fuzz_service.settings.llm_model).name
    return Fuzz(schema, fuzz_base_url, fuzz_service, {"Authorization": f"Bearer {key}"}, model_id)


def run_and_report(fuzz: Fuzz, examples: int) -> None:
    started = time.perf_counter()
    fuzz.start_conversation()
    fuzz.run(examples)
    unfinished = fuzz.unfinished_jobs()
    print("\n" + fuzz.report(time.perf_counter() - started))
    assert fuzz.server_errors == 0, fuzz.statuses
    assert not fuzz.failures, "\n\n".join(f"{label}:\n{message}" for label, message in fuzz.failures.items())
    assert not unfinished, f"upload jobs that never ended: {unfinished}"


def test_no_server_errors(fuzz):
    run_and_report(fuzz, CASES_PER_OPERATION)
    assert fuzz.cases >= 200  # operations with tiny input spaces (GET /health) stop early; the rest ran


@pytest.mark.slow
def test_no_server_errors_at_length(fuzz):
    run_and_report(fuzz, SLOW_CASES_PER_OPERATION)


@dataclass
class Uploads:
    collection: str
    statuses: Counter = field(default_factory=Counter)


@pytest.fixture
def uploads(fuzz) -> Iterator[Uploads]:
    """A collection of its own, and the statuses of the uploads into it, printed when the test ends."""
    made = Uploads(fuzz.service.create_collection(f"uploads-{time.monotonic_ns()}").name)
    yield made
    statuses = dict(sorted(made.statuses.items()))
    print(f"\nupload names: {sum(made.statuses.values())} uploads, statuses {statuses}")


# The schema cannot say what a multipart file's name may be, so schemathesis never varies it; D3 and D7
# (issue 16) were both in names.
@given(name=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_any_upload_name_is_never_a_server_error(fuzz, uploads, name):
    response = fuzz.session.post(
        f"{fuzz.base_url}/v1/collections/{uploads.collection}/documents",
        files={"file": (name, b"Owls hunt at night and sleep in the day.\n", "text/plain")},
        headers=fuzz.headers,
        timeout=60,
    )
    uploads.statuses[response.status_code] += 1
    assert response.status_code < 500, (name, response.text)
    if response.status_code == 202:
        fuzz.job_ids.append(response.json()["id"])
        assert not fuzz.unfinished_jobs(), name
