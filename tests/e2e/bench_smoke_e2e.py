#!/usr/bin/python3
"""approval-bench keeps working: each mode runs for about a second against a real approvald and
its JSON is checked (no errors; contended: exactly one execution per round; watch-fanout: every
watcher got every event). Times nothing: the figures are tests/perf/run's business.

usage: bench_smoke_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
BENCH = os.path.join(os.path.dirname(APPROVALCTL), "approval-bench")
DSN = os.environ.get("APPROVALD_TEST_DSN", "")


def psql(sql, dsn=DSN):
    return subprocess.run(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atqc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


class BenchSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not DSN:
            raise RuntimeError("APPROVALD_TEST_DSN is not set: run tests/run")
        cls.tmp = tempfile.mkdtemp(prefix="approvald-bench-")
        cls.dbname = "bench_smoke_" + uuid.uuid4().hex[:8]
        psql("CREATE DATABASE " + cls.dbname)
        cls.dsn = DSN + " dbname=" + cls.dbname
        lines, cls.tokens = [], {}
        for name, roles in (("agent", "requester"), ("reviewer", "approver")):
            out = subprocess.run([APPROVALCTL, "token", "new", "--principal", name, "--roles",
                                  roles], check=True, capture_output=True, text=True).stdout
            cls.tokens[name] = re.search(r"^token: (\S+)$", out, re.M).group(1)
            lines.append(re.search(r"^tokens-file line: (.+)$", out, re.M).group(1))
        tokens = os.path.join(cls.tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("\n".join(lines) + "\n")
        cls.log_path = os.path.join(cls.tmp, "approvald.log")
        cls.log = open(cls.log_path, "w")
        cls.proc = subprocess.Popen([APPROVALD, "--dsn", cls.dsn, "--tokens", tokens, "--listen",
                                     "127.0.0.1:0", "--migrate"],
                                    stdout=cls.log, stderr=subprocess.STDOUT)
        cls.addr = None
        deadline = time.time() + 30
        while time.time() < deadline and not cls.addr:
            with open(cls.log_path) as f:
                m = re.search(r"\(port (\d+)\)", f.read())
            cls.addr = m and "127.0.0.1:" + m.group(1)
            time.sleep(0.05)
        if not cls.addr:
            raise RuntimeError("approvald did not start:\n" + open(cls.log_path).read())

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=30)
        cls.log.close()
        psql("DROP DATABASE IF EXISTS " + cls.dbname + " WITH (FORCE)")
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def bench(self, mode, *args, warmup="0.2"):
        out = subprocess.run([BENCH, "--target", self.addr, "--token", self.tokens["reviewer"],
                              "--requester-token", self.tokens["agent"], "--mode", mode,
                              "--duration", "1", "--warmup", warmup, "--json", *args],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        result = json.loads(out.stdout)
        for key in ("calls_per_s", "p50_ms", "p99_ms", "errors"):
            self.assertIn(key, result)
        self.assertGreater(result["calls"], 0)
        return result

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

    def test_bad_options_are_refused(self):
        out = subprocess.run([BENCH, "--mode", "nope", "--token", "x"], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--mode", out.stderr)


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (max(result.testsRun - failed, 0), failed))
    sys.exit(1 if failed else 0)
