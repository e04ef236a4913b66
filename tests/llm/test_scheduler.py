"""LLMScheduler on the real SmolLM2-Instruct weights: concurrent callers, cancellation, errors, shutdown."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ember.agents.backends import LocalBackend
from ember.llm.inference.chat import ChatModel
from ember.llm.inference.engine import Engine
from ember.llm.inference.scheduler import LLMScheduler, SchedulerClosed


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


QUESTIONS = [
    ask("What is the capital of France?"),
    ask("Name a primary color."),
    ask("Write one word about the sea."),
    ask("How many legs does a spider have?"),
]
# A request that would run for a long time unless cancelled: end-of-turn tokens do not stop it.
ENDLESS = {"max_tokens": 400, "stop_token_ids": set()}


@pytest.fixture
def chat_model(smollm2, smollm2_tokenizer) -> ChatModel:
    return ChatModel(Engine(smollm2, smollm2_tokenizer))


@pytest.fixture
def scheduler(chat_model):
    scheduler = LLMScheduler(chat_model)
    yield scheduler
    scheduler.close()
    assert not scheduler._thread.is_alive()  # other tests' services may run schedulers of their own
    assert (scheduler.waiting, scheduler.running) == (0, 0)


def wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_concurrent_greedy_outputs_equal_one_at_a_time_outputs(chat_model, scheduler):
    alone = [chat_model.chat(messages, max_tokens=12) for messages in QUESTIONS]

    def by_chat(messages):
        return scheduler.chat(messages, max_tokens=12)

    def by_stream(messages):
        deltas = list(scheduler.stream(messages, max_tokens=12))
        assert "".join(d.text for d in deltas).strip() == deltas[-1].result.text
        return deltas[-1].result

    with ThreadPoolExecutor(4) as pool:
        calls = [by_chat, by_stream, by_chat, by_stream]
        together = list(pool.map(lambda call, messages: call(messages), calls, QUESTIONS))
    assert together == alone
    assert (scheduler.completed, scheduler.cancelled, scheduler.failed) == (4, 0, 0)


def test_non_model_work_runs_beside_a_generation_and_model_work_waits_its_turn(chat_model, scheduler):
    first = scheduler.stream(QUESTIONS[0], **ENDLESS)
    next(first)  # the worker is now generating the first request
    looked_up = threading.Event()
    answers = []

    def handle_second_request():
        looked_up.set()  # stands for retrieval or SQL: plain Python, no model
        answers.append(scheduler.chat(QUESTIONS[1], max_tokens=12))

    second = threading.Thread(target=handle_second_request)
    second.start()
    assert looked_up.wait(5)
    wait_until(lambda: scheduler.waiting == 1)
    assert scheduler.running == 1 and second.is_alive() and not answers

    first.close()
    second.join(60)
    wait_until(lambda: scheduler.completed == 1)
    assert scheduler.cancelled == 1
    assert answers == [chat_model.chat(QUESTIONS[1], max_tokens=12)]


def test_closing_streams_early_cancels_them_and_the_next_request_still_runs(chat_model, scheduler):
    for _ in scheduler.stream(QUESTIONS[0], **ENDLESS):
        break  # dropping the iterator cancels the running request at its next token
    running = scheduler.stream(QUESTIONS[1], **ENDLESS)
    next(running)
    queued = scheduler.stream(QUESTIONS[2], max_tokens=12)
    wait_until(lambda: scheduler.waiting == 1)
    queued.close()  # cancelled while waiting: it never reaches the model
    assert list(queued) == []
    running.close()
    assert list(running) == []  # deltas produced after the close are dropped

    assert scheduler.chat(QUESTIONS[3], max_tokens=12) == chat_model.chat(QUESTIONS[3], max_tokens=12)
    wait_until(lambda: scheduler.completed == 1)
    assert scheduler.cancelled == 3


def test_a_bad_request_raises_in_its_caller_and_the_scheduler_keeps_serving(chat_model, scheduler):
    with pytest.raises(ValueError, match="messages is empty"):
        scheduler.chat([], max_tokens=12)
    with pytest.raises(ValueError, match="messages is empty"):
        next(scheduler.stream([], max_tokens=12))
    with pytest.raises(TypeError):
        scheduler.chat(QUESTIONS[0], no_such_sampling_option=1)

    assert scheduler.chat(QUESTIONS[0], max_tokens=12) == chat_model.chat(QUESTIONS[0], max_tokens=12)
    wait_until(lambda: scheduler.completed == 1)
    assert scheduler.failed == 3


def test_close_stops_the_running_request_fails_queued_ones_and_refuses_new_ones(scheduler):
    running = scheduler.stream(QUESTIONS[0], **ENDLESS)
    next(running)
    queued = scheduler.stream(QUESTIONS[1], max_tokens=12)
    wait_until(lambda: scheduler.waiting == 1)

    scheduler.close()
    with pytest.raises(SchedulerClosed):
        list(running)
    with pytest.raises(SchedulerClosed):
        next(queued)
    with pytest.raises(SchedulerClosed):
        scheduler.chat(QUESTIONS[2], max_tokens=12)
    assert scheduler.failed == 2


def test_local_backend_runs_on_a_scheduler_as_on_a_chat_model(chat_model, scheduler):
    on_model, on_scheduler = LocalBackend(chat_model), LocalBackend(scheduler)
    assert on_scheduler.context_window == on_model.context_window
    assert on_scheduler.count_tokens("Hello there") == on_model.count_tokens("Hello there")
    assert on_scheduler.chat(QUESTIONS[0], max_tokens=12) == on_model.chat(QUESTIONS[0], max_tokens=12)


def test_the_worker_thread_loads_the_model_and_allocates_its_cache(chat_model):
    # The one thread that runs the model's OpenMP work must also be the one that loaded it.
    threads = []

    def load() -> ChatModel:
        threads.append(threading.current_thread())
        return chat_model

    scheduler = LLMScheduler(load, kv_blocks=32)
    try:
        assert threads == [scheduler._thread]
        assert scheduler.engine is chat_model.engine and scheduler.batch.pool.num_blocks == 32
        assert scheduler.chat(QUESTIONS[0], max_tokens=4).text
    finally:
        scheduler.close()


def test_a_failed_load_is_raised_by_the_constructor_and_leaves_no_worker():
    def load() -> ChatModel:
        raise FileNotFoundError("no checkpoint at /nowhere")

    before = set(threading.enumerate())
    with pytest.raises(FileNotFoundError, match="/nowhere"):
        LLMScheduler(load)
    started = set(threading.enumerate()) - before
    wait_until(lambda: not any(t.name == "ember-llm-scheduler" and t.is_alive() for t in started))
