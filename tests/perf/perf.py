#!/usr/bin/python3
"""tests/perf/run's driver: pgbench and approval-bench side by side on one machine.

For each concurrency: a fresh PostgreSQL with fixed settings (default durability), the schema
from `approvald migrate`, pgbench running approvald's own SQL (tests/perf/*.pgbench), then
approvald + approval-bench on the same database. Prints the table; with --results, writes it
to tests/perf/RESULTS.md.
"""

import argparse
import datetime
import glob
import json
import os
import platform
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
    """tx/s and p99 latency (ms) of one pgbench run (after a warm-up run)."""
    threads = str(min(clients, 2))
    base = [PG_BIN + "/pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", threads,
            "-f", script, "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"]
    if warmup > 0:
        subprocess.run(base + ["-T", str(int(max(1, warmup)))], check=True, capture_output=True)
    logdir = tempfile.mkdtemp(dir=tmp)
    out = subprocess.run(base + ["-T", str(int(seconds)), "-l", "--log-prefix",
                                 os.path.join(logdir, "tx")],
                         check=True, capture_output=True, text=True).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = []
    for path in glob.glob(os.path.join(logdir, "tx*")):
        with open(path) as f:
            lat.extend(int(line.split()[2]) for line in f if line.strip())
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1000.0 if lat else 0.0
    shutil.rmtree(logdir, ignore_errors=True)
    return tps, p99


def proc_cpu(pid):
    """CPU seconds used so far; still readable right after the process exited (a zombie)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """CPU seconds, RSS and peak RSS (MiB) of a running process."""
    status = open("/proc/%d/status" % pid).read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024.0
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024.0
    return proc_cpu(pid), rss, hwm


class Approvald:
    def __init__(self, build, pg, tmp, extra_flags=()):
        tokens_file = os.path.join(tmp, "tokens-%d" % time.time_ns())
        self.tokens = harness.write_tokens(os.path.join(build, "client", "approvalctl"),
                                           tokens_file, {"perf-agent": "requester",
                                                         "perf-reviewer": "approver"})
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
        elif "measure end" in line:
            marks["end"] = proc_stat(daemon.proc.pid)[0]
            marks["bench_end"] = proc_cpu(proc.pid)  # it may have exited
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
    result["peak_rss_mib"] = hwm
    return result


def machine():
    cpu = "unknown CPU"
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    pgv = subprocess.run([PG_BIN + "/postgres", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return "%s, %d cores, %d MiB RAM, Linux %s, %s" % (cpu, os.cpu_count(), mem,
                                                       platform.release(), pgv)


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
    return {"pg_tps": median([t for t, _ in runs["pg"]]),
            "pg_p99": median([p for _, p in runs["pg"]]),
            "bench": {"calls_per_s": median([b["calls_per_s"] for b in benches]),
                      "p99_ms": median([b["p99_ms"] for b in benches]),
                      "peak_rss_mib": max(b["peak_rss_mib"] for b in benches),
                      "cpu_s_per_1000": median([b["cpu_s_per_1000"] for b in benches]),
                      "bench_cpu_s_per_1000": median([b.get("bench_cpu_s_per_1000", 0)
                                                      for b in benches]),
                      "errors": errors},
            "runs": [(t, b["calls_per_s"]) for (t, _), b in zip(runs["pg"], benches)]}


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
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = args.modes.split(",")
    flags = args.approvald_flags.split()
    tmp = tempfile.mkdtemp(prefix="approvald-perf-")
    os.chmod(tmp, 0o755)
    rows = {}
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
                                expect = runs[mode]["pg"][-1][0] * 1.3 + 500
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = render(rows, levels, modes, extras, args)
    print(report)
    if args.results:
        with open(args.results, "w") as f:
            f.write(report)
    return 0


def flag_defaults(build, names):
    """`--name default` of each of approvald's flags `names`, as its --helpfull states them."""
    cmd = [os.path.join(build, "server", "approvald"), "--helpfull"]
    text = subprocess.run(cmd, capture_output=True, text=True).stdout
    found = []
    for name in names:
        # Within the flag's own entry: up to the next line that starts another flag.
        m = re.search(r"--%s \((?:(?!\n\s*--).)*?\);\s+default: ([^;]*);" % name, text, re.S)
        if not m:
            raise RuntimeError("approvald --helpfull does not show --%s's default" % name)
        found.append("--%s %s" % (name.replace("_", "-"), m.group(1)))
    return ", ".join(found)


