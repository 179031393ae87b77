#!/usr/bin/python3
"""The `webhook` action kind end to end: approvald itself POSTs an approved refund to
client/python/fake_payments.py (which dedupes by Idempotency-Key), signed per Standard Webhooks.

- 503, 503, then 201: the approval ends SUCCEEDED with the provider's JSON as its result; one
  refund applied, three requests under one Idempotency-Key (the execution id).
- the provider holds the POST while approvald is killed (-9) and restarted: the refund is applied
  once, and the retry after the lease gets the same refund back.
- 400: the approval fails for good, the provider's answer in execution_error.
- a 429 is retried; timeouts are retried until max_attempts, then FAILED.

usage: webhook_actions_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import itertools
import os
import sys

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

SECRET = "refund-hook-secret-0123456789"
_orders = itertools.count(5000)


def config(url, slow_url, notify_url):
    return """\
version: 1
action_types:
  - name: refund.http
    description: Refund at the provider, posted by approvald.
    handler: webhook
    url: %s
    secret_env: APPROVALD_TEST_REFUND_SECRET
    parameters:
      - {name: order_id, type: integer, required: true}
      - {name: amount_cents, type: integer, required: true}
    requester_roles: [requester]
    approver_roles: [approver]
    timeout: 1s
    lease: 3s
    max_attempts: 4
    backoff: {initial: 100ms, max: 300ms}
  - name: refund.slow
    handler: webhook
    url: %s
    secret_env: APPROVALD_TEST_REFUND_SECRET
    timeout: 1s
    lease: 2s
    max_attempts: 2
    backoff: {initial: 100ms, max: 100ms}
  - name: notify.hook
    handler: webhook
    url: %s
    secret_env: APPROVALD_TEST_REFUND_SECRET
