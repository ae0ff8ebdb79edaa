-- rwsplit MySQL/MariaDB differential corpus fixture (companion of tests/corpus/mysql.tsv).
-- Target: MariaDB 10.11, database rwsplit_test, run on the PRIMARY as the test user (needs only ALL ON rwsplit_test.*).
-- Format: one statement per line, each ending with a semicolon, no semicolons inside statements, comment lines start with "-- ".
-- Re-runnable: everything is dropped first, including the scratch objects that the corpus write lines create.
-- Views and procedures use SQL SECURITY INVOKER so they work on replicas even if the definer account differs there.
DROP VIEW IF EXISTS active_users;
DROP VIEW IF EXISTS order_totals;
DROP VIEW IF EXISTS scratch_view;
DROP PROCEDURE IF EXISTS touch_counter;
DROP PROCEDURE IF EXISTS list_users;
DROP PROCEDURE IF EXISTS scratch_proc;
DROP TABLE IF EXISTS order_items;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS categories;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS kw_trap;
DROP TABLE IF EXISTS update_log;
DROP TABLE IF EXISTS counters;
DROP TABLE IF EXISTS scratch_a;
DROP TABLE IF EXISTS scratch_b;
DROP TABLE IF EXISTS scratch_ctas;
DROP TABLE IF EXISTS scratch_like;
DROP TABLE IF EXISTS scratch_renamed;
DROP SEQUENCE IF EXISTS s1;
DROP SEQUENCE IF EXISTS scratch_seq;
CREATE TABLE users (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(255) NOT NULL, status VARCHAR(20) NOT NULL DEFAULT 'active', age INT NULL, country CHAR(2) NULL, score DECIMAL(10,2) NOT NULL DEFAULT 0, profile JSON NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME NULL, deleted_at DATETIME NULL, UNIQUE KEY uq_users_email (email), KEY idx_users_status (status), KEY idx_users_created (created_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE categories (id INT NOT NULL PRIMARY KEY, parent_id INT NULL, name VARCHAR(100) NOT NULL, KEY idx_categories_parent (parent_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE products (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL, description TEXT NULL, category_id INT NULL, price DECIMAL(10,2) NOT NULL, stock INT NOT NULL DEFAULT 0, active TINYINT(1) NOT NULL DEFAULT 1, tags JSON NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, UNIQUE KEY uq_products_sku (sku), KEY idx_products_category (category_id), FULLTEXT KEY ft_products (name, description)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, status VARCHAR(20) NOT NULL DEFAULT 'pending', total DECIMAL(10,2) NOT NULL DEFAULT 0, currency CHAR(3) NOT NULL DEFAULT 'EUR', note VARCHAR(255) NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, shipped_at DATETIME NULL, KEY idx_orders_user (user_id), KEY idx_orders_status_created (status, created_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE order_items (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id INT NOT NULL, product_id INT NOT NULL, qty INT NOT NULL DEFAULT 1, unit_price DECIMAL(10,2) NOT NULL, KEY idx_order_items_order (order_id), KEY idx_order_items_product (product_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE kw_trap (id INT NOT NULL PRIMARY KEY, `update` VARCHAR(50) NULL, `delete` TINYINT(1) NOT NULL DEFAULT 0, `insert` INT NULL, `select` VARCHAR(50) NULL, `lock` VARCHAR(20) NULL, `for` VARCHAR(20) NULL, `order` INT NULL, `last_insert_id` INT NULL, `get_lock` VARCHAR(20) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE update_log (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, action VARCHAR(20) NOT NULL, detail VARCHAR(255) NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE counters (id INT NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE SEQUENCE s1 START WITH 1 INCREMENT BY 1;
INSERT INTO users (id, name, email, status, age, country, score, profile, created_at, updated_at, deleted_at) VALUES (1, 'Alice', 'alice@example.com', 'active', 34, 'US', 120.50, '{"plan": "pro", "tags": ["admin", "beta"], "address": {"city": "Boston"}}', '2024-01-05 09:00:00', '2024-06-01 10:00:00', NULL), (2, 'Bob', 'bob@example.com', 'active', 28, 'DE', 75.00, '{"plan": "free", "tags": []}', '2024-01-12 14:30:00', NULL, NULL), (3, 'Carol', 'carol@example.com', 'inactive', 45, 'FR', 10.00, '{"plan": "pro", "tags": ["beta"]}', '2024-02-01 08:15:00', NULL, NULL), (4, 'Dave', 'dave@example.com', 'active', NULL, 'US', 0.00, NULL, '2024-02-20 19:45:00', NULL, NULL), (5, 'Eve', 'eve@example.com', 'banned', 31, 'GB', 5.25, '{"plan": "free"}', '2024-03-03 11:00:00', NULL, '2024-05-01 00:00:00'), (6, 'O''Brien', 'obrien@example.com', 'active', 52, 'IE', 300.00, '{"plan": "enterprise", "tags": ["vip"]}', '2024-03-15 16:20:00', NULL, NULL), (7, 'Zoë', 'zoe@example.com', 'active', 23, 'FR', 42.00, '{"plan": "pro"}', '2024-04-01 07:00:00', NULL, NULL), (8, 'DELETE FROM users', 'sneaky@example.com', 'active', 40, 'US', 1.00, NULL, '2024-04-10 12:00:00', NULL, NULL), (9, 'Frank', 'frank@example.com', 'pending', 37, 'DE', 0.00, '{"plan": "free"}', '2024-05-05 05:05:05', NULL, NULL), (10, 'Grace', 'grace@example.com', 'active', 29, 'US', 88.80, '{"plan": "pro", "tags": ["beta"]}', '2024-06-06 06:06:06', NULL, NULL), (11, 'Heidi', 'heidi@example.com', 'inactive', 61, 'CH', 15.00, NULL, '2024-07-07 07:07:07', NULL, NULL), (12, 'Ivan', 'ivan@example.com', 'active', 33, 'PL', 64.00, '{"plan": "free", "tags": ["new"]}', '2024-08-08 08:08:08', NULL, NULL);
INSERT INTO categories (id, parent_id, name) VALUES (1, NULL, 'Hardware'), (2, 1, 'Tools'), (3, 2, 'Hand tools'), (4, 1, 'Fasteners'), (5, NULL, 'Software'), (6, 5, 'Licenses');
INSERT INTO products (id, sku, name, description, category_id, price, stock, active, tags, created_at) VALUES (1, 'W-100', 'Blue widget', 'A small blue widget for everyday use', 2, 9.99, 100, 1, '["blue", "small"]', '2024-01-01 00:00:00'), (2, 'W-200', 'Red widget', 'A large red widget with extra grip', 2, 19.99, 50, 1, '["red", "large"]', '2024-01-02 00:00:00'), (3, 'H-001', 'Hammer', 'Steel claw hammer', 3, 24.50, 20, 1, '["steel"]', '2024-01-03 00:00:00'), (4, 'S-010', 'Screws (100 pack)', 'Assorted wood screws', 4, 4.75, 500, 1, NULL, '2024-01-04 00:00:00'), (5, 'L-365', 'Annual license', 'One year software license', 6, 199.00, 0, 1, '["digital"]', '2024-01-05 00:00:00'), (6, 'X-999', 'Discontinued gadget', 'No longer sold: update pending', 1, 1.00, 0, 0, NULL, '2024-01-06 00:00:00'), (7, 'W-300', 'Green widget', 'Widget select edition', 2, 14.25, 75, 1, '["green"]', '2024-01-07 00:00:00'), (8, 'T-050', 'Tape measure', '5 metre tape measure', 3, 7.40, 60, 1, '["metric"]', '2024-01-08 00:00:00');
INSERT INTO orders (id, user_id, status, total, currency, note, created_at, shipped_at) VALUES (1, 1, 'shipped', 39.97, 'EUR', NULL, '2024-02-01 10:00:00', '2024-02-03 09:00:00'), (2, 1, 'paid', 199.00, 'EUR', 'gift wrap', '2024-03-10 12:00:00', NULL), (3, 2, 'pending', 24.50, 'EUR', NULL, '2024-03-11 13:00:00', NULL), (4, 3, 'cancelled', 9.99, 'USD', 'customer request: delete order', '2024-04-01 08:00:00', NULL), (5, 4, 'shipped', 47.50, 'USD', NULL, '2024-04-15 15:30:00', '2024-04-17 10:00:00'), (6, 6, 'paid', 398.00, 'EUR', 'for update later', '2024-05-20 18:00:00', NULL), (7, 6, 'shipped', 14.25, 'EUR', NULL, '2024-06-01 09:45:00', '2024-06-02 11:00:00'), (8, 7, 'pending', 7.40, 'EUR', NULL, '2024-07-04 20:00:00', NULL), (9, 10, 'paid', 33.98, 'USD', NULL, '2024-08-09 10:10:10', NULL), (10, 12, 'shipped', 23.75, 'EUR', NULL, '2024-09-09 09:09:09', '2024-09-10 09:09:09');
INSERT INTO order_items (id, order_id, product_id, qty, unit_price) VALUES (1, 1, 1, 2, 9.99), (2, 1, 2, 1, 19.99), (3, 2, 5, 1, 199.00), (4, 3, 3, 1, 24.50), (5, 4, 1, 1, 9.99), (6, 5, 3, 1, 24.50), (7, 5, 4, 2, 4.75), (8, 5, 2, 1, 13.50), (9, 6, 5, 2, 199.00), (10, 7, 7, 1, 14.25), (11, 8, 8, 1, 7.40), (12, 9, 1, 1, 9.99), (13, 9, 2, 1, 19.99), (14, 9, 4, 1, 4.00), (15, 10, 4, 5, 4.75);
INSERT INTO kw_trap (id, `update`, `delete`, `insert`, `select`, `lock`, `for`, `order`, `last_insert_id`, `get_lock`) VALUES (1, 'UPDATE users SET x = 1', 0, 10, 'SELECT 1', 'FOR UPDATE', 'share', 1, 42, 'GET_LOCK(1)'), (2, 'never', 1, 20, 'select', 'LOCK IN SHARE MODE', 'update', 2, 7, 'no'), (3, NULL, 0, NULL, NULL, NULL, NULL, 3, NULL, NULL);
INSERT INTO update_log (id, user_id, action, detail, created_at) VALUES (1, 1, 'update', 'changed email', '2024-06-01 10:00:00'), (2, 5, 'delete', 'soft delete', '2024-05-01 00:00:00'), (3, 2, 'insert', 'signup', '2024-01-12 14:30:00');
INSERT INTO counters (id, name, n) VALUES (1, 'hits', 0), (2, 'misses', 0);
CREATE SQL SECURITY INVOKER VIEW active_users AS SELECT id, name, email, country, created_at FROM users WHERE status = 'active' AND deleted_at IS NULL;
CREATE SQL SECURITY INVOKER VIEW order_totals AS SELECT user_id, COUNT(*) AS order_count, SUM(total) AS total_spent, MAX(created_at) AS last_order_at FROM orders GROUP BY user_id;
CREATE PROCEDURE touch_counter() SQL SECURITY INVOKER UPDATE counters SET n = n + 1 WHERE id = 1;
CREATE PROCEDURE list_users() SQL SECURITY INVOKER SELECT id, name FROM users ORDER BY id;
