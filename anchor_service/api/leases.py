"""The issuer's sending lease, held by the routes that send transactions with a served
issuer's anchoring key (status changes, recognitions) as by the pipeline's rounds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from anchor_service.api.errors import BusyError
from anchor_service.service import Components
from anchor_service.store import LEASE_WAIT

__all__ = ["LEASE_WAIT", "sending_lease"]


@contextmanager
def sending_lease(components: Components, issuer_id: int) -> Iterator[None]:
    """Hold the issuer's sending lease, the pipeline's, while transactions are sent with its
    key: both take the key's "pending" nonce, and a pipeline round that replaces a stuck
    anchor transaction takes the lowest nonce not mined, which would otherwise replace a
    pending transaction of the route. Waits for a round in progress (of this process or of
    another replica) at most :data:`LEASE_WAIT` seconds, then 503 ``busy``."""
    with components.store.waited_issuer_lease(issuer_id) as held:
        if not held:
            raise BusyError("the issuer's transactions are being sent by another process "
                            "now (anchoring); retry", 1)
        yield
