"""A webhook receiver for the tests: it checks every request's Standard Webhooks signature
(webhook-id, webhook-timestamp, webhook-signature: v1,base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}"), records it, and can be told to fail or stall requests.

    receiver = webhook_receiver.serve(secrets=["whsec_..."])   # on a thread, a free port
    receiver.url + "/hooks"
    receiver.fail_first(2, every=20)  # every 20th new webhook-id: its first 2 attempts get 500
    receiver.stall_every(50, 3)   # every 50th new webhook-id: the first attempt sleeps 3 s
    receiver.set_status(503)      # every request answers 503 until set_status(None)
    receiver.deliveries()         # every request: dicts with id, body (parsed), status, ok
    receiver.accepted()           # the ones answered 2xx, in arrival order
    receiver.bad_signatures()     # requests whose signature did not verify (answered 401)
    receiver.close()

Standard library only (http.server, hmac, base64).
"""

import base64
import collections
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300  # the specification's suggested window for webhook-timestamp


def secret_key(secret):
    """The HMAC key of a secret: whsec_ + base64 is decoded, anything else is used as bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify(secrets, headers, body):
    """True if one of the signatures of the request is one of secrets' (the spec's check,
    constant-time compare, with the timestamp window)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return False
    try:
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            return False
    except ValueError:
        return False
    signed = b"%s.%s.%s" % (msg_id.encode(), timestamp.encode(), body)
    expected = [base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest())
                for s in secrets]
    for part in signatures.split(" "):
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        if any(hmac.compare_digest(value.encode(), e) for e in expected):
            return True
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as senders reuse connections
    disable_nagle_algorithm = True  # the answer's head and body go out without waiting for an ACK

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, stall = self.server.judge(self.path, self.headers, body)
        if stall:
            time.sleep(stall)
        data = b'{"ok": true}' if status < 300 else b'{"error": "receiver says no"}'
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the sender gave up (its timeout)


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, secrets):
        super().__init__(address, _Handler)
        self.secrets = list(secrets)
        self._lock = threading.Lock()
        self._log = []
        self._attempts = collections.Counter()  # webhook-id -> attempts seen
        self._new_ids = 0
        self._fail_first = 0
        self._fail_every = 1
        self._failing = set()  # webhook-ids picked to fail their first attempts
        self._stall_every = 0
        self._stall_seconds = 0
        self._status = None
        self._thread = None

    @property
    def url(self):
        host, port = self.server_address[:2]
        return "http://%s:%d" % (host, port)

    def handle_error(self, request, client_address):
        pass  # a sender that closed its connection (after its timeout, or done) is not news

    def fail_first(self, n, every=1):
        with self._lock:
            self._fail_first, self._fail_every = n, every

    def stall_every(self, every, seconds):
        with self._lock:
            self._stall_every, self._stall_seconds = every, seconds

    def set_status(self, status):
        with self._lock:
            self._status = status

    def judge(self, path, headers, body):
        """(status, seconds to stall) for a request; records it."""
        ok = verify(self.secrets, headers, body)
        msg_id = headers.get("webhook-id", "")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        with self._lock:
            self._attempts[msg_id] += 1
            attempt = self._attempts[msg_id]
            stall = 0
            if attempt == 1:
                self._new_ids += 1
                if self._stall_every and self._new_ids % self._stall_every == 0:
                    stall = self._stall_seconds
                if self._fail_first and self._new_ids % self._fail_every == 0:
                    self._failing.add(msg_id)
            if not ok:
                status = 401
            elif self._status is not None:
                status = self._status
            elif stall:
                status = 500  # if the sender still listens after the stall
            elif msg_id in self._failing and attempt <= self._fail_first:
                status = 500
            else:
                status = 204 if path.endswith("/empty") else 200
            self._log.append({"id": msg_id, "path": path, "body": parsed, "status": status,
                              "ok": ok, "attempt": attempt, "headers": dict(headers)})
        return status, stall

    def deliveries(self):
        with self._lock:
            return list(self._log)

    def accepted(self):
        with self._lock:
            return [d for d in self._log if d["status"] < 300]

    def bad_signatures(self):
        with self._lock:
            return [d for d in self._log if not d["ok"]]

    def close(self):
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
        self.server_close()


def serve(secrets, host="127.0.0.1", port=0):
    server = WebhookReceiver((host, port), secrets)
    server._thread = threading.Thread(target=server.serve_forever, daemon=True,
                                      name="webhook-receiver")
    server._thread.start()
    return server
