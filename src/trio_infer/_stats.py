"""Statistics snapshots: frozen values, cheap to take, safe to keep."""

from __future__ import annotations

import attrs

__all__ = ["ClientStats", "EndpointStats", "SourceStats"]


@attrs.frozen
class SourceStats:
    """One source address's connections to an endpoint (``Client(source_addresses=...)``)."""

    address: str
    idle: int
    active: int
    connecting: int


@attrs.frozen
class EndpointStats:
    """One endpoint's pool at the moment of the snapshot.

    Attributes:
        endpoint: the endpoint's base URL.
        idle: connections pooled and ready for reuse.
        active: connections carrying an exchange right now.
        connecting: connections being established (TCP and TLS).
        waiting_for_permit: calls to this endpoint queued for a limiter permit.
        waiting_for_connection: calls holding a permit but queued for a connection slot
            (``max_connections`` reached and nothing idle to evict).
        opened: sockets opened since the client started, including those whose connect then
            failed (so that ``opened - sum(closed)`` is what is open now).
        reused: exchanges that ran on a pooled connection.
        stale_retries: exchanges moved to a fresh connection because the pooled one had been
            closed by the server before the request reached it.
        closed: ``(reason, count)`` pairs for every close reason (see ``CLOSE_REASONS``).
        responses: responses whose body was received completely.
        failures: exchanges that ended in an error (not counting cancellations).
        responses_by_class: ``("1xx", n)`` ... ``("5xx", n)``: final responses by status class
            (a retried 503 counts in ``retries``, not here).
        errors: ``(error class name, count)``: calls that ended in an error, by class.
        bytes_sent, bytes_received: request and response bytes on the wire (heads, bodies
            and chunk framing; TLS overhead not included).
        sources: with ``source_addresses``: idle / active / connecting per source address.
        retries: attempts repeated after a transient failure (stale pooled connections,
            replaced without counting as an attempt, are ``stale_retries``).
        ports_exhausted: connects refused by the kernel for want of an ephemeral port
            (``PortsExhaustedError``).
        fds_exhausted: connects that failed for want of a file descriptor
            (``FileDescriptorsExhaustedError``).
        workers: with ``Client(worker_header=...)``: ``(worker, responses)`` pairs, busiest
            first, for every worker that answered.
        workers_active: workers that answered within the client's ``worker_interval``
            before the snapshot.
        untagged_responses: responses that carried no ``worker_header``.
    """

    endpoint: str
    idle: int
    active: int
    connecting: int
    waiting_for_permit: int
    waiting_for_connection: int
    opened: int
    reused: int
    stale_retries: int
    closed: tuple[tuple[str, int], ...]
    responses: int
    failures: int
    ports_exhausted: int = 0
    fds_exhausted: int = 0
    retries: int = 0
    responses_by_class: tuple[tuple[str, int], ...] = ()
    errors: tuple[tuple[str, int], ...] = ()
    bytes_sent: int = 0
    bytes_received: int = 0
    sources: tuple[SourceStats, ...] = ()
    workers: tuple[tuple[str, int], ...] = ()
    workers_active: int = 0
    untagged_responses: int = 0

    @property
    def closed_total(self) -> int:
        return sum(count for _reason, count in self.closed)

    def closed_by(self, reason: str) -> int:
        return dict(self.closed)[reason]

    @property
    def workers_seen(self) -> int:
        return len(self.workers)

    @property
    def busiest_share(self) -> float:
        """The busiest worker's share of the tagged responses (0.0 before any)."""
        total = sum(count for _worker, count in self.workers)
        return self.workers[0][1] / total if total else 0.0

    @property
    def idlest_share(self) -> float:
        """The least busy worker's share of the tagged responses, among workers seen."""
        total = sum(count for _worker, count in self.workers)
        return self.workers[-1][1] / total if total else 0.0

    @property
    def imbalance(self) -> float:
        """Busiest share over idlest share: 1.0 is perfectly even (``inf`` before any)."""
        idlest = self.idlest_share
        return self.busiest_share / idlest if idlest else float("inf")


@attrs.frozen
class ClientStats:
    """A client at the moment of the snapshot.

    Attributes:
        endpoints: one :class:`EndpointStats` per endpoint, in the client's order.
        permits_in_use: the limiter's borrowed tokens. With a shared limiter this counts
            every holder, not only this client.
        permits_total: the limiter's total tokens.
        tasks_waiting_for_permit: tasks queued on the limiter (all holders, if shared).
        open_connections: connections open or being opened, across endpoints.
        max_connections: the client's cap on ``open_connections``.
    """

    endpoints: tuple[EndpointStats, ...]
    permits_in_use: int
    permits_total: int
    tasks_waiting_for_permit: int
    open_connections: int
    max_connections: int

    @property
    def idle(self) -> int:
        return sum(e.idle for e in self.endpoints)

    @property
    def active(self) -> int:
        return sum(e.active for e in self.endpoints)

    @property
    def connecting(self) -> int:
        return sum(e.connecting for e in self.endpoints)

    @property
    def waiting(self) -> int:
        """Calls of this client waiting for a permit or a connection."""
        return sum(e.waiting_for_permit + e.waiting_for_connection for e in self.endpoints)

    @property
    def opened(self) -> int:
        return sum(e.opened for e in self.endpoints)

    @property
    def closed(self) -> int:
        return sum(e.closed_total for e in self.endpoints)

    @property
    def responses(self) -> int:
        return sum(e.responses for e in self.endpoints)

    @property
    def failures(self) -> int:
        return sum(e.failures for e in self.endpoints)

    @property
    def retries(self) -> int:
        return sum(e.retries for e in self.endpoints)

    @property
    def reused(self) -> int:
        return sum(e.reused for e in self.endpoints)

    @property
    def bytes_sent(self) -> int:
        return sum(e.bytes_sent for e in self.endpoints)

    @property
    def bytes_received(self) -> int:
        return sum(e.bytes_received for e in self.endpoints)

    @property
    def responses_by_class(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for e in self.endpoints:
            for name, count in e.responses_by_class:
                totals[name] = totals.get(name, 0) + count
        return totals

    @property
    def errors(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for e in self.endpoints:
            for name, count in e.errors:
                totals[name] = totals.get(name, 0) + count
        return totals

    def summary(self) -> dict[str, object]:
        """A flat, JSON-ready digest (what ``stats_interval`` logs)."""
        return {
            "open": self.open_connections,
            "idle": self.idle,
            "active": self.active,
            "connecting": self.connecting,
            "waiting": self.waiting,
            "permits_in_use": self.permits_in_use,
            "permits_total": self.permits_total,
            "responses": self.responses_by_class,
            "errors": self.errors,
            "retries": self.retries,
            "opened": self.opened,
            "reused": self.reused,
            "closed": self.closed,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        }
