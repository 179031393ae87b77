#!/usr/bin/python3
"""tests/perf/run's driver: pgbench and approval-bench side by side on one machine.

For each concurrency: a fresh PostgreSQL with fixed settings (default durability), the schema
from `approvald migrate`, pgbench running approvald's own SQL (tests/perf/*.pgbench), then
approvald + approval-bench on the same database. Prints the table; with --results, writes it
to tests/perf/RESULTS.md.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402  free ports, tokens, waiting for approvald and stopping it
from cpu import PgTree, proc_cpu, proc_stat, waited_children_cpu  # noqa: E402
from report import fsync_cost, render  # noqa: E402
PG_BIN = harness.PG_BIN
# Fixed PostgreSQL settings: defaults (fsync, synchronous_commit on) plus room for the runs.
PG_SETTINGS = ["shared_buffers=256MB", "max_connections=200", "max_wal_size=4GB",
               "checkpoint_timeout=30min", "listen_addresses=127.0.0.1"]


def log(msg):
    print("\033[1m==> %s\033[0m" % msg, file=sys.stderr, flush=True)


as_owner = harness.as_pg_owner


class Postgres:
    def __init__(self, tmp):
        self.data = os.path.join(tmp, "pg-%d" % time.time_ns())
        os.mkdir(self.data, 0o700)
        self.sock = self.data + "-sock"
        os.mkdir(self.sock)
        if os.getuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        subprocess.run(as_owner([PG_BIN + "/initdb", "-D", self.data, "-U", "postgres",
                                 "--auth=trust"]), check=True, capture_output=True)
        self.port = harness.free_port()
        opts = " ".join(["-p %d -k %s" % (self.port, self.sock)] +
                        ["-c " + s for s in PG_SETTINGS])
        subprocess.run(as_owner([PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.data + "/log",
                                 "-w", "-o", opts, "start"]), check=True, capture_output=True)
        self.dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres" % self.port
        self.tree = PgTree(self.data)

    def psql(self, sql, *args):
        out = subprocess.run(["psql", self.dsn, "-v", "ON_ERROR_STOP=1", "-Atq", *args, "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql, out.stderr))
        return out.stdout.strip()

    def stop(self):
        subprocess.run(as_owner([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.sock, ignore_errors=True)


def pgbench(pg, script, clients, seconds, tmp, warmup):
    """tx/s, p99 latency (ms), and CPU seconds per 1,000 transactions of PostgreSQL and of
    pgbench, of one pgbench run (after a warm-up run)."""
    threads = str(min(clients, 2))
    base = [PG_BIN + "/pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", threads,
            "-f", script, "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"]
    idle = pg.tree.children()  # before any pgbench backend
    if warmup > 0:
        subprocess.run(base + ["-T", str(int(max(1, warmup)))], check=True, capture_output=True)
    logdir = tempfile.mkdtemp(dir=tmp)
    pg.tree.settle(idle)
    pg_start, own_start = pg.tree.cpu(), waited_children_cpu()
    out = subprocess.run(base + ["-T", str(int(seconds)), "-l", "--log-prefix",
                                 os.path.join(logdir, "tx")],
                         check=True, capture_output=True, text=True).stdout
    own_used = waited_children_cpu() - own_start
    pg.tree.settle(idle)
    pg_used = pg.tree.cpu() - pg_start
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = []
    for path in glob.glob(os.path.join(logdir, "tx*")):
        with open(path) as f:
            lat.extend(int(line.split()[2]) for line in f if line.strip())
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1000.0 if lat else 0.0
    shutil.rmtree(logdir, ignore_errors=True)
    tx = max(1, len(lat))
    return {"tps": tps, "p99": p99, "pg_cpu": pg_used * 1000.0 / tx,
            "own_cpu": own_used * 1000.0 / tx}


# The action type of the execute extra: run by workers (perf-worker), each claim then complete.
EXTERNAL_CONFIG = """\
version: 1
action_types:
  - name: perf.external
    handler: external
    executor_roles: [executor]
