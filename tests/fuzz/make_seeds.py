#!/usr/bin/python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (checked in; rerun after a format change).

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py   (needs protoc and python3-protobuf)

Also writes the hand-made inputs of the known issues in tests/fuzz/regressions/.

Each target's input format is described at the top of its .cc file. Binary seeds are serialized
requests made with the protoc-generated Python module; page tokens are signed with the key that
fuzz_page_token.cc and fuzz_requests.cc use.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
PAGE_TOKEN_KEY = b"fuzz-page-token-key"
UUID = "5a3e5ca8-490b-4c47-a759-cd3b19f2f271"


def load_protos():
    out = tempfile.mkdtemp(prefix="approvald-seeds-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out=" + out,
                    os.path.join(ROOT, "proto/approvals/v1/approvals.proto"),
                    os.path.join(ROOT, "proto/google/api/annotations.proto"),
                    os.path.join(ROOT, "proto/google/api/http.proto")], check=True)
    sys.path.insert(0, out)
    from approvals.v1 import approvals_pb2  # noqa: E402
    return approvals_pb2, out


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def page_token(action_type="", statuses=(), micros=1764290569123456, id_=UUID):
    canonical = "type=%s;statuses=" % action_type
    for s in sorted(set(statuses)):
        canonical += "%d," % s
    fingerprint = bytes.fromhex(hashlib.sha256(canonical.encode()).hexdigest()[:16])
    payload = b"\x01" + fingerprint + struct.pack(">q", micros) + id_.encode()
    mac = hmac.new(PAGE_TOKEN_KEY, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def requests_seeds(pb):
    def create(name, action_type, data, **kw):
        req = pb.CreateApprovalRequest(action_type=action_type, **kw)
        req.action_data.update(data)
        write("fuzz_requests", name, b"\x00" + req.SerializeToString())

    create("create_refund", "refund.order",
           {"order_id": 42, "amount_cents": 3000, "reason": "arrived late"},
           summary="refund order 42, 30 EUR", idempotency_key="order-42-refund")
    create("create_refund_bad", "refund.order",
           {"order_id": 0, "amount_cents": 100001, "reason": 7, "extra": True}, summary="x")
    create("create_grant_role", "account.grant_role", {"account_id": 7, "role": "billing"},
           summary="grant billing")
    create("create_unlock_ttl", "account.unlock", {"account_id": 8}, summary="unlock",
           ttl={"seconds": 3600})
    create("create_noop_expire", "noop", {"note": "hi", "nested": {"l": [1, "a", None, False]}},
           summary="noop", expire_time={"seconds": 1900000000, "nanos": 5000})
    create("create_every_kind", "fuzz.every_kind",
           {"s": "abc-12", "e": "blue sky", "i": -5, "n": 0.5, "b": True, "o": {"x": {}},
            "a": [1, [2, [3]]], "k": 2}, summary="every kind")
    create("create_every_kind_bad", "fuzz.every_kind",
           {"s": "ABC", "e": "blue", "i": 1.5, "n": 0.25, "b": "yes", "o": [], "a": {}, "k": 4},
           summary="every kind, all wrong")
    create("create_big_numbers", "noop",
           {"big": 1e300, "tiny": 5e-324, "neg": -0.0, "max_int": 9007199254740993},
           summary="numbers")
    create("create_unicode_keys", "refund.order",
           dict({"order_id": 1, "amount_cents": 1, "reason": "r"},
                **{"\u00e9\u00e8\u00ea\u4e2d\u6587%03d" % i: i for i in range(40)}),
           summary="many undeclared keys with multibyte names")
    create("create_long_unicode_key", "refund.order",
           {"order_id": 1, "amount_cents": 1, "reason": "r", "\u00e9" * 600: 1},
           summary="an undeclared key longer than an error message")
    create("create_bad_fields", "Bad Type!", {"x": 1}, summary="a\x00b",
           idempotency_key="has space", ttl={"seconds": 0, "nanos": 10})
    deep = {}
    cur = deep
    for _ in range(25):
        cur["d"] = {}
        cur = cur["d"]
    create("create_deep", "noop", deep, summary="too deep")

    def other(kind, name, msg):
        write("fuzz_requests", name, bytes([kind]) + msg.SerializeToString())

    other(1, "get", pb.GetApprovalRequest(id=UUID))
    other(1, "get_bad", pb.GetApprovalRequest(id="5a3e5ca8-490b-4c47-a759-cd3b19f2f27g"))
    other(2, "list", pb.ListApprovalsRequest(statuses=[1, 2], action_type="refund.order",
                                             page_size=20))
    other(2, "list_token", pb.ListApprovalsRequest(
        statuses=[1], action_type="noop",
        page_token=page_token("noop", [1])))
    other(2, "list_bad", pb.ListApprovalsRequest(statuses=[0, 99], action_type="X",
                                                 page_size=-1, page_token="!!"))
    other(3, "approve", pb.ApproveRequest(id=UUID, expected_version=1, comment="ok",
                                          request_id="req-1"))
    other(4, "reject", pb.RejectRequest(id=UUID, reason="not needed", expected_version=2))
    other(4, "reject_blank", pb.RejectRequest(id=UUID, reason=" \t\n", expected_version=-1))
    other(5, "cancel", pb.CancelApprovalRequest(id=UUID, reason="changed my mind"))
    other(6, "watch", pb.WatchApprovalsRequest(statuses=[1, 3], action_type="noop",
                                               after_event_id=12345))
    other(6, "watch_bad", pb.WatchApprovalsRequest(statuses=[7], after_event_id=-2))
    other(7, "list_action_types", pb.ListActionTypesRequest())


def struct_json_seeds():
    from google.protobuf import struct_pb2
    samples = {
        "refund": {"order_id": 42, "amount_cents": 3000, "reason": "arrived late"},
        "nested": {"a": {"b": {"c": [1, 2, {"d": None}]}}, "t": True, "f": False},
        "unicode": {"\u00e9": "caf\u00e9 \u4e2d\u6587 \U0001f600", "esc": "\"\\/\b\f\n\r\t\x01"},
        "numbers": {"big": 1e300, "small": 1.2345678901234567e-7, "neg": -0.0, "frac": 0.1,
                    "int53": 9007199254740991, "min": 5e-324, "e": 2.718281828459045},
        "result": {"statements": [{"rows": [{"refunded_cents": 3000, "id": 42}], "row_count": 1}]},
        "empty": {},
    }
    for name, value in samples.items():
        s = struct_pb2.Struct()
        s.update(value)
        write("fuzz_struct_json", "struct_" + name, b"\x00" + s.SerializeToString())
        write("fuzz_struct_json", "json_" + name, b"\x01" + json.dumps(value).encode())
    s = struct_pb2.Struct()
    s.update({"a\x00b": 1, "ok": "x"})
    write("fuzz_struct_json", "struct_nul_key", b"\x00" + s.SerializeToString())
    # Text as PostgreSQL's jsonb prints it.
    write("fuzz_struct_json", "jsonb_numbers",
          b'\x01{"e": 2.718281828459045, "big": 1' + b"0" * 300 +
          b', "neg": -0, "small": 0.00000012345678901234567}')
    write("fuzz_struct_json", "jsonb_unicode", '\x01{"k": "\\u00e9\\ud83d\\ude00", "a": [1, []]}')
    write("fuzz_struct_json", "json_not_object", b"\x01[1, 2, 3]")
    write("fuzz_struct_json", "json_dup_keys", b'\x01{"a": 1, "a": 2}')


def config_seeds():
    shutil.copy(os.path.join(ROOT, "deploy/approvald.yaml"),
                os.path.join(CORPUS, "fuzz_config", "deploy_approvald.yaml"))
    write("fuzz_config", "every_option.yaml", """\
version: 1
action_types:
  - name: refund.order
    description: Refund
    handler: sql
    parameters:
      - {name: order_id, type: integer, required: true, minimum: 1}
      - {name: channel, type: string, enum: [email, phone], max_length: 10, pattern: "[a-z]+"}
      - {name: ratio, type: number, minimum: 0.5, maximum: 2.5}
      - {name: flag, type: boolean, enum: [true]}
      - {name: meta, type: object}
      - {name: tags, type: array, description: free-form tags}
    additional_parameters: false
    approver_roles: [approver]
    requester_roles: [agent]
    default_ttl: 2h
    max_ttl: 7d
    allow_self_approval: true
    required_approvals: 2
    sql:
      - statement: UPDATE orders SET x = 1 WHERE id = :order_id
        expect_rows: {at_least: 1}
      - statement: "SELECT :approval_id, :decided_by, :requested_by, :action_data::jsonb"
        expect_rows: {at_most: 3}
      - "SELECT :channel, ':not', \\"c:z\\", $q$ :v $q$ /* :u */ -- :w"
  - name: noop
  - name: cpp.thing
    handler: test.cpp
    default_ttl: 90s
    max_ttl: 36500d
""")
    write("fuzz_config", "anchors_and_flow.yaml", """\
defaults: &d {handler: noop, approver_roles: [a, b]}
action_types: [{name: a.b, <<: *d}, {name: c_d, handler: noop, required_approvals: 100}]
""")
    write("fuzz_config", "errors.yaml", """\
action_types:
  - name: a
    handler: sql
    sql: ["select $1", "select :x"]
  - name: a
    parameters:
      - {name: p, type: string, pattern: "("}
""")
    write("fuzz_config", "json_style.yaml",
          '{"action_types": [{"name": "x", "parameters": [{"name": "n", "type": "number", '
          '"enum": [1.5, 2e10, -0]}], "default_ttl": "1h30m", "max_ttl": "2h"}]}\n')
    write("fuzz_config", "block_scalars.yaml", """\
action_types:
  - name: block.sql
    handler: sql
    parameters: [{name: id, type: integer}]
    sql:
      - statement: |
          UPDATE t SET a = 'it''s :no' -- :no
          WHERE id = :id AND b = $tag$ :no $tag$
        expect_rows: {exactly: 0}
      - >-
        SELECT :id::int
""")


def tokens_seeds():
    def h(t):
        return hashlib.sha256(t.encode()).hexdigest()
    write("fuzz_tokens", "dev_tokens",
          "# dev tokens\n\n%s agent requester\n%s alice approver\n%s\tbob\tapprover,admin\n"
          % (h("t-agent"), h("t-alice"), h("t-bob")))
    write("fuzz_tokens", "certs",
          "cert spiffe://example.org/agent requester\ncert approver.example.org approver,,admin\n"
          "%s svc\n" % h("svc").upper())
    write("fuzz_tokens", "bad_lines",
          "not-a-hash alice approver\n%s\n%s a b c\n" % (h("x"), h("y")))
    write("fuzz_tokens", "duplicates", "%s a\n%s b\ncert x\ncert x r\n" % (h("x"), h("x").upper()))
    write("fuzz_tokens", "crlf_and_spaces", "  %s  carol  r1,r2  \r\n\r\n#c\r\n" % h("c"))
    write("fuzz_tokens", "bearer_header", "Bearer t-alice\n%s alice approver\n" % h("t-alice"))


def sql_seeds():
    seeds = {
        "update": "UPDATE orders SET refunded_cents = refunded_cents + :amount_cents\n"
                  "WHERE id = :order_id\nRETURNING id, total_cents, refunded_cents",
        "insert_builtins": "INSERT INTO refunds (order_id, amount_cents, reason, approval_id, "
                           "approved_by) VALUES (:order_id, :amount_cents, :reason, :approval_id, "
                           ":decided_by) RETURNING id",
        "quotes": "SELECT 'it''s :not' || :yes, \"col:umn\"\"x\", E'a\\':no', :yes",
        "comments": "SELECT :a -- :b\n, /* :c /* nested :d */ :e */ :f",
        "dollar": "SELECT $$ :a $$, $tag$ :b $tag$, $t1$ $$ :c $t1$, x$y, :d",
        "casts": "SELECT :a::int, :b::jsonb->>'k', c::text, arr[1:2], :e:::f, :=",
        "positional": "SELECT $1, :a",
        "unterminated": "SELECT ':a, \":b, $q$ :c, /* :d",
        "action_data": "SELECT (:action_data::jsonb)->>'x', :requested_by, :approval_id::uuid",
        "many_names": "SELECT " + ", ".join(":p%d" % i for i in range(12)),
        "with_data": "UPDATE t SET j = :j, n = :n, s = :s, b = :b, z = :z WHERE id = :id\x00"
                     '{"j": {"a": [1, "x"]}, "n": 1e300, "s": "it\'s", "b": false, "z": null, '
                     '"id": -9007199254740991}',
        "with_data_numbers": "SELECT :a, :b, :c, :d\x00"
                             '{"a": 0.1, "b": 9.2e18, "c": -0.0, "d": 1e-300}',
        "with_jsonb_cell": "SELECT :x\x00{\"x\": 1, \"big\": 1" + "0" * 400 + "}",
    }
    for name, text in seeds.items():
        write("fuzz_sql_template", name, text)


def page_token_seeds(pb):
    def seed(name, mode, filters, rest):
        f = filters.SerializeToString()
        write("fuzz_page_token", name, bytes([mode, len(f)]) + f + rest)

    noop = pb.ListApprovalsRequest(statuses=[1], action_type="noop")
    seed("decode_noop", 0, noop, page_token("noop", [1]).encode())
    seed("decode_any", 0, pb.ListApprovalsRequest(), page_token("", [], 0).encode())
    seed("decode_many_statuses", 0, pb.ListApprovalsRequest(statuses=[6, 2, 2, 1]),
         page_token("", [6, 2, 1], -1).encode())
    seed("decode_wrong_filters", 0, pb.ListApprovalsRequest(action_type="other"),
         page_token("noop", [1]).encode())
    seed("decode_padded", 0, noop, (page_token("noop", [1]) + "==").encode())
    seed("decode_garbage", 0, noop, b"!!not base64!!")
    t = page_token("noop", [1])
    seed("decode_whitespace", 0, noop, (t[:40] + "\n\t " + t[40:] + "\r\n").encode())
    seed("encode_noop", 1, noop, struct.pack(">q", 1764290569123456) + UUID.encode())
    seed("encode_negative", 1, pb.ListApprovalsRequest(), struct.pack(">q", -1) + UUID.upper().encode())
    seed("encode_not_uuid", 1, noop, struct.pack(">q", 5) + b"5a3e5ca8-490b-4c47-a759-cd3b19f2f27!")
    seed("encode_short_id", 1, noop, struct.pack(">q", 5) + b"abc")


def ld(field, payload):
    """A length-delimited protobuf field."""
    n, out = len(payload), b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return bytes([(field << 3) | 2]) + out + payload


def regression_inputs():
    """Inputs for the known issues (see regressions/README.md); written next to the ones found."""
    number = lambda d: b"\x11" + struct.pack("<d", d)               # Value.number_value
    odd_list = ld(6, b"\x10\x05")  # Value.list_value: an empty ListValue with unknown field 2 = 5
    entry = lambda key, value: ld(1, ld(1, key.encode()) + ld(2, value))  # Struct.fields entry
    items = ld(6, ld(1, number(1)) + ld(1, odd_list) + ld(1, number(3)))  # [1, <odd>, 3]

    def write_regression(target, name, data):
        d = os.path.join(HERE, "regressions", target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    create = (ld(1, b"noop") + ld(2, entry("items", items) + entry("tags", odd_list)) +
              ld(3, b"list element and key dropped"))
    write_regression("fuzz_requests", "empty-list-with-unknown-field-create", b"\x00" + create)
    write_regression("fuzz_struct_json", "empty-list-with-unknown-field-struct",
                     b"\x00" + entry("items", items) + entry("tags", odd_list))
    write_regression("fuzz_config", "not-utf8-description.yaml",
                     b"action_types:\n  - name: noop\n    description: caf\xe9 cr\xe8me\n")


def main():
    pb, tmp = load_protos()
    try:
        for target in ("fuzz_requests", "fuzz_struct_json", "fuzz_config", "fuzz_tokens",
                       "fuzz_sql_template", "fuzz_page_token"):
            shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)
            os.makedirs(os.path.join(CORPUS, target))
        requests_seeds(pb)
        struct_json_seeds()
        config_seeds()
        tokens_seeds()
        sql_seeds()
        page_token_seeds(pb)
        regression_inputs()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
