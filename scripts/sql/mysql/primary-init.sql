-- rwsplit test fixtures, part 2 of 2, MySQL 8.4 flavor (docker-compose.yml only).
-- Runs as root on the PRIMARY right after scripts/sql/common/primary-init.sql (replicates to replicas).
--
-- REPLICATION CLIENT -> SHOW REPLICA STATUS, SHOW BINARY LOG STATUS, SHOW BINARY LOGS.
-- It does not bypass read_only / super_read_only (only SUPER and CONNECTION_ADMIN do).
-- (@@gtid_executed and WAIT_FOR_EXECUTED_GTID_SET() need no privilege.)
GRANT REPLICATION CLIENT ON *.* TO 'rwsplit'@'%';
