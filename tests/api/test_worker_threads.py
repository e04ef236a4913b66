"""The API's worker threads run torch on one core, so the local model's worker keeps the process's one
OpenMP team (ember.llm.inference.scheduler)."""

import asyncio

import torch

from ember.platform.api.worker_threads import WorkerThreads


def test_a_request_thread_runs_torch_on_one_core_and_the_caller_keeps_its_threads():
    workers = WorkerThreads(max_threads=2)
    before = torch.get_num_threads()

    async def collect() -> list[int]:
        return [n async for n in workers.stream(lambda: iter([torch.get_num_threads()]))]

    try:
        assert asyncio.run(collect()) == [1]
    finally:
        workers.close()
    assert torch.get_num_threads() == before
