"""Prometheus metrics of one server, in a registry of its own."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("opentransformer_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.prompt_tokens = Counter("opentransformer_prompt_tokens", "Prompt tokens received", registry=r)
        self.generated_tokens = Counter("opentransformer_generation_tokens", "Tokens generated", registry=r)
        self.prefix_cache_hits = Counter("opentransformer_prefix_cache_hits",
                                         "Sequences that reused a cached prompt prefix", registry=r)
        self.prefix_cache_hit_tokens = Counter("opentransformer_prefix_cache_hit_tokens",
                                               "Prompt tokens taken from a cache instead of computed", registry=r)
        self.rejected = Counter("opentransformer_queue_rejections", "Requests refused because the queue was full",
                                registry=r)
        self.time_to_first_token = Histogram("opentransformer_time_to_first_token_seconds",
                                             "From request accepted to first generated token",
                                             buckets=_LATENCY_BUCKETS, registry=r)
        self.time_per_output_token = Histogram("opentransformer_time_per_output_token_seconds",
                                               "Between consecutive generated tokens of one sequence",
                                               buckets=_TOKEN_BUCKETS, registry=r)
        self.queue_depth = Gauge("opentransformer_queue_depth", "Requests waiting for a sequence slot",
                                 registry=r)
        self.running = Gauge("opentransformer_running_sequences", "Sequences being prefilled or decoded",
                             registry=r)
        self.kv_cache_tokens = Gauge("opentransformer_kv_cache_tokens", "Positions held in all KV caches",
                                     registry=r)
        self.kv_cache_usage = Gauge("opentransformer_kv_cache_usage_ratio",
                                    "Positions held over positions allocated, all caches", registry=r)
        self.tokens_per_second = Gauge("opentransformer_generation_tokens_per_second",
                                       "Tokens generated per second over the last decode step, all sequences",
                                       registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
