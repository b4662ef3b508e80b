"""The web console (plugins/recipe/console), driven in Debian's headless
Chromium through Selenium against a real 3-member ensemble: log in, browse,
create, edit, delete, a refusal by ACL, the ensemble page across a leader's
death, a registry instance appearing and lapsing, and a node with 100,000
children. Screenshots of each page go to $CORRAL_CONSOLE_SHOTS when set."""
import base64
import hashlib
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, ACL, Id

from corral_harness.servers import TARGET, free_port, wait_for

pytestmark = pytest.mark.skipif(TARGET != "corrald", reason="Corral's console recipe")

# Debian's python3-selenium, chromium and chromium-driver (./dev installs them).
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException, ElementNotInteractableException, StaleElementReferenceException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SUPER = "super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode()
SHOTS = os.environ.get("CORRAL_CONSOLE_SHOTS")


@pytest.fixture(scope="module")
def ens(tmp_path_factory):
    from corral_harness.ensemble import Ensemble
    admin = {}

    def own(m):
        admin.setdefault(m.sid, free_port())
        return ["--set", f"server.admin_address=127.0.0.1:{admin[m.sid]}",
                "--set", f"server.super_digest={SUPER}",
                "--set", "server.extended_types=true",
                "--set", 'plugins.recipes=["console", "service-registry", "server-info"]',
                "--set", "recipe.console.max_streams=8",
                "--set", "recipe.console.sample_interval_ms=1000",
                "--set", "recipe.service-registry.min_ttl_ms=200",
                "--set", "recipe.server-info.interval_ms=1000"]

    e = Ensemble(tmp_path_factory.mktemp("console"), voters=3, member_args=own)
    e.admin = admin
    e.start()
    for i in range(3):  # each console's session opens once its server has a leader
        wait_for(lambda: api(e, i, "GET", "/ui/api/node?path=/")[0] == 200, timeout=10, what="the console")
    yield e
    e.close()


@pytest.fixture(scope="module")
def zk(ens):
    c = KazooClient(hosts=ens.hosts(), timeout=10)
    c.start(timeout=15)
    c.add_auth("digest", "alice:wonder")
    yield c
    c.stop()
    c.close()


def page_member(ens):
    """A member that does not lead: its page outlives the leader."""
    return next(i for i, m in enumerate(ens.members) if m.proc and i != ens.leader())


def base(ens, i):
    return f"http://127.0.0.1:{ens.admin[ens.members[i].sid]}"


def api(ens, i, method, path, body=None, user=None, timeout=10, headers=None):
    req = urllib.request.Request(base(ens, i) + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    for k, v in (headers if headers is not None else {"X-Requested-With": "test"}).items():
        req.add_header(k, v)
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def wait(d, pred, timeout=20, what="the page"):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.1).until(lambda _: pred(), message=what)
    except Exception:
        # What the page showed, for the report.
        print("page at failure:", d.execute_script("return document.body.innerText")[:3000])
        for entry in d.get_log("browser")[-20:]:
            print("browser:", entry)
        raise


def el(d, css):
    return d.find_element(By.CSS_SELECTOR, css)


def text(d, css):
    """The element's text now, read in one step (pages redraw as they poll)."""
    return d.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : ''", css)


def click(d, css):
    """Clicks the element, finding it again if a redraw replaced it, and
    again if the page moved it as the click landed (a list that loads its
    next page by itself once "Load more" scrolls into view, and disables
    the button while it loads)."""
    for _ in range(20):
        try:
            el(d, css).click()
            return
        except (StaleElementReferenceException, ElementClickInterceptedException,
                ElementNotInteractableException):
            time.sleep(0.1)
    el(d, css).click()


