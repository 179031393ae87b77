#!/usr/bin/python3
"""The Python client package (client/python) against the real approvald.

Generates the stubs with client/python/generate.sh into a temporary directory, starts approvald
(with --migrate) on a fresh database of the PostgreSQL that tests/run started, runs
client/python/example.py and checks its exit code and output, then uses approvald_client
in-process for the calls that the example doesn't make.

usage: python_client_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
CLIENT_DIR = os.path.join(ROOT, "client", "python")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402


class PythonClientTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("pyclient", APPROVALCTL, {"agent": "requester", "alice": "approver"})
        cls.gen = harness.use_python_client(ROOT, cls.tmp)  # the package under test
        daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, None, cls.tmp,
                                   args=("--shutdown-grace=5s",))
        cls.addClassCleanup(daemon.stop)
        cls.target = daemon.target

    def example(self, requester, approver):
        env = dict(os.environ, APPROVALD_PY_GEN=self.gen)
        return subprocess.run(["/usr/bin/python3", os.path.join(CLIENT_DIR, "example.py"),
                               self.target, requester, approver],
                              capture_output=True, text=True, env=env, timeout=60)

    def test_1_example(self):
        run = self.example(self.tokens["agent"], self.tokens["alice"])
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        m = re.search(r"^created:\s+(\S+) PENDING v1 by agent$", run.stdout, re.M)
        self.assertIsNotNone(m, run.stdout)
        approval_id = m.group(1)
        self.assertRegex(run.stdout, r"(?m)^approved:\s+%s APPROVED v2 by alice$" % approval_id)
        self.assertRegex(run.stdout,
                         r"(?m)^again:\s+FAILED_PRECONDITION ALREADY_PROCESSED \(domain approvald, "
                         r"status APPROVAL_STATUS_APPROVED, version 2\)$")
        # The server agrees: approved once, by alice.
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["alice"])
        got = subprocess.run([APPROVALCTL, "--addr", self.target, "get", approval_id],
                             capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertRegex(got.stdout, r"status:\s+APPROVED")
        self.assertRegex(got.stdout, r"decided_by:\s+alice")

    def test_2_example_fails_with_exit_1(self):
        # Self-approval (the approver's token is the requester's) is refused: exit 1, not 0.
        run = self.example(self.tokens["agent"], self.tokens["agent"])
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("PERMISSION_DENIED SELF_APPROVAL", run.stderr)
        run = self.example("not-a-token", self.tokens["alice"])
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("UNAUTHENTICATED", run.stderr)
        usage = subprocess.run(["/usr/bin/python3", os.path.join(CLIENT_DIR, "example.py"),
                                self.target], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, APPROVALD_PY_GEN=self.gen))
        self.assertEqual(usage.returncode, 2, usage.stderr)
        self.assertIn("usage: example.py TARGET REQUESTER_TOKEN APPROVER_TOKEN", usage.stderr)

    def test_3_package_calls(self):
        import grpc
        from approvald_client import ApprovalClient, error_info, pb, status_details
        with ApprovalClient(self.target, self.tokens["agent"]) as agent, \
                ApprovalClient(self.target, self.tokens["alice"], timeout=5) as alice:
            types = alice.list_action_types()
            self.assertEqual([t.name for t in types], ["noop"])

            a = agent.create("noop", {"n": 1}, summary="to reject", ttl=600)
            b = agent.create("noop", summary="to cancel", idempotency_key="k-" + uuid.uuid4().hex)
            self.assertEqual(a.status, pb.APPROVAL_STATUS_PENDING)
            self.assertEqual(alice.get(a.id).summary, "to reject")
            listed = alice.list(statuses=["pending"], action_type="noop", page_size=500)
            self.assertTrue({a.id, b.id} <= {x.id for x in listed.approvals})

            rejected = alice.reject(a.id, "not needed", expected_version=1)
            self.assertEqual(rejected.status, pb.APPROVAL_STATUS_REJECTED)
            self.assertEqual(rejected.decision_reason, "not needed")
            with self.assertRaises(grpc.RpcError) as err:
                alice.cancel(b.id)
            self.assertEqual(err.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            cancelled = agent.cancel(b.id, reason="changed plans")
            self.assertEqual(cancelled.status, pb.APPROVAL_STATUS_CANCELLED)

            with self.assertRaises(grpc.RpcError) as err:
                alice.approve(a.id, expected_version=1)
            self.assertEqual(err.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            info = error_info(err.exception)
            self.assertEqual((info.reason, info.domain), ("ALREADY_PROCESSED", "approvald"))
            self.assertEqual(info.metadata["status"], "APPROVAL_STATUS_REJECTED")
            with self.assertRaises(grpc.RpcError) as err:
                agent.create("noop", ttl=10 ** 9)
            self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIsNotNone(status_details(err.exception))
            with self.assertRaises(grpc.RpcError) as err:
                alice.get(str(uuid.uuid4()))
            self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertIsNone(error_info(err.exception))
            with ApprovalClient(self.target, "wrong") as stranger:
                with self.assertRaises(grpc.RpcError) as err:
                    stranger.list()
                self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
                self.assertIsNone(error_info(err.exception))

            # after_event_id 1 replays the whole log, then stays live (until the deadline).
            events = []
            stream = alice.watch(after_event_id=1, action_type="noop", timeout=30)

            def read():
                try:
                    for event in stream:
                        if event.approval.id in (a.id, b.id):
                            events.append((event.approval.id, pb.EventType.Name(event.type)))
                except grpc.RpcError as err:
                    events.append(err.code())
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            deadline = time.time() + 10
            while len(events) < 4 and time.time() < deadline:
                time.sleep(0.05)
            stream.cancel()
            reader.join(timeout=10)
            self.assertEqual(events[:4], [(a.id, "EVENT_TYPE_CREATED"),
                                          (b.id, "EVENT_TYPE_CREATED"),
                                          (a.id, "EVENT_TYPE_REJECTED"),
                                          (b.id, "EVENT_TYPE_CANCELLED")])
            self.assertEqual(events[4:], [grpc.StatusCode.CANCELLED])

    def test_4_deadline_on_every_call(self):
        import grpc
        from approvald_client import ApprovalClient
        # A socket that accepts connections but never speaks HTTP/2: without a deadline the
        # call would wait for ever.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        try:
            target = "127.0.0.1:%d" % silent.getsockname()[1]
            with ApprovalClient(target, self.tokens["alice"], timeout=0.5) as client:
                for call in (client.list_action_types, lambda: client.get(str(uuid.uuid4())),
                             lambda: client.approve(str(uuid.uuid4()))):
                    start = time.time()
                    with self.assertRaises(grpc.RpcError) as err:
                        call()
                    self.assertLess(time.time() - start, 5)
                    self.assertEqual(err.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
                # A watch has no deadline unless given one (it may wait hours for its event).
                with self.assertRaises(grpc.RpcError) as err:
                    list(client.watch(timeout=0.5))
                self.assertEqual(err.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            silent.close()


if __name__ == "__main__":
    harness.run_tests()
