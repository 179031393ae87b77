#!/usr/bin/python3
"""TLS and mTLS end to end: certificates made with openssl, the real approvald, a Python client
and approvalctl. Plaintext is refused off loopback unless --allow-insecure.

usage: tls_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import os
import shutil
import subprocess
import sys
import time
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402


def make_second_ca(d):
    """Another CA and a server certificate from it: what a renewal swaps in."""
    openssl = harness.openssl
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca2.key", "-out",
            "ca2.pem", "-days", "2", "-subj", "/CN=approvald test CA 2", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server2.key", "-out",
            "server2.csr", "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-in", "server2.csr", "-CA", "ca2.pem", "-CAkey", "ca2.key",
            "-CAcreateserial", "-out", "server2.pem", "-days", "2", "-extfile", "server.ext",
            cwd=d)


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


class TlsTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("tls", APPROVALCTL, {"alice": "approver"}, stubs_root=ROOT)
        harness.make_certs(cls.tmp)
        with open(cls.tokens_file, "a") as f:
            # The DNS-only certificate's CN and the URI+DNS certificate's DNS name are mapped
            # too, to other principals: the SAN URI comes first, then the DNS name, then the CN.
            f.write("cert spiffe://approvald.test/agent requester\n"
                    "cert ops.approvald.test approver\n"
                    "cert dns-client-cn admin\n"
                    "cert cn-only-client requester\n"
                    "cert spiffe://approvald.test/robot requester\n"
                    "cert robot.approvald.test admin\n"
                    "cert robot-cn admin\n")

    def start(self, *args, host="127.0.0.1"):
        d = harness.Approvald(APPROVALD, self.dsn, self.tokens_file, None, self.tmp,
                              name="approvald-" + uuid.uuid4().hex[:6], args=args, host=host)
        self.addCleanup(d.stop, check=True)
        return d

    def start_mtls(self):
        return self.start("--tls-cert", os.path.join(self.tmp, "server.pem"), "--tls-key",
                          os.path.join(self.tmp, "server.key"), "--tls-client-ca",
                          os.path.join(self.tmp, "ca.pem"), "--principal-from-cert")

    def channel(self, port, client_cert=None):
        import grpc
        key = read(self.tmp, client_cert + ".key") if client_cert else None
        cert = read(self.tmp, client_cert + ".pem") if client_cert else None
        creds = grpc.ssl_channel_credentials(read(self.tmp, "ca.pem"), key, cert)
        return grpc.secure_channel("localhost:%d" % port, creds)

    def test_plaintext_off_loopback_needs_allow_insecure(self):
        run = subprocess.run([APPROVALD, "--dsn", self.dsn, "--tokens", self.tokens_file,
                              "--listen", "0.0.0.0:0", "--migrate"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(run.returncode, 1)
        self.assertIn("refusing plaintext", run.stderr)
        d = self.start("--allow-insecure", host="0.0.0.0")
        self.assertIsNotNone(d.port)

    def test_tls_with_bearer_tokens(self):
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        d = self.start("--tls-cert", os.path.join(self.tmp, "server.pem"),
                       "--tls-key", os.path.join(self.tmp, "server.key"))
        with self.channel(d.port) as ch:
            stub = harness.approval_stub(ch)
            types = stub.ListActionTypes(pb.ListActionTypesRequest(), timeout=10,
                                         metadata=self.md("alice"))
            self.assertEqual([t.name for t in types.action_types], ["noop"])
        # A plaintext client cannot talk to a TLS port.
        with grpc.insecure_channel("127.0.0.1:%d" % d.port) as ch:
            with self.assertRaises(grpc.RpcError) as err:
                harness.approval_stub(ch).ListActionTypes(
                    pb.ListActionTypesRequest(), timeout=5, metadata=self.md("alice"))
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # approvalctl speaks TLS with --tls-ca.
        out = subprocess.run([APPROVALCTL, "--addr", "localhost:%d" % d.port, "--tls-ca",
                              os.path.join(self.tmp, "ca.pem"), "--token", self.tokens["alice"],
                              "types"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("noop", out.stdout)

    def test_renewed_certificate_is_picked_up_without_restart(self):
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        make_second_ca(self.tmp)
        live = os.path.join(self.tmp, "live")
        os.makedirs(live, exist_ok=True)
        shutil.copy(os.path.join(self.tmp, "server.pem"), os.path.join(live, "tls.pem"))
        shutil.copy(os.path.join(self.tmp, "server.key"), os.path.join(live, "tls.key"))
        d = self.start("--tls-cert", os.path.join(live, "tls.pem"),
                       "--tls-key", os.path.join(live, "tls.key"))

        def works_with(ca):
            creds = grpc.ssl_channel_credentials(read(self.tmp, ca))
            with grpc.secure_channel("localhost:%d" % d.port, creds) as ch:
                try:
                    harness.approval_stub(ch).ListActionTypes(
                        pb.ListActionTypesRequest(), timeout=5, metadata=self.md("alice"))
                    return True
                except grpc.RpcError:
                    return False

        self.assertTrue(works_with("ca.pem"))
        self.assertFalse(works_with("ca2.pem"))
        # Renew: write the new pair in place (key first, then the certificate).
        shutil.copy(os.path.join(self.tmp, "server2.key"), os.path.join(live, "tls.key.new"))
        shutil.copy(os.path.join(self.tmp, "server2.pem"), os.path.join(live, "tls.pem.new"))
        os.replace(os.path.join(live, "tls.key.new"), os.path.join(live, "tls.key"))
        os.replace(os.path.join(live, "tls.pem.new"), os.path.join(live, "tls.pem"))
        deadline = time.time() + 20
        while time.time() < deadline and not works_with("ca2.pem"):
            time.sleep(0.5)
        self.assertTrue(works_with("ca2.pem"))
        self.assertEqual(d.proc.poll(), None)

    def test_mtls_principal_from_certificate(self):
        import grpc
        from approvals.v1 import approvals_pb2 as pb
        d = self.start_mtls()
        with self.channel(d.port, "client") as ch:
            stub = harness.approval_stub(ch)
            created = stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"), timeout=10)
            self.assertEqual(created.requested_by, "spiffe://approvald.test/agent")
        # A certificate the CA signed but the tokens file does not map: UNAUTHENTICATED.
        with self.channel(d.port, "stranger") as ch:
            with self.assertRaises(grpc.RpcError) as err:
                harness.approval_stub(ch).ListActionTypes(
                    pb.ListActionTypesRequest(), timeout=10)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        # No client certificate at all: the handshake fails.
        with self.channel(d.port) as ch:
            with self.assertRaises(grpc.RpcError) as err:
                harness.approval_stub(ch).ListActionTypes(
                    pb.ListActionTypesRequest(), timeout=5)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # approvalctl with a client certificate.
        out = subprocess.run([APPROVALCTL, "--addr", "localhost:%d" % d.port, "--tls-ca",
                              os.path.join(self.tmp, "ca.pem"), "--tls-cert",
                              os.path.join(self.tmp, "client.pem"), "--tls-key",
                              os.path.join(self.tmp, "client.key"), "list", "--json"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(created.id, out.stdout)

    def test_mtls_principal_from_dns_name_else_common_name(self):
        from approvals.v1 import approvals_pb2 as pb
        d = self.start_mtls()
        for cert, principal in [("dns-client", "ops.approvald.test"),
                                ("cn-client", "cn-only-client"),
                                ("uri-dns-client", "spiffe://approvald.test/robot")]:
            with self.channel(d.port, cert) as ch:
                stub = harness.approval_stub(ch)
                created = stub.CreateApproval(pb.CreateApprovalRequest(action_type="noop"),
                                              timeout=10)
                self.assertEqual(created.requested_by, principal, cert)
                # A bearer token sent along is ignored: the certificate names the principal.
                got = stub.GetApproval(pb.GetApprovalRequest(id=created.id), timeout=10,
                                       metadata=self.md("alice"))
                self.assertEqual(got.requested_by, principal, cert)
        # Lines reach a log file in batches (--log-flush-interval): wait for the calls' lines.
        deadline = time.time() + 10
        while True:
            with open(d.log_path) as f:
                log = f.read()
            if log.count(" rpc method=") >= 6 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertIn("principal=ops.approvald.test ", log)
        self.assertIn("principal=cn-only-client ", log)
        for other in ("dns-client-cn", "robot.approvald.test", "robot-cn", "alice"):
            self.assertNotIn("principal=%s " % other, log)


if __name__ == "__main__":
    harness.run_tests()
