#!/usr/bin/env python3
"""Small helpers for run.sh (standard library only).

    helpers.py wait URL [TIMEOUT_S]             until URL answers 200
    helpers.py startup URL LOG -- CMD...        start CMD, print ms until URL answers 200, stop it
    helpers.py mint URL USERS PASSWORD N OUT [CLIENT_ID]
                                                N password logins (as CLIENT_ID, a public client,
                                                if given); refresh tokens to OUT, one access
                                                token to OUT.access
    helpers.py browser-session URL USER PASSWORD
                                                signs in on /login; prints the tessera_session
                                                cookie value
    helpers.py token URL BODY [AUTH]            POST /oauth/token, print the access token
    helpers.py mem PID                          {"rss_kb":…,"hwm_kb":…} from /proc/PID/status
    helpers.py openssl-rate FILE                the sign/s figure of `openssl speed rsa2048` output
    helpers.py criterion-rate DIR               ops/s from a criterion estimates.json (mean)
    helpers.py report OUT_DIR                   the table
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse


def _split(url):
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname, parsed.port or 80, parsed.path or "/"


def _get_status(url, timeout=1.0):
    host, port, path = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _post(url, body, headers):
    host, port, path = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def wait(url, timeout_s=60.0):
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        try:
            if _get_status(url) == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit(f"timed out waiting for {url}")


def startup(url, log, cmd):
    """Milliseconds from spawning CMD until URL answers 200 (polled every 2 ms)."""
    with open(log, "ab") as out:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        try:
            while True:
                if proc.poll() is not None:
                    sys.exit(f"{cmd[0]} exited with {proc.returncode} during start-up")
                try:
                    if _get_status(url, timeout=0.5) == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() - start > 30:
                    sys.exit("start-up took more than 30 s")
                time.sleep(0.002)
            print(round((time.monotonic() - start) * 1000))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def token(url, body, auth=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if auth:
        headers["Authorization"] = auth
    status, text = _post(url + "/oauth/token", body, headers)
    if status != 200:
        sys.exit(f"token request: {status} {text}")
    return json.loads(text)


def mint(url, users, password, n, out, client_id=None):
    refresh = []
    access = None
    for i in range(int(n)):
        form = {"grant_type": "password", "username": f"bench{i % int(users)}", "password": password}
        if client_id:
            form["client_id"] = client_id
        body = urllib.parse.urlencode(form)
        answer = token(url, body)
        refresh.append(answer["refresh_token"])
        access = access or answer["access_token"]
    with open(out, "w") as f:
        f.write("\n".join(refresh) + "\n")
    with open(out + ".access", "w") as f:
        f.write(access)


def _cookies(response):
    jar = {}
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            jar[key.strip()] = val.strip()
    return jar


def browser_session(url, user, password):
    """Signs in through the hosted page (GET /login for the form's CSRF token and cookie,
    POST /login); returns the `tessera_session` cookie value."""
    host, port, _ = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", "/login")
        resp = conn.getresponse()
        page = resp.read().decode()
        jar = _cookies(resp)
        match = re.search(r'name="csrf"\s+value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"\s+name="csrf"', page
        )
        if resp.status != 200 or not match:
            sys.exit(f"GET /login: {resp.status}, no CSRF token")
        body = urllib.parse.urlencode({"csrf": match.group(1), "username": user, "password": password})
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        resp = conn.getresponse()
        resp.read()
        session = _cookies(resp).get("tessera_session")
        if resp.status != 303 or not session:
            sys.exit(f"POST /login: {resp.status}, no tessera_session cookie")
        return session
    finally:
        conn.close()


def mem(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return {"rss_kb": fields.get("VmRSS"), "hwm_kb": fields.get("VmHWM")}


def openssl_rate(path):
    """`openssl speed` ends with a table row `rsa 2048 bits <sign s> <verify s> <sign/s> <verify/s>`."""
    text = open(path).read()
    rows = re.findall(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", text, re.M)
    if not rows:
        sys.exit(f"no rsa 2048 row in {path}")
    sign, verify = rows[-1]
    return {"sign": float(sign), "verify": float(verify)}


def criterion_rate(directory):
    with open(os.path.join(directory, "new", "estimates.json")) as f:
        ns = json.load(f)["mean"]["point_estimate"]
    return 1e9 / ns


# ---------------------------------------------------------------------------------------
# The table


def _fmt_ms(us):
    return "-" if us is None else f"{us / 1000:.1f}"


def _errors(r):
    return max(r["status"], r["non2xx"]) + r["connect"] + r["read"] + r["write"] + r["timeout"]


def _rate(r):
    return r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0


def report(out_dir):
    results = {}
    with open(os.path.join(out_dir, "wrk.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                results[r["name"]] = r
    # run.sh writes each fact as a small JSON file under OUT_DIR/facts/.
    facts = {}
    fact_dir = os.path.join(out_dir, "facts")
    for name in os.listdir(fact_dir):
        with open(os.path.join(fact_dir, name)) as f:
            facts[name] = json.load(f)
    rsa = facts["rsa_sign_multi"]
    argon = facts.get("argon2_1core")
    cores = facts["nproc"]
    rows = []

    def row(scenario, r, ratio, target, verdict, rate_override=None):
        if r is None:
            rows.append([scenario, "not run", "-", "-", "-", ratio or "-", target, verdict or "n/a"])
            return
        rate = _rate(r) if rate_override is None else rate_override
        errors = _errors(r)
        if verdict is None:
            verdict = "-"
        if errors and verdict in ("met", "-"):
            verdict = "MISSED (errors)" if verdict == "met" else "errors"
        rows.append(
            [scenario, f"{rate:,.0f}", _fmt_ms(r["p50_us"]), _fmt_ms(r["p99_us"]), str(errors),
             ratio or "-", target, verdict]
        )

    def verdict(ok):
        return "met" if ok else "MISSED"

    for backend in facts["backends"]:
        b = backend
        g = lambda name: results.get(f"{b}/{name}")  # noqa: E731
        cc = g("client_credentials")
        if cc:
            ratio = _rate(cc) / rsa
            target = 0.70
            row(f"{b}: client_credentials", cc, f"{ratio:.0%} of RSA", "≥ 70 % RSA", verdict(ratio >= target))
        else:
            row(f"{b}: client_credentials", None, None, "≥ 70 % RSA", None)
        rf = g("refresh_token")
        target = 0.30 if b == "postgres" else 0.35
        if rf:
            ratio = _rate(rf) / rsa
            row(f"{b}: refresh_token (rotation)", rf, f"{ratio:.0%} of RSA", f"≥ {target:.0%} RSA",
                verdict(ratio >= target))
        else:
            row(f"{b}: refresh_token (rotation)", None, None, f"≥ {target:.0%} RSA", None)
        pw = g("password")
        if pw and argon:
            limit = cores * argon
            ratio = _rate(pw) / limit
            row(f"{b}: password (argon2id)", pw, f"{ratio:.0%} of {cores}×argon2", "≥ 85 % argon2",
                verdict(ratio >= 0.85))
        else:
            row(f"{b}: password (argon2id)", pw, None, "≥ 85 % argon2", None if pw is None else "-")
        jw, hz = g("jwks"), g("healthz")
        node_jwks = results.get("node-oidc-provider/jwks")
        if jw:
            parts, ok = [], True
            if hz:
                x = _rate(jw) / _rate(hz)
                parts.append(f"{x:.2f}× healthz")
                ok = ok and x >= 0.80
            if node_jwks:
                x = _rate(jw) / _rate(node_jwks)
                parts.append(f"{x:.2f}× node")
                ok = ok and x >= 2.0
            else:
                parts.append("node n/a")
            row(f"{b}: JWKS GET", jw, ", ".join(parts), "≥ 0.8× healthz, ≥ 2× node", verdict(ok))
        ins = g("introspect")
        if ins:
            row(f"{b}: introspection (active)", ins, "-", "≥ 10,000/s", verdict(_rate(ins) >= 10000))
        # Release 2: ES256 rows and the login page against the HTTP stack's own ceiling, the
        # code exchange (two RSA signatures, one transaction) against the RSA limit.
        for name, label, share in [
            ("client_credentials_es256", "client_credentials ES256", 0.30),
            ("refresh_token_es256", "refresh_token ES256 (rotation)", 0.15),
            ("login_page", "GET /login", 0.50),
        ]:
            r = g(name)
            target = f"≥ {share:.0%} healthz"
            if r and hz:
                x = _rate(r) / _rate(hz)
                row(f"{b}: {label}", r, f"{x:.0%} of healthz", target, verdict(x >= share))
            elif r:
                row(f"{b}: {label}", r, "healthz n/a", target, "-")
            elif name in facts.get("scenarios", []):
                row(f"{b}: {label}", None, None, target, None)
        ce = g("code_exchange")
        if ce:
            ratio = _rate(ce) / rsa
            row(f"{b}: authorization_code exchange", ce, f"{ratio:.0%} of RSA", "≥ 30% RSA",
                verdict(ratio >= 0.30))
        elif "code_exchange" in facts.get("scenarios", []):
            row(f"{b}: authorization_code exchange", None, None, "≥ 30% RSA", None)
        if hz:
            row(f"{b}: /healthz", hz, "-", "(reference)", "-")
        ij, ir, ip = g("isolation_jwks"), g("isolation_refresh"), g("isolation_password")
        if ij and ir and ip:
            errs = _errors(ij) + _errors(ir) + _errors(ip)
            row(f"{b}: isolation: login flood", ip, f"{_rate(ip) / (cores * argon):.0%} of argon2" if argon else "-",
                "(load)", "-")
            row(f"{b}: isolation: JWKS during flood", ij, "-", "p99 < 20 ms",
                verdict(ij["p99_us"] < 20000 and errs == 0))
            row(f"{b}: isolation: refresh during flood", ir, "-", "p99 < 100 ms",
                verdict(ir["p99_us"] < 100000 and errs == 0))
        if f"mem_idle_{b}" in facts and f"mem_peak_{b}" in facts:
            idle = facts[f"mem_idle_{b}"]["rss_kb"] / 1024
            peak = facts[f"mem_peak_{b}"]["hwm_kb"] / 1024
            rows.append([f"{b}: RSS idle", f"{idle:.1f} MB", "-", "-", "-", "-", "≤ 30 MB", verdict(idle <= 30)])
            rows.append([f"{b}: RSS peak (VmHWM)", f"{peak:.1f} MB", "-", "-", "-", "-", "≤ 100 MB",
                         verdict(peak <= 100)])
        s = facts.get(f"startup_ms_{b}")
        if s is not None:
            rows.append([f"{b}: start-up to /readyz", f"{s} ms", "-", "-", "-", "-", "≤ 300 ms", verdict(s <= 300)])

    # The feed fan-out rows come from benches/feed_fanout.sh's own results file.
    feed_file = os.path.join(out_dir, "feed", "results.jsonl")
    if os.path.exists(feed_file):
        with open(feed_file) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line)
                ok = (r["told"] == r["verifiers"] and r["errors"] == 0
                      and r["answered_before_revocation"] == 0
                      and r["fanout_max_ms"] is not None and r["fanout_max_ms"] <= 1000
                      and r["rss_added_mb"] <= 20)
                rows.append([
                    f"{r['backend']}: feed fan-out, {r['verifiers']} waiting", f"told {r['told']}",
                    f"{r['fanout_p50_ms']}", f"{r['fanout_p99_ms']}", str(r["errors"]),
                    f"max {r['fanout_max_ms']} ms, +{r['rss_added_mb']} MB RSS, "
                    f"idle CPU {r['idle_cpu_seconds']} s/5 s",
                    "all within 1 s, ≤ 20 MB", verdict(ok),
                ])
    elif "feed_fanout" in facts.get("scenarios", []):
        why = facts.get("feed_fanout_failure", "not run")
        rows.append(["feed fan-out", why, "-", "-", "-", "-", "all within 1 s, ≤ 20 MB", "n/a"])

    for name, label, sigs in [
        ("flask/token_pair", "Flask+FJE: token pair (2 sigs)", 2),
        ("flask/refresh", "Flask+FJE: refresh (verify + 1 sig)", 1),
        ("node-oidc-provider/client_credentials", "node-oidc-provider: client_credentials", 1),
        ("node-oidc-provider/jwks", "node-oidc-provider: JWKS GET", 0),
    ]:
        r = results.get(name)
        baseline = name.split("/")[0]
        if r is None:
            why = facts.get(f"baseline_failure_{baseline}", "not run")
            rows.append([label, why, "-", "-", "-", "-", "(baseline)", "-"])
            continue
        ratio = f"{_rate(r) * sigs / rsa:.0%} of RSA" if sigs else "-"
        row(label, r, ratio, "(baseline)", "-")

    header = ["scenario", "req/s", "p50 ms", "p99 ms", "errors", "ratio to limit", "target", "verdict"]
    widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(len(header))]
    lines = [
        f"RSA-2048 sign limit: {rsa:,.0f}/s on {cores} cores (openssl speed -multi {cores}), "
        f"{facts['rsa_sign_1core']:,.0f}/s on 1 core; argon2id OWASP: "
        + (f"{argon:.1f}/s on 1 core ({facts.get('argon2_source', '')})" if argon else "not measured"),
        f"duration {facts['duration']} per scenario, {facts['connections']} connections, "
        f"wrk {facts['threads']} threads; load average before: {facts.get('loadavg_before', '?')}, "
        f"after: {facts.get('loadavg_after', '?')}",
        "",
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(text + "\n")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "wait":
        wait(argv[2], *(argv[3:4]))
    elif cmd == "startup":
        sep = argv.index("--")
        startup(argv[2], argv[3], argv[sep + 1:])
    elif cmd == "mint":
        mint(*argv[2:8])
    elif cmd == "browser-session":
        print(browser_session(argv[2], argv[3], argv[4]))
    elif cmd == "token":
        print(token(argv[2], argv[3], argv[4] if len(argv) > 4 else None)["access_token"])
    elif cmd == "mem":
        print(json.dumps(mem(argv[2])))
    elif cmd == "openssl-rate":
        print(json.dumps(openssl_rate(argv[2])))
    elif cmd == "criterion-rate":
        print(f"{criterion_rate(argv[2]):.2f}")
    elif cmd == "report":
        report(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
