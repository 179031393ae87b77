#!/usr/bin/python3
"""Event webhooks end to end: approvald posts the event log to two subscriptions of its config,
signed per Standard Webhooks, checked by tests/e2e/webhook_receiver.py.

- "audit" (json, every event): 1,000 approvals created and approved while the receiver fails
  the first two attempts of every 50th event and stalls every 400th past the timeout, and
  approvald is killed (-9) and restarted three times mid-delivery: every event reaches the
  receiver, in log order, and only deliveries around a crash repeat (the counts are printed).
- three replicas on one database, the delivering one stopped mid-run: no webhook-id is
  accepted twice.
- "pager" (slack, approved events only): while its receiver answers 503 it is dead-lettered
  (approvalctl webhooks list and the metrics show it); `approvalctl webhooks redeliver pager`
  delivers the event it stopped at.
- the signing secrets appear in no log, no metric and no answer.
- a SIGHUP with a new subscription in the config starts delivering it.

usage: webhooks_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
import webhook_receiver  # noqa: E402

SECRET = "whsec_c2VjcmV0LWZvci10aGUtYXVkaXQtc3Vic2NyaXB0aW9u"
OLD_SECRET = "an-older-secret-still-valid-for-rotation"
PAGER_SECRET = "pager-secret-0123456789abcdef"
PRINCIPALS = {"agent": "requester", "alice": "approver", "ops": "admin"}
# Sanitizer builds run several times slower: the same checks on fewer approvals.
SCALE = 5 if os.environ.get("APPROVALD_SANITIZE") else 1


def config(audit_url, pager_url, lease="3s"):
    return """\
version: 1
action_types:
  - name: noop
    handler: noop
webhooks:
  - name: audit
    url: %s
    secret_env: APPROVALD_TEST_AUDIT_SECRETS
    timeout: 1s
    lease: %s
    backoff: {initial: 50ms, max: 200ms}
  - name: pager
    url: %s
    secret_file: %s
    format: slack
    events: [approved]
    action_types: [noop]
    timeout: 1s
    max_age: 1s
    backoff: {initial: 100ms, max: 200ms, jitter: 0}
