"""The test suite's guard against downloads."""

import socket
import urllib.request

import pytest


def test_connections_off_this_machine_are_refused():
    with pytest.raises(OSError, match="may not use the network"):
        urllib.request.urlopen("http://192.0.2.1/", timeout=5)  # TEST-NET-1: never routed


def test_loopback_connections_are_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with server, socket.create_connection(server.getsockname(), timeout=5):
        pass
