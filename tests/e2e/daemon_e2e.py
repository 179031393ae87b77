#!/usr/bin/python3
"""End-to-end test of the shipped binaries, as a new user would meet them.

Starts the real `approvald` (with --migrate) on a fresh database of the PostgreSQL that
tests/run started, then talks to it from Python stubs generated from our .proto (a polyglot
client), from `approvalctl`, and through reflection and the health service (what grpcurl uses).
Finally sends SIGTERM and expects a clean exit 0.

usage: daemon_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
DSN = os.environ.get("APPROVALD_TEST_DSN", "")


def generate_stubs(out):
    """protoc --python_out/--grpc_python_out into `out`, importable as plain modules."""
    base = ["protoc", "--python_out=" + out, "--grpc_python_out=" + out,
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"]
    subprocess.run(base + ["-I", os.path.join(ROOT, "proto"), "approvals/v1/approvals.proto",
                           "google/rpc/status.proto", "google/rpc/error_details.proto"], check=True)
    e2e = os.path.join(ROOT, "tests", "e2e", "protos")
    # Generated from their own folder so that no Python package named `grpc` shadows grpcio.
    subprocess.run(base + ["-I", e2e, "health.proto", "reflection.proto"], check=True)
    sys.path.insert(0, out)


def psql(sql, dbname="postgres"):
    subprocess.run(["psql", DSN + " dbname=" + dbname, "-v", "ON_ERROR_STOP=1", "-qc", sql],
                   check=True, capture_output=True)


def new_token(principal, roles):
    out = subprocess.run([APPROVALCTL, "token", "new", "--principal", principal, "--roles", roles],
                         check=True, capture_output=True, text=True).stdout
    token = re.search(r"^token: (\S+)$", out, re.M).group(1)
    line = re.search(r"^tokens-file line: (.+)$", out, re.M).group(1)
    return token, line


CONFIG = """
action_types:
  - name: noop
    handler: noop
  - name: ticket.close
    description: Close a support ticket
    handler: sql
    parameters:
      - {name: ticket_id, type: integer, required: true}
    approver_roles: [approver]
    sql:
      - statement: UPDATE tickets SET closed_by = :decided_by WHERE id = :ticket_id AND closed_by IS NULL
        expect_rows: {exactly: 1}
"""

BROKEN_CONFIG = "action_types:\n  - name: noop\n    handler: teleport\n"

RELOADED_CONFIG = CONFIG + """
  - name: ticket.reopen
    handler: noop
