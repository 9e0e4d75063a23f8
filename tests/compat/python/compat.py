"""Drives the real Nacos Python SDK (nacos-sdk-python 1.0) against a node.

Env: NACOS_ADDR (host:port). Prints one JSON line per step; exits non-zero on
the first failure. Every wait is bounded.
"""
import json
import os
import sys
import time

import nacos

LIMIT_S = 15.0


def step(name, **extra):
    print(json.dumps({"step": name, "ok": True, **extra}), flush=True)


def wait_for(what, check):
    start = time.monotonic()
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() - start > LIMIT_S:
            raise AssertionError("timed out waiting for: " + what)
        time.sleep(0.1)


def hosts_of(reply):
    return sorted("%s:%s" % (h["ip"], h["port"]) for h in reply["hosts"])


def main():
    addr = os.environ["NACOS_ADDR"]
    client = nacos.NacosClient(addr, namespace="public")
    service = "py-compat-%d" % os.getpid()

    assert client.add_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT", weight=2.0,
                                      metadata={"zone": "a"}) is True
    reply = wait_for("instance listed", lambda: (lambda r: r if hosts_of(r) == ["10.8.0.1:8080"] else None)(
        client.list_naming_instance(service)))
    host = reply["hosts"][0]
    assert host["weight"] == 2.0 and host["metadata"] == {"zone": "a"} and host["healthy"] is True, host
    assert reply["name"] == "DEFAULT_GROUP@@" + service, reply["name"]
    step("register-and-list")

    detail = client.get_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    assert detail["ip"] == "10.8.0.1" and detail["port"] == 8080 and detail["weight"] == 2.0, detail
    step("get-instance")

    assert client.modify_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT", weight=5.0,
                                         metadata={"zone": "b"}) is True
    detail = client.get_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    assert detail["weight"] == 5.0 and detail["metadata"] == {"zone": "b"}, detail
    step("modify-instance")

    beat = client.send_heartbeat(service, "10.8.0.1", 8080, cluster_name="DEFAULT")
    assert beat["code"] == 10200 and beat["clientBeatInterval"] > 0, beat
    # A beat for an unknown instance carries its body: the node registers it from the beat.
    beat = client.send_heartbeat(service, "10.8.0.2", 8081, cluster_name="DEFAULT", metadata={"from": "beat"})
    assert beat["code"] == 10200, beat
    reply = client.list_naming_instance(service, healthy_only=True)
    assert hosts_of(reply) == ["10.8.0.1:8080", "10.8.0.2:8081"], hosts_of(reply)
    step("heartbeat")

    assert client.remove_naming_instance(service, "10.8.0.1", 8080, cluster_name="DEFAULT") is True
    wait_for("instance removed", lambda: hosts_of(client.list_naming_instance(service)) == ["10.8.0.2:8081"])
    step("remove-instance")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report and fail the run
        print("FAILED: %r" % e, file=sys.stderr)
        raise
