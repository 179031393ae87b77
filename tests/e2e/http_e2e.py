#!/usr/bin/python3
"""The HTTP/JSON gateway (--http-listen) end to end, driven by curl as a shell script would.

Every route of the proto's google.api.http annotations; errors as HTTP statuses with a JSON
google.rpc.Status and its ErrorInfo reason; the watch stream as Server-Sent Events, resumed with
Last-Event-ID; the body size limit; garbage and gRPC frames on the HTTP port; plain HTTP on the
gRPC port; HTTPS with bearer tokens and with client certificates; SIGTERM with open streams.

usage: http_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

MAX_BODY = 64 * 1024


def http_port(daemon):
    m = re.search(r"\(http port (\d+)\)", daemon.output())
    return int(m.group(1)) if m else None


class Curl:
    """curl against one base URL; answers (status, headers with lower-case names, body, JSON)."""

    def __init__(self, base, *options):
        self.base, self.options = base, list(options)

    def __call__(self, method, path, token=None, body=None, headers=(), timeout=30):
        cmd = ["curl", "-sS", "-i", "-X", method, "-H", "Expect:", *self.options]
        if token:
            cmd += ["-H", "Authorization: Bearer " + token]
        for h in headers:
            cmd += ["-H", h]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary",
                    body if isinstance(body, str) else json.dumps(body)]
        out = subprocess.run(cmd + [self.base + path], capture_output=True, timeout=timeout)
        if out.returncode != 0:
            return None, {}, out.stderr.decode(errors="replace"), None
        head, _, text = out.stdout.decode(errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        return status, hdrs, text, doc


class EventStream:
    """`curl -N` on an SSE URL, its events (id, data as JSON, or ("error", data)) read on a
    thread."""

    def __init__(self, url, token, *options, headers=()):
        cmd = ["curl", "-sS", "-N", "-i", *options, "-H", "Authorization: Bearer " + token]
        for h in headers:
            cmd += ["-H", h]
        self.proc = subprocess.Popen(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.status, self.events, self.lines = None, [], []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = {}
        with self.proc.stdout:
            self._parse(event)

    def _parse(self, event):
        for line in self.proc.stdout:
            line = line.rstrip("\r\n")
            self.lines.append(line)
            if self.status is None and line.startswith("HTTP/"):
                self.status = int(line.split()[1])
            elif line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and event:
                self.events.append(event)
                event = {}

    def wait_events(self, n, timeout=30):
        harness.wait_until(lambda: len(self.events) >= n, timeout,
                           "%d events (have %r)" % (n, self.events))
        return self.events

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()


class HttpGatewayTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("http", APPROVALCTL, {"agent": "requester", "alice": "approver",
                                                  "bob": "approver"})
        harness.make_certs(cls.tmp)
        cls.daemon = cls.start_daemon("--max-message-bytes=%d" % MAX_BODY)
        cls.port = http_port(cls.daemon)
        cls.http = Curl("http://127.0.0.1:%d" % cls.port)

    @classmethod
    def start_daemon(cls, *args, name="approvald"):
        d = harness.Approvald(APPROVALD, cls.dsn, cls.tokens_file, None, cls.tmp, name=name,
                              args=("--http-listen=127.0.0.1:0", *args))
        cls.addClassCleanup(d.stop)
        harness.wait_until(lambda: http_port(d), 10, "the http port in the log")
        return d

    def create(self, summary="refund", **extra):
        status, _, text, doc = self.http("POST", "/v1/approvals", self.tokens["agent"],
                                         dict({"actionType": "noop", "summary": summary,
                                               "actionData": {"order": 42, "eur": "30"}}, **extra))
        self.assertEqual(status, 200, text)
        return doc

    def stream(self, url, token, *options, headers=()):
        """An EventStream closed when the test ends."""
        s = EventStream(url, token, *options, headers=headers)
        self.addCleanup(s.close)
        return s

    def test_1_every_route(self):
        h, agent, alice = self.http, self.tokens["agent"], self.tokens["alice"]
        self.create("another")
        a = self.create(idempotencyKey="k-1")
        self.assertEqual(a["status"], "APPROVAL_STATUS_PENDING")
        self.assertEqual(a["requestedBy"], "agent")
        self.assertEqual(a["actionData"], {"order": 42, "eur": "30"})
        # A retry with the same key answers the same approval.
        self.assertEqual(self.create(idempotencyKey="k-1")["id"], a["id"])

        status, hdrs, text, got = h("GET", "/v1/approvals/" + a["id"], alice,
                                    headers=("X-Request-Id: curl-1",))
        self.assertEqual(status, 200, text)
        self.assertEqual(got["id"], a["id"])
        self.assertEqual(hdrs.get("x-request-id"), "curl-1")
        self.assertEqual(hdrs.get("content-type"), "application/json")

        status, _, text, page = h("GET", "/v1/approvals?requested_by=agent&statuses=pending"
                                  "&pageSize=1", alice)
        self.assertEqual(status, 200, text)
        self.assertEqual(len(page["approvals"]), 1)
        self.assertIn("nextPageToken", page)
        status, _, text, rest = h("GET", "/v1/approvals?requested_by=agent&statuses=pending"
                                  "&pageSize=1&pageToken=" + page["nextPageToken"], alice)
        self.assertEqual(status, 200, text)

        decision = {"comment": "ok", "expectedVersion": a["version"], "requestId": "curl-r1"}
        status, _, text, done = h("POST", "/v1/approvals/%s:approve" % a["id"], alice, decision)
        self.assertEqual(status, 200, text)
        # A retry with the same request id (a lost answer) gets the first answer, not an error.
        status, _, text, again = h("POST", "/v1/approvals/%s:approve" % a["id"], alice, decision)
        self.assertEqual(status, 200, text)
        self.assertEqual(again["version"], done["version"])
        self.assertEqual(done["status"], "APPROVAL_STATUS_APPROVED")
        self.assertIn("executeTime", done)
        self.assertEqual(done["decidedBy"], "alice")

        b = self.create()
        status, _, text, rej = h("POST", "/v1/approvals/%s:reject" % b["id"], alice,
                                 {"reason": "no"})
        self.assertEqual(status, 200, text)
        self.assertEqual(rej["status"], "APPROVAL_STATUS_REJECTED")
        c = self.create()
        status, _, text, can = h("POST", "/v1/approvals/%s:cancel" % c["id"], agent)  # no body
        self.assertEqual(status, 200, text)
        self.assertEqual(can["status"], "APPROVAL_STATUS_CANCELLED")

        status, _, text, types = h("GET", "/v1/actionTypes", agent)
        self.assertEqual(status, 200, text)
        self.assertIn("noop", [t["name"] for t in types["actionTypes"]])

        status, _, text, mine = h("GET", "/v1/approvals?decidedBy=alice", agent)
        self.assertEqual(status, 200, text)
        self.assertEqual({x["id"] for x in mine["approvals"]}, {a["id"], b["id"]})

    def assert_error(self, answer, status, code, reason=None):
        got, hdrs, text, doc = answer
        self.assertEqual(got, status, text)
        self.assertEqual(hdrs.get("content-type"), "application/json", text)
        self.assertEqual(doc["code"], code, text)
        self.assertTrue(doc["message"], text)
        if reason:
            infos = [d for d in doc.get("details", []) if d["@type"].endswith("ErrorInfo")]
            self.assertEqual(infos[0]["reason"], reason, text)
            self.assertEqual(infos[0]["domain"], "approvald", text)
        return doc

    def test_2_errors(self):
        h, agent, alice = self.http, self.tokens["agent"], self.tokens["alice"]
        answer = h("GET", "/v1/approvals", None)
        self.assert_error(answer, 401, 16)
        self.assertEqual(answer[1].get("www-authenticate"), "Bearer")
        self.assert_error(h("GET", "/v1/approvals", "not-a-token"), 401, 16)
        mine = self.create()
        self.assert_error(h("POST", "/v1/approvals/%s:cancel" % mine["id"], alice), 403, 7)
        doc = self.assert_error(h("POST", "/v1/approvals", agent, "{not json"), 400, 3)
        self.assertIn("body", doc["message"])
        self.assert_error(h("POST", "/v1/approvals", agent, {"actionType": "noop", "colour": 1}),
                          400, 3)
        self.assert_error(h("POST", "/v1/approvals", agent, {"actionType": "no.such.type"}), 400, 3)
        self.assert_error(h("GET", "/v1/approvals?colour=red", agent), 400, 3)
        self.assert_error(h("GET", "/v1/approvals?pageSize=many", agent), 400, 3)
        self.assert_error(h("GET", "/v1/approvals/not-a-uuid", agent), 400, 3)
        self.assert_error(h("GET", "/v1/approvals/00000000-0000-4000-8000-000000000000", agent),
                          404, 5)
        a = self.create()
        self.assertEqual(h("POST", "/v1/approvals/%s:reject" % a["id"], alice,
                           {"reason": "no"})[0], 200)
        self.assert_error(h("POST", "/v1/approvals/%s:approve" % a["id"], alice, {}), 400, 9,
                          "ALREADY_PROCESSED")
        doc = self.assert_error(h("POST", "/v1/approvals/%s:approve" % a["id"], alice,
                                  {"id": "00000000-0000-4000-8000-000000000000"}), 400, 3)
        self.assertIn("path", doc["message"])
        answer = h("DELETE", "/v1/approvals/" + a["id"], agent)
        self.assert_error(answer, 405, 12)
        self.assertEqual(answer[1].get("allow"), "GET")
        self.assert_error(h("GET", "/v2/nothing", agent), 404, 5)
        # The ExecutionService is served too; noop is no type that workers run.
        self.assert_error(h("POST", "/v1/executions:claim", agent, {"actionTypes": ["noop"]}),
                          400, 3, "UNKNOWN_ACTION_TYPE")
        self.assert_error(h("GET", "/v1/approvals", agent, body={"x": 1}), 400, 3)
        # The body limit is the gRPC port's: refused before it is read.
        self.assert_error(h("POST", "/v1/approvals", agent,
                            {"actionType": "noop", "summary": "x" * (MAX_BODY + 1)}), 413, 8)

    def raw(self, port, data):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                out += chunk
            return out

    def test_3_hostile_bytes(self):
        # A request line without a target: 400. An HTTP/2 (gRPC) connection preface, or another
        # version: 505. A line that is no request at all (a TLS hello): closed.
        for data, answer in ((b"GET /v1/approvals\r\n\r\n", b"HTTP/1.1 400 "),
                             (b"GET / HTTP/9.9\r\n\r\n", b"HTTP/1.1 505 "),
                             (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x01\x00\x00\x00\x00",
                              b"HTTP/1.1 505 "),
                             (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", b"")):
            out = self.raw(self.port, data)
            self.assertTrue(out.startswith(answer), (data, out[:200]))
        # Plain HTTP/1.1 on the gRPC port: refused by gRPC, and not logged as an error.
        subprocess.run(["curl", "-sS", "-m", "5", "http://%s/v1/approvals" % self.daemon.target],
                       capture_output=True, timeout=30)
        status, _, _, _ = self.http("GET", "/v1/actionTypes", self.tokens["agent"])
        self.assertEqual(status, 200)  # still serving
        errors = [ln for ln in self.daemon.output().splitlines()
                  if re.search(r"\[error\]|\[critical\]|^E\d{4}", ln)]
        self.assertEqual(errors, [])

    @staticmethod
    def event_of(stream, approval_id, event_type):
        def find():
            return next((e for e in stream.events
                         if e.get("data", {}).get("approval", {}).get("id") == approval_id
                         and e["data"]["type"] == event_type), None)
        return harness.wait_until(find, 30, "%s of %s (have %r)" % (event_type, approval_id,
                                                                     stream.events))

    def test_4_events(self):
        agent = self.tokens["agent"]
        base = "http://127.0.0.1:%d" % self.port
        live = self.stream(base + "/v1/events", agent)
        harness.wait_until(lambda: live.status, 10, "the stream's head")
        self.assertEqual(live.status, 200, live.lines)
        a = self.create("watched")
        # An earlier test's event may be made deliverable late (the log delivers an event once
        # no older transaction runs): the stream's events are looked up by approval.
        ev = self.event_of(live, a["id"], "EVENT_TYPE_CREATED")
        self.assertEqual(ev["data"]["eventId"], str(ev["id"]))
        self.assertEqual(self.http("POST", "/v1/approvals/%s:approve" % a["id"],
                                   self.tokens["alice"], {})[0], 200)
        approved = self.event_of(live, a["id"], "EVENT_TYPE_APPROVED")
        live.close()
        # Resumed with Last-Event-ID (what an EventSource sends when it reconnects): what came
        # after that event, the approval included.
        again = self.stream(base + "/v1/events?after=1", agent,
                            headers=("Last-Event-ID: %d" % ev["id"],))
        self.assertEqual(self.event_of(again, a["id"], "EVENT_TYPE_APPROVED")["id"],
                         approved["id"])
        self.assertTrue(all(e["id"] > ev["id"] for e in again.events), again.events)
        again.close()
        # Only one approval, from its first event: create, then wait, with no race.
        b = self.create("only this one")
        one = self.stream(base + "/v1/events?approvalIds=" + b["id"], agent)
        first = one.wait_events(1)[0]
        self.assertEqual(first["data"]["approval"]["id"], b["id"])
        self.assertEqual(first["data"]["approval"]["status"], "APPROVAL_STATUS_PENDING")
        one.close()
        # Refused before the stream starts: an HTTP error. Failing after: an error event.
        bad = self.stream(base + "/v1/events?statuses=sideways", agent)
        bad.proc.wait(timeout=30)
        self.assertEqual(bad.status, 400, bad.lines)
        nobody = self.stream(base + "/v1/events", "wrong")
        nobody.proc.wait(timeout=30)
        self.assertEqual(nobody.status, 401, nobody.lines)
        beyond = self.stream(base + "/v1/events?after=%d" % 2 ** 62, agent)
        beyond.proc.wait(timeout=30)
        self.assertEqual(beyond.events[-1].get("event"), "error", beyond.lines)
        self.assertEqual(beyond.events[-1]["data"]["code"], 3)

    def test_5_https_tokens_and_client_certificates(self):
        t = self.tmp
        tls = self.start_daemon("--tls-cert", os.path.join(t, "server.pem"),
                                "--tls-key", os.path.join(t, "server.key"), name="tls")
        https = Curl("https://localhost:%d" % http_port(tls), "--cacert", os.path.join(t, "ca.pem"))
        status, _, text, _ = https("GET", "/v1/actionTypes", self.tokens["agent"])
        self.assertEqual(status, 200, text)
        self.assertIsNone(self.http.__class__("http://localhost:%d" % http_port(tls))(
            "GET", "/v1/actionTypes", self.tokens["agent"])[0])  # plaintext is not served

        with open(os.path.join(t, "cert-tokens"), "w") as f:
            f.write("cert spiffe://approvald.test/agent requester\n")
        mtls_daemon = harness.Approvald(
            APPROVALD, self.dsn, os.path.join(t, "cert-tokens"), None, t, name="mtls",
            args=("--http-listen=127.0.0.1:0", "--tls-cert", os.path.join(t, "server.pem"),
                  "--tls-key", os.path.join(t, "server.key"), "--tls-client-ca",
                  os.path.join(t, "ca.pem"), "--principal-from-cert"))
        self.addCleanup(mtls_daemon.stop)
        harness.wait_until(lambda: http_port(mtls_daemon), 10, "the http port")
        url = "https://localhost:%d" % http_port(mtls_daemon)
        mtls = Curl(url, "--cacert", os.path.join(t, "ca.pem"), "--cert",
                    os.path.join(t, "client.pem"), "--key", os.path.join(t, "client.key"))
        status, _, text, a = mtls("POST", "/v1/approvals", body={"actionType": "noop"})
        self.assertEqual(status, 200, text)
        self.assertEqual(a["requestedBy"], "spiffe://approvald.test/agent")
        # No client certificate, or one the CA did not sign: 401, and nothing done.
        anonymous = Curl(url, "--cacert", os.path.join(t, "ca.pem"))
        self.assert_error(anonymous("POST", "/v1/approvals", body={"actionType": "noop"}), 401,
                          16)
        stranger = Curl(url, "--cacert", os.path.join(t, "ca.pem"), "--cert",
                        os.path.join(t, "stranger.pem"), "--key", os.path.join(t, "stranger.key"))
        self.assert_error(stranger("POST", "/v1/approvals", body={"actionType": "noop"}), 401, 16)
        # The gateway's vouching metadata is not taken from a network client.
        forged = Curl(url, "--cacert", os.path.join(t, "ca.pem"),
                      "-H", "approvald-gateway-cert: x spiffe://approvald.test/agent")
        self.assert_error(forged("POST", "/v1/approvals", body={"actionType": "noop"}), 401, 16)

    def test_6_sigterm_with_open_streams_and_calls(self):
        d = self.start_daemon(name="term")
        base = "http://127.0.0.1:%d" % http_port(d)
        streams = [self.stream(base + "/v1/events", self.tokens["agent"]) for _ in range(5)]
        for s in streams:
            harness.wait_until(lambda s=s: s.status, 10, "the stream's head")
        # A request whose body is still coming when the daemon stops.
        slow = socket.create_connection(("127.0.0.1", http_port(d)), timeout=10)
        slow.sendall(b"POST /v1/approvals HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.2)
        d.stop(grace=20, check=True)
        self.assertEqual(d.proc.returncode, 0, d.output())
        for s in streams:
            s.proc.wait(timeout=10)
        slow.close()


if __name__ == "__main__":
    harness.run_tests()
