#!/usr/bin/python3
"""approvald inside an application's database, with the real binary and PostgreSQL.

1. Beside an application that has its own public.schema_migrations (golang-migrate's shape, at
   version 20240101) and tables named events, approvals and votes: `approvald migrate`
   succeeds, the application's tables are untouched, and a `sql` action updates `orders`
   unqualified.
2. Upgrade from the layout of releases before approvald's own schema (tables in public, made
   by db/migrations 0001-0006 as those releases applied them) with approvals, votes, events
   and request ids in it: all of it is in the schema afterwards, ids unchanged, and a watch
   resumes from a pre-upgrade event id with nothing skipped or repeated.
3. The roles of deploy/postgres/roles.sql: migrate as the owner, serve every RPC and the
   example actions as the runtime role, which cannot drop, alter or empty approvald's tables.
4. --db-schema: another schema holds everything, and bad names are refused.

usage: schema_e2e.py APPROVALD APPROVALCTL REPO_ROOT   (APPROVALD_TEST_DSN must be set)
"""

import glob
import json
import os
import re
import subprocess
import sys
import uuid

APPROVALD, APPROVALCTL, ROOT = sys.argv[1:4]
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
from harness import psql  # noqa: E402

CONFIG = os.path.join(ROOT, "deploy", "approvald.yaml")
EXAMPLE_SCHEMA = os.path.join(ROOT, "deploy", "dev", "example_schema.sql")
MIGRATIONS = sorted(glob.glob(os.path.join(ROOT, "db", "migrations", "*.sql")))
OLD_RELEASE_MIGRATIONS = MIGRATIONS[:6]  # 0001-0006: what the last release without a schema had


