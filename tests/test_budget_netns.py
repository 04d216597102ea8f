"""Port and descriptor exhaustion for real, each in its own network namespace.

Every scenario runs in a fresh process (``netns_scenarios.py``) that enters a new network
namespace with a 4-port ``ip_local_port_range``, so running out of ports takes four
connections and leaves the host's own range alone. Needs Linux and root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("netns_scenarios.py")

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0,
    reason="network namespaces need Linux and root",
)


def run(scenario: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), scenario], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_bind_without_a_port_keeps_the_destination_multiplier() -> None:
    # From one source address to two destinations, 4 ports per pair: with
    # IP_BIND_ADDRESS_NO_PORT the kernel picks the port at connect and reuses each port number
    # towards the other destination (8 connections); a plain bind picks the port alone, for
    # every destination at once (4).
    result = run("bind_no_port")
    assert result["with_option"] == {"connected": 8, "error": "EADDRNOTAVAIL"}
    assert result["plain_bind"] == {"connected": 4, "error": "EADDRINUSE"}


def test_the_client_holds_ports_times_destinations_from_one_source() -> None:
    result = run("client_multiplier")
    assert (result["max_connections"], result["binding"]) == (8, "ports")
    assert result["held_at_once"] == 8
    assert result["statuses"] == [200] * 8
    assert result["peers"] == ["127.0.0.2"]


def test_running_out_of_ports_fails_at_once_typed_and_counted() -> None:
    result = run("ports_exhausted")
    assert result["max_connections"] == 4
    assert result["error"].startswith(
        "PortsExhaustedError: no free ephemeral port towards 127.0.0.1:8001"
    )
    assert "4 usable ports per source/destination pair" in result["error"]
    assert result["is_connect_error"]
    assert result["ports_exhausted"] == 1
    # the call that had a port finished normally; nothing leaked
    assert result["first_status"] == [200]
    assert result["permits_in_use"] == 0
    assert result["open_after"] == 1


def test_running_out_of_descriptors_fails_at_once_typed_and_counted() -> None:
    result = run("fds_exhausted")
    assert (result["max_connections"], result["binding"]) == (256 - 64, "file descriptors")
    assert result["error"].startswith(
        "FileDescriptorsExhaustedError: the process is out of file descriptors"
    )
    assert result["fds_exhausted"] == 1
    assert result["status_after"] == 200
    assert result["permits_in_use"] == 0
