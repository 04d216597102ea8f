"""The connection budget: its math, source addresses, and how the client applies both."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import trio_infer
from trio_infer import ConfigError, KeepAlive
from trio_infer._budget import (
    Destination,
    PortRange,
    budget_for,
    count_reserved,
    parse_port_range,
)
from trio_infer._sources import (
    IP_BIND_ADDRESS_NO_PORT,
    check_bindable,
    parse_source_addresses,
    plan_routes,
)
from trio_infer.testing import TestServer

D1 = Destination("127.0.0.1", 8000)
D2 = Destination("127.0.0.1", 8001)
D6 = Destination("::1", 8000)
LINUX_RANGE: PortRange = ((32768, 60999), 0, "os")
NOT_LOCAL = "192.0.2.1"  # TEST-NET-1: never assigned to this host


# --- the port range files ----------------------------------------------------------------


def test_parse_port_range() -> None:
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    for bad in ("", "1", "5 4", "0 10", "1 70000", "a b"):
        with pytest.raises(ValueError, match=r"not a port range|invalid literal"):
            parse_port_range(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("\n", 0),
        ("8080", 0),  # outside the range
        ("40000", 1),
        ("40000,40000", 1),
        ("40000-40009,40005-40014", 15),  # overlapping spans count once
        ("30000-32770", 3),  # clipped to the range
        ("60990-61010,32768", 11),
    ],
)
def test_count_reserved(text: str, expected: int) -> None:
    assert count_reserved(text, (32768, 60999)) == expected


@given(
    spans=st.lists(
        st.tuples(st.integers(1, 200), st.integers(0, 30)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=8,
    ),
    low=st.integers(1, 150),
    width=st.integers(0, 100),
)
def test_count_reserved_matches_a_brute_force_count(
    spans: list[tuple[int, int]], low: int, width: int
) -> None:
    text = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    high = low + width
    expected = len({p for a, b in spans for p in range(a, b + 1)} & set(range(low, high + 1)))
    assert count_reserved(text, (low, high)) == expected


# --- the math ----------------------------------------------------------------------------


def test_ports_times_destinations_times_sources() -> None:
    b = budget_for(
        [D1, D2], ["127.0.0.2", "127.0.0.3", "127.0.0.4"], port_range=LINUX_RANGE, fd=(10**6, 10**6)
    )
    assert b.ports_per_pair == 28232
    assert (len(b.destinations), b.pairs) == (2, 6)
    assert b.port_budget == 28232 * 6
    assert (b.binding, b.max_connections) == ("ports", 28232 * 6)


def test_duplicates_never_inflate() -> None:
    b = budget_for(
        [D1, D1, Destination("127.0.0.1", 8000)], port_range=LINUX_RANGE, fd=(10**6,) * 2
    )
    assert (b.destinations, b.pairs, b.port_budget) == ((D1,), 1, 28232)


def test_only_pairs_of_one_family_count() -> None:
    b = budget_for(
        [D1, D6], ["127.0.0.2", "127.0.0.3", "::1"], port_range=LINUX_RANGE, fd=(10**6,) * 2
    )
    assert b.pairs == 2 + 1
    assert b.pairs_for([D6]) == 1
    assert budget_for([D1, D6], port_range=LINUX_RANGE, fd=(10**6,) * 2).pairs == 2


def test_reserved_ports_come_off_every_pair() -> None:
    b = budget_for([D1, D2], port_range=((40000, 40099), 10, "os"), fd=(10**6,) * 2)
    assert (b.ports_per_pair, b.port_budget) == (90, 180)


def test_file_descriptors_bind_when_smaller() -> None:
    b = budget_for([D1], port_range=LINUX_RANGE, fd=(20000, 40000))
    assert (b.fd_budget, b.max_connections, b.binding) == (
        20000 - 64,
        20000 - 64,
        "file descriptors",
    )


def assert_refused(check: Callable[[], None], *parts: str) -> None:
    with pytest.raises(ConfigError) as info:
        check()
    for part in parts:
        assert part in str(info.value)


def test_check_names_the_binding_limit_its_numbers_and_the_fix() -> None:
    ports = budget_for([D1, D2], port_range=((40000, 40009), 0, "os"), fd=(20000, 20000))
    ports.check(20)
    assert_refused(
        lambda: ports.check(21),
        "max_connections=21",
        "ephemeral-port budget of 20",
        "10 usable ports",
        "x 2 pairs",
        "source_addresses",
    )
    fds = budget_for([D1], port_range=LINUX_RANGE, fd=(1000, 4096))
    fds.check(936)
    assert_refused(
        lambda: fds.check(937),
        "file-descriptor budget of 936",
        "RLIMIT_NOFILE soft limit 1000",
        "raise the soft limit with 'ulimit -n 1001'",
    )
    with pytest.raises(ConfigError, match=r"raise the hard limit \(now 4096\) to at least 5064"):
        fds.check(5000)


def test_per_endpoint_cap_is_checked_against_that_endpoints_pairs() -> None:
    b = budget_for(
        [D1, D2], ["127.0.0.2", "127.0.0.3"], port_range=((40000, 40009), 0, "os"), fd=(10**6,) * 2
    )
    b.check_endpoint("http://127.0.0.1:8000", [D1], 20)
    with pytest.raises(
        ConfigError, match=r"endpoint http://127.0.0.1:8000: 10 usable ports per pair x 2"
    ):
        b.check_endpoint("http://127.0.0.1:8000", [D1], 21)


def test_describe_shows_the_numbers() -> None:
    text = budget_for([D1, D2], ["127.0.0.2"], port_range=LINUX_RANGE, fd=(20000, 20000)).describe()
    assert "32768-60999" in text
    assert "56464  = 28232 x 2" in text
    assert "19936  (bound by file descriptors)" in text


def test_off_linux_the_documented_default_range_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    from trio_infer import _budget

    monkeypatch.setattr(_budget, "PORT_RANGE_PATH", "/nonexistent/ip_local_port_range")
    b = budget_for([D1])
    assert (b.port_range, b.port_range_source, b.ports_per_pair) == (
        (49152, 65535),
        "default",
        16384,
    )


# --- destinations ------------------------------------------------------------------------


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``multi.test`` resolves to two IPv4 addresses, ``alias.test`` to 127.0.0.1 (trio's
    resolver calls the same ``socket.getaddrinfo`` in a worker thread)."""
    table = {"multi.test": ["127.0.0.1", "127.0.0.2"], "alias.test": ["127.0.0.1"]}
    real = socket.getaddrinfo

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in table[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_the_destination_is_what_the_kernel_sees(fake_dns: None) -> None:
    b = trio_infer.connection_budget(
        [
            "127.0.0.1:8000",
            "http://127.0.0.1:8000/v1",  # a path never counts
            "https://127.0.0.1:8000",  # nor does the scheme, on the same port
            "alias.test:8000",  # another name for the same IP
            "https://127.0.0.1",  # port 443: another destination
            "multi.test:9000",  # two IPs: two destinations
        ]
    )
    assert [str(d) for d in b.destinations] == [
        "127.0.0.1:443",
        "127.0.0.1:8000",
        "127.0.0.1:9000",
        "127.0.0.2:9000",
    ]
    assert b.pairs == 4


# --- source addresses --------------------------------------------------------------------


def test_source_addresses_are_normalised() -> None:
    assert parse_source_addresses([" 127.0.0.2", "", "127.0.0.3", "127.0.0.2", "[::1]", "  "]) == (
        "127.0.0.2",
        "127.0.0.3",
        "::1",
    )
    assert parse_source_addresses("127.0.0.2") == ("127.0.0.2",)
    assert parse_source_addresses(None) == ()


_ADDRESS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))