def shot(d, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        d.save_screenshot(os.path.join(SHOTS, f"console-{name}.png"))


def login(d, url, user, password):
    d.get(url + "/ui/")
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#login-form, #logout"), what="the login form")
    if d.find_elements(By.CSS_SELECTOR, "#logout") and el(d, "#logout").is_displayed():
        click(d, "#logout")
    if not el(d, "#login-form").is_displayed():
        buttons = [b for b in d.find_elements(By.CSS_SELECTOR, "#login-open, button")
                   if b.is_displayed() and b.text.strip().lower() in ("log in", "login", "sign in")]
        buttons[0].click()
    wait(d, lambda: el(d, "#login-user").is_displayed(), what="the login form")
    el(d, "#login-user").clear()
    el(d, "#login-user").send_keys(user)
    el(d, "#login-password").clear()
    el(d, "#login-password").send_keys(password)
    click(d, "#login-submit")
    wait(d, lambda: text(d, "#whoami") == user, what=f"logged in as {user}")


def go(d, url, hash_):
    d.execute_script("location.hash = arguments[0]", hash_)


def test_the_page_is_anyones_and_the_api_acts_as_the_caller(ens, zk):
    i = page_member(ens)
    with urllib.request.urlopen(base(ens, i) + "/ui/", timeout=5) as r:
        assert r.status == 200 and b"<html" in r.read().lower()
    st, who = api(ens, i, "GET", "/ui/api/whoami", user="alice:wonder")
    assert st == 200 and who["authenticated"] and who["user"] == "alice"
    zk.create("/api-probe", b"\x00\xffbytes", acl=[make_digest_acl("alice", "wonder", all=True)])
    st, node = api(ens, i, "GET", "/ui/api/node?path=/api-probe", user="alice:wonder")
    assert st == 200, node
    assert base64.b64decode(node["data_b64"]) == b"\x00\xffbytes"
    assert node["rights"] == "cdrwa" and node["stat"]["version"] == 0
    st, err = api(ens, i, "GET", "/ui/api/node?path=/api-probe", user="bob:builder")
    assert st == 403 and err["code"] == "NoAuth", err
    assert err["error"] == "KeeperErrorCode = NoAuth for /api-probe"
    st, err = api(ens, i, "GET", "/ui/api/node?path=/api-probe")
    assert st == 403
    # A version check, bad input, and nothing changed by either.
    st, err = api(ens, i, "PUT", "/ui/api/node", {"path": "/api-probe", "data_b64": "eA==", "version": 7},
                  user="alice:wonder")
    assert st == 409 and err["code"] == "BadVersion"
    for body in ({"path": "no-slash"}, {"path": "/a", "data_b64": "***"}, {"path": "/a", "mode": "sticky"},
                 {"path": "/a", "mode": "ttl"}, {"path": "/a", "acl": [{"scheme": "world"}]}):
        st, err = api(ens, i, "POST", "/ui/api/node", body, user="alice:wonder")
        assert st == 400 and err["error"], (body, err)
    req = urllib.request.Request(base(ens, i) + "/ui/api/node", data=b"{not json", method="POST",
                                 headers={"X-Requested-With": "test"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 400
    assert zk.get("/api-probe")[0] == b"\x00\xffbytes"
    assert zk.get_children("/") .count("a") == 0
    # Every create mode, as the caller; a TTL node and a container.
    for mode, extra in (("ttl", {"ttl_ms": 60000}), ("container", {}), ("persistent_sequential", {})):
        st, made = api(ens, i, "POST", "/ui/api/node",
                       {"path": f"/modes-{mode}-", "mode": mode, **extra}, user="alice:wonder")
        assert st == 201, made
        zk.sync("/")  # (the console wrote through another member, perhaps)
        assert zk.exists(made["path"]) is not None
    # The creator's ACL when logged in.
    st, made = api(ens, i, "POST", "/ui/api/node", {"path": "/owned", "data_b64": "aGk="}, user="alice:wonder")
    assert st == 201
    zk.sync("/")
    acl, _ = zk.get_acls("/owned")
    assert {(a.id.scheme, a.perms) for a in acl} == {("digest", 31), ("world", 1)}
    # Another site's page cannot make changes: no X-Requested-With (a form
    # or a no-cors fetch cannot set it), or an Origin of another site.
    for headers in ({}, {"X-Requested-With": "x", "Origin": "http://evil.example"},
                    {"X-Requested-With": "x", "Sec-Fetch-Site": "cross-site"}):
        st, err = api(ens, i, "POST", "/ui/api/node", {"path": "/forged"}, user="alice:wonder", headers=headers)
        assert st == 403, (headers, err)
    st, _ = api(ens, i, "PUT", "/v1/registry/services/forged/instances/f1", {"address": "10.0.0.1", "port": 1},
                user="alice:wonder", headers={"Origin": "http://evil.example"})
    assert st == 403
    assert zk.exists("/forged") is None and zk.exists("/services/forged") is None
    st, _ = api(ens, i, "POST", "/ui/api/node", {"path": "/same-site"}, user="alice:wonder",
                headers={"X-Requested-With": "x", "Origin": base(ens, i)})
    assert st == 201
    # A request too large for a frame fails alone: the console's session,
    # and the ephemeral it holds, stay. (A path of 1,048,540 bytes: the body
    # fits the admin endpoint's 1 MiB, the create request not a 0xfffff frame.)
    st, made = api(ens, i, "POST", "/ui/api/node", {"path": "/kept", "mode": "ephemeral"}, user="alice:wonder")
    assert st == 201
    st, err = api(ens, i, "POST", "/ui/api/node", {"path": "/" + "a" * 1048540}, user="alice:wonder")
    assert st == 400 and err["code"] == "MarshallingError", err
    st, _ = api(ens, i, "GET", "/ui/api/node?path=/kept", user="alice:wonder")
    assert st == 200
    time.sleep(1)
    assert zk.exists("/kept") is not None
    # Reconfig acts as the caller too: bob may not change the membership.
    st, err = api(ens, i, "POST", "/ui/api/reconfig", {"leaving": "3"}, user="bob:builder")
    assert 400 <= st < 500 and err["code"] in ("NoAuth", "ReconfigDisabled"), err
    assert len(api(ens, i, "GET", "/ui/api/ensemble")[1]["members"]) == 3
    # A refused credential: the admin endpoint answers 401 without a
    # challenge to a page's own script, so the browser shows no dialog.
    for page in (True, False):
        req = urllib.request.Request(base(ens, i) + "/ui/api/whoami")
        req.add_header("Authorization", "Basic bm8tY29sb24=")  # "no-colon"
        if page:
            req.add_header("X-Requested-With", "corral-console")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        assert e.value.code == 401
        assert ("WWW-Authenticate" in e.value.headers) != page


def test_live_streams_are_bounded(ens, zk):
    """recipe.console.max_streams: the ninth stream is refused, the others
    report changes, and a closed one frees its place."""
    i = next(i for i, m in enumerate(ens.members) if m.proc and i != page_member(ens))
    port = ens.admin[ens.members[i].sid]
    zk.ensure_path("/streamed")
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /ui/api/events?path=/streamed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"200 OK" in s.recv(4096)
            socks.append(s)
        st, err = api(ens, i, "GET", "/ui/api/events?path=/streamed")
        assert st == 503 and "max_streams" in err["error"]
        zk.set("/streamed", b"changed")
        got = b""
        deadline = time.monotonic() + 10
        while b"NodeDataChanged" not in got and time.monotonic() < deadline:
            got += socks[0].recv(4096)
        assert b"NodeDataChanged" in got
        socks.pop().close()
        wait_for(lambda: api(ens, i, "GET", "/ui/api/whoami")[0] == 200 and _stream_opens(port),
                 timeout=10, what="a place freed by a closed stream")
    finally:
        for s in socks:
            s.close()


def _stream_opens(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /ui/api/events?path=/streamed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return b"200 OK" in s.recv(4096)
    finally:
        s.close()


def test_log_in_browse_create_edit_and_delete(ens, zk, browser):
    d = browser
    url = base(ens, page_member(ens))
    login(d, url, "alice", "wonder")
    go(d, url, "#/tree/")
    wait(d, lambda: text(d, "#node-path") == "/", what="the root")
    shot(d, "tree")
    # Create /shop with JSON data through the dialog.
    click(d, "#create-open")
    wait(d, lambda: el(d, "#create-name").is_displayed())
    el(d, "#create-name").send_keys("shop")
    el(d, "#create-data").send_keys('{"open": true}')
    Select(el(d, "#create-mode")).select_by_value("persistent")
    shot(d, "create")
    click(d, "#create-submit")
    wait_for(lambda: zk.exists("/shop") is not None, timeout=10, what="/shop created")
    assert json.loads(zk.get("/shop")[0]) == {"open": True}
    # Browse to it by clicking its name in the listing.
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, '.child[data-name="shop"] a'), what="the new child")
    click(d, '.child[data-name="shop"] a')
    wait(d, lambda: text(d, "#node-path") == "/shop")
    Select(el(d, "#data-view")).select_by_value("json")
    wait(d, lambda: '"open": true' in text(d, "#node-data"), what="pretty JSON")
    # Edit with the version shown.
    box = el(d, "#edit-data")
    box.clear()
    box.send_keys('{"open": false}')
    click(d, "#save-data")
    wait_for(lambda: json.loads(zk.get("/shop")[0]) == {"open": False}, timeout=10, what="the edit saved")
    wait(d, lambda: text(d, "#node-version") == "1", what="version 1 shown")
    # A change made elsewhere reaches the page through its watch.
    zk.set("/shop", b'{"open": "later"}')
    wait(d, lambda: '"later"' in text(d, "#node-data"), what="the live update")
    shot(d, "node")
    # Children appear live too; then the subtree goes in one confirmed delete.
    zk.create("/shop/aisle/shelf", b"", makepath=True)
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, '.child[data-name="aisle"]'), what="a live child")
    click(d, "#delete-node")
    wait(d, lambda: el(d, "#confirm-ok").is_displayed())
    click(d, "#delete-recursive")
    shot(d, "delete")
    click(d, "#confirm-ok")
    wait_for(lambda: zk.exists("/shop") is None, timeout=10, what="/shop deleted with its subtree")
    wait(d, lambda: text(d, "#node-path") == "/", what="back at the parent")
    # The same page on a phone's screen.
    d.set_window_size(390, 844)
    try:
        go(d, url, "#/tree/zookeeper")
        wait(d, lambda: text(d, "#node-path") == "/zookeeper")
        assert d.execute_script("return document.documentElement.scrollWidth") <= 400
        shot(d, "phone")
    finally:
        d.set_window_size(1280, 900)


