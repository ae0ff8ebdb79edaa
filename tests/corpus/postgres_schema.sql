-- Fixture schema for tests/corpus/postgres.tsv: run on the PRIMARY, database rwsplit_test,
-- as user rwsplit (e.g. scripts/postgres.sh load-schema). Re-runnable: everything is dropped first.
-- Format contract: one statement per line, each ending with ';', no ';' inside a statement,
-- function bodies kept on one line. Lines starting with '--' and blank lines are comments.
DROP MATERIALIZED VIEW IF EXISTS order_totals CASCADE;
DROP MATERIALIZED VIEW IF EXISTS mv_tmp CASCADE;
DROP VIEW IF EXISTS active_users CASCADE;
DROP VIEW IF EXISTS v_tmp CASCADE;
DROP TABLE IF EXISTS order_items, orders, products, users, kw_table, audit_log, events, users_copy, users_copy2, new_table, tmp_created, tmp_unlogged, tmp_ctas CASCADE;
DROP SCHEMA IF EXISTS scratch CASCADE;
DROP SEQUENCE IF EXISTS s1;
DROP SEQUENCE IF EXISTS s2;
DROP FUNCTION IF EXISTS volatile_insert();
DROP FUNCTION IF EXISTS immutable_add(int, int);
DROP FUNCTION IF EXISTS stable_now();
DROP FUNCTION IF EXISTS tmp_fn(int);
DROP PROCEDURE IF EXISTS log_msg(text);
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL DEFAULT 'anon', email text UNIQUE, active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00', profile jsonb, tags text[]);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, stock int NOT NULL DEFAULT 0, attrs jsonb NOT NULL DEFAULT '{}');
CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id) ON DELETE CASCADE, status text NOT NULL DEFAULT 'new', total numeric(10,2) NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00');
CREATE TABLE order_items (order_id int NOT NULL REFERENCES orders(id) ON DELETE CASCADE, product_id int NOT NULL REFERENCES products(id), qty int NOT NULL, price numeric(10,2) NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE kw_table (id serial PRIMARY KEY, "update" text, "select" int, "delete" boolean DEFAULT false, "Mixed Case" text);
CREATE TABLE audit_log (id serial PRIMARY KEY, msg text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, during tstzrange);
CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE INDEX events_payload_idx ON events USING gin (payload);
CREATE SEQUENCE s1 START 1;
CREATE VIEW active_users AS SELECT id, name, email FROM users WHERE active;
CREATE FUNCTION volatile_insert() RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO audit_log (msg) VALUES ('volatile_insert') RETURNING id $$;
CREATE FUNCTION immutable_add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION stable_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT now() $$;
CREATE PROCEDURE log_msg(m text) LANGUAGE sql AS $$ INSERT INTO audit_log (msg) VALUES (m) $$;
INSERT INTO users (name, email, active, profile, tags) VALUES ('alice', 'alice@example.com', true, '{"age": 31, "city": "Paris", "langs": ["en", "fr"]}', ARRAY['admin', 'beta']), ('bob', 'bob@example.com', true, '{"age": 25, "city": "Berlin", "langs": ["de"]}', ARRAY['beta']), ('carol', 'carol@example.com', false, '{"age": 47, "city": "Paris"}', ARRAY[]::text[]), ('dave', NULL, true, NULL, NULL), ('O''Brien', 'ob@example.com', true, '{"age": 38, "note": "DELETE FROM users"}', ARRAY['select', 'update']);
INSERT INTO products (id, name, price, stock, attrs) VALUES (1, 'widget', 9.99, 100, '{"color": "red", "size": "S"}'), (2, 'gadget', 24.50, 0, '{"color": "blue"}'), (3, 'doohickey', 3.25, 42, '{"color": "red", "tags": ["sale"]}'), (4, 'thingamajig', 120.00, 7, '{}');
INSERT INTO orders (user_id, status, total, created_at) VALUES (1, 'paid', 44.48, '2024-01-02 10:00:00+00'), (1, 'new', 9.99, '2024-02-03 11:00:00+00'), (2, 'shipped', 120.00, '2024-02-10 12:00:00+00'), (3, 'cancelled', 6.50, '2024-03-01 09:30:00+00'), (5, 'paid', 13.24, '2024-03-15 16:45:00+00');
INSERT INTO order_items (order_id, product_id, qty, price) VALUES (1, 1, 2, 9.99), (1, 2, 1, 24.50), (2, 1, 1, 9.99), (3, 4, 1, 120.00), (4, 3, 2, 3.25), (5, 1, 1, 9.99), (5, 3, 1, 3.25);
INSERT INTO kw_table ("update", "select", "delete", "Mixed Case") VALUES ('first', 1, false, 'A'), ('second', 2, true, 'B'), ('INSERT INTO x', 3, false, NULL);
INSERT INTO audit_log (msg, at) VALUES ('seed one', '2024-01-01 00:00:00+00'), ('seed two', '2024-01-01 00:00:01+00');
INSERT INTO events (kind, payload, during) VALUES ('login', '{"user": 1, "ok": true, "meta": {"ip": "10.0.0.1"}}', '[2024-01-01 00:00:00+00,2024-01-01 01:00:00+00)'), ('login', '{"user": 2, "ok": false}', '[2024-01-02 00:00:00+00,2024-01-02 00:05:00+00)'), ('purchase', '{"user": 1, "order": 1, "items": [1, 2]}', NULL);
CREATE MATERIALIZED VIEW order_totals AS SELECT o.id AS order_id, o.user_id, sum(oi.qty * oi.price) AS total FROM orders o JOIN order_items oi ON oi.order_id = o.id GROUP BY o.id, o.user_id;
CREATE UNIQUE INDEX order_totals_order_id_idx ON order_totals (order_id);
ANALYZE users, products, orders, order_items, kw_table, audit_log, events;