""" % (url, slow_url, notify_url)


class WebhookActionsTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("webhookactions", APPROVALCTL,
                            {"agent": "requester", "alice": "approver", "worker": "executor"})
        harness.use_python_client(ROOT, cls.tmp)
        import fake_payments
        cls.provider = fake_payments.serve(0)
        cls.addClassCleanup(cls.provider.close)
        import webhook_receiver
        cls.receiver = webhook_receiver.serve([SECRET])
        cls.addClassCleanup(cls.receiver.close)
        os.environ["APPROVALD_TEST_REFUND_SECRET"] = SECRET
        path = os.path.join(cls.tmp, "approvald.yaml")
        with open(path, "w") as f:
            f.write(config(cls.provider.url + "/refunds", cls.provider.url + "/refunds",
                           cls.receiver.url + "/actions"))
        cls.daemon = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, path, cls.tmp)
        cls.addClassCleanup(cls.daemon.stop)

    def client(self, who):
        from approvald_client import ApprovalClient
        return ApprovalClient(self.daemon.target, self.tokens[who])

    def approve_refund(self, amount_cents=700, action_type="refund.http"):
        order = next(_orders)
        with self.client("agent") as agent, self.client("alice") as alice:
            a = agent.create(action_type, {"order_id": order, "amount_cents": amount_cents},
                             summary="refund order %d" % order)
            alice.approve(a.id)
        return a.id, order

    def final(self, approval_id, timeout=60):
        """The approval once its execution has ended."""
        from approvald_client import pb
        with self.client("alice") as alice:
            def done():
                a = alice.get(approval_id)
                return a if a.execution.state in (pb.EXECUTION_STATE_SUCCEEDED,
                                                  pb.EXECUTION_STATE_FAILED) else None
            harness.wait_until(done, timeout, "execution of %s ends" % approval_id)
            return done()

    def refunds_of(self, order):
        return [r for r in self.provider.refunds() if r["order_id"] == order]

    def test_1_retried_until_applied_once(self):
        from approvald_client import pb
        self.provider.fail_next(503, 503)
        before = self.provider.requests()
        approval_id, order = self.approve_refund()
        a = self.final(approval_id)
        self.assertEqual(a.status, pb.APPROVAL_STATUS_APPROVED)
        self.assertEqual(a.execution.state, pb.EXECUTION_STATE_SUCCEEDED)
        self.assertEqual(a.execution.attempts, 3)
        refunds = self.refunds_of(order)
        self.assertEqual(len(refunds), 1)
        self.assertEqual(refunds[0]["idempotency_key"], a.execution.execution_id)
        self.assertEqual(a.execution_result["id"], refunds[0]["id"])
        self.assertEqual(self.provider.requests() - before, 3)

    def test_2_kill_mid_call_applies_once(self):
        from approvald_client import pb
        self.provider.delay_next(2.5)
        approval_id, order = self.approve_refund(amount_cents=900)
        harness.wait_until(lambda: self.provider.delays_left() == 0, 30,
                           "the POST reached the provider (which holds it)")
        self.assertEqual(self.refunds_of(order), [])  # still held: approvald dies mid-call
        self.daemon.kill9()  # while the provider holds the POST
        harness.wait_until(lambda: len(self.refunds_of(order)) == 1, 30, "the refund applied")
        self.daemon.start()
        a = self.final(approval_id)
        self.assertEqual(a.execution.state, pb.EXECUTION_STATE_SUCCEEDED)
        self.assertGreaterEqual(a.execution.attempts, 2)  # the lease ran out, tried again
        self.assertEqual(len(self.refunds_of(order)), 1)
        self.assertEqual(a.execution_result["idempotency_key"], a.execution.execution_id)

    def test_3_a_400_fails_for_good_with_the_answer(self):
        from approvald_client import pb
        self.provider.fail_next(400)
        approval_id, order = self.approve_refund()
        a = self.final(approval_id)
        self.assertEqual(a.status, pb.APPROVAL_STATUS_FAILED)
        self.assertEqual(a.execution.state, pb.EXECUTION_STATE_FAILED)
        self.assertEqual(a.execution.attempts, 1)
        self.assertIn("HTTP 400", a.execution_error)
        self.assertIn("injected failure", a.execution_error)
        self.assertEqual(self.refunds_of(order), [])

    def test_4_429_retried_and_timeouts_run_out(self):
        from approvald_client import pb
        self.provider.fail_next(429)
        approval_id, order = self.approve_refund()
        a = self.final(approval_id)
        self.assertEqual(a.execution.state, pb.EXECUTION_STATE_SUCCEEDED)
        self.assertEqual(a.execution.attempts, 2)
        # refund.slow: every attempt outlasts its 1 s timeout; after 2 attempts it fails.
        self.provider.delay_next(1.5, 1.5)
        approval_id, order = self.approve_refund(action_type="refund.slow")
        a = self.final(approval_id)
        self.assertEqual(a.status, pb.APPROVAL_STATUS_FAILED)
        self.assertEqual(a.execution.attempts, 2)
        self.assertIn("timed out", a.execution_error.lower())

    def test_5_the_request_is_signed_and_the_secret_kept(self):
        from approvald_client import pb
        approval_id, order = self.approve_refund(action_type="notify.hook")
        a = self.final(approval_id)
        self.assertEqual(a.execution.state, pb.EXECUTION_STATE_SUCCEEDED)
        [request] = [d for d in self.receiver.deliveries()
                     if d["body"]["approval"]["id"] == approval_id]
        self.assertTrue(request["ok"], "the signature does not verify")
        self.assertEqual(request["headers"]["Idempotency-Key"], a.execution.execution_id)
        self.assertEqual(request["body"]["approval"]["actionData"]["order_id"], order)
        self.assertEqual(request["body"]["approval"]["decidedBy"], "alice")
        self.assertEqual(a.execution_result["ok"], True)  # the receiver's JSON answer
        self.assertNotIn(SECRET, self.daemon.output())

    def test_6_callers_workers_cannot_claim_them(self):
        import grpc
        with self.client("worker") as worker:
            with self.assertRaises(grpc.RpcError) as caught:
                worker.claim(["refund.http"])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("approvald runs it itself", caught.exception.details())


if __name__ == "__main__":
    harness.run_tests()
