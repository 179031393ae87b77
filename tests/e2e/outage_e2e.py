#!/usr/bin/python3
"""PostgreSQL outage: approvald answers UNAVAILABLE within the deadline, reports NOT_SERVING,
and recovers by itself when the database returns.

Runs its own PostgreSQL cluster (it must be stopped and started), on a free port.
usage: outage_e2e.py APPROVALD APPROVALCTL REPO_ROOT
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402


class OutageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="approvald-outage-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.pg = harness.Postgres(cls.tmp, settings=("fsync=off",))
        cls.addClassCleanup(cls.pg_stop)
        cls.dsn = cls.pg.dsn()
        tokens_file = os.path.join(cls.tmp, "tokens")
        tokens = harness.write_tokens(APPROVALCTL, tokens_file,
                                      {"alice": "approver", "agent": "requester"})
        cls.token, cls.agent = tokens["alice"], tokens["agent"]
        cls.daemon = harness.Approvald(APPROVALD, cls.dsn, tokens_file, None, cls.tmp)
        cls.addClassCleanup(cls.daemon.stop, check=True)

    @classmethod
    def pg_start(cls):
        cls.pg.start()

    @classmethod
    def pg_stop(cls):
        cls.pg.stop("immediate")

    def ctl(self, *args, timeout="2s"):
        env = dict(os.environ, APPROVALD_TOKEN=self.token)
        start = time.time()
        out = subprocess.run([APPROVALCTL, "--addr", self.daemon.target, "--timeout", timeout,
                              *args], capture_output=True, text=True, env=env, timeout=30)
        return out, time.time() - start

    def health(self):
        import grpc
        sys.path.insert(0, self.gen)
        import health_pb2, health_pb2_grpc
        with grpc.insecure_channel(self.daemon.target) as channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def wait_health(self, want, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.health() == want:
                return
            time.sleep(0.1)
        self.fail("health never became %s:\n%s" % (want, self.daemon.output()))

    def load(self, stop, results):
        """Create + approve in a loop, every call with a 2 s deadline; records (approval id,
        approve outcome, seconds) and the slowest call."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        with grpc.insecure_channel(self.daemon.target) as ch:
            stub = harness.approval_stub(ch)
            while not stop.is_set():
                start = time.time()
                try:
                    a = stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"),
                                            metadata=(("authorization", "Bearer " + self.agent),),
                                            timeout=2)
                except grpc.RpcError as e:
                    results.append((None, e.code().name, time.time() - start))
                    time.sleep(0.05)
                    continue
                start = time.time()
                try:
                    stub.Approve(pb.ApproveRequest(id=a.id),
                                 metadata=(("authorization", "Bearer " + self.token),), timeout=2)
                    results.append((a.id, "OK", time.time() - start))
                except grpc.RpcError as e:
                    results.append((a.id, e.code().name, time.time() - start))

    def test_outage_and_recovery(self):
        import threading
        self.gen = tempfile.mkdtemp(prefix="approvald-gen-", dir=self.tmp)
        harness.generate_stubs(ROOT, self.gen)
        stop, results = threading.Event(), []
        loader = threading.Thread(target=self.load, args=(stop, results))
        loader.start()
        time.sleep(0.5)
        self.assertEqual(self.health(), "SERVING")
        ok, _ = self.ctl("list")
        self.assertEqual(ok.returncode, 0, ok.stderr)

        self.pg_stop()
        self.wait_health("NOT_SERVING")
        out, took = self.ctl("list")
        self.assertEqual(out.returncode, 1)
        self.assertIn("UNAVAILABLE", out.stderr)
        self.assertLess(took, 4.0)  # within the 2 s deadline (plus process start), never a hang
        out, took = self.ctl("get", "00000000-0000-4000-8000-000000000000")
        self.assertRegex(out.stderr, "UNAVAILABLE|DEADLINE_EXCEEDED")
        self.assertLess(took, 4.0)
        # Longer than a call's deadline, so that the load surely meets the outage (a call that
        # lost its COMMIT keeps reading the outcome back until its deadline).
        time.sleep(2.5)

        self.pg_start()
        self.wait_health("SERVING")
        time.sleep(1)
        stop.set()
        loader.join(timeout=30)
        ok, _ = self.ctl("list")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(self.daemon.proc.poll(), None)  # never restarted

        # Under load through the outage: every call answered within its deadline, with a
        # retryable code when it failed; afterwards every approval is whole.
        codes = {code for _, code, _ in results}
        self.assertTrue(codes <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes)
        self.assertTrue(codes & {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes)
        self.assertIn("OK", codes)
        self.assertLess(max(took for _, _, took in results), 3.0)
        rows = subprocess.run(["psql", self.dsn, "-Atc",
                               "SELECT id, status, version FROM approvald.approvals"],
                              capture_output=True, text=True, check=True).stdout.split()
        state = {r.split("|")[0]: (r.split("|")[1], int(r.split("|")[2])) for r in rows}
        for approval_id, code, _ in results:
            if approval_id is None:
                continue
            status, version = state[approval_id]
            self.assertIn((status, version), {("pending", 1), ("approved", 2)})
            if code == "OK":
                self.assertEqual(status, "approved")
        events = subprocess.run(["psql", self.dsn, "-Atc",
                                 "SELECT count(*) FROM approvald.events WHERE type = 'approved'"],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(int(events), sum(1 for s, _ in state.values() if s == "approved"))


if __name__ == "__main__":
    harness.run_tests()
