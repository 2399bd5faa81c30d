"""Prometheus metrics of one service process, on a registry of its own (no globals): under
``serve --workers N`` each worker has its own, and ``/metrics`` shows the answering worker's."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Queue depth, batch sizes, anchor latency, gas used, reorganised anchors, errors and
    blocked batches."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter("microcred_credentials_accepted", "Credentials accepted",
                                registry=self.registry)
        self.queue_depth = Gauge("microcred_queue_depth", "Credentials waiting for a batch",
                                 registry=self.registry)
        self.batch_size = Histogram(
            "microcred_batch_size", "Credentials per batch", registry=self.registry,
            buckets=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000))
        self.anchor_latency = Histogram(
            "microcred_anchor_latency_seconds", "From batch cut to confirmed anchor",
            registry=self.registry, buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 1800))
        self.gas_used = Counter("microcred_anchor_gas_used", "Gas used by anchoring",
                                registry=self.registry)
        self.reorgs = Counter("microcred_reorganised_anchors",
                              "Anchored batches whose block left the chain", registry=self.registry)
        self.errors = Counter("microcred_errors", "Errors by kind", ["kind"],
                              registry=self.registry)
        self.blocked_batches = Gauge(
            "microcred_blocked_batches",
            "Unfinished batches that cannot be anchored now, by issuer and reason (such as "
            "'issuer not trusted: body 1 suspended')", ["issuer", "reason"],
            registry=self.registry)

    def set_blocked(self, counts: Iterable[tuple[str, str, int]]) -> None:
        """Replace the blocked-batch gauge with ``(issuer, reason, batches)`` rows: a reason
        that no longer holds disappears instead of staying at its last value."""
        self.blocked_batches.clear()
        for issuer, reason, batches in counts:
            self.blocked_batches.labels(issuer=issuer, reason=reason).set(batches)

    def render(self) -> bytes:
        return generate_latest(self.registry)
