"""Drives the real Nacos Python SDK 3.x (PyPI nacos-sdk-python, the gRPC
`v2.nacos` API, unchanged) against a Nacos-compatible server.

Env:
  NACOS_ADDR     host:port of the server's HTTP API (required); the SDK adds
                 1000 for gRPC, as it does against Nacos
  MODE           "scenario" (default): every step below, several clients
                 "hold": register SERVICE at 127.0.0.1:PORT, print
                         {"step":"registered"}, then wait (to be killed or
                         to have stdin closed, which shuts it down cleanly)
                 "watch": subscribe to SERVICE and print {"step":"hosts",
                         "hosts":[...]} each time the callback fires, until
                         stdin closes
  SERVICE, PORT  for hold and watch
  WAIT_LIMIT_MS  bound of every wait (default 10000)

Prints one JSON line per step ({"step": ..., "ok": true, ...}); on the first
failure prints {"step": ..., "ok": false, "error": ...} and exits 1. Every
wait is bounded and an alarm ends the whole run.
"""
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import urllib.request

from v2.nacos import ClientConfigBuilder, GRPCConfig, NacosNamingService
from v2.nacos.common.nacos_exception import NacosException
from v2.nacos.naming.model.naming_param import (
    BatchRegisterInstanceParam,
    DeregisterInstanceParam,
    ListInstanceParam,
    ListServiceParam,
    RegisterInstanceParam,
    SubscribeServiceParam,
)

WAIT_LIMIT_S = int(os.environ.get("WAIT_LIMIT_MS", "10000")) / 1000.0
current = "start"
# The SDK writes logs and a service cache to disk: a folder of this run's own.
WORK_DIR = tempfile.mkdtemp(prefix="nacos-sdk-python-v2-")


def step(name, **extra):
    print(json.dumps({"step": name, "ok": True, **extra}), flush=True)


def check(cond, message):
    if not cond:
        raise AssertionError(message)


async def wait_for(what, probe):
    """Awaits probe() every 100 ms until it returns (True, _), at most WAIT_LIMIT_S."""
    deadline = asyncio.get_running_loop().time() + WAIT_LIMIT_S
    last = None
    while True:
        ok, last = await probe()
        if ok:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out after %.1f s waiting for: %s (last: %r)" % (WAIT_LIMIT_S, what, last))
        await asyncio.sleep(0.1)


async def client():
    config = (ClientConfigBuilder()
              .server_address(os.environ["NACOS_ADDR"])
              .log_level(logging.ERROR)
              .log_dir(WORK_DIR)
              .cache_dir(os.path.join(WORK_DIR, "cache"))
              .load_cache_at_start(False)
              .grpc_config(GRPCConfig(grpc_timeout=5000))
              .build())
    return await NacosNamingService.create_naming_service(config)


def addrs(instances):
    return sorted("%s:%d" % (i.ip, i.port) for i in instances)


async def listed(service, naming):
    # subscribe=False still subscribes in this SDK; a fresh list each time
    # comes from its cache, which pushes keep current.
    return addrs(await naming.list_instances(ListInstanceParam(service_name=service, subscribe=True, healthy_only=None)))