def test_a_refusal_by_acl_shows_zookeepers_error_and_greys_out(ens, zk, browser):
    d = browser
    url = base(ens, page_member(ens))
    zk.create("/vault", b"secret", acl=[make_digest_acl("alice", "wonder", all=True)])
    zk.create("/notice", b"read me", acl=[make_digest_acl("alice", "wonder", all=True),
                                          ACL(1, Id("world", "anyone"))])
    login(d, url, "bob", "builder")
    go(d, url, "#/tree/vault")
    wait(d, lambda: "NoAuth" in text(d, "#error"), what="the NoAuth refusal")
    assert "KeeperErrorCode = NoAuth for /vault" in text(d, "#error")
    shot(d, "refusal")
    go(d, url, "#/tree/notice")
    wait(d, lambda: text(d, "#node-path") == "/notice")
    wait(d, lambda: "read me" in text(d, "#node-data") or "read me" in el(d, "#edit-data").get_attribute("value"))
    assert not el(d, "#save-data").is_enabled()
    assert not el(d, "#create-open").is_enabled()
    # The server refuses what the page would not offer.
    st, err = api(ens, page_member(ens), "PUT", "/ui/api/node",
                  {"path": "/notice", "data_b64": "eA==", "version": -1}, user="bob:builder")
    assert st == 403 and err["code"] == "NoAuth"
    assert zk.get("/notice")[0] == b"read me"