class SchemaTest(harness.DatabaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.set_up_database("schema", APPROVALCTL,
                            {"agent": "requester", "alice": "approver", "bob": "approver"})

    def new_database(self):
        name = "approvald_schema_%s" % uuid.uuid4().hex[:12]
        admin = self.server_dsn + " dbname=postgres"
        psql("CREATE DATABASE " + name, admin)
        self.addCleanup(psql, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, admin)
        return self.server_dsn + " dbname=" + name

    def psql_file(self, path, dsn, *variables):
        subprocess.run(["psql", dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", *variables, "-f", path],
                       check=True, capture_output=True, text=True, timeout=60)

    def migrate(self, dsn):
        run = subprocess.run([APPROVALD, "migrate", "--dsn", dsn], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        return run

    def ctl(self, target, who, *args, check=True):
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens[who])
        run = subprocess.run([APPROVALCTL, "--addr", target, "--json", *args],
                             capture_output=True, text=True, env=env, timeout=60)
        if check:
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        return run

    def daemon(self, dsn, name):
        d = harness.Approvald(APPROVALD, dsn, self.tokens_file, CONFIG, self.tmp, name=name,
                              args=("--expiry-interval=200ms",))
        self.addCleanup(d.stop)
        return d

    def refund(self, target, order_id, cents):
        created = json.loads(self.ctl(target, "agent", "create", "--type", "refund.order",
                                      "--data", json.dumps({"order_id": order_id,
                                                            "amount_cents": cents,
                                                            "reason": "damaged"})).stdout)
        approved = json.loads(self.ctl(target, "alice", "approve", created["id"]).stdout)
        self.assertEqual(approved["status"], "APPROVAL_STATUS_APPROVED")
        return approved

    def test_1_beside_an_application(self):
        dsn = self.new_database()
        psql("""
            CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
            INSERT INTO schema_migrations VALUES (20240101, false);
            CREATE TABLE events (id serial PRIMARY KEY, what text);
            CREATE TABLE approvals (id serial PRIMARY KEY, who text);
            CREATE TABLE votes (id serial PRIMARY KEY, n integer);
            INSERT INTO events (what) VALUES ('signup'), ('login');
            INSERT INTO approvals (who) VALUES ('legal');
            INSERT INTO votes (n) VALUES (1), (2), (3);""", dsn)
        self.psql_file(EXAMPLE_SCHEMA, dsn)
        app_tables = ("schema_migrations", "events", "approvals", "votes")

        def snapshot():
            return {t: psql("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) "
                            "FROM public.%s t" % t, dsn)[0][0] for t in app_tables}
        before = snapshot()
        self.migrate(dsn)
        self.migrate(dsn)  # again: nothing to do
        self.assertEqual(snapshot(), before)
        self.assertEqual(psql("SELECT max(version) FROM approvald.schema_migrations", dsn),
                         [[str(len(MIGRATIONS))]])
        # approvald's objects are all in its schema: public holds only the application's.
        self.assertEqual(sorted(r[0] for r in psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", dsn)),
            sorted(app_tables + ("orders", "refunds", "accounts")))

        d = self.daemon(dsn, "beside")
        self.refund(d.target, 42, 500)
        self.assertEqual(psql("SELECT refunded_cents FROM public.orders WHERE id = 42", dsn),
                         [["500"]])
        self.assertEqual(psql("SELECT count(*) FROM public.refunds", dsn), [["1"]])
        self.assertEqual(snapshot(), before)

    def test_2_upgrade_from_the_public_layout(self):
        dsn = self.new_database()
        # As the last release's `approvald migrate` applied its migrations: in public.
        for path in OLD_RELEASE_MIGRATIONS:
            stem = os.path.basename(path)[:-4]
            subprocess.run(["psql", dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-1", "-f", path,
                            "-c", "INSERT INTO schema_migrations (version, name) VALUES "
                                  "(%d, '%s')" % (int(stem[:4]), stem)],
                           check=True, capture_output=True, text=True, timeout=60)
        pending, approved, voted = (str(uuid.uuid4()) for _ in range(3))
        for sql in (
                "INSERT INTO ai_approvals (id, action_type, summary, requested_by, expires_at) "
                "VALUES ('%s', 'noop', 'old pending', 'agent', now() + interval '1 day'), "
                "('%s', 'noop', 'old approved', 'agent', now() + interval '1 day'), "
                "('%s', 'noop', 'old voted', 'agent', now() + interval '1 day')"
                % (pending, approved, voted),
                "INSERT INTO approval_events (approval_id, type, actor, version, approval) "
                "SELECT id, 'created', requested_by, 1, to_jsonb(a) || '{\"votes\": []}' "
                "FROM ai_approvals a",
                "INSERT INTO approval_votes (approval_id, voter, comment) "
                "VALUES ('%s', 'bob', 'one of two')" % voted,
                "UPDATE ai_approvals SET version = 2 WHERE id = '%s'" % voted,
                "INSERT INTO approval_events (approval_id, type, actor, version, detail, approval) "
                "SELECT id, 'voted', 'bob', 2, '{\"votes\": 1, \"required\": 2}', "
                "to_jsonb(a) || jsonb_build_object('votes', approval_votes_json(id)) "
                "FROM ai_approvals a WHERE id = '%s'" % voted,
                "UPDATE ai_approvals SET status = 'approved', decided_by = 'alice', "
                "decided_at = now(), executed_at = now(), execution_result = '{\"ok\": true}', "
                "version = 2 WHERE id = '%s'" % approved,
                "INSERT INTO approval_events (approval_id, type, actor, version, detail, approval) "
                "SELECT id, 'approved', 'alice', 2, '{\"request_id\": \"r-1\"}', "
                "to_jsonb(a) || '{\"votes\": []}' FROM ai_approvals a WHERE id = '%s'" % approved,
                "INSERT INTO decision_requests (actor, request_id, approval_id, method, code) "
                "VALUES ('alice', 'r-1', '%s', 'approve', 0)" % approved):
            psql(sql, dsn)  # each its own transaction: events with ids in commit order
        old = {
            "approvals": psql("SELECT id, status, version FROM ai_approvals ORDER BY id", dsn),
            "events": psql("SELECT id, approval_id, type FROM approval_events ORDER BY id", dsn),
            "votes": psql("SELECT approval_id, voter FROM approval_votes", dsn),
            "requests": psql("SELECT actor, request_id FROM decision_requests", dsn),
            "key": psql("SELECT value FROM approvald_settings", dsn),
        }
        self.assertEqual(len(old["events"]), 5)
        self.psql_file(EXAMPLE_SCHEMA, dsn)  # the tables of the config's sql actions

        self.migrate(dsn)
        new = {
            "approvals": psql("SELECT id, status, version FROM approvald.approvals ORDER BY id",
                              dsn),
            "events": psql("SELECT id, approval_id, type FROM approvald.events ORDER BY id", dsn),
            "votes": psql("SELECT approval_id, voter FROM approvald.votes", dsn),
            "requests": psql("SELECT actor, request_id FROM approvald.decision_requests", dsn),
            "key": psql("SELECT value FROM approvald.settings", dsn),
        }
        self.assertEqual(new, old)
        self.assertEqual(sorted(r[0] for r in psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", dsn)),
            ["accounts", "orders", "refunds"])  # the application's, nothing of approvald
        self.assertEqual(psql("SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                              "ON n.oid = p.pronamespace WHERE n.nspname = 'public'", dsn),
                         [["0"]])
        self.assertEqual(psql("SELECT string_agg(version::text, ',' ORDER BY version) "
                              "FROM approvald.schema_migrations", dsn),
                         [[",".join(str(v) for v in range(1, len(MIGRATIONS) + 1))]])

        d = self.daemon(dsn, "upgraded")
        # A watch resumed from the first pre-upgrade event: the other four old ones, then new.
        env = dict(os.environ, APPROVALD_TOKEN=self.tokens["alice"])
        watch = subprocess.Popen([APPROVALCTL, "--addr", d.target, "--json", "watch", "--after",
                                  old["events"][0][0], "--count", "7"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env)
        decided = json.loads(self.ctl(d.target, "alice", "approve", pending).stdout)
        self.assertEqual(decided["status"], "APPROVAL_STATUS_APPROVED")
        # The request id recorded before the upgrade still answers its first outcome.
        again = json.loads(self.ctl(d.target, "alice", "approve", approved, "--request-id",
                                    "r-1").stdout)
        self.assertEqual((again["id"], again["status"]), (approved, "APPROVAL_STATUS_APPROVED"))
        # The approval bob voted on before the upgrade keeps its vote when alice approves it.
        decided = json.loads(self.ctl(d.target, "alice", "approve", voted).stdout)
        self.assertEqual([v["voter"] for v in decided.get("votes", [])], ["bob"])
        created = json.loads(self.ctl(d.target, "agent", "create", "--type", "noop").stdout)
        out, err = watch.communicate(timeout=60)
        self.assertEqual(watch.returncode, 0, err)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        ids = [int(e["event_id"]) for e in events]
        self.assertEqual(ids[:4], [int(e[0]) for e in old["events"][1:]])
        self.assertEqual(len(set(ids)), len(ids))
        self.assertEqual(ids, sorted(ids))
        self.assertEqual([e["approval"]["id"] for e in events[4:]],
                         [pending, voted, created["id"]])

    def test_3_least_privilege_roles(self):
        suffix = uuid.uuid4().hex[:8]
        owner, runtime = "approvald_owner_" + suffix, "approvald_runtime_" + suffix
        admin = self.server_dsn + " dbname=postgres"
        # Cleanups run last first: the roles go after the database that holds their objects.
        self.addCleanup(psql, "DROP ROLE IF EXISTS %s, %s" % (owner, runtime), admin)
        dsn = self.new_database()
        self.psql_file(os.path.join(ROOT, "deploy", "postgres", "roles.sql"), dsn,
                       "-v", "owner=" + owner, "-v", "runtime=" + runtime)
        self.psql_file(EXAMPLE_SCHEMA, dsn)
        psql("GRANT SELECT, UPDATE ON orders TO {r}; GRANT SELECT, INSERT ON refunds TO {r}; "
             "GRANT USAGE ON SEQUENCE refunds_id_seq TO {r}".format(r=runtime), dsn)
        self.migrate(dsn + " user=" + owner)
        as_runtime = dsn + " user=" + runtime

        d = self.daemon(as_runtime, "runtime")
        types = json.loads(self.ctl(d.target, "alice", "types").stdout)
        self.assertIn("refund.order", [t["name"] for t in types["action_types"]])
        self.refund(d.target, 43, 700)
        self.assertEqual(psql("SELECT refunded_cents FROM orders WHERE id = 43", dsn), [["700"]])
        rejected = json.loads(self.ctl(d.target, "agent", "create", "--type", "noop").stdout)
        self.ctl(d.target, "alice", "reject", rejected["id"], "--reason", "no")
        cancelled = json.loads(self.ctl(d.target, "agent", "create", "--type", "noop").stdout)
        self.ctl(d.target, "agent", "cancel", cancelled["id"])
        self.ctl(d.target, "alice", "get", cancelled["id"])
        listed = json.loads(self.ctl(d.target, "alice", "list", "--requested-by",
                                     "agent").stdout)
        self.assertEqual(len(listed["approvals"]), 3)
        events = self.ctl(d.target, "alice", "watch", "--after", "1", "--count", "6").stdout
        self.assertEqual(len(events.splitlines()), 6)
        short = json.loads(self.ctl(d.target, "agent", "create", "--type", "noop", "--ttl",
                                    "1s").stdout)
        wait = self.ctl(d.target, "agent", "wait", short["id"], check=False)
        self.assertEqual(wait.returncode, 1, wait.stdout + wait.stderr)  # expired by the sweeper

        for sql in ("DROP TABLE approvald.approvals",
                    "ALTER TABLE approvald.approvals ADD COLUMN x integer",
                    "CREATE TABLE approvald.x (i integer)",
                    "DELETE FROM approvald.events",
                    "TRUNCATE approvald.votes",
                    "DROP FUNCTION approvald.approval_votes_json"):
            run = subprocess.run(["psql", as_runtime, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c",
                                  sql], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(run.returncode, 0, sql)
            self.assertTrue(re.search(r"permission denied|must be owner", run.stderr),
                            sql + ": " + run.stderr)


    def test_4_another_schema(self):
        dsn = self.new_database()
        for bad in ("public", "pg_x", "Upper", "a-b", ""):
            run = subprocess.run([APPROVALD, "migrate", "--dsn", dsn, "--db-schema=" + bad],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(run.returncode, 2, bad + ": " + run.stderr)
            self.assertIn("--db-schema", run.stderr)
        self.psql_file(EXAMPLE_SCHEMA, dsn)
        d = harness.Approvald(APPROVALD, dsn, self.tokens_file, CONFIG, self.tmp, name="other",
                              args=("--db-schema=approvals_app",))
        self.addCleanup(d.stop)
        self.refund(d.target, 42, 100)
        # Every statement named approvals_app, none approvald (which does not even exist).
        self.assertEqual(psql("SELECT count(*) FROM approvals_app.approvals", dsn), [["1"]])
        self.assertEqual(psql("SELECT count(*) FROM approvals_app.events", dsn), [["2"]])
        self.assertEqual(psql("SELECT to_regnamespace('approvald') IS NULL", dsn), [["t"]])
        self.assertEqual(psql("SELECT refunded_cents FROM orders WHERE id = 42", dsn), [["100"]])

if __name__ == "__main__":
    harness.run_tests()