async def scenario():
    global current
    a, b, c, watcher = await client(), await client(), await client(), await client()

    current = "register-and-list"
    ok = await a.register_instance(RegisterInstanceParam(
        service_name="py-orders", ip="127.0.0.1", port=9001, metadata={"zone": "a"}))
    check(ok, "register returned %r" % ok)
    seen = await wait_for("9001 listed", lambda: _has(watcher, "py-orders", ["127.0.0.1:9001"]))
    step(current, hosts=seen)

    current = "subscribe-callback"
    fired = []

    async def on_change(instances):
        fired.append(addrs(instances))

    await watcher.subscribe(SubscribeServiceParam(service_name="py-orders", subscribe_callback=on_change))
    await b.register_instance(RegisterInstanceParam(service_name="py-orders", ip="127.0.0.1", port=9002))
    await wait_for("the callback sees 9001 and 9002",
                   lambda: _fired(fired, ["127.0.0.1:9001", "127.0.0.1:9002"]))
    step(current, calls=len(fired))

    current = "deregister"
    await a.deregister_instance(DeregisterInstanceParam(service_name="py-orders", ip="127.0.0.1", port=9001))
    await wait_for("the callback sees only 9002", lambda: _fired(fired, ["127.0.0.1:9002"]))
    step(current)

    current = "batch-register"
    batch = [RegisterInstanceParam(service_name="py-batch", ip="127.0.0.1", port=p) for p in (9101, 9102, 9103)]
    await c.batch_register_instances(BatchRegisterInstanceParam(service_name="py-batch", instances=batch))
    three = ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]
    await wait_for("the batch listed", lambda: _has(watcher, "py-batch", three))
    step(current)

    current = "batch-deregister"
    await c.batch_deregister_instances(BatchRegisterInstanceParam(service_name="py-batch", instances=batch[1:2]))
    await wait_for("one of the batch gone",
                   lambda: _has(watcher, "py-batch", ["127.0.0.1:9101", "127.0.0.1:9103"]))
    step(current)

    current = "persistent-instance"
    await a.register_instance(RegisterInstanceParam(
        service_name="py-db", ip="127.0.0.1", port=9201, ephemeral=False))
    await wait_for("the persistent instance listed", lambda: _has(watcher, "py-db", ["127.0.0.1:9201"]))
    step(current)

    current = "invalid-input"
    try:
        await a.register_instance(RegisterInstanceParam(
            service_name="py-bad", ip="127.0.0.1", port=9301, cluster_name="bad cluster"))
        raise AssertionError("a bad cluster name was accepted")
    except NacosException as e:
        check(e.error_code == 400, "error code %r (%s)" % (e.error_code, e))
        check("clusterName" in str(e), "message %s" % e)
    step(current)

    current = "service-list-paging"
    for i in range(3):
        await b.register_instance(RegisterInstanceParam(service_name="py-page-%d" % i, ip="127.0.0.1", port=9400 + i))
    names = []
    total = None
    for page in (1, 2, 3, 4):
        result = await watcher.list_services(ListServiceParam(page_no=page, page_size=2))
        total = result.count
        names.extend(result.services)
    check(total >= 6, "count %r" % total)
    check(len(names) == len(set(names)) == total, "pages %r (count %r)" % (names, total))
    check(all(("py-page-%d" % i) in names for i in range(3)), "names %r" % names)
    step(current, count=total)

    current = "client-closed"
    await c.register_instance(RegisterInstanceParam(service_name="py-orders", ip="127.0.0.1", port=9003))
    await wait_for("the callback sees 9002 and 9003",
                   lambda: _fired(fired, ["127.0.0.1:9002", "127.0.0.1:9003"]))
    await b.shutdown()
    await wait_for("b's instance gone", lambda: _fired(fired, ["127.0.0.1:9003"]))
    step(current)

    current = "unsubscribe"
    await watcher.unsubscribe(SubscribeServiceParam(service_name="py-orders", subscribe_callback=on_change))
    calls = len(fired)
    await a.register_instance(RegisterInstanceParam(service_name="py-orders", ip="127.0.0.1", port=9004))
    await wait_for("9004 registered", lambda: _http_has("py-orders", ["127.0.0.1:9003", "127.0.0.1:9004"]))
    await asyncio.sleep(0.5)
    check(len(fired) == calls, "the callback fired after unsubscribe: %r" % fired[calls:])
    step(current)

    current = "persistent-outlives-client"
    await a.shutdown()
    await wait_for("a's ephemeral instance gone", lambda: _http_has("py-orders", ["127.0.0.1:9003"]))
    check((await _http_has("py-db", ["127.0.0.1:9201"]))[0], "the persistent instance went with its client")
    await c.deregister_instance(DeregisterInstanceParam(
        service_name="py-db", ip="127.0.0.1", port=9201, ephemeral=False))
    await wait_for("the persistent instance gone", lambda: _http_has("py-db", []))
    step(current)

    await c.shutdown()
    await watcher.shutdown()


async def _has(naming, service, expected):
    hosts = await listed(service, naming)
    return hosts == expected, hosts


async def _http_has(service, expected):
    """What a v1 HTTP client sees: another client's view, no SDK cache."""
    url = "http://%s/nacos/v1/ns/instance/list?serviceName=%s" % (os.environ["NACOS_ADDR"], service)
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, lambda: urllib.request.urlopen(url, timeout=3).read())
    hosts = sorted("%s:%s" % (h["ip"], h["port"]) for h in json.loads(body).get("hosts") or [])
    return hosts == expected, hosts


async def _fired(fired, expected):
    last = fired[-1] if fired else None
    return last == expected, last


async def stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def hold():
    naming = await client()
    await naming.register_instance(RegisterInstanceParam(
        service_name=os.environ["SERVICE"], ip="127.0.0.1", port=int(os.environ["PORT"])))
    step("registered")
    await stdin_closed()
    await naming.shutdown()
    step("closed")


async def watch():
    naming = await client()

    async def on_change(instances):
        step("hosts", hosts=addrs(instances))

    await naming.subscribe(SubscribeServiceParam(service_name=os.environ["SERVICE"], subscribe_callback=on_change))
    step("subscribed")
    await stdin_closed()
    await naming.shutdown()


def main():
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("run took too long")))
    mode = os.environ.get("MODE", "scenario")
    if mode == "scenario":
        signal.alarm(int(WAIT_LIMIT_S * 12) + 30)
    try:
        asyncio.run({"scenario": scenario, "hold": hold, "watch": watch}[mode]())
    except Exception as e:  # noqa: BLE001 - report any failure as the step's
        print(json.dumps({"step": current, "ok": False, "error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        print("FAILED at %s: %s" % (current, e), file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
