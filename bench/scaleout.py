#!/usr/bin/env python3
"""Scale-out of the service: 1, 2 and 4 `mailferry worker` processes on one PostgreSQL.

    python3 bench/scaleout.py            # as root (Dovecot and PostgreSQL run as their users)

Starts two filled Dovecot instances and a PostgreSQL with `mf-testservers --postgres`. Per
run (one per worker count) it makes a fresh database, submits one list of ACCOUNTS
migrations (bench<i> -> bench<i>_w<N>) with `mailferry batch submit`, starts N `mailferry
worker` processes that share the sealing key, and times until every migration is done.
Meanwhile it samples the established connections to each server's IMAP port (counted at
the server's side with `ss`): the peak is held against N x --per-host-connections, the
cap each process keeps. The `kill` run starts 2 workers and SIGKILLs one mid-pass: its
leases run out and the other worker takes them over. Every run ends with a count of each
target account against its source account (doveadm): lost and doubled messages.

Environment (optional): BENCH_ACCOUNTS=100 BENCH_MESSAGES=100 BENCH_FOLDERS=2
BENCH_WORKERS="1 2 4" BENCH_PASSES=2 (passes per worker process) BENCH_PER_HOST=8
BENCH_KILL=1 (the kill run) BENCH_CAP=3 (the cap run: 4 workers under
--max-passes-per-host 3; 0 leaves it out) BENCH_SKIP_BUILD=1 BENCH_OUT=bench/out/scaleout
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "100"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "100"))
FOLDERS = int(os.environ.get("BENCH_FOLDERS", "2"))
WORKERS = [int(n) for n in os.environ.get("BENCH_WORKERS", "1 2 4").split()]
PASSES = int(os.environ.get("BENCH_PASSES", "2"))
PER_HOST = int(os.environ.get("BENCH_PER_HOST", "8"))
KILL = os.environ.get("BENCH_KILL", "1") == "1"
CAP = int(os.environ.get("BENCH_CAP", "3"))  # the `cap` run: --max-passes-per-host, 4 workers
CONNECTIONS = 2  # per side per pass (the service's default)
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "bench/out/scaleout"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
MAILFERRY = TARGET / "release/mailferry"
TESTSERVERS = TARGET / "release/mf-testservers"


def log(text):
    print(time.strftime("%H:%M:%S"), "scaleout:", text, file=sys.stderr, flush=True)


def sh(*args, env=None, check=True):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def connections(port):
    """Established TCP connections on the server side of 127.0.0.1:port."""
    out = sh("ss", "-Htn", "state", "established", f"( sport = :{port} )", check=False)
    return sum(1 for line in out.splitlines() if line.strip())


class Sampler(threading.Thread):
    def __init__(self, ports):
        super().__init__(daemon=True)
        self.ports, self.peak, self.running = ports, {p: 0 for p in ports}, True

    def run(self):
        while self.running:
            for port in self.ports:
                self.peak[port] = max(self.peak[port], connections(port))
            time.sleep(0.1)


def counts(server, user):
    """Messages of every folder of `user` (doveadm), summed."""
    out = sh("doveadm", "-c", server["config"], "-f", "tab", "mailbox", "status", "-u", user,
             "messages", "*")
    return sum(int(line.split("\t")[-1]) for line in out.splitlines()[1:] if line.strip())


def psql(url, sql):
    return sh("psql", url, "-tAc", sql).strip()


def one_run(name, workers, servers, base_env, kill=False, max_passes=0):
    pg = servers["postgres_url"]
    db = f"mf_{name}"
    psql(pg, f"CREATE DATABASE {db}")
    url = re.sub(r"/[^/?]*(\?|$)", f"/{db}\\1", pg, count=1) if "/" in pg.split("@")[-1] else pg + "/" + db
    run_dir = OUT / name
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "data"
    env = dict(base_env, MAILFERRY_DATABASE_URL=url)
    src, dst = servers["source"]["imap_port"], servers["target"]["imap_port"]
    lines = []
    for i in range(1, ACCOUNTS + 1):
        target = f"bench{i}_{name}"
        lines.append(";".join([
            "imap", f"bench{i}@old.example", f"bench{i}", f"bench{i}pw", f"imap://127.0.0.1:{src}",
            "imap", f"{target}@new.example", target, f"{target}pw", f"imap://127.0.0.1:{dst}", "", "",
        ]))
    (run_dir / "list.txt").write_text("\n".join(lines) + "\n")
    key = sh(MAILFERRY, "licence", "issue", "--count", str(ACCOUNTS), "--to", "bench",
             "--signing-key", ROOT / "docs/licence-lab-signing.key", env=env).strip().splitlines()[-1]
    sh(MAILFERRY, "licence", "add", "--data-dir", data, key, env=env)
    sh(MAILFERRY, "batch", "submit", "--data-dir", data, run_dir / "list.txt", env=env)
    assert psql(url, "SELECT COUNT(*) FROM migration") == str(ACCOUNTS)

    sampler = Sampler([src, dst])
    sampler.start()
    started = time.time()
    procs = []
    for w in range(workers):
        logf = open(run_dir / f"worker{w}.log", "w")
        procs.append(subprocess.Popen(
            [str(MAILFERRY), "worker", "--data-dir", str(run_dir / f"w{w}"), "--workers", str(PASSES),
             "--per-host-connections", str(PER_HOST), "--poll-ms", "200", "--lease-seconds", "5",
             "--connections", str(CONNECTIONS), "--max-passes-per-host", str(max_passes)],
            env=env, stdout=logf, stderr=subprocess.STDOUT))
    killed = False
    while True:
        done = int(psql(url, "SELECT COUNT(*) FROM migration WHERE state IN ('done', 'failed')"))
        if kill and not killed and done >= ACCOUNTS // 4:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            killed = True
            log(f"{name}: killed worker 0 after {done} migrations")
        if done >= ACCOUNTS:
            break
        if time.time() - started > 1800:
            raise SystemExit(f"{name}: not done after 30 min")
        time.sleep(0.2)
    wall = time.time() - started
    sampler.running = False
    sampler.join()
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait()
    failed = int(psql(url, "SELECT COUNT(*) FROM migration WHERE state = 'failed'"))
    takeovers = int(psql(url, "SELECT COALESCE(SUM(lease_takeovers), 0) FROM migration"))
    copied = int(psql(url, "SELECT COALESCE(SUM(messages_copied), 0) FROM migration"))
    lost = doubled = 0
    for i in range(1, ACCOUNTS + 1):
        have = counts(servers["target"], f"bench{i}_{name}")
        want = counts(servers["source"], f"bench{i}")
        lost += max(0, want - have)
        doubled += max(0, have - want)
    total = sum(u["messages"] for u in servers["per_user"])
    row = {
        "run": name, "workers": workers, "wall_s": round(wall, 2),
        "msgs_per_s": round(total / wall, 1), "copied": copied, "failed": failed,
        "peak_src_conns": sampler.peak[src], "peak_dst_conns": sampler.peak[dst],
        "cap": max_passes * CONNECTIONS if max_passes else workers * PER_HOST,
        "cap_kind": f"{max_passes} passes x {CONNECTIONS}" if max_passes else f"{workers} x {PER_HOST} per process",
        "takeovers": takeovers, "lost": lost, "doubled": doubled,
    }
    log(json.dumps(row))
    return row


def main():
    if os.environ.get("BENCH_SKIP_BUILD") != "1":
        log("building release binaries")
        sh("cargo", "build", "--release", "-p", "mailferry-cli", "-p", "mailferry-testkit",
           "--bin", "mailferry", "--bin", "mf-testservers")
    OUT.mkdir(parents=True, exist_ok=True)
    names = [f"w{n}" for n in WORKERS] + (["kill"] if KILL else []) + (["cap"] if CAP else [])
    description = OUT / "servers.json"
    description.unlink(missing_ok=True)
    servers_log = open(OUT / "testservers.log", "w")
    testservers = subprocess.Popen(
        [str(TESTSERVERS), "--users", str(ACCOUNTS), "--messages", str(MESSAGES), "--folders",
         str(FOLDERS), "--target-tools", ",".join(names), "--postgres", "--no-stdin", "--out",
         str(description)], stdout=servers_log, stderr=subprocess.STDOUT)
    try:
        while not description.exists():
            if testservers.poll() is not None:
                raise SystemExit("mf-testservers stopped: " + (OUT / "testservers.log").read_text())
            time.sleep(0.5)
        servers = json.loads(description.read_text())
        ca = OUT / "ca.pem"
        ca.write_text("".join(Path(servers[s]["dir"], "cert.pem").read_text() for s in ("source", "target")))
        base_env = dict(os.environ,
                        MAILFERRY_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(),
                        MAILFERRY_CA_FILE=str(ca))
        base_env.pop("MAILFERRY_DATABASE_URL", None)
        rows = [one_run(f"w{n}", n, servers, base_env) for n in WORKERS]
        if KILL:
            rows.append(one_run("kill", 2, servers, base_env, kill=True))
        if CAP:
            rows.append(one_run("cap", 4, servers, base_env, max_passes=CAP))
        base = rows[0]["wall_s"]
        print(f"\n{ACCOUNTS} accounts x {MESSAGES} messages ({sum(u['messages'] for u in servers['per_user'])} messages, "
              f"{sum(u['bytes'] for u in servers['per_user']) / 1e6:.0f} MB), {PASSES} passes per worker process, "
              f"--per-host-connections {PER_HOST}\n")
        print("| run | worker processes | wall s | msgs/s | speed-up | peak conns source / target | cap | takeovers | failed | lost | doubled |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['run']} | {r['workers']} | {r['wall_s']} | {r['msgs_per_s']} | {base / r['wall_s']:.2f} | "
                  f"{r['peak_src_conns']} / {r['peak_dst_conns']} | {r['cap']} ({r['cap_kind']}) | {r['takeovers']} | {r['failed']} | {r['lost']} | {r['doubled']} |")
        (OUT / "results.json").write_text(json.dumps(rows, indent=2))
    finally:
        testservers.send_signal(signal.SIGTERM)
        testservers.wait()


if __name__ == "__main__":
    main()
