import gc
import ipaddress
import os
import socket

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

import zoo  # noqa: E402, F401

# TensorFlow, Keras and the zoo create ~400,000 objects on import that live
# for the whole session; every full garbage collection walked them all. They
# are moved out of the collector's sight once.
gc.collect()
gc.freeze()

_connect = socket.socket.connect


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # a Unix socket path
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_connect_only(sock, address):
    if not _is_local(address):
        raise OSError(f"tests may not use the network: a connection to {address!r} was attempted")
    return _connect(sock, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Fails any test that opens a connection off this machine (nothing may download)."""
    socket.socket.connect = _local_connect_only
    yield
    socket.socket.connect = _connect


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield
    # Keras' global state (layer names, the graph) is reset for each test, but
    # not with a full garbage collection each time: that took 0.2-0.3 s per
    # test, half of `make test`. Python still collects on its own schedule.
    keras.backend.clear_session(free_memory=False)
    # Seeded training turns TensorFlow op determinism on for the whole process;
    # each test starts without it (only TensorFlow's internal API can undo it).
    from tensorflow.python.framework import config as tf_config

    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()
