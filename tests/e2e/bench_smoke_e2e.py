#!/usr/bin/python3
"""approval-bench keeps working: each mode runs for about a second against a real approvald and
its JSON is checked (no errors; contended: exactly one execution per round; watch-fanout: every
watcher got every event). Times nothing: the figures are tests/perf/run's business.

With 1,000 watchers, while they are live, pg_stat_activity shows one listener connection of the
daemon ('approvald-listener') and no more than --pool-size + --commit-batches + 1 connections
in all.

usage: bench_smoke_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import json
import os
import subprocess
import sys
import threading
import time

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
BENCH = os.path.join(os.path.dirname(APPROVALCTL), "approval-bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
PG_BIN = harness.PG_BIN  # Debian 12's PostgreSQL 15 (deploy/lib/common.sh)
POOL_SIZE = 8  # the daemon below runs with --pool-size 8 (its default is larger)
COMMIT_BATCHES = 2  # and --commit-batches 2: a connection per group-commit sender


def psql(sql, dsn):
    """The output of sql, one line per row, fields separated by |."""
    return "\n".join("|".join(row) for row in harness.psql(sql, dsn))


class BenchSmokeTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("bench", APPROVALCTL, {"agent": "requester", "reviewer": "approver"})
        cls.daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, None, cls.tmp,
                                       args=("--pool-size", str(POOL_SIZE), "--commit-batches",
                                             str(COMMIT_BATCHES)))
        cls.addClassCleanup(cls.daemon.stop, grace=30, check=True)

    def bench_args(self, mode, *args, duration="1", warmup="0.2"):
        return [BENCH, "--target", self.daemon.target, "--token", self.tokens["reviewer"],
                "--requester-token", self.tokens["agent"], "--mode", mode,
                "--duration", duration, "--warmup", warmup, "--json", *args]

    def backends(self):
        """application_name -> number of client backends of the test database, except this
        psql (autovacuum workers show up with the database's name too)."""
        rows = psql("SELECT application_name, count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' GROUP BY 1", self.dsn)
        return {name: int(n) for name, n in (r.split("|") for r in rows.splitlines())}

    def bench(self, mode, *args, warmup="0.2"):
        out = subprocess.run(self.bench_args(mode, *args, warmup=warmup),
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        result = json.loads(out.stdout)
        for key in ("calls_per_s", "p50_ms", "p99_ms", "errors"):
            self.assertIn(key, result)
        self.assertGreater(result["calls"], 0)
        return result

    def test_perf_pgbench_scripts_run_on_the_schema(self):
        """tests/perf's pgbench scripts (approvald's statements as tests/perf/run times them)
        still run on the current schema and do their work: 3 creates, 3 approves."""
        perf = os.path.join(ROOT, "tests", "perf")
        psql("CREATE SEQUENCE perf_approve_seq", self.dsn)
        subprocess.run(["psql", self.dsn, "-v", "ON_ERROR_STOP=1", "-q", "-v", "lo=1", "-v",
                        "hi=3", "-f", os.path.join(perf, "setup_approve.sql")],
                       check=True, capture_output=True)
        for script in ("create.pgbench", "approve.pgbench"):
            out = subprocess.run([PG_BIN + "/pgbench", "-n", "-M", "prepared",
                                  "-c", "1", "-t", "3", "-f", os.path.join(perf, script),
                                  self.dsn], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, script + ":\n" + out.stdout + out.stderr)
            self.assertIn("number of failed transactions: 0", out.stdout, script)
        counts = psql("SELECT count(*) FILTER (WHERE status = 'pending' AND summary = "
                      "'approval-bench' AND requested_by = 'perf'), count(*) FILTER (WHERE "
                      "status = 'approved' AND decided_by = 'perf-reviewer' AND "
                      "execution_result = '{\"ok\": true}') FROM approvald.approvals", self.dsn)
        self.assertEqual(counts, "3|3")
        events = psql("SELECT count(*) FROM approvald.events e JOIN approvald.approvals a ON "
                      "a.id = e.approval_id WHERE a.decided_by = 'perf-reviewer' AND "
                      "e.type = 'approved'", self.dsn)
        self.assertEqual(events, "3")

    def test_create_approve_reject_mixed(self):
        for mode in ("create", "approve", "reject", "mixed"):
            # No warm-up: a fast machine can decide all 300 prepared approvals within it, and
            # the timed window would then record nothing.
            result = self.bench(mode, "--concurrency", "4", "--payload-bytes", "64",
                                "--approvals", "300", warmup="0")
            self.assertEqual(result["errors"], {}, (mode, result))

    def test_contended_executes_once_per_round(self):
        result = self.bench("contended", "--racers", "8", "--approvals", "100")
        self.assertGreater(result["rounds"], 0)
        self.assertEqual(result["executions"], result["rounds"])
        self.assertEqual(result["rounds_without_exactly_one_execution"], 0)
        self.assertEqual(set(result["answers"]), {"OK", "FAILED_PRECONDITION/ALREADY_PROCESSED"})

    def test_watch_fanout_delivers_everything(self):
        result = self.bench("watch-fanout", "--watchers", "10", "--rate", "20")
        self.assertGreater(result["creates_ok"], 0)
        self.assertEqual(result["deliveries"], result["deliveries_expected"])

    # Named to run first (unittest sorts by name): the other tests leave thousands of events
    # that the daemon's listener may still be reading on a loaded machine, and watchers that
    # start "from now on" while it catches up get that backlog too; 1,000 of them would then
    # overflow their buffers (RESOURCE_EXHAUSTED, resume from the named event: as designed).
    def test_a_watch_fanout_1000_watchers_share_one_listen_connection(self):
        # ThreadSanitizer slows the daemon and the bench about tenfold: 1,000 streams would not
        # open in time there, and 100 still show that watchers share the one listener.
        watchers = 100 if "thread" in os.environ.get("APPROVALD_SANITIZE", "") else 1000
        proc = subprocess.Popen(self.bench_args("watch-fanout", "--watchers", str(watchers),
                                                "--rate", "20", duration="3", warmup="0"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stderr, live = [], threading.Event()

        def read_stderr():
            for line in proc.stderr:
                stderr.append(line)
                if line.strip() == "%d watchers live" % watchers:
                    live.set()
        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            # The line comes once every stream has seen an event (a probe approval); the 3 s
            # of creates follow, so the streams are all open while pg_stat_activity is read.
            deadline = time.time() + 60
            while not live.wait(0.1):
                self.assertIsNone(proc.poll(), "approval-bench ended before its watchers were"
                                  " live:\n" + "".join(stderr) + self.failed_watch_lines())
                self.assertLess(time.time(), deadline, "no watchers live:\n" + "".join(stderr))
            backends = self.backends()
            stdout, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=10)
        sys.stderr.write("backends with %d watchers live: %s\n" % (watchers, backends))
        self.assertEqual(proc.returncode, 0, "".join(stderr))
        self.assertEqual(backends.get("approvald-listener"), 1, backends)
        daemon = sum(n for name, n in backends.items() if name.startswith("approvald"))
        self.assertLessEqual(daemon, POOL_SIZE + COMMIT_BATCHES + 1, backends)
        self.assertEqual(sum(backends.values()), daemon, backends)  # nothing else connected
        result = json.loads(stdout)
        self.assertEqual(result["watchers"], watchers)
        self.assertGreater(result["creates_ok"], 0, result)
        self.assertGreater(result["deliveries"], 0, result)
        self.assertEqual(result["deliveries"], result["deliveries_expected"], result)
        self.assertEqual(result["deliveries"], result["creates_ok"] * watchers, result)
        self.assertEqual(result["notes"], [], result)  # no stream ended before it was cancelled

    def failed_watch_lines(self, most=3):
        """The daemon's log lines of watch streams that ended with an error (for messages)."""
        with open(self.daemon.log_path) as f:
            lines = [l for l in f if "method=WatchApprovals" in l and "code=CANCELLED" not in l]
        return "\ndaemon:\n" + "".join(lines[:most])

    def test_bad_options_are_refused(self):
        out = subprocess.run([BENCH, "--mode", "nope", "--token", "x"], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--mode", out.stderr)


if __name__ == "__main__":
    harness.run_tests()
