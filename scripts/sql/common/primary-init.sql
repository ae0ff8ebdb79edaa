-- rwsplit test fixtures, part 1 of 2: statements valid on BOTH MySQL 8.4 and MariaDB 10.11.
--
-- Runs once, as root, on the PRIMARY only, before any replica connects. Replicas receive
-- everything below through replication, so never run this file on a replica.
--
-- Used by:
--   * scripts/mariadb.sh (local MariaDB 10.11 servers for the test suite), followed by
--     scripts/sql/mariadb/primary-init.sql
--   * docker-compose.yml: mounted into /docker-entrypoint-initdb.d of mysql-primary (followed by
--     scripts/sql/mysql/primary-init.sql) and of mariadb-primary (followed by
--     scripts/sql/mariadb/primary-init.sql)
--
-- Flavor-specific grants (monitoring privileges) live in the per-flavor primary-init.sql.

CREATE DATABASE IF NOT EXISTS rwsplit_test;

-- Application user used by the library and the tests. Privileges are deliberately limited to the
-- test schema: any *.* privilege that bypasses read_only (MariaDB: READ_ONLY ADMIN, which is part of
-- ALL PRIVILEGES ON *.*; MySQL: SUPER / CONNECTION_ADMIN) would let a misrouted write succeed on a
-- replica instead of failing loudly with ERROR 1290 (ER_OPTION_PREVENTS_STATEMENT).
CREATE USER IF NOT EXISTS 'rwsplit'@'%' IDENTIFIED BY 'rwsplit_pw';
GRANT ALL PRIVILEGES ON rwsplit_test.* TO 'rwsplit'@'%';

-- Replication user the replicas connect with.
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl_pw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';

-- Admin user for fault-injection tests only (STOP SLAVE / STOP REPLICA, MASTER_DELAY,
-- lifting read_only, ...). Never use it for ordinary queries: it bypasses read_only.
CREATE USER IF NOT EXISTS 'rwsplit_admin'@'%' IDENTIFIED BY 'admin_pw';
GRANT ALL PRIVILEGES ON *.* TO 'rwsplit_admin'@'%';