"""


class Daemon:
    def __init__(self, dsn, tokens_file, log_path, extra=()):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [APPROVALD, "--dsn", dsn, "--tokens", tokens_file, "--listen", "127.0.0.1:0",
             "--migrate", "--shutdown-grace=5s", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"\(port (\d+)\)", open(log_path).read())
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.05)

    def output(self):
        return open(self.log_path).read()


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not DSN:
            raise RuntimeError("APPROVALD_TEST_DSN is not set: run tests/run")
        cls.tmp = tempfile.mkdtemp(prefix="approvald-e2e-")
        generate_stubs(cls.tmp)
        cls.dbname = "approvald_e2e_" + uuid.uuid4().hex[:12]
        psql("CREATE DATABASE " + cls.dbname)
        cls.dsn = DSN + " dbname=" + cls.dbname
        cls.tokens = {}
        lines = []
        for name, roles in [("agent", "requester"), ("alice", "approver")]:
            token, line = new_token(name, roles)
            cls.tokens[name] = token
            lines.append(line)
        cls.tokens_file = os.path.join(cls.tmp, "tokens")
        with open(cls.tokens_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        psql("CREATE TABLE tickets (id bigint PRIMARY KEY, closed_by text);"
             "INSERT INTO tickets VALUES (1, NULL)", cls.dbname)
        cls.config_file = os.path.join(cls.tmp, "approvald.yaml")
        with open(cls.config_file, "w") as f:
            f.write(CONFIG)
        cls.daemon = Daemon(cls.dsn, cls.tokens_file, os.path.join(cls.tmp, "approvald.log"),
                            extra=("--config", cls.config_file, "--metrics-addr",
                                   "127.0.0.1:0", "--health-listen", "127.0.0.1:0"))
        deadline = time.time() + 10
        while time.time() < deadline and "(health port" not in cls.daemon.output():
            time.sleep(0.05)
        m = re.search(r"\(health port (\d+)\)", cls.daemon.output())
        cls.health_port = int(m.group(1)) if m else None
        m = re.search(r"\(metrics port (\d+)\)", cls.daemon.output())
        cls.metrics_port = int(m.group(1)) if m else None
        if cls.daemon.port is None:
            raise RuntimeError("approvald did not start:\n" + cls.daemon.output())
        import grpc
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.daemon.port)
        grpc.channel_ready_future(cls.channel).result(timeout=10)

    @classmethod
    def tearDownClass(cls):
        if cls.daemon.proc.poll() is None:
            cls.daemon.proc.kill()
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.dbname)

    def md(self, who):
        return (("authorization", "Bearer " + self.tokens[who]),)

    def stub(self):
        from approvals.v1 import approvals_pb2_grpc
        return approvals_pb2_grpc.ApprovalServiceStub(self.channel)

    def ctl(self, who, *args):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens[who])
        return subprocess.run([APPROVALCTL, "--addr", "127.0.0.1:%d" % self.daemon.port, *args],
                              capture_output=True, text=True, env=env, timeout=30)

    def test_1_health_and_reflection(self):
        import health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "approvals.v1.ApprovalService"):
            resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)
        # The health-only listener (--health-listen) answers health and nothing else.
        import grpc
        from approvals.v1 import approvals_pb2 as pb, approvals_pb2_grpc
        self.assertIsNotNone(self.health_port, self.daemon.output())
        with grpc.insecure_channel("127.0.0.1:%d" % self.health_port) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="approvals.v1.ApprovalService"), timeout=5)
            self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)
            with self.assertRaises(grpc.RpcError) as err:
                approvals_pb2_grpc.ApprovalServiceStub(ch).ListActionTypes(
                    pb.ListActionTypesRequest(), metadata=self.md("alice"), timeout=5)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        refl = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        reqs = [reflection_pb2.ServerReflectionRequest(list_services="")]
        names = [s.name for r in refl.ServerReflectionInfo(iter(reqs), timeout=5)
                 for s in r.list_services_response.service]
        self.assertIn("approvals.v1.ApprovalService", names)
        self.assertIn("grpc.health.v1.Health", names)
        # grpcurl describes messages from the served descriptors, dependencies included.
        reqs = [reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="approvals.v1.ApprovalService")]
        files = [r.file_descriptor_response.file_descriptor_proto
                 for r in refl.ServerReflectionInfo(iter(reqs), timeout=5)]
        self.assertTrue(files and files[0])

    def test_2_python_client_and_error_details(self):
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        from google.rpc import status_pb2, error_details_pb2
        stub = self.stub()
        req = pb.CreateApprovalRequest(action_type="noop", summary="refund order 42, 30 EUR")
        req.action_data.update({"order_id": 42, "amount_eur": 30, "lines": [1, "two", True]})
        req.ttl.FromSeconds(3600)
        created = stub.CreateApproval(req, metadata=self.md("agent"), timeout=10)
        self.assertEqual(created.status, pb.APPROVAL_STATUS_PENDING)
        self.assertEqual(created.requested_by, "agent")
        self.assertEqual(list(created.action_data["lines"]), [1, "two", True])
        approved = stub.Approve(pb.ApproveRequest(id=created.id, comment="ok"),
                                metadata=self.md("alice"), timeout=10)
        self.assertEqual(approved.status, pb.APPROVAL_STATUS_APPROVED)
        self.assertEqual(approved.decision_reason, "ok")
        self.assertTrue(approved.execution_result["ok"])
        with self.assertRaises(grpc.RpcError) as err:
            stub.Approve(pb.ApproveRequest(id=created.id), metadata=self.md("alice"), timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        details = dict(err.exception.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(details)
        info = error_details_pb2.ErrorInfo()
        self.assertTrue(status.details[0].Unpack(info))
        self.assertEqual((info.reason, info.domain), ("ALREADY_PROCESSED", "approvald"))
        self.assertEqual(info.metadata["status"], "APPROVAL_STATUS_APPROVED")
        with self.assertRaises(grpc.RpcError) as err:
            stub.GetApproval(pb.GetApprovalRequest(id=created.id), timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_3_approvalctl(self):
        out = self.ctl("agent", "create", "--type", "noop", "--summary", "unlock account 7",
                       "--data", '{"account_id": 7}', "--ttl", "1h", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        created = json.loads(out.stdout)
        self.assertEqual(created["status"], "APPROVAL_STATUS_PENDING")
        listed = self.ctl("alice", "list", "--status", "pending")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(created["id"], listed.stdout)
        own = self.ctl("agent", "approve", created["id"])
        self.assertEqual(own.returncode, 1)
        self.assertIn("PERMISSION_DENIED SELF_APPROVAL", own.stderr)
        ok = self.ctl("alice", "approve", created["id"], "--comment", "verified by phone")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertRegex(ok.stdout, r"status:\s+APPROVED")
        again = self.ctl("alice", "reject", created["id"], "--reason", "changed my mind")
        self.assertEqual(again.returncode, 1)
        self.assertIn("FAILED_PRECONDITION ALREADY_PROCESSED", again.stderr)
        got = json.loads(self.ctl("alice", "get", created["id"], "--json").stdout)
        self.assertEqual(got["decided_by"], "alice")
        self.assertEqual(got["version"], "2")
        bad = self.ctl("alice", "get", "not-a-uuid")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", bad.stderr)

    def test_4_refuses_unmigrated_schema_and_newer_schema(self):
        other = "approvald_e2e_" + uuid.uuid4().hex[:12]
        psql("CREATE DATABASE " + other)
        try:
            dsn = DSN + " dbname=" + other
            run = subprocess.run([APPROVALD, "--dsn", dsn, "--tokens", self.tokens_file,
                                  "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                                 timeout=30)
            self.assertEqual(run.returncode, 1)
            self.assertIn("approvald migrate", run.stderr)
            mig = subprocess.run([APPROVALD, "migrate", "--dsn", dsn], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(mig.returncode, 0, mig.stderr)
            psql("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')", other)
            run = subprocess.run([APPROVALD, "--dsn", dsn, "--tokens", self.tokens_file,
                                  "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                                 timeout=30)
            self.assertEqual(run.returncode, 1)
            self.assertIn("upgrade approvald", run.stderr)
        finally:
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % other)

    def test_5_config_types_check_config_and_sighup_reload(self):
        from approvals.v1 import approvals_pb2 as pb
        stub = self.stub()
        names = lambda: [t.name for t in stub.ListActionTypes(
            pb.ListActionTypesRequest(), metadata=self.md("alice"), timeout=10).action_types]
        self.assertEqual(names(), ["noop", "ticket.close"])
        req = pb.CreateApprovalRequest(action_type="ticket.close")
        req.action_data.update({"ticket_id": 1})
        created = stub.CreateApproval(req, metadata=self.md("agent"), timeout=10)
        done = stub.Approve(pb.ApproveRequest(id=created.id), metadata=self.md("alice"), timeout=10)
        self.assertEqual(done.status, pb.APPROVAL_STATUS_APPROVED)
        out = subprocess.run(["psql", self.dsn, "-Atc", "SELECT closed_by FROM tickets"],
                             capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(out, "alice")

        check = subprocess.run([APPROVALD, "check-config", self.config_file], capture_output=True,
                               text=True)
        self.assertEqual(check.returncode, 0, check.stderr)
        broken = os.path.join(self.tmp, "broken.yaml")
        with open(broken, "w") as f:
            f.write(BROKEN_CONFIG)
        check = subprocess.run([APPROVALD, "check-config", broken], capture_output=True, text=True)
        self.assertEqual(check.returncode, 1)
        self.assertIn(broken + ":3:14: action_types[0].handler: unknown handler", check.stderr)

        # SIGHUP with a broken file: logged, the old types stay.
        with open(self.config_file, "w") as f:
            f.write(BROKEN_CONFIG)
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.wait_for_log("SIGHUP: keeping the old action types")
        self.assertEqual(names(), ["noop", "ticket.close"])
        # SIGHUP with a valid file: new requests see the new types.
        with open(self.config_file, "w") as f:
            f.write(RELOADED_CONFIG)
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.wait_for_log("SIGHUP: reloaded 3 action types")
        self.assertEqual(names(), ["noop", "ticket.close", "ticket.reopen"])

    def wait_for_log(self, text):
        deadline = time.time() + 10
        while time.time() < deadline:
            if text in self.daemon.output():
                return
            time.sleep(0.05)
        self.fail("approvald never logged %r:\n%s" % (text, self.daemon.output()))

    def test_6_approvalctl_watch(self):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["alice"])
        watch = subprocess.Popen([APPROVALCTL, "--addr", "127.0.0.1:%d" % self.daemon.port,
                                  "watch", "--json", "--count", "2", "--type", "noop"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(0.5)  # let the stream attach: it starts "from now on"
        out = self.ctl("agent", "create", "--type", "noop", "--json")
        created = json.loads(out.stdout)
        self.ctl("alice", "approve", created["id"])
        stdout, stderr = watch.communicate(timeout=20)
        self.assertEqual(watch.returncode, 0, stderr)
        lines = [json.loads(l) for l in stdout.splitlines()]
        self.assertEqual([l["type"] for l in lines], ["EVENT_TYPE_CREATED", "EVENT_TYPE_APPROVED"])
        self.assertEqual(lines[1]["approval"]["status"], "APPROVAL_STATUS_APPROVED")
        # Resuming after the first event prints the second again, and only it.
        again = self.ctl("alice", "watch", "--after", lines[0]["event_id"], "--count", "1",
                         "--type", "noop", "--json")
        self.assertEqual(json.loads(again.stdout)["event_id"], lines[1]["event_id"])
        type(self).watch_after = lines[1]["event_id"]

    def test_7_metrics_and_rpc_logs(self):
        import urllib.request
        self.assertIsNotNone(self.metrics_port, self.daemon.output())
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port

        def scrape():
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            values = {}
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, value = line.rsplit(" ", 1)
                    values[name] = float(value)
            return values

        before = scrape()
        key = 'approvald_rpcs_total{method="Approve",code="OK"}'
        out = self.ctl("agent", "create", "--type", "noop", "--json")
        created = json.loads(out.stdout)
        self.assertEqual(self.ctl("alice", "approve", created["id"]).returncode, 0)
        after = scrape()
        self.assertEqual(after.get(key, 0), before.get(key, 0) + 1)
        created_key = 'approvald_approvals_created_total{action_type="noop"}'
        self.assertEqual(after[created_key], before.get(created_key, 0) + 1)
        self.assertGreaterEqual(
            after['approvald_approvals_decided_total{action_type="noop",status="approved"}'], 1)
        self.assertGreater(after['approvald_rpc_duration_seconds_count{method="Approve"}'], 0)
        self.assertEqual(after["approvald_database_up"], 1)
        self.assertGreaterEqual(after["approvald_db_pool_open"], 1)
        self.assertIn("approvald_executor_queue_depth", after)
        self.assertIn("approvald_watchers", after)
        # One log line per RPC, with its request id; no token in the log.
        log = self.daemon.output()
        self.assertRegex(log, r"rpc method=Approve code=OK .*request_id=[0-9a-f]{16}")
        for token in self.tokens.values():
            self.assertNotIn(token, log)

    def test_9_sigterm_exits_cleanly(self):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["alice"])
        watch = subprocess.Popen([APPROVALCTL, "--addr", "127.0.0.1:%d" % self.daemon.port,
                                  "watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
        time.sleep(0.5)
        proc = self.daemon.proc
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=20), 0, self.daemon.output())
        self.assertIn("approvald stopped", self.daemon.output())
        # The watcher saw its stream end and keeps trying to resume.
        time.sleep(1)
        watch.terminate()
        _, stderr = watch.communicate(timeout=10)
        self.assertIn("resuming after event", stderr)


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (max(result.testsRun - failed, 0), failed))
    sys.exit(1 if failed else 0)
