-- Points a MySQL 8.4 REPLICA (service mysql-replica in docker-compose.yml) at mysql-primary using
-- GTID auto-positioning, starts replicating and makes the replica read-only.
-- Runs as root on the replica during the image's first-start initialisation (never on the primary).
--
-- GET_SOURCE_PUBLIC_KEY=1: 'repl' uses caching_sha2_password (8.4 default); lets the replica fetch
-- the primary's RSA key when the replication connection is not TLS.
-- SOURCE_CONNECT_RETRY=1: reconnect within a second after the primary restarts (default 60s).
CHANGE REPLICATION SOURCE TO
  SOURCE_HOST='mysql-primary',
  SOURCE_PORT=3306,
  SOURCE_USER='repl',
  SOURCE_PASSWORD='repl_pw',
  SOURCE_AUTO_POSITION=1,
  GET_SOURCE_PUBLIC_KEY=1,
  SOURCE_CONNECT_RETRY=1;
START REPLICA;

-- read_only / super_read_only are persisted here (mysqld-auto.cnf in the data volume) instead of
-- being passed on the command line: the image's entrypoint starts its temporary init server with
-- the same command-line options, and super_read_only there would block the entrypoint's own
-- root-password setup. The replication applier is not affected by either setting.
SET PERSIST read_only = ON;
SET PERSIST super_read_only = ON;
