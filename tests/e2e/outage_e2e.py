#!/usr/bin/python3
"""PostgreSQL outage: approvald answers UNAVAILABLE within the deadline, reports NOT_SERVING,
and recovers by itself when the database returns.

Runs its own PostgreSQL cluster (it must be stopped and started), on a free port.
usage: outage_e2e.py APPROVALD APPROVALCTL REPO_ROOT
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
PG_BIN = harness.PG_BIN


as_owner = harness.as_pg_owner
free_port = harness.free_port


class OutageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="approvald-outage-")
        os.chmod(cls.tmp, 0o755)
        cls.data = os.path.join(cls.tmp, "pg")
        os.mkdir(cls.data, 0o700)
        if os.getuid() == 0:
            shutil.chown(cls.data, "postgres", "postgres")
        subprocess.run(as_owner([PG_BIN + "/initdb", "-D", cls.data, "-U", "postgres",
                                 "--auth=trust"]), check=True, capture_output=True)
        cls.port = free_port()
        cls.pg_start()
        cls.dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=2" % cls.port
        token = subprocess.run([APPROVALCTL, "token", "new", "--principal", "alice", "--roles",
                                "approver"], check=True, capture_output=True, text=True).stdout
        cls.token = re.search(r"^token: (\S+)$", token, re.M).group(1)
        agent = subprocess.run([APPROVALCTL, "token", "new", "--principal", "agent", "--roles",
                                "requester"], check=True, capture_output=True, text=True).stdout
        cls.agent = re.search(r"^token: (\S+)$", agent, re.M).group(1)
        cls.tokens_file = os.path.join(cls.tmp, "tokens")
        with open(cls.tokens_file, "w") as f:
            for out in (token, agent):
                f.write(re.search(r"^tokens-file line: (.+)$", out, re.M).group(1) + "\n")
        cls.log_path = os.path.join(cls.tmp, "approvald.log")
        cls.log = open(cls.log_path, "w")
        cls.proc = subprocess.Popen([APPROVALD, "--dsn", cls.dsn, "--tokens", cls.tokens_file,
                                     "--listen", "127.0.0.1:0", "--migrate"],
                                    stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        cls.addr = None
        while time.time() < deadline and cls.addr is None:
            m = re.search(r"\(port (\d+)\)", open(cls.log_path).read())
            if m:
                cls.addr = "127.0.0.1:" + m.group(1)
            time.sleep(0.05)
        if cls.addr is None:
            raise RuntimeError("approvald did not start:\n" + open(cls.log_path).read())

    @classmethod
    def pg_start(cls):
        sock = os.path.join(cls.tmp, "sock")
        os.makedirs(sock, exist_ok=True)
        if os.getuid() == 0:
            shutil.chown(sock, "postgres", "postgres")
        subprocess.run(as_owner([PG_BIN + "/pg_ctl", "-D", cls.data, "-l",
                                 os.path.join(cls.data, "log"), "-w", "-o",
                                 "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off"
                                 % (cls.port, sock), "start"]), check=True, capture_output=True)

    @classmethod
    def pg_stop(cls):
        subprocess.run(as_owner([PG_BIN + "/pg_ctl", "-D", cls.data, "-m", "immediate", "-w",
                                 "stop"]), capture_output=True)

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(timeout=20)
        cls.pg_stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ctl(self, *args, timeout="2s"):
        env = dict(os.environ, APPROVALD_TOKEN=self.token)
        start = time.time()
        out = subprocess.run([APPROVALCTL, "--addr", self.addr, "--timeout", timeout, *args],
                             capture_output=True, text=True, env=env, timeout=30)
        return out, time.time() - start

    def health(self):
        import grpc
        sys.path.insert(0, self.gen)
        import health_pb2, health_pb2_grpc
        with grpc.insecure_channel(self.addr) as channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def wait_health(self, want, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.health() == want:
                return
            time.sleep(0.1)
        self.fail("health never became %s:\n%s" % (want, open(self.log_path).read()))

    def load(self, stop, results):
        """Create + approve in a loop, every call with a 2 s deadline; records (approval id,
        approve outcome, seconds) and the slowest call."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb, approvals_pb2_grpc
        with grpc.insecure_channel(self.addr) as ch:
            stub = approvals_pb2_grpc.ApprovalServiceStub(ch)
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
        for protos, files in ((ROOT + "/tests/e2e/protos", ["health.proto"]),
                              (ROOT + "/proto", ["approvals/v1/approvals.proto"])):
            subprocess.run(["protoc", "--python_out=" + self.gen, "--grpc_python_out=" + self.gen,
                            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin", "-I",
                            protos, *files], check=True)
        sys.path.insert(0, self.gen)
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
        self.assertEqual(self.proc.poll(), None)  # never restarted

        # Under load through the outage: every call answered within its deadline, with a
        # retryable code when it failed; afterwards every approval is whole.
        codes = {code for _, code, _ in results}
        self.assertTrue(codes <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes)
        self.assertTrue(codes & {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes)
        self.assertIn("OK", codes)
        self.assertLess(max(took for _, _, took in results), 3.0)
        rows = subprocess.run(["psql", self.dsn, "-Atc",
                               "SELECT id, status, version FROM ai_approvals"],
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
                                 "SELECT count(*) FROM approval_events WHERE type = 'approved'"],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(int(events), sum(1 for s, _ in state.values() if s == "approved"))


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (max(result.testsRun - failed, 0), failed))
    sys.exit(1 if failed else 0)
