"""Drives the real Nacos Python SDK 1.0.0 (PyPI nacos-sdk-python, unchanged)
configured with a username and password against a server with auth on.

The SDK logs in from its constructor (POST /nacos/v1/auth/login with both in
the query string; an HTTP error raises from the constructor), adds
accessToken=<token> to the query of every request, and logs in again only
once now > login time + tokenTtl - 10 s (nacos/client.py get_access_token);
a 403 on a naming call raises NacosException("Insufficient privilege.") and
never makes it log in again.

Env:
  NACOS_ADDR     host:port of the server (required)
  MODE           "grants": WRITER and READER ("name:password"; the writer may
                   write the public namespace, the reader only read it):
                   what each may do, wrong and missing credentials
                 "hold": log in as USERNAME / PASSWORD, register SERVICE at
                   127.0.0.1:PORT, print {"step":"ready","token":...}; then
                   for each line "call" on stdin list SERVICE and register
                   one more port, printing {"step":"call","allowed":bool,
                   "error":...,"token":<the token the client holds now>};
                   ends when stdin closes
  WAIT_LIMIT_MS  bound of every poll (default 10000, 100 ms steps)

Prints one JSON line per step ({"step": ..., "ok": true, ...}); on the first
failure prints {"step": ..., "ok": false, "error": ...} and exits 1.
"""
import json
import os
import signal
import sys
import tempfile
from urllib.error import HTTPError

import nacos
from nacos.exception import NacosException

from compat import check, hosts_of, step, wait_for

WAIT_LIMIT_S = int(os.environ.get("WAIT_LIMIT_MS", "10000")) / 1000.0
LOG_DIR = os.path.join(tempfile.gettempdir(), "nacre-compat-python-logs")
DENIED = "Insufficient privilege."

current = "start"


def wait_hosts(client, service, expected):
    def probe():
        seen = hosts_of(client.list_naming_instance(service))
        return seen == expected, seen
    wait_for("%s to list %r" % (service, expected), probe)


def client_as(pair):
    name, password = pair.split(":", 1)
    return nacos.NacosClient(os.environ["NACOS_ADDR"], username=name, password=password, logDir=LOG_DIR)


def refused(what, call):
    """call() must raise the SDK's 403 exception; returns its text."""
    try:
        call()
    except NacosException as e:
        check(str(e) == DENIED, "%s: %r" % (what, e))
        return str(e)
    raise AssertionError("%s was allowed" % what)


def grants():
    global current
    service = "py-auth-%d" % os.getpid()

    current = "writer-registers"
    writer = client_as(os.environ["WRITER"])
    check(writer.token, "no token after the constructor's login")
    check(writer.add_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT") is True,
          "add_naming_instance did not get the text ok")
    wait_hosts(writer, service, ["10.8.0.1:8080"])
    beat = writer.send_heartbeat(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    check(beat.get("code") == 10200, "beat reply: %r" % beat)
    step(current, service=service)

    current = "reader-reads"
    reader = client_as(os.environ["READER"])
    check(hosts_of(reader.list_naming_instance(service)) == ["10.8.0.1:8080"], "the reader's list")
    detail = reader.get_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    check(detail["ip"] == "10.8.0.1", "the reader's detail: %r" % detail)
    step(current)

    current = "reader-writes-refused"
    refused("the reader's registration",
            lambda: reader.add_naming_instance(service, "10.8.0.2", 8080, cluster_name="DEFAULT"))
    refused("the reader's beat", lambda: reader.send_heartbeat(service, "10.8.0.1", 8080, cluster_name="DEFAULT"))
    refused("the reader's deregistration",
            lambda: reader.remove_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT"))
    refused("the reader's modification",
            lambda: reader.modify_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT", weight=3.0))
    listed = writer.list_naming_instance(service)
    check(hosts_of(listed) == ["10.8.0.1:8080"] and listed["hosts"][0]["weight"] == 1.0,
          "a refused write changed the registry: %r" % listed)
    step(current, error=DENIED)

    current = "wrong-password-refused"
    name = os.environ["READER"].split(":", 1)[0]
    try:
        client_as(name + ":not-the-password")
        raise AssertionError("the constructor logged in with a wrong password")
    except HTTPError as e:
        body = json.loads(e.read().decode("utf-8"))
        check(e.code == 403 and body.get("message") == "unknown user!", "login refusal: %s %r" % (e.code, body))
        step(current, status=e.code, message=body["message"])

    current = "no-credentials-refused"
    anonymous = nacos.NacosClient(os.environ["NACOS_ADDR"], logDir=LOG_DIR)
    refused("a list without credentials", lambda: anonymous.list_naming_instance(service))
    step(current)


def hold():
    global current
    service = os.environ["SERVICE"]
    port = int(os.environ["PORT"])
    current = "ready"
    client = client_as(os.environ["USERNAME"] + ":" + os.environ["PASSWORD"])
    check(client.add_naming_instance(service, "127.0.0.1", port) is True, "add_naming_instance")
    step(current, token=client.token)
    current = "call"
    for line in sys.stdin:
        if line.strip() != "call":
            continue
        port += 1
        try:
            hosts = hosts_of(client.list_naming_instance(service))
            check(client.add_naming_instance(service, "127.0.0.1", port) is True, "add_naming_instance")
            step(current, allowed=True, hosts=hosts, token=client.token)
        except NacosException as e:
            step(current, allowed=False, error=str(e), token=client.token)


def on_alarm(_signum, _frame):
    raise TimeoutError("watchdog: run took too long")


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(10 * WAIT_LIMIT_S + 60))
    try:
        {"grants": grants, "hold": hold}[os.environ.get("MODE", "grants")]()
    except BaseException as e:  # report and fail the run
        print(json.dumps({"step": current, "ok": False, "error": repr(e)}), flush=True)
        print("FAILED in step %s: %r" % (current, e), file=sys.stderr)
        sys.exit(1)
    signal.alarm(0)
