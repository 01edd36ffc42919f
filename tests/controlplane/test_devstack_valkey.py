"""The embedded Valkey of ``make run`` keeps the broker's queue across a restart."""

import pytest

from controlplane.devstack import embedded_valkey

pytestmark = pytest.mark.slow


def test_the_embedded_valkey_keeps_a_queued_message_across_a_restart(tmp_path):
    server = embedded_valkey(tmp_path / "valkey")
    server.start()
    try:
        client = server.client()
        client.rpush("default", b"message-1", b"message-2")
        client.set("cp:key", b"kept")
        client.close()
    finally:
        server.stop()  # SIGTERM, as Ctrl-C on make run stops it
    restarted = embedded_valkey(tmp_path / "valkey")
    restarted.start()
    try:
        client = restarted.client()
        assert client.lrange("default", 0, -1) == [b"message-1", b"message-2"]
        assert client.get("cp:key") == b"kept"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        restarted.stop()
