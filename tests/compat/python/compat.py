"""Drives the real Nacos Python SDK (PyPI nacos-sdk-python 1.0.0, unchanged)
against a Nacos-compatible server.

Env:
  NACOS_ADDR     host:port of the server (required)
  BEAT_PHASE_MS  length of the SDK's own beat loop phase (add_naming_instance
                 with heartbeat_interval); 0 or unset skips it
  WAIT_LIMIT_MS  bound of every poll (default 10000, 100 ms steps)

Prints one JSON line per step ({"step": ..., "ok": true, ...}); on the first
failure prints {"step": ..., "ok": false, "error": ...}, a FAILED line on
stderr, and exits 1. Every wait is bounded (each request by the SDK's 3 s
timeout) and an alarm ends the whole run.

The SDK sends every parameter in the query string, Python-style: booleans as
True/False, weight 1.0, and clusterName=None when add_naming_instance gets no
cluster_name.
"""
import json
import os
import signal
import sys
import tempfile
import time

import nacos

WAIT_LIMIT_S = int(os.environ.get("WAIT_LIMIT_MS", "10000")) / 1000.0
BEAT_PHASE_S = int(os.environ.get("BEAT_PHASE_MS", "0")) / 1000.0
GROUP = "DEFAULT_GROUP"

current = "start"


def step(name, **extra):
    print(json.dumps({"step": name, "ok": True, **extra}), flush=True)


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def wait_for(what, probe):
    """Calls probe() every 100 ms until it returns something truthy, at most
    WAIT_LIMIT_S; the last value seen goes into the error."""
    start = time.monotonic()
    last = None
    while True:
        result, last = probe()
        if result:
            return result
        if time.monotonic() - start > WAIT_LIMIT_S:
            raise AssertionError("timed out after %.1f s waiting for: %s (last: %r)" % (WAIT_LIMIT_S, what, last))
        time.sleep(0.1)


def hosts_of(reply):
    return sorted("%s:%s" % (h["ip"], h["port"]) for h in reply.get("hosts") or [])


def find(reply, ip, port):
    for h in reply.get("hosts") or []:
        if h["ip"] == ip and h["port"] == port:
            return h
    return None