def test_sessions_watches_and_metrics_pages(ens, zk, browser):
    d = browser
    url = base(ens, page_member(ens))
    login(d, url, "super", "secret")
    go(d, url, "#/sessions")
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#sessions-table tr[data-session-id]"),
         what="sessions listed")
    shot(d, "sessions")
    go(d, url, "#/metrics")
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, 'figure.chart[data-series="ops_per_s"] svg'),
         timeout=30, what="charts")
    shot(d, "metrics")


def test_the_ensemble_page_follows_a_leader_kill(ens, zk, browser):
    d = browser
    page = page_member(ens)
    url = base(ens, page)
    login(d, url, "super", "secret")
    go(d, url, "#/ensemble")
    leader = ens.leader()
    sid = ens.members[leader].sid
    row = f'#members tr[data-member-id="{sid}"] td.mode'
    wait(d, lambda: text(d, row) == "leader", what=f"server {sid} shown leading")
    assert len(d.find_elements(By.CSS_SELECTOR, "#members tr[data-member-id]")) == 3
    shot(d, "ensemble")
    ens.kill(leader)
    wait(d, lambda: text(d, row) == "unreachable", timeout=30, what=f"server {sid} shown unreachable")

    def new_leader():
        for m in ens.members:
            if m.sid != sid and text(d, f'#members tr[data-member-id="{m.sid}"] td.mode') == "leader":
                return True
        return False
    wait(d, new_leader, timeout=60, what="another leader shown")
    shot(d, "ensemble-after-kill")
    ens.start_member(leader)