@given(
    entries=st.lists(
        st.one_of(
            st.tuples(_ADDRESS, st.sampled_from(["{}", " {} ", "\t{}", "[{}]"])),
            st.sampled_from(["", "  ", "\t"]),
        ),
        max_size=12,
    )
)
def test_source_address_normalisation_property(entries: list[Any]) -> None:
    texts, expected = [], []
    for entry in entries:
        if isinstance(entry, str):
            texts.append(entry)
            continue
        address, shape = entry
        if shape == "[{}]" and address.version == 4:
            shape = "{}"
        texts.append(shape.format(address.exploded))
        if str(address) not in expected:
            expected.append(str(address))
    assert parse_source_addresses(texts) == tuple(expected)


@pytest.mark.parametrize("bad", ["localhost", "127.0.0.300", "10.0.0.1:80"])
def test_a_source_must_be_an_ip_literal(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"source address '{bad}' is not an IP address"):
        parse_source_addresses(["127.0.0.2", bad])


def test_a_source_this_host_cannot_bind_is_named_with_the_fix() -> None:
    check_bindable(["127.0.0.2", "127.0.0.3"])
    with pytest.raises(ConfigError) as info:
        check_bindable(["127.0.0.2", NOT_LOCAL])
    message = str(info.value)
    assert f"source address '{NOT_LOCAL}' cannot be bound on this host" in message
    assert f"ip addr add {NOT_LOCAL}/32 dev lo" in message


