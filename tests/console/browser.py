"""Drives the web console in a real headless Chromium (Debian's chromium
and chromium-driver, through selenium), as an operator would.

Prints one JSON line per step: {"step": name, "ok": true, ...}; a failed
step prints {"step": name, "ok": false, "error": ...} and exits 1.

Modes (first argument):
  node URL       the single-node walk: service list, search, a service's
                 page, taking an instance offline (checked in instance/list),
                 a registration appearing without a reload; then creating a
                 service (protect threshold, metadata), editing both, adding
                 a persistent instance, deleting it and deleting the service.
  login URL USER PASSWORD
                 with auth on: the login page, signing in, the service list.
  readonly URL USER PASSWORD SERVICE
                 with auth on, as a user who may only read: SERVICE's page
                 shows its instances without edit controls.
  cluster URL    the cluster page: every member up with its own Raft term,
                 then (after the test kills one) that member shown as down
                 and as not answering for its Raft state.
  shots URL DIR  a screenshot of every page into DIR (docs/console/).
  bench URL [N]  bytes transferred and time to first render of /nacos/,
                 N times with an empty cache.
  seed URL N     registers N services of one instance each (for bench).
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

LIMIT = 20  # seconds any one condition may take


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    # A fresh profile each run (selenium's default is a new temporary one).
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def say(step, **fields):
    print(json.dumps({"step": step, "ok": True, **fields}), flush=True)


def wait(driver, what, check, limit=LIMIT):
    try:
        # The console re-renders live: an element read a moment ago may be gone.
        return WebDriverWait(driver, limit, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,
                                                 NoSuchElementException)).until(check)
    except Exception as e:  # noqa: BLE001 - report what was awaited
        raise AssertionError(f"waited {limit}s for {what}: {type(e).__name__}") from e


def click(driver, css, what):
    """Clicks the element `css` finds, finding it again if a live redraw
    replaced it between the find and the click."""
    wait(driver, f"to click {what}",
         lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def texts(driver, css):
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def call(base, method, path, params):
    data = urllib.parse.urlencode(params).encode()
    url = base + path
    if method == "GET":
        url, data = f"{url}?{data.decode()}", None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as reply:
        return reply.read().decode()


def listed(base, service):
    answer = json.loads(call(base, "GET", "/nacos/v1/ns/instance/list", {"serviceName": service}))
    return sorted(f"{h['ip']}:{h['port']}" for h in answer["hosts"])


def node_walk(driver, base):
    driver.get(base + "/nacos/")
    wait(driver, "the service list", lambda d: "orders" in texts(d, "table tbody tr td:first-child a"))
    banner = driver.find_element(By.ID, "banner")
    assert banner.is_displayed() and "Auth is off" in banner.text, banner.text
    say("service-list", services=texts(driver, "table tbody tr td:first-child a"))

    search = driver.find_element(By.CSS_SELECTOR, "input[name=q]")
    search.send_keys("pay", Keys.ENTER)
    wait(driver, "only payments listed",
         lambda d: texts(d, "table tbody tr td:first-child a") == ["payments"])
    assert "q=pay" in driver.current_url, driver.current_url
    say("search", url=driver.current_url)

    driver.find_element(By.LINK_TEXT, "payments").click()
    row = '#main tr[data-address="10.0.0.2:81"]'
    wait(driver, "the service page", lambda d: d.find_elements(By.CSS_SELECTOR, row))
    say("open-service", heading=driver.find_element(By.TAG_NAME, "h1").text)

    # Marks this page load: a reload would lose it.
    driver.execute_script("window.nacreSamePage = true")
    assert "10.0.0.2:81" in listed(base, "payments")
    click(driver, row + " button.toggle", "take offline")
    wait(driver, "instance/list without the instance taken offline",
         lambda d: "10.0.0.2:81" not in listed(base, "payments"))
    wait(driver, "the row to show the override",
         lambda d: "override by anonymous" in d.find_element(By.CSS_SELECTOR, row).text)
    say("take-offline", listed=listed(base, "payments"))

    call(base, "POST", "/nacos/v1/ns/instance",
         {"serviceName": "payments", "ip": "10.0.0.9", "port": "90"})
    wait(driver, "the new instance on the page",
         lambda d: d.find_elements(By.CSS_SELECTOR, '#main tr[data-address="10.0.0.9:90"]'))
    assert driver.execute_script("return window.nacreSamePage === true"), "the page reloaded"
    say("live-registration")

    # A value being typed into a row outlives a live update of the service:
    # the redraw waits (and says so) until the field is left.
    def type_weight(d):
        field = d.find_element(By.CSS_SELECTOR, '#main tr[data-address="10.0.0.9:90"] input.weight')
        field.clear()
        field.send_keys("7")
        return field

    # Found again if a redraw still under way replaces the row before the field has the focus.
    weight = wait(driver, "a weight typed into the row", type_weight)
    call(base, "POST", "/nacos/v1/ns/instance",
         {"serviceName": "payments", "ip": "10.0.0.10", "port": "90"})
    wait(driver, "the note that the service changed while editing",
         lambda d: d.find_element(By.ID, "live-paused").is_displayed())
    assert weight.get_attribute("value") == "7", weight.get_attribute("value")
    assert not driver.find_elements(By.CSS_SELECTOR, '#main tr[data-address="10.0.0.10:90"]')
    driver.find_element(By.TAG_NAME, "h1").click()
    wait(driver, "the rows redrawn once the field is left",
         lambda d: d.find_elements(By.CSS_SELECTOR, '#main tr[data-address="10.0.0.10:90"]')
         and not d.find_element(By.ID, "live-paused").is_displayed())
    say("edit-outlives-live-update")

    # Batch: pick two rows, take both offline in one action.
    for address in ("10.0.0.9:90", "10.0.0.10:90"):
        click(driver, f'#main tr[data-address="{address}"] input.pick', f"pick {address}")
    wait(driver, "two picked", lambda d: "2 picked" in d.find_element(By.CSS_SELECTOR, ".picked-count").text)
    driver.find_element(By.CSS_SELECTOR, "button.batch-offline").click()
    wait(driver, "instance/list without both picked instances",
         lambda d: not {"10.0.0.9:90", "10.0.0.10:90"} & set(listed(base, "payments")))
    wait(driver, "the selection cleared", lambda d: "0 picked" in d.find_element(By.CSS_SELECTOR, ".picked-count").text)
    say("batch-offline", listed=listed(base, "payments"))
    create_and_delete(driver, base)
    namespaces_walk(driver, base)

    driver.get(base + "/nacos/#/plugins")
    wait(driver, "the plugins page", lambda d: d.find_elements(By.ID, "reload-plugins"))
    driver.find_element(By.ID, "reload-plugins").click()
    wait(driver, "the reload's answer",
         lambda d: "changed" in d.find_element(By.ID, "reload-result").text)
    say("reload-plugins", said=driver.find_element(By.ID, "reload-result").text.strip())


def service_exists(base, service):
    try:
        call(base, "GET", "/nacos/v1/ns/service", {"serviceName": service})
        return True
    except urllib.error.HTTPError as e:
        # Nacos answers 400 ("service not found") for an unknown service.
        if e.code in (400, 404):
            return False
        raise


def accept_confirm(driver):
    wait(driver, "the confirmation", EC.alert_is_present())
    driver.switch_to.alert.accept()


def create_and_delete(driver, base):
    open_create_form(driver, base + "/nacos/#/services", "service")
    driver.find_element(By.NAME, "newName").send_keys("inventory")
    threshold = driver.find_element(By.NAME, "newThreshold")
    threshold.clear()
    threshold.send_keys("0.5")
    driver.find_element(By.NAME, "newMetadata").send_keys("team=ops")
    driver.find_element(By.CSS_SELECTOR, "form.create-service button[type=submit]").click()
    wait(driver, "the new service's page",
         lambda d: "inventory" in d.find_element(By.TAG_NAME, "h1").text
         and d.find_elements(By.CSS_SELECTOR, "form.add-instance"))
    detail = json.loads(call(base, "GET", "/nacos/v1/ns/service", {"serviceName": "inventory"}))
    assert detail["protectThreshold"] == 0.5 and detail["metadata"] == {"team": "ops"}, detail
    say("create-service", threshold=detail["protectThreshold"], metadata=detail["metadata"])

    driver.find_element(By.CSS_SELECTOR, "details.create summary").click()
    threshold = driver.find_element(By.NAME, "editThreshold")
    threshold.clear()
    threshold.send_keys("0.8")
    meta = driver.find_element(By.NAME, "editMetadata")
    meta.clear()
    meta.send_keys("team=ops,tier=1")
    Select(driver.find_element(By.NAME, "editSelectorType")).select_by_value("label")
    driver.find_element(By.NAME, "editSelectorExpression").send_keys("INSTANCE.metadata.zone = 'a'")
    driver.find_element(By.CSS_SELECTOR, "form.edit-service button[type=submit]").click()
    edited = lambda: json.loads(call(base, "GET", "/nacos/v1/ns/service", {"serviceName": "inventory"}))
    wait(driver, "the service edited",
         lambda d: edited()["protectThreshold"] == 0.8 and edited()["metadata"] == {"team": "ops", "tier": "1"}
         and edited()["selector"] == {"type": "label", "expression": "INSTANCE.metadata.zone = 'a'"})
    wait(driver, "the page showing the new threshold",
         lambda d: "0.8" in d.find_element(By.CSS_SELECTOR, "#main dl.facts").text)
    say("edit-service", service=edited())

    driver.find_element(By.NAME, "newIp").send_keys("10.0.0.7")
    driver.find_element(By.NAME, "newPort").send_keys("7000")
    driver.find_element(By.CSS_SELECTOR, "form.add-instance button[type=submit]").click()
    wait(driver, "instance/list with the persistent instance",
         lambda d: "10.0.0.7:7000" in listed(base, "inventory"))
    row = '#main tr[data-address="10.0.0.7:7000"]'
    wait(driver, "its row", lambda d: "persistent" in d.find_element(By.CSS_SELECTOR, row).text)
    say("add-persistent-instance", listed=listed(base, "inventory"))

    click(driver, row + " button.delete", "delete the instance")
    accept_confirm(driver)
    wait(driver, "instance/list without it", lambda d: listed(base, "inventory") == [])
    wait(driver, "its row gone", lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    say("delete-persistent-instance")

    driver.find_element(By.CSS_SELECTOR, "button.delete-service").click()
    accept_confirm(driver)
    wait(driver, "the service gone", lambda d: not service_exists(base, "inventory"))
    wait(driver, "back on the service list", lambda d: "#/services" in d.current_url)
    say("delete-service")


def namespace_names(base):
    answer = json.loads(call(base, "GET", "/nacos/v1/console/namespaces", {}))
    return {n["namespace"]: n["namespaceShowName"] for n in answer["data"]}


def open_create_form(driver, url, what):
    """Opens the page at `url` and unfolds its "New …" form."""
    driver.get(url)
    summary = "details.create summary"
    wait(driver, f"the new-{what} form", lambda d: d.find_elements(By.CSS_SELECTOR, summary))
    driver.find_element(By.CSS_SELECTOR, summary).click()


def namespaces_walk(driver, base):
    open_create_form(driver, base + "/nacos/#/namespaces", "namespace")
    driver.find_element(By.NAME, "newNamespaceId").send_keys("staging")
    driver.find_element(By.NAME, "newNamespaceName").send_keys("Staging")
    driver.find_element(By.NAME, "newNamespaceDesc").send_keys("pre-release")
    driver.find_element(By.CSS_SELECTOR, "form.create-namespace button[type=submit]").click()
    wait(driver, "the namespace created", lambda d: namespace_names(base).get("staging") == "Staging")
    row = '#main tr[data-namespace="staging"]'
    wait(driver, "its row", lambda d: "pre-release" in d.find_element(By.CSS_SELECTOR, row).text)
    wait(driver, "the picker offering it",
         lambda d: "Staging" in texts(d, "#namespace option"))
    say("create-namespace", namespaces=namespace_names(base))

    click(driver, row + " button.edit-namespace", "edit the namespace")
    name = driver.find_element(By.NAME, "editNamespaceName")
    name.clear()
    name.send_keys("Stage")
    driver.find_element(By.CSS_SELECTOR, "form.edit-namespace button[type=submit]").click()
    wait(driver, "the namespace renamed", lambda d: namespace_names(base).get("staging") == "Stage")
    wait(driver, "the row renamed", lambda d: "Stage" in d.find_element(By.CSS_SELECTOR, row).text.split())
    say("edit-namespace", namespaces=namespace_names(base))

    click(driver, row + " button.delete-namespace", "delete the namespace")
    accept_confirm(driver)
    wait(driver, "the namespace deleted", lambda d: "staging" not in namespace_names(base))
    wait(driver, "its row gone", lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    say("delete-namespace", namespaces=namespace_names(base))


def login_walk(driver, base, user, password):
    driver.get(base + "/nacos/")
    wait(driver, "the login page", lambda d: d.find_elements(By.CSS_SELECTOR, "form.login"))
    assert not driver.find_element(By.ID, "banner").is_displayed(), "auth-off banner shown"
    say("login-page")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password, Keys.ENTER)
    wait(driver, "the service list after signing in",
         lambda d: "orders" in texts(d, "table tbody tr td:first-child a"))
    assert user in driver.find_element(By.ID, "user").text
    say("signed-in")


def readonly_walk(driver, base, user, password, service):
    login_walk(driver, base, user, password)
    driver.get(f"{base}/nacos/#/service?service={urllib.parse.quote(service)}&group=DEFAULT_GROUP")
    wait(driver, "the service page", lambda d: d.find_elements(By.CSS_SELECTOR, "#main tr[data-address]"))
    wait(driver, "the read-only note", lambda d: d.find_elements(By.CSS_SELECTOR, "#main .readonly-note"))
    controls = driver.find_elements(By.CSS_SELECTOR, "#main tr[data-address] button, #main tr[data-address] input")
    assert not controls, f"{len(controls)} edit controls shown to a reader"
    say("read-only", note=driver.find_element(By.CSS_SELECTOR, "#main .readonly-note").text)


def cluster_walk(driver, base, members):
    driver.get(base + "/nacos/#/cluster")
    states = lambda d: {e.get_attribute("data-member"): e.find_element(By.CSS_SELECTOR, ".member-state").text
                        for e in d.find_elements(By.CSS_SELECTOR, "tr[data-member]")}
    wait(driver, "every member up",
         lambda d: len(states(d)) == members and set(states(d).values()) == {"UP"})
    say("cluster-all-up", members=states(driver))
    terms = lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, "tr[data-member] .member-term")]
    wait(driver, "each member's own Raft term",
         lambda d: len(terms(d)) == members and all(t.isdigit() and int(t) > 0 for t in terms(d)))
    say("cluster-raft", terms=terms(driver))
    wait(driver, "a member shown down", lambda d: "DOWN" in states(d).values(), limit=40)
    raft = lambda d: {e.get_attribute("data-member"): e.find_element(By.CSS_SELECTOR, ".member-raft").text
                      for e in d.find_elements(By.CSS_SELECTOR, "tr[data-member]")}
    wait(driver, "the down member not answering for its Raft state",
         lambda d: "no answer" in raft(d).values())
    say("cluster-member-down", members=states(driver), raft=raft(driver))


PAGES = ["namespaces", "services", "service?service=payments&group=DEFAULT_GROUP", "instances",
         "subscribers?service=payments", "feed", "cluster", "plugins", "metrics"]


def screenshots(driver, base, folder):
    for page in PAGES:
        driver.get(f"{base}/nacos/#/{page}")
        wait(driver, f"page {page}", lambda d: d.execute_script(
            "return performance.getEntriesByName('nacre:first-view').length > 0"))
        time.sleep(0.5)  # let the fonts settle; the content is already there
        name = page.split("?")[0]
        driver.save_screenshot(f"{folder}/{name}.png")
        say("screenshot", page=name)


def bench(driver, base):
    driver.get(base + "/nacos/")
    wait(driver, "the first view", lambda d: d.execute_script(
        "return performance.getEntriesByName('nacre:first-view').length > 0"))
    figures = driver.execute_script("""
        const nav = performance.getEntriesByType('navigation')[0];
        const resources = performance.getEntriesByType('resource');
        const bytes = (e) => e.transferSize || e.encodedBodySize || 0;
        return {
          bundleBytes: bytes(nav) + resources.filter((r) => r.name.includes('/nacos/console/')).reduce((n, r) => n + bytes(r), 0),
          totalBytes: bytes(nav) + resources.reduce((n, r) => n + bytes(r), 0),
          firstViewMs: performance.getEntriesByName('nacre:first-view')[0].startTime,
          services: document.querySelector('.total') && document.querySelector('.total').textContent,
        };""")
    say("bench", **figures)


def seed(base, count):
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        call(base, "POST", "/nacos/v1/ns/instance", {
            "serviceName": f"svc-{i:05d}", "groupName": f"group-{i % 10}",
            "ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "port": "8080"})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))
    say("seed", services=count)


def main():
    mode, base = sys.argv[1], sys.argv[2].rstrip("/")
    if mode == "seed":
        return seed(base, int(sys.argv[3]))
    driver = browser()
    step = mode
    try:
        if mode == "node":
            node_walk(driver, base)
        elif mode == "login":
            login_walk(driver, base, sys.argv[3], sys.argv[4])
        elif mode == "readonly":
            readonly_walk(driver, base, sys.argv[3], sys.argv[4], sys.argv[5])
        elif mode == "cluster":
            cluster_walk(driver, base, int(sys.argv[3]))
        elif mode == "shots":
            screenshots(driver, base, sys.argv[3])
        elif mode == "bench":
            for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
                driver.delete_all_cookies()
                driver.execute_cdp_cmd("Network.clearBrowserCache", {})
                bench(driver, base)
        else:
            raise AssertionError(f"unknown mode {mode}")
    except Exception as e:  # noqa: BLE001 - every failure is reported as a step
        try:
            shown = driver.find_element(By.ID, "main").text[:1500]
            logs = [entry["message"] for entry in driver.get_log("browser")][-5:]
        except Exception:  # noqa: BLE001 - the browser itself may be gone
            shown, logs = "", []
        print(json.dumps({"step": step, "ok": False, "error": str(e), "page": shown, "console": logs}),
              flush=True)
        sys.exit(1)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