def render(rows, levels, modes, extras, args):
    flags = args.approvald_flags.split()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# approvald performance (tests/perf/run)", "",
           "%s; %s." % (now, machine()),
           "PostgreSQL: fresh cluster per concurrency, default durability (fsync, synchronous "
           "commit), %s. Each run %g s after %g s warm-up; every figure is the median of %d "
           "runs, pgbench and approvald taking turns; pgbench `-M prepared` runs "
           "approvald's own statements (tests/perf/*.pgbench): for a create and for an approve "
           "of a noop approval, one statement that is its own transaction, as approvald sends "
           "it. approvald runs with %s; approval-bench on one HTTP/2 connection; the load "
           "generator's own CPU (approval-bench, pgbench) shares the 2 cores." %
           (", ".join(PG_SETTINGS[:-1]), args.duration, args.warmup, args.repeat,
            "flags " + " ".join(flags) if flags else
            "its defaults (%s)" % flag_defaults(args.build, ["pool_size", "commit_batches"])), ""]
    for mode in modes:
        peak = max(rows[(mode, c)]["pg_tps"] for c in levels)
        out += ["## %s" % mode, "",
                "pgbench peak: %.0f tx/s. Ratio = approvald calls/s / pgbench's peak." % peak, "",
                "| clients | pgbench tx/s | approvald calls/s | ratio to peak | pgbench p99 ms | "
                "approvald p99 ms | p99 ratio | approvald peak RSS MiB | CPU s / 1,000 calls | "
                "approval-bench CPU s / 1,000 calls | errors |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in levels:
            r = rows[(mode, c)]
            b = r["bench"]
            out.append("| %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %.3f | %.3f | %s |" % (
                c, r["pg_tps"], b["calls_per_s"], b["calls_per_s"] / peak, r["pg_p99"],
                b["p99_ms"], b["p99_ms"] / r["pg_p99"] if r["pg_p99"] else 0,
                b["peak_rss_mib"], b["cpu_s_per_1000"], b["bench_cpu_s_per_1000"],
                ", ".join("%s %d" % kv for kv in b["errors"].items()) or "none"))
        out += ["", "Each run, pgbench tx/s / approvald calls/s: " + "; ".join(
            "%d clients %s" % (c, ", ".join("%.0f / %.0f" % run for run in rows[(mode, c)]["runs"]))
            for c in levels) + ".", ""]
    out.append("Idle RSS after start: " + ", ".join(
        "%.1f MiB" % rows[("idle", c)]["rss"] for c in levels) + ".")
    out.append("")
    if "contended" in extras:
        x = extras["contended"]
        out += ["## 64 racers on one approval", "",
                "%d rounds; executions %d (rounds without exactly one: %d); first to last answer "
                "p50 %.1f ms, p99 %.1f ms, max %.1f ms; fire to last answer p99 %.1f ms." % (
                    x["rounds"], x["executions"], x["rounds_without_exactly_one_execution"],
                    x["spread_p50_ms"], x["spread_p99_ms"], x["spread_max_ms"],
                    x["all_answered_p99_ms"]),
                "", "First to last answer p99 of each run: %s ms (the run above is the median)." %
                ", ".join("%.1f" % v for v in x["all_p99"]), ""]
    if "watch" in extras:
        x = extras["watch"]
        out += ["## watch-fanout, 1,000 watchers", "",
                "%d creates at 20/s; %d of %d deliveries; create sent -> delivered p50 %.1f ms, "
                "p99 %.1f ms, max %.1f ms; approvald peak RSS %.1f MiB." % (
                    x["creates_ok"], x["deliveries"], x["deliveries_expected"], x["p50_ms"],
                    x["p99_ms"], x["max_ms"], x["peak_rss_mib"]),
                "", "Delivery p99 of each run: %s ms (the run above is the median)." %
                ", ".join("%.1f" % v for v in x["all_p99"]), ""]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