def test_sources_must_reach_the_destinations() -> None:
    from trio_infer._endpoint import parse_endpoint

    v4, dual = parse_endpoint("127.0.0.1:8000"), parse_endpoint("localhost:8000")
    # a dual-family name keeps only what the sources reach
    plan = plan_routes({dual: [D1, D6]}, ["127.0.0.2"])
    assert plan[dual] == [D1]
    with pytest.raises(
        ConfigError, match=r"endpoint http://127.0.0.1:8000 resolves only to 127.0.0.1:8000"
    ):
        plan_routes({v4: [D1]}, ["::1"])
    with pytest.raises(ConfigError, match=r"source address '::1' is IPv6 but no endpoint resolves"):
        plan_routes({v4: [D1]}, ["127.0.0.2", "::1"])


# --- the client applies it ---------------------------------------------------------------


async def test_max_connections_none_resolves_to_the_budget(server: TestServer) -> None:
    async with trio_infer.Client(server.url) as client:
        budget = client.budget
        assert budget is not None
        assert client.max_connections == budget.max_connections > 0
        assert client.stats().max_connections == budget.max_connections
        assert budget.destinations == (Destination("127.0.0.1", server.port),)


async def test_a_cap_above_the_budget_fails_on_entry(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_infer import _budget

    monkeypatch.setattr(_budget, "read_port_range", lambda: ((40000, 40009), 0, "os"))
    async with trio_infer.Client(server.url) as client:
        assert (client.max_connections, client.budget and client.budget.binding) == (10, "ports")
    async with trio_infer.Client(server.url, source_addresses=["127.0.0.2", "127.0.0.3"]) as client:
        assert client.max_connections == 20
    with pytest.raises(
        ConfigError, match="max_connections=11 exceeds the ephemeral-port budget of 10"
    ):
        async with trio_infer.Client(server.url, max_connections=11):
            pass  # pragma: no cover
    with pytest.raises(ConfigError, match="max_connections_per_endpoint=11"):
        async with trio_infer.Client(server.url, max_connections_per_endpoint=11):
            pass  # pragma: no cover


async def test_a_cap_above_the_fd_budget_fails_on_entry(server: TestServer) -> None:
    # Here 28k ports per pair exceed RLIMIT_NOFILE (20000 on the reference machine); where
    # the descriptor limit is the larger, the port budget is the one named.
    async with trio_infer.Client(server.url) as client:
        budget = client.budget
        assert budget is not None
    too_many = budget.max_connections + 1
    with pytest.raises(ConfigError, match=f"max_connections={too_many} exceeds the") as info:
        async with trio_infer.Client(server.url, max_connections=too_many):
            pass  # pragma: no cover
    binding = "file-descriptor" if budget.binding == "file descriptors" else "ephemeral-port"
    assert f"{binding} budget of {budget.max_connections}" in str(info.value)


async def test_a_source_that_cannot_be_bound_fails_on_entry(server: TestServer) -> None:
    with pytest.raises(ConfigError, match=f"'{NOT_LOCAL}' cannot be bound"):
        async with trio_infer.Client(server.url, source_addresses=["127.0.0.2", NOT_LOCAL]):
            pass  # pragma: no cover


async def test_new_connections_rotate_over_the_source_addresses(server: TestServer) -> None:
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    async with trio_infer.Client(
        server.url, source_addresses=sources, keepalive=KeepAlive.off()
    ) as client:
        for _ in range(9):
            await client.request("GET", "/json")
    assert [r.peer[0] for r in server.requests] == sources * 3


@pytest.mark.skipif(IP_BIND_ADDRESS_NO_PORT is None, reason="IP_BIND_ADDRESS_NO_PORT is Linux-only")
async def test_bound_sockets_leave_the_port_to_connect(server: TestServer) -> None:
    assert IP_BIND_ADDRESS_NO_PORT is not None
    client = trio_infer.Client(server.url, source_addresses=["127.0.0.2"])
    async with client, client.stream("GET", "/json"):
        [conn] = client._pools[0].active
        assert conn.raw.getsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT) == 1
        assert conn.raw.getsockname()[0] == "127.0.0.2"


