#!/usr/bin/env python3
"""Scale-out and fault drill (issue 21, SPEC §6.8).

A throw-away PostgreSQL cluster (initdb, free port), three tessera instances on loopback
ports sharing it, HAProxy (deploy/haproxy.cfg) in front, an SMTP sink in process, mixed load
through HAProxy, and faults during the load: one instance SIGKILLed and restarted, PostgreSQL
restarted and stopped, a table lock held for seconds, one instance's clock 20 s ahead
(faketime), and a full disk under a SQLite instance (a small tmpfs; needs root).

After the run it checks that nothing answered 200 was lost, that errors happened only inside
fault windows (and were 503 `temporarily_unavailable` with Retry-After, or connection errors
for requests on the killed instance; never 500), and prints a markdown table.

    python tests/drills/drill.py [--short] target/release/tessera

Exit status: 0 all checks passed, 1 a check failed, 2 a fault could not be staged (skipped).
"""
import argparse
import base64
import collections
import hashlib
import html
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import jwt
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCK = threading.Lock()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    """True when a listener could bind `port` now (TIME_WAIT sockets do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


# --------------------------------------------------------------------------- SMTP sink
class Mailbox:
    def __init__(self):
        self.messages = []  # (recipient, message_id)

    def add(self, rcpts, data):
        mid = re.search(rb"^Message-ID:\s*(\S+)", data, re.M | re.I)
        with LOCK:
            for r in rcpts:
                self.messages.append((r.lower(), mid.group(1).decode() if mid else None))


class SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        box = self.server.box
        self.wfile.write(b"220 drill sink\r\n")
        rcpts, in_data, data = [], False, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if in_data:
                if line in (b".\r\n", b".\n"):
                    box.add(rcpts, b"".join(data))
                    rcpts, in_data, data = [], False, []
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-drill\r\n250 8BITMIME\r\n")
            elif verb == b"RCPT":
                m = re.search(rb"<([^>]*)>", line)
                rcpts.append(m.group(1).decode() if m else "")
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # MAIL, RSET, NOOP
                self.wfile.write(b"250 ok\r\n")


class SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, box):
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.box = box
        threading.Thread(target=self.serve_forever, daemon=True).start()


# --------------------------------------------------------------------------- PostgreSQL
class Postgres:
    def __init__(self, root):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise SystemExit("drill: no initdb under /usr/lib/postgresql/*/bin")
        self.bin = os.path.dirname(bins[-1])
        self.dir = os.path.join(root, "pg")
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/tessera"
        subprocess.run(as_postgres([f"{self.bin}/initdb", "-D", self.dir + "/data", "-U", "postgres",
                                    "-A", "trust", "--no-sync"]), check=True, capture_output=True)
        self.start()
        self.psql("CREATE DATABASE tessera", db="postgres")

    def ctl(self, *args):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(as_postgres([f"{self.bin}/pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/log",
                                    "-o", opts, "-w", "-t", "30", *args]), check=True, capture_output=True)

    def start(self):
        self.ctl("start")

    def stop(self):
        self.ctl("stop", "-m", "fast")

    def restart(self):
        self.ctl("restart", "-m", "fast")

    def psql(self, sql, db="tessera"):
        out = subprocess.run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", db, "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def psql_async(self, sql):
        return subprocess.Popen([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                 "-d", "tessera", "-Atq", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    def close(self):
        try:
            self.stop()
        except Exception:
            pass


# --------------------------------------------------------------------------- tessera
class Instance:
    def __init__(self, binary, name, env, root):
        self.binary, self.name, self.env = binary, name, dict(env)
        self.port = free_port()
        self.env["TESSERA_LISTEN"] = f"127.0.0.1:{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(root, f"{name}.log"), "ab")
        self.proc = None

    def start(self, prefix=()):
        # A process group of its own: `faketime` runs tessera as its child, so signals go to
        # the group (see `kill`).
        self.proc = subprocess.Popen([*prefix, self.binary, "serve"], env=self.env, stdout=self.log,
                                     stderr=self.log, cwd=os.path.dirname(self.log.name),
                                     start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"drill: {self.name} exited with {self.proc.returncode}, see {self.log.name}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise SystemExit(f"drill: {self.name} not ready after 60 s")

    def kill(self, sig=signal.SIGKILL):
        """Signals the instance's whole process group (a signal to `faketime` alone would leave
        tessera running on its port) and waits until its port can be bound again: whatever
        reaps the orphaned child, the next start must find the port free."""
        if not self.proc:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        self.proc.wait(30)
        deadline = time.time() + 30
        while not port_free(self.port):
            if time.time() > deadline:
                raise SystemExit(f"drill: {self.name}'s port still taken 30 s after signal {sig}")
            time.sleep(0.05)


def cli(binary, env, *args, stdin=None):
    out = subprocess.run([binary, *args], env=env, input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"drill: tessera {' '.join(args)} failed: {out.stderr}")
    return out.stdout


# --------------------------------------------------------------------------- records
class Recorder:
    def __init__(self):
        self.records = []  # dicts: t0, t1, path, status, error, retry_after
        self.tokens = []  # (path, access_token)
        self.revoked_sids, self.revoked_jtis = set(), set()
        self.forgot = collections.Counter()  # username -> 202 count
        self.chains = {}  # chain id -> current refresh token (None once revoked)

    def add(self, path, t0, status, error=None, retry_after=None, token=None):
        with LOCK:
            self.records.append(dict(t0=t0, t1=time.time(), path=path, status=status, error=error,
                                     retry_after=retry_after))
            if token:
                self.tokens.append((path, token))


def call(rec, path, method, url, session=None, **kw):
    """One request, recorded; returns the response or None on a connection error."""
    t0 = time.time()
    kw.setdefault("timeout", 40)
    try:
        r = (session or requests).request(method, url, **kw)
    except requests.RequestException as e:
        rec.add(path, t0, "conn", error=type(e).__name__)
        return None
    err = None
    if r.status_code >= 400:
        try:
            err = r.json().get("error")
        except ValueError:
            err = "(not json)"
    tok = None
    if r.status_code == 200 and path in ("client_credentials", "password", "refresh", "code"):
        tok = r.json()["access_token"]
    rec.add(path, t0, r.status_code, error=err, retry_after=r.headers.get("Retry-After"), token=tok)
    return r


CODE_CLIENT, CODE_REDIRECT = "drill-web", "http://127.0.0.1:9/callback"


class Load:
    def __init__(self, lb, cc, app, users, mail_users, rec, stop):
        self.lb, self.cc, self.app, self.users, self.mail_users = lb, cc, app, users, mail_users
        self.rec, self.stop = rec, stop
        self.threads = []
        self.feeds = []  # per waiter: set of ids seen

    def spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def client_credentials(self):
        n = 0
        while not self.stop.is_set():
            r = call(self.rec, "client_credentials", "POST", self.lb + "/oauth/token",
                     data={"grant_type": "client_credentials"}, auth=self.cc)
            n += 1
            if r is not None and r.status_code == 200 and n % 7 == 0:
                tok = r.json()["access_token"]
                jti = jwt.decode(tok, options={"verify_signature": False})["jti"]
                rr = call(self.rec, "revoke", "POST", self.lb + "/oauth/revoke", data={"token": tok}, auth=self.cc)
                if rr is not None and rr.status_code == 200:
                    with LOCK:
                        self.rec.revoked_jtis.add(jti)
            time.sleep(0.02)

    def refresh_chain(self, idx):
        user, password = self.users[idx % len(self.users)]
        chain = 0
        while not self.stop.is_set():
            r = call(self.rec, "password", "POST", self.lb + "/oauth/token",
                     data={"grant_type": "password", "username": user, "password": password,
                           "client_id": self.app})
            if r is None or r.status_code != 200:
                time.sleep(0.3)
                continue
            chain += 1
            cid = f"{idx}.{chain}"
            refresh = r.json()["refresh_token"]
            with LOCK:
                self.rec.chains[cid] = refresh
            for _ in range(25):
                if self.stop.is_set():
                    return
                new = self.refresh(refresh)
                if new is None:
                    break
                refresh = new
                with LOCK:
                    self.rec.chains[cid] = refresh
                time.sleep(0.03)
            if self.stop.is_set():
                return
            # End the chain on purpose: revoking the refresh token ends its session.
            sid = jwt.decode(refresh, options={"verify_signature": False}).get("sid")
            for _ in range(100):
                rr = call(self.rec, "revoke", "POST", self.lb + "/oauth/revoke",
                          data={"token": refresh, "client_id": self.app})
                if rr is not None and rr.status_code == 200:
                    with LOCK:
                        self.rec.revoked_sids.add(sid)
                        self.rec.chains[cid] = None
                    break
                time.sleep(0.3)

    def refresh(self, refresh, client=None):
        """Rotate once; retries the same token (reuse grace) when the answer was lost."""
        for _ in range(200):
            r = call(self.rec, "refresh", "POST", self.lb + "/oauth/token",
                     data={"grant_type": "refresh_token", "refresh_token": refresh,
                           "client_id": client or self.app})
            if r is not None and r.status_code == 200:
                return r.json()["refresh_token"]
            if r is not None and r.status_code < 500 and r.status_code != 429:
                raise AssertionError(f"refresh refused: {r.status_code} {r.text}")
            time.sleep(0.2)
        return None

    def code_sign_in(self, idx):
        """Browser sign-in as a browser makes it: /oauth/authorize, the hosted login page and its
        CSRF-protected form, back to /oauth/authorize, the code at the token endpoint (PKCE)."""
        user, password = self.users[idx % len(self.users)]
        n = 0
        while not self.stop.is_set():
            n += 1
            code = self.one_code_sign_in(user, password)
            if code is None:
                time.sleep(0.3)
                continue
            new = self.refresh(code, client=CODE_CLIENT)
            if new is not None:
                with LOCK:
                    self.rec.chains[f"code{idx}.{n}"] = new
            time.sleep(0.1)

    def one_code_sign_in(self, user, password):
        """One sign-in; returns the refresh token, or None where a step failed (recorded)."""
        web = requests.Session()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(12)
        query = {"response_type": "code", "client_id": CODE_CLIENT, "redirect_uri": CODE_REDIRECT,
                 "scope": "openid profile", "state": state, "code_challenge": challenge,
                 "code_challenge_method": "S256"}
        r = call(self.rec, "code pages", "GET", self.lb + "/oauth/authorize", session=web, params=query,
                 allow_redirects=False)
        if r is None or r.status_code not in (302, 303):
            return None
        r = call(self.rec, "code pages", "GET", urllib.parse.urljoin(self.lb + "/", r.headers["Location"]), session=web)
        if r is None or r.status_code != 200:
            return None
        fields = dict(re.findall(r'<input type="hidden" name="(csrf|return_to)" value="([^"]*)"', r.text))
        if "csrf" not in fields:
            self.rec.add("code pages", time.time(), "no csrf field", error="login page without a form")
            return None
        form = {"csrf": fields["csrf"], "return_to": html.unescape(fields.get("return_to", "")),
                "username": user, "password": password}
        r = call(self.rec, "code pages", "POST", self.lb + "/login", session=web, data=form,
                 headers={"Origin": self.lb}, allow_redirects=False)
        if r is None or r.status_code not in (302, 303):
            return None
        r = call(self.rec, "code pages", "GET", urllib.parse.urljoin(self.lb + "/", r.headers["Location"]), session=web,
                 allow_redirects=False)
        if r is None or r.status_code not in (302, 303):
            return None
        back = urllib.parse.urlsplit(r.headers["Location"])
        got = dict(urllib.parse.parse_qsl(back.query))
        if got.get("state") != state or "code" not in got:
            self.rec.add("code pages", time.time(), "bad redirect", error=r.headers["Location"][:80])
            return None
        r = call(self.rec, "code", "POST", self.lb + "/oauth/token",
                 data={"grant_type": "authorization_code", "code": got["code"], "redirect_uri": CODE_REDIRECT,
                       "client_id": CODE_CLIENT, "code_verifier": verifier})
        if r is None or r.status_code != 200:
            return None
        return r.json()["refresh_token"]

    def feed_waiter(self, seen):
        cursor = None
        while not self.stop.is_set() or self.draining:
            params = {"wait": "2"}
            if cursor:
                params["since"] = cursor
            r = call(self.rec, "feed", "GET", self.lb + "/revocations", params=params, auth=self.cc)
            if r is None or r.status_code != 200:
                time.sleep(0.3)
                continue
            body = r.json()
            with LOCK:
                for item in body["items"]:
                    seen.add(item["id"])
            cursor = body["next_cursor"]
            if self.stop.is_set() and not body["items"]:
                return

    def forgot(self):
        i = 0
        while not self.stop.is_set():
            user = self.mail_users[i % len(self.mail_users)]
            i += 1
            if self.rec.forgot[user] >= 3:  # SPEC §6.4: at most 3 reset mails an hour per account
                time.sleep(0.2)
                continue
            r = call(self.rec, "forgot", "POST", self.lb + "/password/forgot", json={"username": user})
            if r is not None and r.status_code == 202:
                with LOCK:
                    self.rec.forgot[user] += 1
            time.sleep(0.15)

    def start(self, chains, waiters):
        self.draining = False
        for _ in range(2):
            self.spawn(self.client_credentials)
        for i in range(chains):
            self.spawn(self.refresh_chain, i)
        for i in range(2):
            self.spawn(self.code_sign_in, i)
        for _ in range(waiters):
            seen = set()
            self.feeds.append(seen)
            self.spawn(self.feed_waiter, seen)
        self.spawn(self.forgot)


# --------------------------------------------------------------------------- drill
class Drill:
    def __init__(self, args):
        self.args = args
        self.binary = os.path.abspath(args.binary)
        self.root = tempfile.mkdtemp(prefix="tessera-drill-")
        os.chmod(self.root, 0o755)
        self.hold = 3 if args.short else 10  # seconds a fault lasts
        self.calm = 3 if args.short else 15  # load between faults
        self.failures, self.faults, self.notes = [], [], []
        self.rec = Recorder()
        self.stop = threading.Event()
        self.cleanup = []

    def fail(self, msg):
        log("FAIL: " + msg)
        self.failures.append(msg)

    def window(self, name, t0, t1, allowed):
        """A fault from t0 to t1; `allowed` names the error kinds acceptable inside it."""
        self.faults.append(dict(name=name, t0=t0, t1=t1, allowed=allowed))

    def run(self):
        try:
            self.setup()
            self.rec_start = time.time()
            self.load.start(chains=4, waiters=2)
            time.sleep(self.calm)
            self.fault_kill()
            time.sleep(self.calm)
            self.fault_pg_restart()
            time.sleep(self.calm)
            self.fault_pg_stop()
            time.sleep(self.calm)
            self.fault_lock()
            time.sleep(self.calm)
            self.fault_clock()
            time.sleep(self.calm)
            self.load.draining = True
            self.stop.set()
            for t in self.load.threads:
                t.join(60)
            self.rec_end = time.time()
            self.check()
            self.fault_disk()
        finally:
            for fn in reversed(self.cleanup):
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - best effort teardown
                    log(f"cleanup: {e}")
        self.report()
        if any("skipped" in n for n in self.notes):
            return 2 if not self.failures else 1
        return 1 if self.failures else 0

    def setup(self):
        ver = subprocess.run(["systemd-analyze", "verify", os.path.join(REPO, "deploy/tessera.service")],
                             capture_output=True, text=True) if shutil.which("systemd-analyze") else None
        if ver is not None:
            # ExecStart's /usr/local/bin/tessera exists only on a server it is installed on.
            problems = [ln for ln in (ver.stdout + ver.stderr).splitlines()
                        if ln.strip() and "/usr/local/bin/tessera" not in ln and "Failed to prepare" not in ln]
            if problems:
                self.fail("systemd-analyze verify deploy/tessera.service: " + "; ".join(problems))
            else:
                self.notes.append("systemd-analyze verify deploy/tessera.service: clean")
        else:
            self.notes.append("systemd-analyze not installed: unit not verified")
        self.box = Mailbox()
        self.smtp = SmtpSink(self.box)
        self.cleanup.append(self.smtp.shutdown)
        self.pg = Postgres(self.root)
        self.cleanup.append(self.pg.close)
        lb_port = free_port()
        self.lb = f"http://127.0.0.1:{lb_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        self.env.update({
            "TESSERA_DATABASE_URL": self.pg.url,
            "TESSERA_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "TESSERA_ISSUER": self.lb,
            "TESSERA_TRUSTED_PROXIES": "127.0.0.1",
            "TESSERA_SMTP_URL": f"smtp://127.0.0.1:{self.smtp.server_address[1]}",
            "TESSERA_MAIL_FROM": "drill@example.test",
            "TESSERA_REFRESH_REUSE_GRACE": "30s",
            "TESSERA_OUTBOX_POLL_INTERVAL": "1s",
            "TESSERA_OUTBOX_BACKOFF": "1s",
            "TESSERA_KEY_POLL_INTERVAL": "1s",
            # All load comes from one address; per-address limits are not under test here.
            "TESSERA_LOGIN_RATE_LIMIT": "0",
            # Plain http on loopback: the page cookies cannot be Secure here.
            "TESSERA_COOKIE_SECURE": "false",
            "TESSERA_WORKERS": "2",
            "TESSERA_DB_POOL_SIZE": "8",
            "RUST_LOG": "warn",
        })
        cli(self.binary, self.env, "migrate")
        out = json.loads(cli(self.binary, self.env, "clients", "create", "drill-service", "--scope", "api"))
        self.cc = (out["client_id"], out["client_secret"])
        cli(self.binary, self.env, "clients", "create", "drill-app", "--public")
        cli(self.binary, self.env, "clients", "create", CODE_CLIENT, "--public", "--first-party",
            "--grant", "authorization_code", "--grant", "refresh_token", "--scope", "profile",
            "--redirect-uri", CODE_REDIRECT)
        self.users = []
        for i in range(4):
            pw = secrets.token_urlsafe(12)
            cli(self.binary, self.env, "users", "create", f"chain{i}", stdin=pw + "\n")
            self.users.append((f"chain{i}", pw))
        self.mail_users = []
        for i in range(40 if self.args.short else 150):
            name = f"mail{i}"
            cli(self.binary, self.env, "users", "create", name, "--email", f"{name}@example.test",
                stdin=secrets.token_urlsafe(12) + "\n")
            self.mail_users.append(name)
        self.instances = [Instance(self.binary, f"tessera{i + 1}", self.env, self.root) for i in range(3)]
        for inst in self.instances:
            inst.start()
            self.cleanup.append(inst.kill)
        hp_env = dict(os.environ, TESSERA_LB_BIND=f"127.0.0.1:{lb_port}",
                      **{f"TESSERA_BACKEND_{i + 1}": f"127.0.0.1:{inst.port}" for i, inst in enumerate(self.instances)})
        cfg = os.path.join(REPO, "deploy/haproxy.cfg")
        subprocess.run(["haproxy", "-c", "-q", "-f", cfg], env=hp_env, check=True)
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], env=hp_env,
                                        stdout=open(os.path.join(self.root, "haproxy.log"), "wb"),
                                        stderr=subprocess.STDOUT)
        self.cleanup.append(lambda: (self.haproxy.terminate(), self.haproxy.wait(10)))
        for _ in range(100):
            try:
                if requests.get(self.lb + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        self.load = Load(self.lb, self.cc, "drill-app", self.users, self.mail_users, self.rec, self.stop)
        log(f"up: PostgreSQL :{self.pg.port}, instances {[i.port for i in self.instances]}, HAProxy {self.lb}")

    # ---- faults
    def fault_kill(self):
        victim = self.instances[0]
        log(f"fault: SIGKILL {victim.name}")
        t0 = time.time()
        victim.kill(signal.SIGKILL)
        time.sleep(self.hold)
        victim.start()
        # HAProxy puts it back after `rise` good checks.
        self.window("instance SIGKILLed and restarted", t0, time.time() + 1, {"conn", "502", "503", "504"})

    def fault_pg_restart(self):
        log("fault: pg_ctl restart")
        t0 = time.time()
        self.pg.restart()
        self.window("PostgreSQL restarted", t0, time.time(), {"503"})

    def fault_pg_stop(self):
        log(f"fault: PostgreSQL stopped for {self.hold} s")
        t0 = time.time()
        self.pg.stop()
        time.sleep(self.hold)
        self.pg.start()
        self.window(f"PostgreSQL stopped {self.hold} s", t0, time.time(), {"503"})

    def fault_lock(self):
        log(f"fault: sessions locked for {self.hold} s")
        t0 = time.time()
        p = self.pg.psql_async(None)
        p.communicate(f"BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({self.hold}); COMMIT;")
        self.window(f"sessions table locked {self.hold} s", t0, time.time(), {"503"})

    def fault_clock(self):
        if not shutil.which("faketime"):
            self.notes.append("skipped: clock skew (faketime not installed)")
            return
        victim = self.instances[2]
        log(f"fault: {victim.name} restarted with its clock 20 s ahead")
        t0 = time.time()
        victim.kill(signal.SIGTERM)
        victim.start(prefix=("faketime", "-f", "+20s"))
        t_up = time.time()
        # Tokens it issues verify on the others (30 s leeway), and its refreshes keep rotation.
        other = self.instances[1].url
        r = requests.post(victim.url + "/oauth/token", data={"grant_type": "client_credentials"}, auth=self.cc)
        if r.status_code != 200:
            self.fail(f"skewed instance: client_credentials {r.status_code} {r.text}")
        else:
            tok = r.json()["access_token"]
            iat = jwt.decode(tok, options={"verify_signature": False})["iat"]
            if iat < time.time() + 15:
                self.fail(f"skewed instance: iat {iat} is not 20 s ahead; faketime did not take")
            intro = requests.post(other + "/oauth/introspect", data={"token": tok}, auth=self.cc).json()
            if not intro.get("active"):
                self.fail(f"a token from the skewed instance is inactive on another: {intro}")
            self.rec.add("client_credentials", time.time(), 200, token=tok)
        user, pw = self.users[0]
        r = requests.post(victim.url + "/oauth/token", data={"grant_type": "password", "username": user,
                                                             "password": pw, "client_id": "drill-app"})
        rt = r.json().get("refresh_token") if r.status_code == 200 else None
        for base in (other, victim.url, other):
            if not rt:
                self.fail(f"skewed instance: refresh chain broke ({r.status_code} {r.text})")
                break
            r = requests.post(base + "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt,
                                                            "client_id": "drill-app"})
            rt = r.json().get("refresh_token") if r.status_code == 200 else None
        if rt:
            with LOCK:
                self.rec.chains["skew"] = rt
        time.sleep(self.hold)
        victim.kill(signal.SIGTERM)
        victim.start()
        self.window("one instance's clock +20 s", t0, t_up, {"conn", "502", "503", "504"})
        self.window("one instance's clock +20 s (end)", t_up + self.hold, time.time() + 1,
                    {"conn", "502", "503", "504"})

    def fault_disk(self):
        """A separate SQLite instance on a small tmpfs: full disk, then space freed."""
        name = "SQLite disk full"
        if os.geteuid() != 0:
            self.notes.append(f"skipped: {name} (mounting a tmpfs needs root)")
            return
        mnt = os.path.join(self.root, "sqlite")
        os.makedirs(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], check=True)
        self.cleanup_disk = lambda: subprocess.run(["umount", "-l", mnt])
        try:
            env = dict(self.env, TESSERA_DATABASE_URL=f"sqlite://{mnt}/tessera.db", TESSERA_WORKERS="2")
            del env["TESSERA_SMTP_URL"]
            cli(self.binary, env, "users", "create", "disk", stdin="disk-drill-pw1\n")
            inst = Instance(self.binary, "sqlite", env, self.root)
            env["TESSERA_ISSUER"] = inst.url
            inst.env["TESSERA_ISSUER"] = inst.url
            inst.start()
            form = {"grant_type": "password", "username": "disk", "password": "disk-drill-pw1"}
            url = inst.url + "/oauth/token"
            rec = self.rec
            filler = os.path.join(mnt, "filler")
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
            t0 = time.time()
            tokens = []
            for _ in range(5):
                r = call(rec, "sqlite password", "POST", url, data=form)
                if r is not None and r.status_code == 200:
                    tokens.append(r.json()["refresh_token"])
            for _ in range(20):  # fill whatever the WAL freed
                subprocess.run(["dd", "if=/dev/zero", f"of={filler}2", "bs=4k", "oflag=append", "conv=notrunc"],
                               capture_output=True)
                r = call(rec, "sqlite password", "POST", url, data=form)
            os.remove(filler)
            if os.path.exists(filler + "2"):
                os.remove(filler + "2")
            t1 = time.time()
            self.window(name, t0, t1, {"503"})
            deadline = time.time() + 30
            while time.time() < deadline:
                r = call(rec, "sqlite password", "POST", url, data=form)
                if r is not None and r.status_code == 200:
                    break
                time.sleep(0.2)
            else:
                self.fail("SQLite instance did not recover after the disk was freed")
            inst.kill(signal.SIGTERM)
        finally:
            self.cleanup_disk()

    # ---- checks
    def check(self):
        lb, cc = self.lb, self.cc
        # 1. errors: only inside a fault window, only of an allowed kind; never a 500.
        self.unexplained = collections.Counter()
        for r in self.rec.records:
            st = r["status"]
            if st == "conn" or (isinstance(st, int) and st >= 500):
                kind = str(st)
                if st == 500:
                    self.fail(f"500 on {r['path']} at {r['t0'] - self.rec_start:.1f} s: {r['error']}")
                    continue
                if st == 503 and r["error"] == "temporarily_unavailable" and not r["retry_after"]:
                    self.fail(f"503 without Retry-After on {r['path']}")
                f = self.fault_of(r)
                if f is None or kind not in f["allowed"]:
                    self.unexplained[(r["path"], kind, r["error"])] += 1
            elif not isinstance(st, int) or (st >= 400 and r["path"] != "feed"):
                self.unexplained[(r["path"], str(st), r["error"])] += 1
        # Every kind of load got through (a path that never succeeds hides its own failures).
        ok_paths = {r["path"] for r in self.rec.records if r["status"] in (200, 202)}
        for path in sorted({r["path"] for r in self.rec.records} - ok_paths):
            self.fail(f"no {path} request ever succeeded")
        for (path, kind, err), n in self.unexplained.items():
            self.fail(f"{n} × {kind} {err or ''} on {path} outside an allowed fault window")
        # 2. every access token answered 200 verifies, or was revoked on purpose.
        jwks = jwt.PyJWKClient(lb + "/.well-known/jwks.json")
        bad, inactive = 0, 0
        sample = self.rec.tokens if len(self.rec.tokens) <= 4000 else self.rec.tokens[::len(self.rec.tokens) // 4000]
        for path, tok in sample:
            try:
                key = jwks.get_signing_key_from_jwt(tok)
                claims = jwt.decode(tok, key.key, algorithms=["RS256"], issuer=lb, leeway=30,
                                    options={"verify_aud": False})
            except jwt.PyJWTError as e:
                bad += 1
                self.fail(f"a {path} token answered 200 does not verify: {e}")
                continue
            intro = requests.post(lb + "/oauth/introspect", data={"token": tok}, auth=cc).json()
            if not intro.get("active"):
                if claims.get("jti") not in self.rec.revoked_jtis and claims.get("sid") not in self.rec.revoked_sids:
                    inactive += 1
        if inactive:
            self.fail(f"{inactive} access tokens answered 200 are inactive and were never revoked")
        self.notes.append(f"{len(sample)} access tokens verified against the JWKS and introspected")
        # 3. every chain's current refresh token has exactly one live successor.
        live = {k: v for k, v in self.rec.chains.items() if v}
        for cid, rt in live.items():
            client = CODE_CLIENT if cid.startswith("code") else "drill-app"
            r = requests.post(lb + "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt,
                                                        "client_id": client})
            if r.status_code != 200:
                self.fail(f"chain {cid}: its latest refresh token is refused: {r.status_code} {r.text}")
        orphans = self.pg.psql("SELECT count(*) FROM sessions WHERE refresh_previous_hash IS NOT NULL "
                               "AND refresh_hash IS NULL")
        if orphans != "0":
            self.fail(f"{orphans} rotated sessions without a current refresh token")
        self.notes.append(f"{len(live)} live refresh chains refreshed once more; "
                          f"{len(self.rec.revoked_sids)} sessions and {len(self.rec.revoked_jtis)} access tokens "
                          "revoked on purpose")
        # 4. every revocation reaches every feed waiter.
        want = self.rec.revoked_sids | self.rec.revoked_jtis
        for i, seen in enumerate(self.load.feeds):
            missing = want - seen
            if missing:
                self.fail(f"feed waiter {i}: {len(missing)} of {len(want)} revocations missing")
        # 5. mail: each 202 gives one mail; a duplicate only for a crash between send and record.
        deadline = time.time() + 30
        asked = sum(self.rec.forgot.values())
        while time.time() < deadline and len(self.box.messages) < asked:
            time.sleep(0.5)
        got = collections.Counter(rcpt.split("@")[0] for rcpt, _ in self.box.messages)
        dup_ids = [m for m, n in collections.Counter(mid for _, mid in self.box.messages).items() if n > 1]
        lost = sum(max(0, n - got[u]) for u, n in self.rec.forgot.items())
        # A mail the SIGKILLed instance had claimed but not sent waits for its lease (300 s)
        # to run out, then goes out from another instance: late, not lost. Only such claims,
        # made in the seconds before the kill (a batch still being delivered), excuse a
        # missing mail; a live worker retakes its own. 300 is the outbox's lease.
        kill = next((f["t0"] for f in self.faults if f["name"].startswith("instance SIGKILLed")), None)
        leased = 0
        if kill is not None:
            leased = int(self.pg.psql(
                "SELECT count(*) FROM outbox WHERE kind = 'mail' AND sent_at IS NULL AND failed_at IS NULL "
                f"AND claimed_until - 300 BETWEEN {int(kill) - 10} AND {int(kill) + 1}"))
        if lost > leased:
            self.fail(f"{lost - leased} of {asked} reset mails asked for never arrived")
        elif lost:
            self.notes.append(f"{lost} reset mail(s) claimed by the SIGKILLed instance wait for its lease")
        # A resend happens only when a worker loses its instance (the SIGKILL) or its database
        # (the restart, the stop) between sending a mail and recording it: one per such fault.
        if len(dup_ids) > 3:
            self.fail(f"{len(dup_ids)} mails sent twice (one resend per crash or database loss is allowed)")
        self.mail = (asked, len(self.box.messages), len(dup_ids))

    def fault_of(self, r):
        for f in self.faults:
            # A request in flight when the fault began, or sent before it ended.
            if r["t1"] >= f["t0"] and r["t0"] <= f["t1"] + 1.0:
                return f
        return None

    # ---- report
    def report(self):
        recs = self.rec.records
        out = ["| fault | held | requests in window | errors (kind × count) | recovery (s, slowest failed path) |",
               "| --- | --- | --- | --- | --- |"]
        def failed(r):
            return r["status"] == "conn" or not isinstance(r["status"], int) or r["status"] >= 500

        for f in self.faults:
            inside = [r for r in recs if r["t1"] >= f["t0"] and r["t0"] <= f["t1"] + 1.0]
            errs = collections.Counter(f"{r['status']} {r['error'] or ''}".strip() for r in inside if failed(r))
            # Recovery: from the end of the fault to the first success on each path that
            # failed during it (paths that never failed had nothing to recover from).
            rec_t = []
            for path in sorted({r["path"] for r in inside if failed(r)}):
                ok = [r["t1"] for r in recs if r["path"] == path and r["status"] in (200, 202)
                      and r["t0"] >= f["t1"]]
                rec_t.append((min(ok) - f["t1"], path) if ok else (float("inf"), path))
            if rec_t:
                slow = max(rec_t)
                recovery = f"{max(slow[0], 0):.2f} ({slow[1]})"
            else:
                recovery = "nothing failed"
            out.append(f"| {f['name']} | {f['t1'] - f['t0']:.1f} s | {len(inside)} | "
                       f"{', '.join(f'{k} × {n}' for k, n in errs.items()) or 'none'} | {recovery} |")
        by_path = collections.Counter(r["path"] for r in recs)
        ok_path = collections.Counter(r["path"] for r in recs if r["status"] in (200, 202))
        out += ["", "| path | requests | 200/202 |", "| --- | --- | --- |"]
        out += [f"| {p} | {n} | {ok_path[p]} |" for p, n in sorted(by_path.items())]
        if hasattr(self, "mail"):
            out += ["", f"Reset mails: {self.mail[0]} asked, {self.mail[1]} delivered, "
                        f"{self.mail[2]} sent twice."]
        out += [""] + [f"- {n}" for n in self.notes]
        out += [""] + ([f"- FAILED: {m}" for m in self.failures] or ["All checks passed."])
        print("\n".join(out))
        log(f"logs in {self.root}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--short", action="store_true", help="a few seconds per fault (CI)")
    args = ap.parse_args()
    if not shutil.which("haproxy"):
        print("drill: haproxy not installed (apt-get install haproxy)", file=sys.stderr)
        return 2
    return Drill(args).run()


if __name__ == "__main__":
    sys.exit(main())
