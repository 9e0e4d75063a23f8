"""Drives the real Nacos Python SDK 3.x (PyPI nacos-sdk-python 3.2.0, the
gRPC `v2.nacos` API, unchanged) configured with a username and password
against a server with auth on.

The SDK logs in over HTTP (POST <server>/nacos/v1/auth/users/login, both in
the query string) in a background task at start and again from
get_access_token whenever it has no token or now > login time + tokenTtl -
10 s (v2/nacos/transport/auth_client.py); it puts the token in
metadata.headers["accessToken"] of every naming request
(nacos_server_connector.py inject_security_info). A refused request raises
NacosException with the response's errorCode (403) and message
(naming_grpc_client_proxy.py request_naming_server); a 403 never makes it
log in again. A failed login raises NacosException(500, "get access token
failed") from the call that needed the token.

Env:
  NACOS_ADDR     host:port of the server's HTTP API (required); gRPC is +1000
  MODE           "grants": WRITER and READER ("name:password"; the writer may
                   write the public namespace, the reader only read it):
                   what each may do, wrong and missing credentials
                 "hold": log in as USERNAME / PASSWORD, register SERVICE at
                   127.0.0.1:PORT, print {"step":"ready","token":...}; then
                   for each line "call" on stdin list the services and
                   register one more service, printing {"step":"call",
                   "allowed":bool,"code":..,"error":..,"token":<the token the
                   client holds now>}; ends when stdin closes
  WAIT_LIMIT_MS  bound of every wait (default 10000)

Prints one JSON line per step ({"step": ..., "ok": true, ...}); on the first
failure prints {"step": ..., "ok": false, "error": ...} and exits 1.
"""
import asyncio
import json
import logging
import os
import signal
import sys

from v2.nacos import ClientConfigBuilder, GRPCConfig, NacosNamingService
from v2.nacos.common.nacos_exception import NacosException
from v2.nacos.naming.model.naming_param import (
    DeregisterInstanceParam,
    ListInstanceParam,
    ListServiceParam,
    RegisterInstanceParam,
    SubscribeServiceParam,
)

from compat_v2 import WAIT_LIMIT_S, WORK_DIR, addrs, check, step, wait_for
from compat_v2 import _fired as _last

current = "start"


async def client(pair=None):
    builder = (ClientConfigBuilder()
               .server_address(os.environ["NACOS_ADDR"])
               .log_level(logging.ERROR)
               .log_dir(WORK_DIR)
               .cache_dir(os.path.join(WORK_DIR, "cache"))
               .load_cache_at_start(False)
               .grpc_config(GRPCConfig(grpc_timeout=5000)))
    if pair:
        name, password = pair.split(":", 1)
        builder = builder.username(name).password(password)
    return await NacosNamingService.create_naming_service(builder.build())


def token_of(naming):
    """The token the SDK holds (read, never changed)."""
    return naming.grpc_client_proxy.nacos_server_connector.auth_client.access_token


async def refused(what, call, code, message):
    try:
        await call
    except NacosException as e:
        check(e.error_code == code and e.message == message, "%s: %r %r" % (what, e.error_code, e.message))
        return
    raise AssertionError("%s was allowed" % what)


def register(service, port):
    return RegisterInstanceParam(service_name=service, ip="127.0.0.1", port=port)


async def grants():
    global current
    service = "py3-auth-%d" % os.getpid()

    current = "writer-registers"
    writer = await client(os.environ["WRITER"])
    check(await writer.register_instance(register(service, 9001)), "register returned false")
    names = (await writer.list_services(ListServiceParam(page_no=1, page_size=100))).services
    check(service in names, "the writer's service list: %r" % names)
    step(current, service=service)

    current = "reader-reads"
    reader = await client(os.environ["READER"])
    fired = []

    async def on_change(instances):
        fired.append(addrs(instances))

    await reader.subscribe(SubscribeServiceParam(service_name=service, subscribe_callback=on_change))
    # One instance per client and service, as Nacos 2.x keeps them.
    second = await client(os.environ["WRITER"])
    await second.register_instance(register(service, 9002))
    await wait_for("the reader's callback sees 9001 and 9002",
                   lambda: _last(fired, ["127.0.0.1:9001", "127.0.0.1:9002"]))
    await writer.register_instance(register(service + "-b", 9003))
    listed = addrs(await reader.list_instances(ListInstanceParam(service_name=service + "-b", subscribe=True, healthy_only=None)))
    check(listed == ["127.0.0.1:9003"], "the reader's list: %r" % listed)
    step(current, calls=len(fired))

    current = "reader-writes-refused"
    failed = "authorization failed!"
    await refused("the reader's registration", reader.register_instance(register(service, 9004)), 403, failed)
    await refused("the reader's deregistration", reader.deregister_instance(DeregisterInstanceParam(
        service_name=service, ip="127.0.0.1", port=9001)), 403, failed)
    # The next change the reader is pushed shows neither refused write happened.
    third = await client(os.environ["WRITER"])
    await third.register_instance(register(service, 9005))
    await wait_for("the reader's callback sees 9001, 9002 and 9005",
                   lambda: _last(fired, ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9005"]))
    step(current, code=403, message=failed)

    current = "wrong-password-refused"
    name = os.environ["READER"].split(":", 1)[0]
    wrong = await client(name + ":not-the-password")
    await refused("a list with a wrong password",
                  wrong.list_services(ListServiceParam(page_no=1, page_size=10)), 500, "get access token failed")
    step(current)

    current = "no-credentials-refused"
    anonymous = await client()
    await refused("a registration without credentials",
                  anonymous.register_instance(register(service, 9006)), 403, "unknown user!")
    step(current)

    for naming in (writer, second, third, reader, wrong, anonymous):
        await naming.shutdown()


async def hold():
    global current
    service = os.environ["SERVICE"]
    port = int(os.environ["PORT"])
    current = "ready"
    naming = await client(os.environ["USERNAME"] + ":" + os.environ["PASSWORD"])
    check(await naming.register_instance(register(service, port)), "register returned false")
    step(current, token=token_of(naming))
    current = "call"
    loop = asyncio.get_running_loop()
    calls = 0
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip() != "call":
            continue
        calls += 1
        try:
            names = (await naming.list_services(ListServiceParam(page_no=1, page_size=100))).services
            check(await naming.register_instance(register("%s-%d" % (service, calls), port)), "register")
            step(current, allowed=True, services=names, token=token_of(naming))
        except NacosException as e:
            step(current, allowed=False, code=e.error_code, error=e.message, token=token_of(naming))
    await naming.shutdown()


def main():
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("run took too long")))
    mode = os.environ.get("MODE", "grants")
    if mode == "grants":
        signal.alarm(int(WAIT_LIMIT_S * 6) + 30)
    try:
        asyncio.run({"grants": grants, "hold": hold}[mode]())
    except Exception as e:  # noqa: BLE001 - report any failure as the step's
        print(json.dumps({"step": current, "ok": False, "error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        print("FAILED at %s: %s" % (current, e), file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