def main():
    global current
    addr = os.environ.get("NACOS_ADDR")
    if not addr:
        raise AssertionError("NACOS_ADDR (host:port) is required")
    log_dir = os.path.join(tempfile.gettempdir(), "nacre-compat-python-logs")
    # No namespace: the SDK then leaves namespaceId out and the server's
    # default (public) applies.
    client = nacos.NacosClient(addr, logDir=log_dir)
    unique = "%d-%d" % (os.getpid(), int(time.time() * 1000) % 100000000)
    service = "py-compat-" + unique

    current = "register-and-list"
    check(client.add_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT", weight=2.0,
                                     metadata={"zone": "a"}) is True,
          "add_naming_instance did not get the text ok")
    reply = wait_for("instance listed", lambda: (lambda r: (find(r, "10.8.0.1", 8080) and r, hosts_of(r)))(
        client.list_naming_instance(service)))
    host = find(reply, "10.8.0.1", 8080)
    check(host["weight"] == 2.0 and host["metadata"] == {"zone": "a"} and host["healthy"] is True
          and host.get("enabled", True) is True, "listed wrongly: %r" % host)
    check(reply["name"] == GROUP + "@@" + service, "list name: %r" % reply.get("name"))
    healthy = client.list_naming_instance(service, healthy_only=True)
    check(hosts_of(healthy) == ["10.8.0.1:8080"], "healthy only: %r" % hosts_of(healthy))
    step(current, service=service, instance=host.get("instanceId"))

    current = "get-instance"
    detail = client.get_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    check(detail["ip"] == "10.8.0.1" and detail["port"] == 8080 and detail["weight"] == 2.0
          and detail["metadata"] == {"zone": "a"} and detail["healthy"] is True, "detail: %r" % detail)
    step(current)

    current = "modify-instance"
    check(client.modify_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT", weight=5.0,
                                        metadata={"zone": "b"}) is True,
          "modify_naming_instance did not get the text ok")
    wait_for("modification visible", lambda: (lambda d: (d["weight"] == 5.0 and d["metadata"] == {"zone": "b"}, d))(
        client.get_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT")))
    step(current)

    current = "heartbeat"
    beat = client.send_heartbeat(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    check(beat.get("code") == 10200 and int(beat.get("clientBeatInterval", 0)) > 0, "beat reply: %r" % beat)
    # A beat for an unknown instance carries its body: the server registers it from the beat.
    beat2 = client.send_heartbeat(service, "10.8.0.2", 8081, cluster_name="DEFAULT", metadata={"from": "beat"})
    check(beat2.get("code") == 10200, "beat reply for an unknown instance: %r" % beat2)
    wait_for("instance registered by its beat", lambda: (lambda r: (
        hosts_of(r) == ["10.8.0.1:8080", "10.8.0.2:8081"], hosts_of(r)))(
        client.list_naming_instance(service, healthy_only=True)))
    step(current, reply=beat)

    current = "remove-instance"
    check(client.remove_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT") is True,
          "remove_naming_instance did not get the text ok")
    wait_for("instance removed", lambda: (lambda r: (hosts_of(r) == ["10.8.0.2:8081"], hosts_of(r)))(
        client.list_naming_instance(service)))
    step(current)

    # Without cluster_name the SDK registers with clusterName=None (the text);
    # it must be listed, and removable under the cluster it is listed in.
    current = "default-cluster"
    service2 = "py-default-" + unique
    check(client.add_naming_instance(service2, "10.8.1.1", 7000) is True,
          "add_naming_instance without a cluster did not get the text ok")
    reply = wait_for("instance without a cluster listed", lambda: (lambda r: (find(r, "10.8.1.1", 7000) and r,
                                                                               hosts_of(r)))(
        client.list_naming_instance(service2)))
    cluster = find(reply, "10.8.1.1", 7000).get("clusterName")
    check(client.remove_naming_instance(service2, "10.8.1.1", 7000, cluster_name=cluster) is True,
          "remove_naming_instance did not get the text ok")
    wait_for("instance without a cluster removed", lambda: (lambda r: (hosts_of(r) == [], hosts_of(r)))(
        client.list_naming_instance(service2)))
    step(current, clusterName=cluster)

    if BEAT_PHASE_S > 0:
        # The SDK's own beat thread (one full beat every heartbeat_interval s,
        # reply ignored) must keep the instance listed and healthy throughout.
        current = "auto-heartbeat"
        service3 = "py-beat-" + unique
        check(client.add_naming_instance(service3, "10.8.2.1", 7100, cluster_name="DEFAULT",
                                         heartbeat_interval=1) is True,
              "add_naming_instance with heartbeat_interval did not get the text ok")
        end = time.monotonic() + BEAT_PHASE_S
        samples = 0
        while True:
            r = client.list_naming_instance(service3)
            h = find(r, "10.8.2.1", 7100)
            samples += 1
            check(h is not None and h["healthy"] is True,
                  "beating instance lost or unhealthy during the %.1f s phase: %r" % (BEAT_PHASE_S, r))
            if time.monotonic() >= end:
                break
            time.sleep(min(0.25, max(0.0, end - time.monotonic())))
        check(client.remove_naming_instance(service3, "10.8.2.1", 7100, cluster_name="DEFAULT") is True,
              "remove_naming_instance did not get the text ok")
        step(current, ms=int(BEAT_PHASE_S * 1000), samples=samples)


def on_alarm(_signum, _frame):
    raise TimeoutError("watchdog: run took too long")


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(BEAT_PHASE_S + 10 * WAIT_LIMIT_S + 60))
    try:
        main()
    except BaseException as e:  # report and fail the run
        print(json.dumps({"step": current, "ok": False, "error": repr(e)}), flush=True)
        print("FAILED in step %s: %r" % (current, e), file=sys.stderr)
        sys.exit(1)
    signal.alarm(0)