def test_a_registry_instance_appears_and_lapses(ens, zk, browser):
    d = browser
    i = page_member(ens)
    url = base(ens, i)
    login(d, url, "alice", "wonder")
    req = urllib.request.Request(url + "/v1/registry/services/web/instances/web-1?ttl=4s", method="PUT",
                                 data=json.dumps({"address": "10.0.0.7", "port": 8080}).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(b"alice:wonder").decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201)
    go(d, url, "#/registry")
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, 'li.service[data-service="web"]'), what="the service")
    click(d, 'li.service[data-service="web"]')
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, '#instances tr[data-instance-id="web-1"]'),
         what="the instance")
    shot(d, "registry")
    # Not renewed: it lapses after its TTL and leaves the page.
    wait(d, lambda: not d.find_elements(By.CSS_SELECTOR, '#instances tr[data-instance-id="web-1"]'),
         timeout=30, what="the instance lapsed")


@pytest.mark.hang_guard_seconds(600)
def test_a_node_with_100k_children_renders_a_page_at_a_time(ens, zk, browser):
    d = browser
    url = base(ens, page_member(ens))
    zk.create("/big", b"")
    t0 = time.monotonic()
    pending = []
    for n in range(100000):
        pending.append(zk.create_async(f"/big/c{n:06d}", b""))
        if len(pending) >= 2000:
            for p in pending:
                p.get(timeout=60)
            pending.clear()
    for p in pending:
        p.get(timeout=60)
    print(f"\n100,000 creates: {time.monotonic() - t0:.1f} s")
    # The page's member has them all (the creates went through another).
    wait_for(lambda: api(ens, page_member(ens), "GET", "/ui/api/node?path=/big&limit=0",
                         user="alice:wonder")[1].get("children_total") == 100000,
             timeout=120, what="the page's member to hold every child")
    login(d, url, "alice", "wonder")
    go(d, url, "#/tree/")
    wait(d, lambda: text(d, "#node-path") == "/")
    t0 = time.monotonic()
    go(d, url, "#/tree/big")
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, '.child[data-name="c000000"]'), timeout=30,
         what="the first page of children")
    first_render = time.monotonic() - t0
    shown = len(d.find_elements(By.CSS_SELECTOR, "#children .child"))
    assert 0 < shown <= 1000, shown
    assert "100000" in text(d, "#children-count").replace(",", "")
    # The page stays usable: the next page, and a filter answered by the server.
    # The button is clicked as an element, not at a point on the screen:
    # scrolled into view, it makes the list load pages by itself, and a
    # click at the point where it was would open the child that took its
    # place.
    d.execute_script("arguments[0].click()", el(d, "#children-more"))
    wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#children .child")) > shown, what="the next page")
    assert text(d, "#node-path") == "/big"
    el(d, "#children-filter").send_keys("099999")
    wait(d, lambda: d.execute_script(
        "return [...document.querySelectorAll('#children .child')].map(e => e.dataset.name)") == ["c099999"],
         timeout=20, what="the filtered child")
    shot(d, "big")
    print(f"first render of a node with 100,000 children: {first_render * 1000:.0f} ms")
    # The console deletes the subtree in one request (kazoo would take minutes).
    t0 = time.monotonic()
    st, res = api(ens, page_member(ens), "DELETE", "/ui/api/node?path=/big&recursive=1",
                  user="alice:wonder", timeout=120)
    assert st == 200 and res["deleted"] == 100001, res
    print(f"recursive delete of 100,001 znodes: {time.monotonic() - t0:.1f} s")
    zk.sync("/")
    assert zk.exists("/big") is None


