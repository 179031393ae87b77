-- An example business schema for the dev setup: the tables that deploy/approvald.yaml's `sql`
-- actions change. Applied by deploy/dev/run (idempotent). Not part of approvald's own schema.

CREATE TABLE IF NOT EXISTS orders (
    id              bigint PRIMARY KEY,
    customer        text NOT NULL,
    total_cents     bigint NOT NULL CHECK (total_cents >= 0),
    refunded_cents  bigint NOT NULL DEFAULT 0,
    CONSTRAINT refund_within_total CHECK (refunded_cents BETWEEN 0 AND total_cents)
);

CREATE TABLE IF NOT EXISTS refunds (
    id            bigserial PRIMARY KEY,
    order_id      bigint NOT NULL REFERENCES orders (id),
    amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
    reason        text NOT NULL,
    approval_id   uuid NOT NULL UNIQUE,
    approved_by   text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS accounts (
    id         bigint PRIMARY KEY,
    email      text NOT NULL,
    locked     boolean NOT NULL DEFAULT false,
    role       text NOT NULL DEFAULT 'user'
);

INSERT INTO orders (id, customer, total_cents) VALUES
    (42, 'ada@example.com', 12000), (43, 'grace@example.com', 4500)
ON CONFLICT (id) DO NOTHING;
INSERT INTO accounts (id, email, locked) VALUES
    (7, 'linus@example.com', true), (8, 'barbara@example.com', false)
ON CONFLICT (id) DO NOTHING;
