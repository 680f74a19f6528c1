"""Drives `testbed proxy` with the unchanged toxiproxy-python package: create a proxy,
add a latency toxic, observe it, update it, remove it, reset.

Usage: TOXIPROXY_HOST=127.0.0.1 TOXIPROXY_PORT=PORT ECHO=127.0.0.1:PORT python3 python_scenario.py
"""

import os
import socket
import sys
import time

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer


def round_trip(address):
    host, port = address.rsplit(":", 1)
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(b"ping")
        got = b""
        while got != b"ping":
            chunk = connection.recv(16)
            if not chunk:
                raise AssertionError("connection closed before the echo")
            got += chunk
    return (time.monotonic() - start) * 1000


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    server = Toxiproxy()
    server.update_api_consumer(os.environ["TOXIPROXY_HOST"], int(os.environ["TOXIPROXY_PORT"]))
    check(server.running(), "server reachable")
    check(b"version" in server.version(), "version answers")
    server.reset()
    proxy = server.create(upstream=os.environ["ECHO"], name="python_scenario", listen="127.0.0.1:0")
    check(not proxy.listen.endswith(":0"), "listen shows the real port: " + proxy.listen)
    base = round_trip(proxy.listen)
    check(base < 150, "no toxic: %.1f ms" % base)

    proxy.add_toxic(type="latency", attributes={"latency": 200, "jitter": 0})
    check("latency_downstream" in proxy.toxics(), "toxic listed")
    slow = round_trip(proxy.listen)
    check(slow >= 200, "latency 200: %.1f ms" % slow)

    # toxiproxy-python has no update call; it is a POST through its own API consumer.
    APIConsumer.post("/proxies/python_scenario/toxics/latency_downstream",
                     json={"attributes": {"latency": 400}})
    check(proxy.get_toxic("latency_downstream").attributes["latency"] == 400, "updated")
    slower = round_trip(proxy.listen)
    check(slower >= 400, "latency 400: %.1f ms" % slower)

    check(proxy.destroy_toxic("latency_downstream"), "toxic removed")
    fast = round_trip(proxy.listen)
    check(fast < 150, "removed: %.1f ms" % fast)

    with proxy.down():
        try:
            round_trip(proxy.listen)
            raise AssertionError("a proxy that is down must refuse connections")
        except OSError:
            pass
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 300})
    server.reset()
    check(proxy.toxics() == {}, "reset removes toxics")
    check(server.get_proxy("python_scenario").enabled, "reset enables")
    server.destroy(proxy)
    check(server.get_proxy("python_scenario") is None, "destroyed")
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # report and fail
        print("FAILED: %r" % (error,), file=sys.stderr)
        sys.exit(1)
