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
import time
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
DSN = os.environ.get("APPROVALD_TEST_DSN", "")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402


def psql(sql, dbname="postgres"):
    harness.psql(sql, DSN + " dbname=" + dbname)


def new_token(principal, roles):
    return harness.new_token(APPROVALCTL, principal, roles)


def new_request_id():
    return "e2e-" + uuid.uuid4().hex


# One line per RPC: `rpc method=M code=C reason=R ms=F principal=P approval_id=A request_id=I`,
# then for WatchApprovals `after_event_id=N sent=N`, then `message=...` if the call failed.
RPC_LINE = re.compile(
    r"\] rpc method=(?P<method>\S+) code=(?P<code>\S+) reason=(?P<reason>\S+) "
    r"ms=(?P<ms>\d+\.\d+) principal=(?P<principal>\S+) approval_id=(?P<approval_id>\S+) "
    r"request_id=(?P<request_id>\S+)(?: after_event_id=(?P<after_event_id>-?\d+) "
    r"sent=(?P<sent>\d+))?(?: message=(?P<message>.*))?$")


def rpc_lines(log):
    return [m.groupdict() for m in map(RPC_LINE.search, log.splitlines()) if m]


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


class DaemonTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("e2e", APPROVALCTL, {"agent": "requester", "alice": "approver"},
                            stubs_root=ROOT)
        psql("CREATE TABLE tickets (id bigint PRIMARY KEY, closed_by text);"
             "INSERT INTO tickets VALUES (1, NULL)", cls.dbname)
        cls.config_file = os.path.join(cls.tmp, "approvald.yaml")
        with open(cls.config_file, "w") as f:
            f.write(CONFIG)
        cls.daemon = cls.start_daemon("approvald", config_file=cls.config_file,
                                      args=("--metrics-addr", "127.0.0.1:0", "--health-listen",
                                            "127.0.0.1:0", "--event-poll-interval=20ms"))
        cls.addClassCleanup(cls.daemon.kill9)
        deadline = time.time() + 10
        while time.time() < deadline and "(health port" not in cls.daemon.output():
            time.sleep(0.05)
        m = re.search(r"\(health port (\d+)\)", cls.daemon.output())
        cls.health_port = int(m.group(1)) if m else None
        m = re.search(r"\(metrics port (\d+)\)", cls.daemon.output())
        cls.metrics_port = int(m.group(1)) if m else None
        cls.channel = harness.ready_channel(cls.daemon.target)

    @classmethod
    def start_daemon(cls, name, dsn=None, config_file=None, args=()):
        """Another approvald (name: of its log files) on the test database, or on dsn."""
        return harness.Approvald(APPROVALD, dsn or cls.dsn, cls.tokens_file, config_file, cls.tmp,
                                 name=name, args=("--shutdown-grace=5s", *args))

    def assert_sigterm_exits_0(self, daemon):
        daemon.proc.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.proc.wait(timeout=20), 0, daemon.output())

    def stub(self):
        return harness.approval_stub(self.channel)

    def ctl(self, who, *args):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens[who])
        return subprocess.run([APPROVALCTL, "--addr", self.daemon.target, *args],
                              capture_output=True, text=True, env=env, timeout=30)

    def test_1_health_and_reflection(self):
        import health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "approvals.v1.ApprovalService", "approvals.v1.ExecutionService"):
            resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)
        # The health-only listener (--health-listen) answers health and nothing else.
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        self.assertIsNotNone(self.health_port, self.daemon.output())
        with grpc.insecure_channel("127.0.0.1:%d" % self.health_port) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="approvals.v1.ApprovalService"), timeout=5)
            self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)
            with self.assertRaises(grpc.RpcError) as err:
                harness.approval_stub(ch).ListActionTypes(
                    pb.ListActionTypesRequest(), metadata=self.md("alice"), timeout=5)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        refl = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        reqs = [reflection_pb2.ServerReflectionRequest(list_services="")]
        names = [s.name for r in refl.ServerReflectionInfo(iter(reqs), timeout=5)
                 for s in r.list_services_response.service]
        self.assertIn("approvals.v1.ApprovalService", names)
        self.assertIn("approvals.v1.ExecutionService", names)
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
        no_reason = self.ctl("alice", "reject", created["id"])
        self.assertEqual(no_reason.returncode, 2)
        self.assertIn("reject needs --reason", no_reason.stderr)
        # --data that is not a JSON object is a usage error, said once and plainly.
        array = self.ctl("agent", "create", "--type", "noop", "--data", "[1, 2]")
        self.assertEqual(array.returncode, 2)
        self.assertRegex(array.stderr, r"--data must be a JSON object: \w")  # no ": :"

    def test_4_refuses_unmigrated_schema_and_newer_schema(self):
        # Out-of-range durations exit with status 1 and name the flag.
        for flag, bad in [("--event-poll-interval", v) for v in ("0s", "11s", "soon")] + \
                         [("--log-flush-interval", v) for v in ("-1ms", "11s", "soon")]:
            run = subprocess.run([APPROVALD, "--dsn", self.dsn, "--tokens", self.tokens_file,
                                  "--listen", "127.0.0.1:0", flag + "=" + bad],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(run.returncode, 1, flag + "=" + bad)
            self.assertRegex(run.stderr, flag[2:].replace("-", "."), flag + "=" + bad)
        # A log level spdlog does not know would silence the daemon: refused instead. Case is
        # not significant.
        run = subprocess.run([APPROVALD, "--dsn", self.dsn, "--tokens", self.tokens_file,
                              "--listen", "127.0.0.1:0", "--log-level=loud"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 2)
        self.assertIn("--log-level must be", run.stderr)
        run = subprocess.run([APPROVALD, "migrate", "--dsn", self.dsn, "--log-level=INFO"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("schema version", run.stderr)
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
            psql("INSERT INTO approvald.schema_migrations (version, name) VALUES (999, 'future')", other)
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

    def wait_for_log(self, text, since=0):
        """Waits for `text` in the log after its first `since` characters."""
        deadline = time.time() + 10
        while time.time() < deadline:
            if text in self.daemon.output()[since:]:
                return
            time.sleep(0.05)
        self.fail("approvald never logged %r:\n%s" % (text, self.daemon.output()))

    def rpc_line(self, request_id):
        """The one log line of the call with this request id (waits for it: a stream logs when
        it ends, after its caller has seen the end)."""
        deadline = time.time() + 10
        while True:
            lines = [l for l in rpc_lines(self.daemon.output()) if l["request_id"] == request_id]
            if lines or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, "one rpc line with request_id=%s expected:\n%s"
                         % (request_id, self.daemon.output()))
        return lines[0]

    def test_6_approvalctl_watch(self):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["alice"])
        watch = subprocess.Popen([APPROVALCTL, "--addr", self.daemon.target,
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
        # The noop approve is one statement: the commit pipeline sent it, and nothing waits now.
        self.assertGreater(after["approvald_db_commit_batches_total"],
                           before.get("approvald_db_commit_batches_total", 0))
        self.assertEqual(after["approvald_db_commit_queue_depth"], 0)
        # A repeated request_id answers the first call's outcome and is not counted again.
        approved_key = 'approvald_approvals_decided_total{action_type="noop",status="approved"}'
        again = json.loads(self.ctl("agent", "create", "--type", "noop", "--json").stdout)
        for _ in range(2):
            self.assertEqual(self.ctl("alice", "approve", again["id"], "--request-id",
                                      "metrics-replay").returncode, 0)
        self.assertEqual(scrape()[approved_key], after[approved_key] + 1)
        # The other final statuses: an action that fails (no ticket 999999: expect_rows) and an
        # approval that the sweeper expires.
        failed_key = 'approvald_approvals_decided_total{action_type="ticket.close",status="failed"}'
        expired_key = 'approvald_approvals_decided_total{action_type="noop",status="expired"}'
        out = self.ctl("agent", "create", "--type", "ticket.close", "--data",
                       '{"ticket_id": 999999}', "--json")
        self.assertNotEqual(self.ctl("alice", "approve", json.loads(out.stdout)["id"]).returncode,
                            0)
        self.assertEqual(self.ctl("agent", "create", "--type", "noop", "--ttl", "1s").returncode,
                         0)
        deadline = time.time() + 15
        while time.time() < deadline and scrape().get(expired_key, 0) < \
                after.get(expired_key, 0) + 1:
            time.sleep(0.2)
        final = scrape()
        self.assertEqual(final.get(failed_key, 0), after.get(failed_key, 0) + 1)
        self.assertEqual(final.get(expired_key, 0), after.get(expired_key, 0) + 1)
        # The ticket.close approve ran its handler on a worker: workers start as calls need
        # them, never more than --pool-size.
        self.assertGreaterEqual(final["approvald_executor_threads"], 1)
        self.assertLessEqual(final["approvald_executor_threads"], final["approvald_db_pool_max"])
        self.assertEqual(after["approvald_database_up"], 1)
        self.assertGreaterEqual(after["approvald_db_pool_open"], 1)
        self.assertIn("approvald_executor_queue_depth", after)
        self.assertIn("approvald_watchers", after)
        # One log line per RPC, with its request id; no token in the log.
        self.wait_for_log("rpc method=Approve code=OK ")
        log = self.daemon.output()
        self.assertRegex(log, r"rpc method=Approve code=OK .*request_id=[0-9a-f]{16}")
        for token in self.tokens.values():
            self.assertNotIn(token, log)

    def test_8_log_lines_reach_a_file_in_batches(self):
        """With stderr in a file, a log-flusher thread writes the lines in batches; what waits is
        written when approvald exits. --log-flush-interval=0 writes each line at once (no
        thread)."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb

        def threads(daemon):
            names = []
            for task in os.listdir("/proc/%d/task" % daemon.proc.pid):
                try:
                    with open("/proc/%d/task/%s/comm" % (daemon.proc.pid, task)) as f:
                        names.append(f.read().strip())
                except OSError:
                    pass
            return names

        self.assertIn("log-flusher", threads(self.daemon))
        for interval in ("0", "10s"):
            daemon = self.start_daemon("flush-" + interval,
                                       args=("--log-flush-interval=" + interval,))
            try:
                self.assertEqual("log-flusher" in threads(daemon), interval != "0", interval)
                with grpc.insecure_channel(daemon.target) as ch:
                    with self.assertRaises(grpc.RpcError):
                        harness.approval_stub(ch).CreateApproval(
                            pb.CreateApprovalRequest(action_type="noop"), timeout=10)
            finally:
                self.assert_sigterm_exits_0(daemon)
            # The call's info line (held for up to 10 s with "10s") is in the log at exit.
            log = daemon.output()
            self.assertIn("rpc method=CreateApproval code=UNAUTHENTICATED", log, interval)
            self.assertIn("approvald stopped", log, interval)

    def test_8_nothing_secret_in_the_log(self):
        """A DSN password, tokens and action_data never reach the log: start-up failures, calls,
        failed calls, a lost database connection, a reload and shutdown. action_data is logged
        only with --log-action-data."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        role = "approvald_pw_" + uuid.uuid4().hex[:8]
        password = "Pw" + uuid.uuid4().hex
        marker = "personal-" + uuid.uuid4().hex
        dbname = "approvald_e2e_" + uuid.uuid4().hex[:12]
        # A role of its own with a password, owning its database (with trust authentication the
        # server ignores the password, but approvald still holds it).
        psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, password))
        try:
            psql("CREATE DATABASE %s OWNER %s" % (dbname, role))
            creds = " user=%s password=%s" % (role, password)
            dsn = DSN + " dbname=" + dbname + creds

            # Start-up failures: a missing database, nothing listening (also as a URL), a bad
            # option; through --migrate and without it.
            down = harness.free_port()
            for bad in (DSN + " dbname=" + dbname + "_missing" + creds,
                        "host=127.0.0.1 port=%d connect_timeout=2 dbname=%s%s" % (down, dbname,
                                                                                  creds),
                        "postgresql://%s:%s@127.0.0.1:%d/%s?connect_timeout=2" % (
                            role, password, down, dbname),
                        dsn + " no_such_option=1"):
                for migrate in ((), ("--migrate",)):
                    run = subprocess.run([APPROVALD, "--dsn", bad, "--tokens", self.tokens_file,
                                          "--listen", "127.0.0.1:0", *migrate],
                                         capture_output=True, text=True, timeout=30)
                    self.assertEqual(run.returncode, 1, (bad, run.stderr))
                    self.assertTrue(run.stderr.strip(), bad)  # it said why
                    self.assertNotIn(password, run.stdout + run.stderr)
                run = subprocess.run([APPROVALD, "migrate", "--dsn", bad], capture_output=True,
                                     text=True, timeout=30)
                self.assertEqual(run.returncode, 1, (bad, run.stderr))
                self.assertNotIn(password, run.stdout + run.stderr)

            daemon = self.start_daemon("secrets-" + role, dsn)
            try:
                with grpc.insecure_channel(daemon.target) as ch:
                    stub = harness.approval_stub(ch)

                    def create(who, ttl=3600):
                        req = pb.CreateApprovalRequest(action_type="noop", summary="update profile")
                        req.action_data.update({"email": marker, "nested": {"note": marker},
                                                "list": [marker]})
                        req.ttl.FromSeconds(ttl)
                        return stub.CreateApproval(req, metadata=self.md(who) if who else (),
                                                   timeout=10)

                    created = create("agent")
                    stub.GetApproval(pb.GetApprovalRequest(id=created.id),
                                     metadata=self.md("alice"), timeout=10)
                    stub.ListApprovals(pb.ListApprovalsRequest(), metadata=self.md("alice"),
                                       timeout=10)
                    stub.Approve(pb.ApproveRequest(id=created.id), metadata=self.md("alice"),
                                 timeout=10)
                    failing = [
                        lambda: stub.Approve(pb.ApproveRequest(id=created.id),
                                             metadata=self.md("alice"), timeout=10),
                        lambda: stub.Approve(pb.ApproveRequest(id=create("agent").id),
                                             metadata=self.md("agent"), timeout=10),
                        lambda: create("agent", ttl=10 ** 9),
                        lambda: create(None),
                    ]
                    for call in failing:
                        with self.assertRaises(grpc.RpcError):
                            call()
                    # The database drops every connection of approvald: the listener logs the
                    # error and reconnects; the calls recover.
                    psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = '%s'" % role)
                    deadline = time.time() + 15
                    while "event listener reconnected" not in daemon.output():
                        if time.time() > deadline:
                            self.fail("the listener never reconnected:\n" + daemon.output())
                        time.sleep(0.1)
                    while True:
                        try:
                            create("agent")
                            break
                        except grpc.RpcError as e:
                            self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
                            if time.time() > deadline:
                                self.fail("calls never recovered:\n" + daemon.output())
                            time.sleep(0.1)
                daemon.proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 10
                while "SIGHUP: reloaded" not in daemon.output():
                    if time.time() > deadline:
                        self.fail("SIGHUP was not logged:\n" + daemon.output())
                    time.sleep(0.05)
            finally:
                self.assert_sigterm_exits_0(daemon)
            log = daemon.output()
            # The paths above were taken (so that the checks below mean something) ...
            self.assertIn("approvald listening on", log)
            self.assertIn("rpc method=CreateApproval code=OK", log)
            self.assertIn("rpc method=Approve code=FAILED_PRECONDITION", log)
            self.assertIn("rpc method=CreateApproval code=UNAUTHENTICATED", log)
            self.assertIn("event listener: ", log)
            self.assertIn("approvald stopped", log)
            # ... and logged no secret: no password, no DSN, no token, no action_data.
            self.assertNotIn(password, log)
            self.assertNotIn("password=", log)
            for token in self.tokens.values():
                self.assertNotIn(token, log)
            self.assertNotIn(marker, log)

            # With --log-action-data, action_data is logged (and still no password).
            daemon = self.start_daemon("secrets-data-" + role, dsn, args=("--log-action-data",))
            try:
                with grpc.insecure_channel(daemon.target) as ch:
                    stub = harness.approval_stub(ch)
                    created = create("agent")
            finally:
                self.assert_sigterm_exits_0(daemon)
            log = daemon.output()
            self.assertRegex(log, r"approval %s created: action_type=noop action_data=.*%s"
                             % (created.id, marker))
            self.assertNotIn(password, log)
        finally:
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % dbname)
            psql("DROP ROLE IF EXISTS %s" % role)

    def test_8_request_ids_and_rpc_log_lines(self):
        """x-request-id: the caller's is reused, else one is generated; either way it is sent
        back in the initial metadata and logged on the call's line, with the approval it
        concerned."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        stub = self.stub()

        def md(who, request_id=None):
            own = (("x-request-id", request_id),) if request_id is not None else ()
            return (self.md(who) if who else ()) + own

        def sent_back(call):
            return dict(call.initial_metadata()).get("x-request-id")

        def check(line, method, code, principal, approval_id, reason="-"):
            self.assertEqual((line["method"], line["code"], line["reason"], line["principal"],
                              line["approval_id"]),
                             (method, code, reason, principal, approval_id), line)
            self.assertIsNone(line["after_event_id"], line)
            if code == "OK":
                self.assertIsNone(line["message"], line)
            else:
                self.assertTrue(line["message"], line)

        def ok_call(method, request, who, approval_id=None, rid=None):
            """A call that succeeds with the caller's id (a new one unless given): the same id
            comes back, and is on the call's log line, with approval_id (else the answer's)."""
            rid = rid or new_request_id()
            answer, call = getattr(stub, method).with_call(request, metadata=md(who, rid),
                                                          timeout=10)
            self.assertEqual(sent_back(call), rid)
            check(self.rpc_line(rid), method, "OK", who, approval_id or answer.id)
            return answer

        # Each unary method with the caller's id: the same id back, and in the call's log line.
        created = ok_call("CreateApproval", pb.CreateApprovalRequest(action_type="noop"), "agent")
        ok_call("GetApproval", pb.GetApprovalRequest(id=created.id), "alice", created.id)
        approved = ok_call("Approve", pb.ApproveRequest(id=created.id), "alice", created.id)
        self.assertEqual(approved.status, pb.APPROVAL_STATUS_APPROVED)

        rid = new_request_id()
        with self.assertRaises(grpc.RpcError) as err:
            stub.Approve(pb.ApproveRequest(id=created.id), metadata=md("alice", rid), timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(sent_back(err.exception), rid)
        check(self.rpc_line(rid), "Approve", "FAILED_PRECONDITION", "alice", created.id,
              reason="ALREADY_PROCESSED")

        to_reject = stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"),
                                        metadata=self.md("agent"), timeout=10)
        ok_call("Reject", pb.RejectRequest(id=to_reject.id, reason="no"), "alice", to_reject.id)
        to_cancel = stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"),
                                        metadata=self.md("agent"), timeout=10)
        ok_call("CancelApproval", pb.CancelApprovalRequest(id=to_cancel.id), "agent", to_cancel.id)
        ok_call("ListApprovals", pb.ListApprovalsRequest(), "alice", "-")
        ok_call("ListActionTypes", pb.ListActionTypesRequest(), "alice", "-")

        # Unauthenticated: no principal, the id still comes back and is logged.
        rid = new_request_id()
        with self.assertRaises(grpc.RpcError) as err:
            stub.GetApproval(pb.GetApprovalRequest(id=created.id), metadata=md(None, rid),
                             timeout=10)
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(sent_back(err.exception), rid)
        check(self.rpc_line(rid), "GetApproval", "UNAUTHENTICATED", "-", created.id)

        # 128 printable characters are the caller's id.
        rid = "r" * 100 + new_request_id()[:28]
        self.assertEqual(len(rid), 128)
        ok_call("GetApproval", pb.GetApprovalRequest(id=created.id), "alice", created.id, rid)

        # Without one, or with one that is not sane (a space, 129 characters, empty): a fresh
        # 16-hex-digit id, sent back and logged, another one each call.
        generated = []
        for own in (None, "has space", "x" * 129, ""):
            _, call = stub.GetApproval.with_call(pb.GetApprovalRequest(id=created.id),
                                                 metadata=md("alice", own), timeout=10)
            rid = sent_back(call)
            self.assertRegex(rid or "", r"^[0-9a-f]{16}$", own)
            check(self.rpc_line(rid), "GetApproval", "OK", "alice", created.id)
            generated.append(rid)
        self.assertEqual(len(set(generated)), len(generated), generated)
        log = self.daemon.output()
        self.assertNotIn("request_id=has", log)
        self.assertNotIn("x" * 129, log)

    def test_8_request_ids_of_watch_streams(self):
        """WatchApprovals sends the request id back and logs one line when the stream ends: its
        code, how long it lasted, after_event_id and the events it sent."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        stub = self.stub()

        def md(who, request_id):
            return (self.md(who) if who else ()) + (("x-request-id", request_id),)

        def create_noop():
            return stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"),
                                       metadata=self.md("agent"), timeout=10)

        # From now on, until the event of a new approval, then the caller cancels. ("Now" is
        # the event listener's head, which may trail the last commits by a moment: the events
        # of the previous test may come first.)
        rid = new_request_id()
        called = time.time()
        stream = stub.WatchApprovals(pb.WatchApprovalsRequest(action_type="noop"),
                                     metadata=md("alice", rid), timeout=30)
        time.sleep(0.5)  # let the stream attach: it starts "from now on"
        first = create_noop()
        created = time.time()
        received = []
        for event in stream:
            received.append(event)
            if event.approval.id == first.id:
                break
        self.assertEqual(event.type, pb.EVENT_TYPE_CREATED)
        self.assertEqual(dict(stream.initial_metadata()).get("x-request-id"), rid)
        self.assertNotIn("request_id=" + rid, self.daemon.output())  # logged when it ends
        cancelled = time.time()
        stream.cancel()
        line = self.rpc_line(rid)
        logged = time.time()
        self.assertEqual((line["method"], line["code"], line["reason"], line["principal"],
                          line["approval_id"], line["after_event_id"], line["sent"]),
                         ("WatchApprovals", "CANCELLED", "-", "alice", "-", "0",
                          str(len(received))), line)
        # How long the stream lasted: it was open before the approval was created (it got its
        # event live) until after the cancel was sent, and within the client's own view of the
        # call. Containment, not a guess at the scheduler: 1 ms for the log's rounding.
        self.assertGreaterEqual(float(line["ms"]), (cancelled - created) * 1000 - 1, line)
        self.assertLessEqual(float(line["ms"]), (logged - called) * 1000 + 1, line)

        # Resuming after that event: both events of a second approval are replayed.
        second = create_noop()
        stub.Approve(pb.ApproveRequest(id=second.id), metadata=self.md("alice"), timeout=10)
        rid = new_request_id()
        stream = stub.WatchApprovals(
            pb.WatchApprovalsRequest(action_type="noop", after_event_id=event.event_id),
            metadata=md("alice", rid), timeout=30)
        replayed = [next(stream), next(stream)]
        self.assertEqual([(e.type, e.approval.id) for e in replayed],
                         [(pb.EVENT_TYPE_CREATED, second.id), (pb.EVENT_TYPE_APPROVED, second.id)])
        self.assertEqual(dict(stream.initial_metadata()).get("x-request-id"), rid)
        stream.cancel()
        line = self.rpc_line(rid)
        self.assertEqual((line["method"], line["code"], line["principal"], line["after_event_id"],
                          line["sent"]),
                         ("WatchApprovals", "CANCELLED", "alice", str(event.event_id), "2"), line)

        # Refused streams are logged at once, with nothing sent, and also send the id back.
        for who, req, code in [
                ("alice", pb.WatchApprovalsRequest(after_event_id=-1), "INVALID_ARGUMENT"),
                (None, pb.WatchApprovalsRequest(after_event_id=7), "UNAUTHENTICATED")]:
            rid = new_request_id()
            with self.assertRaises(grpc.RpcError) as err:
                list(stub.WatchApprovals(req, metadata=md(who, rid), timeout=10))
            self.assertEqual(err.exception.code().name, code)
            self.assertEqual(dict(err.exception.initial_metadata()).get("x-request-id"), rid)
            line = self.rpc_line(rid)
            self.assertEqual((line["method"], line["code"], line["principal"], line["approval_id"],
                              line["after_event_id"], line["sent"]),
                             ("WatchApprovals", code, who or "-", "-",
                              str(req.after_event_id), "0"), line)
            self.assertTrue(line["message"], line)

    def test_8_sighup_reloads_the_tokens_file(self):
        """SIGHUP: a token added to the tokens file is accepted, a removed one refused (also on a
        connection it used before); a broken file keeps the old tokens."""
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        stub = self.stub()
        carol, carol_line = new_token("carol", "approver")
        with open(self.tokens_file) as f:
            original = f.read()

        def create(token):
            return stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"), timeout=10,
                                       metadata=(("authorization", "Bearer " + token),))

        def refused(token):
            with self.assertRaises(grpc.RpcError) as err:
                create(token)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

        def reload(contents, expect):
            with open(self.tokens_file, "w") as f:
                f.write(contents)
            since = len(self.daemon.output())
            self.daemon.proc.send_signal(signal.SIGHUP)
            self.wait_for_log(expect, since)
            # Logged after the tokens are swapped: the reload is complete.
            self.wait_for_log(" action types", since)

        refused(carol)
        try:
            reload(original + carol_line + "\n", "SIGHUP: reloaded 3 tokens")
            self.assertEqual(create(carol).requested_by, "carol")
            # A broken file: logged, and the tokens stay as they were.
            reload(original + carol_line + "\nnot-a-sha256 mallory\n",
                   "SIGHUP: keeping the old tokens: ")
            self.assertEqual(create(carol).requested_by, "carol")
            self.assertEqual(create(self.tokens["agent"]).requested_by, "agent")
        finally:
            reload(original, "SIGHUP: reloaded 2 tokens")
        # Removed: refused on the connection it used; the others keep working.
        refused(carol)
        self.assertEqual(create(self.tokens["agent"]).requested_by, "agent")
        self.assertNotIn(carol, self.daemon.output())

    def test_9_sigterm_exits_cleanly(self):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["alice"])
        watch = subprocess.Popen([APPROVALCTL, "--addr", self.daemon.target,
                                  "watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
        time.sleep(0.5)
        self.assert_sigterm_exits_0(self.daemon)
        self.assertIn("approvald stopped", self.daemon.output())
        # The watcher saw its stream end and keeps trying to resume.
        time.sleep(1)
        watch.terminate()
        stdout, stderr = watch.communicate(timeout=10)
        self.assertIn("resuming after event", stderr)
        # The stream that shutdown ended was logged, with its code, the events it sent (those
        # the watcher printed) and where to resume.
        ended = [l for l in rpc_lines(self.daemon.output())
                 if l["method"] == "WatchApprovals" and l["code"] == "UNAVAILABLE" and
                 "shutting down" in (l.get("message") or "")]
        self.assertEqual(len(ended), 1, self.daemon.output())
        self.assertEqual((ended[0]["principal"], ended[0]["after_event_id"], ended[0]["sent"]),
                         ("alice", "0", str(len(stdout.splitlines()))), ended[0])
        self.assertIn("approvald is shutting down; resume with after_event_id=",
                      ended[0]["message"])


if __name__ == "__main__":
    harness.run_tests()