def test_load_more_during_a_live_reload_adds_its_page(ens, zk, browser):
    """A change shown live reloads the list from its start. A "Load more"
    clicked while that reload is under way still adds its page: fetched on
    its own, that page could land first and be replaced by the reload's
    shorter list. Here reloads answer 3 s late, so that the click lands
    during one."""
    d = browser
    url = base(ens, page_member(ens))
    zk.create("/paged", b"")
    for p in [zk.create_async(f"/paged/c{n:04d}", b"") for n in range(700)]:
        p.get(timeout=30)
    login(d, url, "alice", "wonder")
    go(d, url, "#/tree/paged")

    def shown():
        return len(d.find_elements(By.CSS_SELECTOR, "#children .child"))

    # The page's member has every child, and changes stream to the page.
    wait(d, lambda: "700 children" in text(d, "#children-count") and shown() == 200, what="the first page")
    wait(d, lambda: text(d, "#live-status") == "live", what="live updates")
    d.execute_script("""
      window.slowReloads = 0;
      window.slowDone = 0;
      const real = window.fetch;
      window.fetch = async (url, options) => {
        if (!/\\/ui\\/api\\/node\\?.*[?&]offset=0(&|$)/.test(String(url))) return real(url, options);
        window.slowReloads++;
        await new Promise((resolve) => setTimeout(resolve, 3000));
        try { return await real(url, options); } finally { window.slowDone++; }
      };""")
    zk.create("/paged/new", b"")  # shown live: the list reloads
    wait(d, lambda: d.execute_script("return window.slowReloads") > 0, what="the live reload")
    # Clicked where it is (not scrolled into view, which would load the
    # page by itself), and while the reload is under way.
    assert d.execute_script("""
      const during = window.slowDone < window.slowReloads;
      document.getElementById('children-more').click();
      return during;""")
    wait(d, lambda: d.execute_script("return window.slowDone === window.slowReloads") and shown() == 400
         and "701 children (400 shown)" in text(d, "#children-count"),
         what="the reload with the page asked for")
    time.sleep(1)  # the reload's own rendering, had it been left to replace the page
    assert shown() == 400
    wait(d, lambda: text(d, "#children-more") == "Load 200 more" and el(d, "#children-more").is_enabled(),
         what="the button ready again")
    zk.delete("/paged", recursive=True)


def test_sasl_users_and_client_certificates_log_in_too(server_factory, tmp_path_factory, browser):
    """The console over HTTPS: a verified client certificate is x509:<subject>
    and a SASL user's Basic credentials are sasl:<user>; each reaches what
    its ACL allows, and the page logs in with the SASL user."""
    import ssl
    from corral_harness.certs import Pki
    pki = Pki(tmp_path_factory.mktemp("console-pki"))
    server_cert = pki.issue("server.1", ips=["127.0.0.1"], dns=["localhost"])
    carol = pki.issue("carol")
    http = free_port()
    srv = server_factory(sasl_users={"dave": "diver"}, extra_args=[
        "--set", f"server.admin_address=127.0.0.1:{http}", "--set", "server.admin_tls=true",
        "--set", f"transport.tls.certificate={server_cert.pem}", "--set", f"transport.tls.ca={pki.ca_cert}",
        "--set", 'plugins.recipes=["console"]'])
    zk = KazooClient(hosts=srv.hosts)
    zk.start(timeout=15)
    zk.create("/carols", b"for carol", acl=[ACL(31, Id("x509", carol.subject))])
    zk.create("/daves", b"for dave", acl=[ACL(31, Id("sasl", "dave"))])

    def get(path, ident=None, user=None):
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        if ident:
            ctx.load_cert_chain(str(ident.cert), str(ident.key))
        req = urllib.request.Request(f"https://127.0.0.1:{http}{path}")
        if user:
            req.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    st, who = get("/ui/api/whoami", carol)
    assert st == 200 and who["authenticated"] and {"scheme": "x509", "id": carol.subject} in who["identities"]
    st, node = get("/ui/api/node?path=/carols", carol)
    assert st == 200 and base64.b64decode(node["data_b64"]) == b"for carol" and node["rights"] == "cdrwa"
    assert get("/ui/api/node?path=/carols")[0] == 403
    assert get("/ui/api/node?path=/daves", carol)[0] == 403
    st, who = get("/ui/api/whoami", user="dave:diver")
    assert st == 200 and {"scheme": "sasl", "id": "dave"} in who["identities"] and who["user"] == "dave"
    assert get("/ui/api/node?path=/daves", user="dave:diver")[0] == 200
    assert get("/ui/api/whoami", user="dave:wrong")[0] == 401  # a SASL user's wrong password
    # The page over HTTPS, logged in as the SASL user. The browser loads its
    # modules over parallel connections that resume one TLS session, which a
    # server asking for client certificates must allow.
    d = browser
    d.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
    try:
        login(d, f"https://127.0.0.1:{http}", "dave", "diver")
        go(d, None, "#/tree/daves")
        wait(d, lambda: "for dave" in text(d, "#node-data"), what="dave's node")
    finally:
        d.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": False})
    zk.stop()
    zk.close()


