"""The Markdown report of tests/perf/run (tests/perf/RESULTS.md), from perf.py's figures."""

import datetime
import os
import platform
import re
import subprocess


def machine(pg_bin):
    cpu = "unknown CPU"
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    pgv = subprocess.run([pg_bin + "/postgres", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return "%s, %d cores, %d MiB RAM, Linux %s, %s" % (cpu, os.cpu_count(), mem,
                                                       platform.release(), pgv)


def fsync_cost(pg_bin, tmp):
    """What one WAL flush costs on this machine: pg_test_fsync's fdatasync of one 8 kB write."""
    out = subprocess.run([pg_bin + "/pg_test_fsync", "-s", "1", "-f",
                          os.path.join(tmp, "fsync.test")], capture_output=True, text=True).stdout
    m = re.search(r"fdatasync\s+([\d.]+) ops/sec\s+(\d+) usecs/op", out)
    if not m:
        return "fsync cost unknown (pg_test_fsync failed)"
    return "pg_test_fsync: fdatasync of one 8 kB write %s us (%.0f/s)" % (m.group(2),
                                                                      float(m.group(1)))


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


def table_head(columns):
    """A Markdown table's header: figures right-aligned, the last column (text) left-aligned
    when it is `errors`."""
    align = ["---:" if c != "errors" else "---" for c in columns]
    return ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]


def render(rows, levels, modes, extras, args, pg_bin, pg_settings):
    flags = args.approvald_flags.split()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# approvald performance (tests/perf/run)", "",
           "%s; %s; %s." % (now, machine(pg_bin), args.fsync_cost),
           "PostgreSQL: fresh cluster per concurrency, default durability (fsync, synchronous "
           "commit), %s. Each run %g s after %g s warm-up; every figure is the median of %d "
           "runs, pgbench and approvald taking turns; pgbench `-M prepared` runs "
           "approvald's own statements (tests/perf/*.pgbench): for a create and for an approve "
           "of a noop approval, one statement that is its own transaction, as approvald sends "
           "it. approvald runs with %s; approval-bench on one HTTP/2 connection; the load "
           "generator's own CPU (approval-bench, pgbench) shares the 2 cores." %
           (", ".join(pg_settings[:-1]), args.duration, args.warmup, args.repeat,
            "flags " + " ".join(flags) if flags else
            "its defaults (%s)" % flag_defaults(args.build, ["pool_size", "commit_batches"])), ""]
    for mode in modes if levels else []:
        peak = max(rows[(mode, c)]["pg_tps"] for c in levels)
        out += ["## %s" % mode, "",
                "pgbench peak: %.0f tx/s. Ratio = approvald calls/s / pgbench's peak." % peak, ""]
        out += table_head(["clients", "pgbench tx/s", "approvald calls/s", "ratio to peak",
                           "pgbench p99 ms", "approvald p99 ms", "p99 ratio",
                           "approvald peak RSS MiB", "errors"])
        for c in levels:
            r = rows[(mode, c)]
            b = r["bench"]
            out.append("| %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %s |" % (
                c, r["pg_tps"], b["calls_per_s"], b["calls_per_s"] / peak, r["pg_p99"],
                b["p99_ms"], b["p99_ms"] / r["pg_p99"] if r["pg_p99"] else 0,
                b["peak_rss_mib"],
                ", ".join("%s %d" % kv for kv in b["errors"].items()) or "none"))
        out += ["", "CPU per call in ms (PostgreSQL: its whole process tree; pgbench and "
                "approval-bench: the load generator):", ""] + table_head(
                    ["clients", "PostgreSQL, pgbench driving", "pgbench",
                     "PostgreSQL, approvald driving", "PostgreSQL ratio", "approvald",
                     "approval-bench"])
        for c in levels:
            r = rows[(mode, c)]
            b = r["bench"]
            out.append("| %d | %.3f | %.3f | %.3f | %.2f | %.3f | %.3f |" % (
                c, r["pg_pg_cpu"], r["pg_own_cpu"], b["pg_cpu_s_per_1000"],
                b["pg_cpu_s_per_1000"] / r["pg_pg_cpu"] if r["pg_pg_cpu"] else 0,
                b["cpu_s_per_1000"], b["bench_cpu_s_per_1000"]))
        out += ["", "Each run, pgbench tx/s / approvald calls/s: " + "; ".join(
            "%d clients %s" % (c, ", ".join("%.0f / %.0f" % run for run in rows[(mode, c)]["runs"]))
            for c in levels) + ".", ""]
    if levels:
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
    for name, title in (("execute_waiting", "2 approvers, 16 workers waiting (latency)"),
                        ("execute", "16 approvers, 16 workers (throughput)")):
        if name not in extras:
            continue
        x = extras[name]
        out += ["## External executions: %s" % title, "",
                "approve %.0f calls/s; executions claimed and completed %.0f/s (%.2f per "
                "approval); approve answer -> claim p50 %.1f ms, p99 %.1f ms (%d claims timed, "
                "workers long-polling `ClaimExecutions`)." % (
                    x["calls_per_s"], x["executions_completed_per_s"],
                    x["executions_per_approval"], x["claim_after_approve_p50_ms"],
                    x["claim_after_approve_p99_ms"], x["claims_timed"]),
                "", "Each run, approve/s, executions/s, claim p99 ms: %s (the run above is the "
                "median by p99)." % "; ".join("%.0f, %.0f, %.1f" % r for r in x["all"]), ""]
    return "\n".join(out) + "\n"