async def test_without_source_addresses_nothing_is_bound(server: TestServer) -> None:
    async with trio_infer.Client(server.url) as client, client.stream("GET", "/json"):
        [conn] = client._pools[0].active
        if IP_BIND_ADDRESS_NO_PORT is not None:
            assert conn.raw.getsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT) == 0
    assert server.requests[0].peer[0] == "127.0.0.1"


async def test_per_endpoint_cap_queues_calls_for_that_endpoint(server: TestServer) -> None:
    gate = trio.Event()

    async with trio_infer.Client(server.url, max_connections_per_endpoint=1) as client:
        async with trio.open_nursery() as nursery:
            async with client.stream("GET", "/json") as first:

                async def second() -> None:
                    response = await client.request("GET", "/json")
                    assert response.status == 200
                    gate.set()

                nursery.start_soon(second)
                await trio.testing.wait_all_tasks_blocked()
                assert client.stats().endpoints[0].waiting_for_connection == 1
                assert not gate.is_set()
                await first.aread()
            await gate.wait()
        assert server.connections_total == 1


async def test_a_name_with_several_addresses_is_several_destinations(
    fake_dns: None, nursery: trio.Nursery
) -> None:
    from functools import partial

    from trio_infer.testing import default_app, serve

    first: TestServer = await nursery.start(serve, default_app)
    second: TestServer = await nursery.start(
        partial(serve, default_app, host="127.0.0.2", port=first.port)
    )
    port = first.port
    async with trio_infer.Client(
        [f"multi.test:{port}", f"alias.test:{port}"], keepalive=KeepAlive.off()
    ) as client:
        assert client.budget is not None
        assert [str(d) for d in client.budget.destinations] == [
            f"127.0.0.1:{port}",
            f"127.0.0.2:{port}",
        ]
        for _ in range(4):
            await client.request("GET", "/json")
    # multi.test's new connections alternate over its two addresses; alias.test has one
    assert [r.header("host") for r in first.requests] == [
        f"multi.test:{port}",
        f"alias.test:{port}",
        f"alias.test:{port}",
    ]
    assert [r.header("host") for r in second.requests] == [f"multi.test:{port}"]
