#!/usr/bin/python3
"""Waiting for one approval, as an agent, a shell script or a CI job would.

`approvalctl wait ID` in another process while a reviewer decides: exit 0 when approved, 1 when
rejected, cancelled or expired (printing the final state), 2 on --timeout, 3 for an unknown id;
the Python client's wait() the same; and a Python watch() that stays open 60 s without events
(no deadline, keepalive pings) and then delivers one.

usage: wait_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import os
import subprocess
import sys
import threading
import time
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402


class WaitTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("wait", APPROVALCTL, {"agent": "requester", "alice": "approver"})
        harness.use_python_client(ROOT, cls.tmp)
        daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, None, cls.tmp,
                                   args=("--expiry-interval=200ms",))
        cls.addClassCleanup(daemon.stop)
        cls.target = daemon.target

    def client(self, who, **kw):
        from approvald_client import ApprovalClient
        return ApprovalClient(self.target, self.tokens[who], **kw)

    def start_wait(self, approval_id, *extra):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["agent"])
        return subprocess.Popen([APPROVALCTL, "--addr", self.target, "wait", approval_id, *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)

    def test_1_approvalctl_wait_exit_codes(self):
        with self.client("agent") as agent, self.client("alice") as alice:
            latencies = []
            for decide, code, status in (
                    (lambda i: alice.approve(i), 0, "APPROVED"),
                    (lambda i: alice.reject(i, "no"), 1, "REJECTED"),
                    (lambda i: agent.cancel(i), 1, "CANCELLED")):
                a = agent.create("noop", summary="gate")
                waiter = self.start_wait(a.id)
                time.sleep(1)  # the waiter is watching by now (and if not, it still sees it)
                self.assertIsNone(waiter.poll(), "approvalctl wait exited before the decision")
                decide(a.id)
                decided = time.monotonic()
                out, err = waiter.communicate(timeout=30)
                latencies.append(time.monotonic() - decided)
                self.assertEqual(waiter.returncode, code, out + err)
                self.assertRegex(out, r"status:\s+%s" % status)
            # The decision reaches the waiter at once (the event hub reads the log when poked).
            print("approvalctl wait: exit after the decision in %s ms" %
                  ", ".join("%.0f" % (1000 * t) for t in latencies))
            self.assertLess(max(latencies), 5)

            # Already decided: answered at once. Expired: exit 1 too.
            done = agent.create("noop")
            alice.approve(done.id)
            waiter = self.start_wait(done.id)
            waiter.communicate(timeout=30)
            self.assertEqual(waiter.returncode, 0)
            short = agent.create("noop", ttl=1)
            waiter = self.start_wait(short.id)
            out, err = waiter.communicate(timeout=30)
            self.assertEqual(waiter.returncode, 1, out + err)
            self.assertRegex(out, r"status:\s+EXPIRED")

            # Still pending after --timeout: exit 2. An unknown id: 3.
            pending = agent.create("noop")
            waiter = self.start_wait(pending.id, "--timeout", "1s")
            out, err = waiter.communicate(timeout=30)
            self.assertEqual(waiter.returncode, 2, out + err)
            self.assertIn("still pending", err)
            waiter = self.start_wait(str(uuid.uuid4()))
            out, err = waiter.communicate(timeout=30)
            self.assertEqual(waiter.returncode, 3, out + err)
            self.assertIn("NOT_FOUND", err)

    def test_2_python_wait(self):
        from approvald_client import pb
        with self.client("agent") as agent, self.client("alice") as alice:
            for decide, status in ((lambda i: alice.approve(i), pb.APPROVAL_STATUS_APPROVED),
                                   (lambda i: alice.reject(i, "no"), pb.APPROVAL_STATUS_REJECTED)):
                a = agent.create("noop")
                got = []
                waiter = threading.Thread(target=lambda: got.append(agent.wait(a.id)))
                waiter.start()
                time.sleep(0.5)
                decide(a.id)
                waiter.join(timeout=30)
                self.assertEqual([x.status for x in got], [status])
            pending = agent.create("noop")
            with self.assertRaises(TimeoutError):
                agent.wait(pending.id, timeout=1)
            self.assertEqual(agent.wait(a.id).status, pb.APPROVAL_STATUS_REJECTED)

    def test_3_an_idle_watch_stays_open(self):
        with self.client("agent") as agent, self.client("alice") as watcher:
            stream = watcher.watch(action_type="noop")
            events, reader = harness.read_in_background(stream)
            time.sleep(61)  # a quiet minute: keepalive, no deadline
            # Still open (an event of an earlier test made deliverable late may have come: an
            # older transaction elsewhere in the cluster can hold events back).
            self.assertEqual([e for e in events if not hasattr(e, "event_id")], [])
            a = agent.create("noop", summary="after a quiet minute")
            harness.wait_until(lambda: any(getattr(e, "approval", None) is not None and
                                           e.approval.id == a.id for e in events),
                               10, "the event after a quiet minute")
            stream.cancel()
            reader.join(timeout=10)


if __name__ == "__main__":
    harness.run_tests()