"""


class Approvald:
    def __init__(self, build, pg, tmp, extra_flags=()):
        self.pg = pg
        tokens_file = os.path.join(tmp, "tokens-%d" % time.time_ns())
        self.tokens = harness.write_tokens(os.path.join(build, "client", "approvalctl"),
                                           tokens_file, {"perf-agent": "requester",
                                                         "perf-reviewer": "approver",
                                                         "perf-worker": "executor"})
        self.log_path = tokens_file + ".log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [os.path.join(build, "server", "approvald"), "--dsn", pg.dsn, "--tokens",
                 tokens_file, "--listen", "127.0.0.1:0", "--migrate", *extra_flags],
                stdout=log, stderr=subprocess.STDOUT)
        port = harness.wait_listening(self.proc, self.log_path)
        if port is None:
            raise RuntimeError("approvald did not start:\n" + open(self.log_path).read())
        self.addr = "127.0.0.1:%d" % port

    def stop(self):
        harness.terminate(self.proc, grace=30, check=True)


def bench(build, daemon, mode, concurrency, args):
    """Runs approval-bench; approvald's CPU time is sampled at the measured window's edges."""
    cmd = [os.path.join(build, "client", "approval-bench"), "--target", daemon.addr,
           "--token", daemon.tokens["perf-reviewer"],
           "--requester-token", daemon.tokens["perf-agent"], "--mode", mode,
           "--concurrency", str(concurrency), "--json", "--quiet", "--mark-phases", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks, errors = {}, []
    start_cpu = proc_stat(daemon.proc.pid)[0]
    for line in proc.stderr:
        if "measure start" in line:
            marks["start"] = proc_stat(daemon.proc.pid)[0]
            marks["bench_start"] = proc_cpu(proc.pid)
            marks["pg_start"] = daemon.pg.tree.cpu()
        elif "measure end" in line:
            marks["end"] = proc_stat(daemon.proc.pid)[0]
            marks["bench_end"] = proc_cpu(proc.pid)  # it may have exited
            marks["pg_end"] = daemon.pg.tree.cpu()
        else:
            errors.append(line)
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError("approval-bench %s failed:\n%s%s" % (mode, out, "".join(errors)))
    result = json.loads(out)
    cpu, _, hwm = proc_stat(daemon.proc.pid)
    calls = max(1, result["calls"])
    used = marks.get("end", cpu) - marks.get("start", start_cpu)
    result["cpu_s_per_1000"] = used * 1000.0 / calls
    if "bench_start" in marks and "bench_end" in marks:
        result["bench_cpu_s_per_1000"] = (marks["bench_end"] - marks["bench_start"]) * 1000.0 / calls
        result["pg_cpu_s_per_1000"] = (marks["pg_end"] - marks["pg_start"]) * 1000.0 / calls
    result["peak_rss_mib"] = hwm
    return result


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def summarize(runs):
    """Medians of repeated runs (each figure on its own); errors summed; peak RSS the highest."""
    benches = runs["bench"]
    errors = {}
    for b in benches:
        for code, n in b["errors"].items():
            errors[code] = errors.get(code, 0) + n
    return {"pg_tps": median([r["tps"] for r in runs["pg"]]),
            "pg_p99": median([r["p99"] for r in runs["pg"]]),
            "pg_pg_cpu": median([r["pg_cpu"] for r in runs["pg"]]),
            "pg_own_cpu": median([r["own_cpu"] for r in runs["pg"]]),
            "bench": {"calls_per_s": median([b["calls_per_s"] for b in benches]),
                      "p99_ms": median([b["p99_ms"] for b in benches]),
                      "peak_rss_mib": max(b["peak_rss_mib"] for b in benches),
                      "cpu_s_per_1000": median([b["cpu_s_per_1000"] for b in benches]),
                      "bench_cpu_s_per_1000": median([b.get("bench_cpu_s_per_1000", 0)
                                                      for b in benches]),
                      "pg_cpu_s_per_1000": median([b.get("pg_cpu_s_per_1000", 0)
                                                   for b in benches]),
                      "errors": errors},
            "runs": [(r["tps"], b["calls_per_s"]) for r, b in zip(runs["pg"], benches)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--modes", default="approve,create")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--extras", action=argparse.BooleanOptionalAction, default=True,
                    help="the 64-racer contended case and watch-fanout with 1,000 watchers")
    ap.add_argument("--results", help="write the table to this Markdown file")
    ap.add_argument("--approvald-flags", default="", help="extra approvald flags")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each pgbench and approval-bench measurement, taken in turn; "
                         "the table shows their medians (figures drift 20%% between runs)")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c]
    modes = args.modes.split(",")
    flags = args.approvald_flags.split()
    tmp = tempfile.mkdtemp(prefix="approvald-perf-")
    os.chmod(tmp, 0o755)
    rows = {}
    args.fsync_cost = fsync_cost(PG_BIN, tmp)
    try:
        for c in levels:
            log("concurrency %d: fresh PostgreSQL" % c)
            pg = Postgres(tmp)
            try:
                subprocess.run([os.path.join(args.build, "server", "approvald"), "migrate",
                                "--dsn", pg.dsn], check=True, capture_output=True)
                need = int((args.duration + args.warmup + 2) * 5000) * args.repeat
                pg.psql("CREATE SEQUENCE perf_approve_seq")
                for lo in range(1, need + 1, 50000):
                    pg.psql("\\i " + os.path.join(HERE, "setup_approve.sql"), "-v", "lo=%d" % lo,
                            "-v", "hi=%d" % min(need, lo + 49999))
                pg.psql("VACUUM ANALYZE")
                daemon = Approvald(args.build, pg, tmp, flags)
                try:
                    time.sleep(1)
                    rows[("idle", c)] = {"rss": proc_stat(daemon.proc.pid)[1]}
                    runs = {mode: {"pg": [], "bench": []} for mode in modes}
                    # pgbench and approval-bench take turns, so that both see the same drift.
                    for rep in range(args.repeat):
                        for mode in modes:
                            log("concurrency %d, run %d/%d: pgbench %s" %
                                (c, rep + 1, args.repeat, mode))
                            runs[mode]["pg"].append(pgbench(
                                pg, os.path.join(HERE, mode + ".pgbench"), c, args.duration, tmp,
                                args.warmup))
                        for mode in modes:
                            log("concurrency %d, run %d/%d: approval-bench %s" %
                                (c, rep + 1, args.repeat, mode))
                            extra = ["--duration", str(args.duration), "--warmup",
                                     str(args.warmup)]
                            if mode in ("approve", "reject"):
                                # Enough for approvald well above pgbench (at 64 callers).
                                expect = runs[mode]["pg"][-1]["tps"] * 2 + 1000
                                extra += ["--approvals",
                                          str(int(expect * (args.duration + args.warmup)))]
                            runs[mode]["bench"].append(bench(args.build, daemon, mode, c, extra))
                    for mode in modes:
                        rows[(mode, c)] = summarize(runs[mode])
                finally:
                    daemon.stop()
            finally:
                pg.stop()
        extras = {}
        if args.extras:
            pg = Postgres(tmp)
            try:
                daemon = Approvald(args.build, pg, tmp, flags)
                try:
                    # Each run `--repeat` times; the report shows the run with the median p99.
                    runs = {"contended": [], "watch": []}
                    for rep in range(args.repeat):
                        log("contended, run %d/%d: 64 racers per approval" % (rep + 1, args.repeat))
                        runs["contended"].append(bench(args.build, daemon, "contended", 1,
                                                       ["--racers", "64", "--duration", "10",
                                                        "--warmup", "1"]))
                        log("watch-fanout, run %d/%d: 1,000 watchers" % (rep + 1, args.repeat))
                        runs["watch"].append(bench(args.build, daemon, "watch-fanout", 1,
                                                   ["--watchers", "1000", "--rate", "20",
                                                    "--duration", "10", "--warmup", "1",
                                                    "--channels", "8"]))
                    for name, key in (("contended", "spread_p99_ms"), ("watch", "p99_ms")):
                        ordered = sorted(runs[name], key=lambda r: r[key])
                        extras[name] = dict(ordered[len(ordered) // 2])
                        extras[name]["all_p99"] = [r[key] for r in runs[name]]
                finally:
                    daemon.stop()
            finally:
                pg.stop()
            config = os.path.join(tmp, "external.yaml")
            with open(config, "w") as f:
                f.write(EXTERNAL_CONFIG)
            # 2 approvers: workers waiting, so the time to a claim is the wake-up's; then 16:
            # throughput (workers fall behind and claims wait in a queue). Each run on a fresh
            # cluster: a backlog left by the run before would be all the next one claims.
            for name, approvers in (("execute_waiting", 2), ("execute", 16)):
                runs[name] = []
                for rep in range(args.repeat):
                    log("%s, run %d/%d: %d approvers, 16 workers" % (
                        name, rep + 1, args.repeat, approvers))
                    pg = Postgres(tmp)
                    try:
                        daemon = Approvald(args.build, pg, tmp, flags + ["--config", config])
                        try:
                            runs[name].append(bench(
                                args.build, daemon, "execute", approvers,
                                ["--action-type", "perf.external", "--workers", "16",
                                 "--worker-token", daemon.tokens["perf-worker"],
                                 "--duration", "10", "--warmup", "2"]))
                        finally:
                            daemon.stop()
                    finally:
                        pg.stop()
                ordered = sorted(runs[name], key=lambda r: r["claim_after_approve_p99_ms"])
                extras[name] = dict(ordered[len(ordered) // 2])
                extras[name]["all"] = [(r["calls_per_s"], r["executions_completed_per_s"],
                                        r["claim_after_approve_p99_ms"]) for r in runs[name]]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = render(rows, levels, modes, extras, args, PG_BIN, PG_SETTINGS)
    print(report)
    if args.results:
        with open(args.results, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