def test_the_keyboard_alone_creates_a_node(ens, zk, browser):
    """Enter opens the create dialog, Tab stays inside it, Escape closes it,
    and a node is made without the mouse."""
    from selenium.webdriver.common.action_chains import ActionChains
    d = browser
    url = base(ens, page_member(ens))
    login(d, url, "alice", "wonder")
    go(d, url, "#/tree/")
    wait(d, lambda: text(d, "#node-path") == "/")
    keys = lambda *k: ActionChains(d).send_keys(*k).perform()  # noqa: E731
    active = lambda: d.execute_script(  # noqa: E731
        "const a = document.activeElement; return [a.id, !!a.closest('#create-dialog')]")

    def open_dialog():
        d.execute_script("document.getElementById('create-open').focus()")
        keys(Keys.ENTER)
        wait(d, lambda: el(d, "#create-name").is_displayed() and active()[1], what="the dialog, focused")

    open_dialog()
    keys(Keys.ESCAPE)
    wait(d, lambda: not el(d, "#create-name").is_displayed(), what="Escape closing the dialog")
    open_dialog()
    seen = set()
    for _ in range(30):  # Tab around the dialog: focus never leaves it
        ident, inside = active()
        assert inside, f"focus left the dialog at #{ident}"
        seen.add(ident)
        if ident == "create-name":
            break
        keys(Keys.TAB)
    keys("by-keyboard")
    for _ in range(30):
        if active()[0] == "create-submit":
            break
        keys(Keys.TAB)
        assert active()[1], "focus left the dialog"
    keys(Keys.ENTER)
    wait_for(lambda: zk.exists("/by-keyboard") is not None, timeout=10, what="the node made from the keyboard")


def test_a_superuser_reconfigures_from_the_console(ensemble_factory):
    """The reconfig form's call: a member leaves and joins again, as the
    logged-in superuser, and the ensemble view follows."""
    admin = {}

    def own(m):
        admin.setdefault(m.sid, free_port())
        return ["--set", f"server.admin_address=127.0.0.1:{admin[m.sid]}", "--set", 'plugins.recipes=["console"]']

    ens = ensemble_factory(voters=3, member_args=own, extra_cfg=(
        "reconfigEnabled=true\nDigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n"))
    ens.admin = admin
    page = page_member(ens)
    other = next(i for i in ens.followers() if i != page)
    m = ens.members[other]
    # The console's session opens once its server has a leader.
    wait_for(lambda: api(ens, page, "GET", "/ui/api/node?path=/")[0] == 200, timeout=10, what="the console")
    st, out = api(ens, page, "POST", "/ui/api/reconfig", {"leaving": str(m.sid), "version": -1}, user="super:test")
    assert st == 200, out
    assert not any(line.startswith(f"server.{m.sid}=") for line in out["config"].splitlines())
    wait_for(lambda: len(api(ens, page, "GET", "/ui/api/ensemble")[1]["members"]) == 2, timeout=10,
             what="the view without the member")
    st, out = api(ens, page, "POST", "/ui/api/reconfig",
                  {"joining": f"{m.line()};{m.host}:{m.port}", "version": -1}, user="super:test")
    assert st == 200, out
    assert any(line.startswith(f"server.{m.sid}=") for line in out["config"].splitlines())
    wait_for(lambda: len(api(ens, page, "GET", "/ui/api/ensemble")[1]["members"]) == 3, timeout=10,
             what="the view with the member back")
