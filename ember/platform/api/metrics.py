"""Prometheus metrics of one API process: requests, latencies, generated tokens and their speed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ember.platform.types import LLMQueueStats


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ember_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ember_http_request_seconds",
            "Time to the end of the response",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.tokens = Counter("ember_generated_tokens", "Completion tokens generated", registry=self.registry)
        self.prompt_tokens = Counter("ember_prompt_tokens", "Prompt tokens processed", registry=self.registry)
        self.tokens_per_second = Histogram(
            "ember_generation_tokens_per_second",
            "Decode speed of each generation",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "ember_http_requests_in_flight",
            "Authenticated requests being served (what the per-key concurrency limit counts)",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "ember_engine_queue_depth", "Generations waiting for the local model", registry=self.registry
        )
        self.running = Gauge(
            "ember_engine_running", "Generations running on the local model", registry=self.registry
        )
        self.kv_blocks_used = Gauge(
            "ember_engine_kv_blocks_used", "KV cache blocks held by generations", registry=self.registry
        )
        self.kv_blocks_total = Gauge(
            "ember_engine_kv_blocks_total", "KV cache blocks of the local model", registry=self.registry
        )
        self.prefix_hit_rate = Gauge(
            "ember_engine_prefix_cache_hit_rate",
            "Share of full prompt KV blocks found in the prefix cache since the model loaded",
            registry=self.registry,
        )
        self.cancelled = Gauge(
            "ember_engine_cancelled_jobs",
            "Generations stopped because the client left or timed out",
            registry=self.registry,
        )
        self.steps = Gauge(
            "ember_engine_steps",
            "Batching steps (forward passes) since the model loaded",
            registry=self.registry,
        )
        self.peak_batch = Gauge(
            "ember_engine_peak_batch",
            "Most generations one step gave a token to, since the model loaded",
            registry=self.registry,
        )
        self.refused = Gauge(
            "ember_engine_refused_requests",
            "Generations answered 429 because llm_max_queued were already waiting",
            registry=self.registry,
        )

    def observe_llm_queue(self, stats: LLMQueueStats) -> None:
        self.queue_depth.set(stats.waiting)
        self.running.set(stats.running)
        self.cancelled.set(stats.cancelled)
        self.kv_blocks_used.set(stats.kv_blocks_used)
        self.kv_blocks_total.set(stats.kv_blocks_total)
        self.prefix_hit_rate.set(stats.prefix_hit_rate)
        self.steps.set(stats.steps)
        self.peak_batch.set(stats.peak_batch)
        self.refused.set(stats.refused)

    def record_generation(
        self, prompt_tokens: int, completion_tokens: int, since_first_token_s: float
    ) -> None:
        """Counts, and the decode speed: tokens after the first over the time since the first arrived."""
        self.prompt_tokens.inc(prompt_tokens)
        self.tokens.inc(completion_tokens)
        if completion_tokens > 1 and since_first_token_s > 0:
            self.tokens_per_second.observe((completion_tokens - 1) / since_first_token_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