""" % (audit_url, lease, pager_url, "%s")


class WebhooksTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("webhooks", APPROVALCTL, PRINCIPALS)
        harness.use_python_client(ROOT, cls.tmp)
        cls.audit = webhook_receiver.serve([SECRET])
        cls.addClassCleanup(cls.audit.close)
        cls.pager = webhook_receiver.serve([PAGER_SECRET])
        cls.addClassCleanup(cls.pager.close)
        os.environ["APPROVALD_TEST_AUDIT_SECRETS"] = SECRET + " " + OLD_SECRET
        secret_file = os.path.join(cls.tmp, "pager.secret")
        with open(secret_file, "w") as f:
            f.write(PAGER_SECRET + "\n")
        cls.config = os.path.join(cls.tmp, "approvald.yaml")
        with open(cls.config, "w") as f:
            f.write(config(cls.audit.url + "/audit?token=path-secret-x", cls.pager.url + "/pager")
                    % secret_file)
        cls.daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, cls.config, cls.tmp,
                                       args=("--metrics-addr", "127.0.0.1:0"))
        cls.addClassCleanup(cls.daemon.stop)

    def client(self, who):
        from approvald_client import ApprovalClient
        return ApprovalClient(self.daemon.target, self.tokens[who])

    def approvals(self, n, threads=4):
        """n noop approvals created by agent and approved by alice."""
        def work(count):
            with self.client("agent") as agent, self.client("alice") as alice:
                for _ in range(count):
                    alice.approve(agent.create("noop", {}, summary="hook me").id)
        workers = [threading.Thread(target=work, args=(n // threads + (i < n % threads),))
                   for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def events_after(self, cursor, types=None):
        rows = harness.psql("SELECT id, type FROM approvald.events WHERE id > %d ORDER BY id"
                            % cursor, self.dsn)
        return [int(r[0]) for r in rows if types is None or r[1] in types]

    def approvalctl(self, *args, who="ops"):
        return subprocess.run([APPROVALCTL, "--addr", self.daemon.target, "--token",
                               self.tokens[who], *args], capture_output=True, text=True,
                              timeout=30)

    def subscription(self, name):
        out = self.approvalctl("--json", "webhooks", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        for s in json.loads(out.stdout).get("subscriptions", []):
            if s["name"] == name:
                return s
        self.fail("no subscription %s in %s" % (name, out.stdout))

    def metrics(self):
        m = re.findall(r"\(metrics port (\d+)\)", self.daemon.output())
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % m[-1], timeout=10) as r:
            return r.read().decode()

    def accepted_event_ids(self, receiver):
        return [int(d["body"]["eventId"]) for d in receiver.accepted()]

    def test_1_every_event_in_order_through_failures_and_crashes(self):
        began = time.monotonic()
        start = int(self.subscription("audit").get("cursor", 0))
        self.audit.fail_first(2, every=50)
        self.audit.stall_every(400, 2)
        kills = 0
        for phase in range(4):
            before = len(self.audit.accepted())
            self.approvals(250 // SCALE)
            if phase < 3:
                # Killed while it delivers this phase's events.
                harness.wait_until(lambda: len(self.audit.accepted()) > before + 50 // SCALE, 60,
                                   "deliveries of phase %d" % phase)
                print("phase %d at %.1f s" % (phase, time.monotonic() - began))
                self.daemon.restart()
                kills += 1
        expected = self.events_after(start)
        print("created at %.1f s" % (time.monotonic() - began))
        self.assertGreaterEqual(len(expected), 2000 // SCALE)
        harness.wait_until(lambda: set(expected) <= set(self.accepted_event_ids(self.audit)), 180,
                           "every event at the receiver")
        self.audit.fail_first(0)
        self.audit.stall_every(0, 0)
        print("delivered at %.1f s" % (time.monotonic() - began))
        received = self.accepted_event_ids(self.audit)
        received = [e for e in received if e > start]
        first_seen = []
        seen = set()
        for e in received:
            if e not in seen:
                seen.add(e)
                first_seen.append(e)
        self.assertEqual(first_seen[:len(expected)], expected)  # in log order, none skipped
        repeats = len(received) - len(first_seen)
        deliveries = [d for d in self.audit.deliveries()
                      if d["body"] and int(d["body"]["eventId"]) > start]
        ids = {d["id"] for d in deliveries}
        print("audit: %d events, %d requests, %d distinct webhook-ids, %d accepted, "
              "%d accepted again (after %d kill -9)" % (len(expected), len(deliveries), len(ids),
                                                       len(received), repeats, kills))
        self.assertLessEqual(repeats, 2 * kills)  # only around a crash
        self.assertEqual(self.audit.bad_signatures(), [])
        self.assertEqual(len(ids), len(expected))  # one webhook-id per event

    def test_2_three_replicas_send_each_event_once(self):
        start = int(self.subscription("audit").get("cursor", 0))
        harness.wait_until(lambda: len(self.events_after(int(self.subscription("audit").get("cursor", 0))))
                           == 0, 60, "audit caught up")
        start = int(self.subscription("audit").get("cursor", 0))
        others = [harness.Approvald(APPROVALD, self.dsn, self.tokens_file, self.config, self.tmp,
                                    name="replica-%d" % i) for i in range(2)]
        try:
            before = len(self.audit.deliveries())
            self.approvals(150 // SCALE)
            # The replica that delivers stops (SIGTERM): it releases the lease and another goes
            # on from the cursor, with no event sent twice.
            harness.wait_until(lambda: len(self.audit.accepted()) > before + 50 // SCALE, 60,
                               "deliveries before the handover")
            self.daemon.stop(check=True)
            with self.client_of(others[0], "agent") as agent, \
                    self.client_of(others[0], "alice") as alice:
                for _ in range(150 // SCALE):
                    alice.approve(agent.create("noop", {}, summary="after the handover").id)
            expected = self.events_after(start)
            harness.wait_until(
                lambda: set(expected) <= set(self.accepted_event_ids(self.audit)), 120,
                "every event at the receiver")
            new = self.audit.deliveries()[before:]
            ids = [d["id"] for d in new if d["status"] < 300]
            print("3 replicas, one stopped mid-run: %d events, %d requests, %d distinct "
                  "webhook-ids" % (len(expected), len(new), len(set(ids))))
            self.assertEqual(len(ids), len(set(ids)), "a webhook-id accepted twice")
        finally:
            for o in others:
                o.stop(check=True)
            if self.daemon.proc.poll() is not None:
                self.daemon.start()

    def client_of(self, daemon, who):
        from approvald_client import ApprovalClient
        return ApprovalClient(daemon.target, self.tokens[who])

    def test_3_dead_letter_then_redeliver(self):
        self.pager.set_status(503)
        with self.client("agent") as agent, self.client("alice") as alice:
            approval = alice.approve(agent.create("noop", {}, summary="page the on-call").id)
        harness.wait_until(lambda: self.subscription("pager")["state"] ==
                           "WEBHOOK_SUBSCRIPTION_STATE_DEAD_LETTER", 60, "pager dead-lettered")
        s = self.subscription("pager")
        self.assertIn("HTTP 503", s["lastError"])
        self.assertGreaterEqual(s["attempts"], 2)
        self.assertIn('approvald_webhook_dead_letter{subscription="pager"} 1', self.metrics())
        text = self.approvalctl("webhooks", "list").stdout
        self.assertIn("DEAD_LETTER", text)
        self.assertIn("approvalctl webhooks redeliver pager", text)
        # Not dead: FAILED_PRECONDITION; not admin: PERMISSION_DENIED; unknown: NOT_FOUND.
        self.assertIn("FAILED_PRECONDITION", self.approvalctl("webhooks", "redeliver",
                                                              "audit").stderr)
        self.assertIn("PERMISSION_DENIED", self.approvalctl("webhooks", "list", who="alice").stderr)
        self.assertIn("NOT_FOUND", self.approvalctl("webhooks", "redeliver", "nope").stderr)
        self.pager.set_status(None)
        out = self.approvalctl("webhooks", "redeliver", "pager")
        self.assertEqual(out.returncode, 0, out.stderr)

        def delivered():
            return [d for d in self.pager.accepted() if approval.id in d["body"]["text"]]
        harness.wait_until(delivered, 30, "the stuck event delivered")
        text = delivered()[0]["body"]["text"]
        for part in ("noop", "approved", "page the on-call", "agent", "alice"):
            self.assertIn(part, text)
        harness.wait_until(lambda: self.subscription("pager")["state"] ==
                           "WEBHOOK_SUBSCRIPTION_STATE_ACTIVE", 30, "pager active")
        harness.wait_until(lambda: 'approvald_webhook_dead_letter{subscription="pager"} 0'
                           in self.metrics(), 30, "the metric back to 0")

    def test_4_secrets_appear_nowhere(self):
        outputs = [self.metrics(), self.approvalctl("--json", "webhooks", "list").stdout,
                   self.approvalctl("--json", "types").stdout]
        for name in os.listdir(self.tmp):
            if name.endswith(".log"):
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    outputs.append(f.read())
        for secret in (SECRET, SECRET[len("whsec_"):], OLD_SECRET, PAGER_SECRET,
                       "path-secret-x"):
            for text in outputs:
                self.assertNotIn(secret, text)
        # A config whose secret is too short names its source, not its value.
        bad = os.path.join(self.tmp, "bad.yaml")
        os.environ["APPROVALD_TEST_AUDIT_SECRETS"] = "short-secret-1"
        try:
            with open(bad, "w") as f:
                f.write(config("http://127.0.0.1:1/x", "http://127.0.0.1:1/y") %
                        os.path.join(self.tmp, "pager.secret"))
            out = subprocess.run([APPROVALD, "check-config", bad], capture_output=True,
                                 text=True, timeout=30)
        finally:
            os.environ["APPROVALD_TEST_AUDIT_SECRETS"] = SECRET + " " + OLD_SECRET
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("APPROVALD_TEST_AUDIT_SECRETS", out.stdout + out.stderr)
        self.assertNotIn("short-secret-1", out.stdout + out.stderr)

    def test_5_a_reload_adds_a_subscription(self):
        with open(self.config, "a") as f:
            f.write("""\
  - name: late
    url: %s
    secret_file: %s
    events: [created]
""" % (self.pager.url + "/late", os.path.join(self.tmp, "pager.secret")))
        reloads = self.daemon.output().count("reloaded")
        self.daemon.proc.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: self.daemon.output().count("reloaded") > reloads + 1, 30,
                           "the reload")
        harness.wait_until(lambda: "late" in [s["name"] for s in json.loads(self.approvalctl(
            "--json", "webhooks", "list").stdout)["subscriptions"]], 30, "late registered")
        with self.client("agent") as agent:
            created = agent.create("noop", {}, summary="after the reload")
        harness.wait_until(lambda: [d for d in self.pager.accepted() if d["path"] == "/late" and
                                    d["body"]["approval"]["id"] == created.id], 30,
                           "the new subscription's delivery")


if __name__ == "__main__":
    harness.run_tests()
