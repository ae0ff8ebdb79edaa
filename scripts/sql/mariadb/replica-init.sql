-- Points a MariaDB 10.11 REPLICA at its primary using GTID replication, then starts replicating.
-- Runs as root on each replica (never on the primary). The replica must be freshly initialised
-- (empty @@gtid_slave_pos): it then fetches the primary's whole binlog, including the database and
-- users created by the primary-init.sql files.
--
-- The MASTER_HOST / MASTER_PORT literals are the docker-compose values (service mariadb-primary).
-- scripts/mariadb.sh rewrites exactly these two literals with sed (to 127.0.0.1 and the primary's
-- port), so keep them written as MASTER_HOST='mariadb-primary' and MASTER_PORT=3306.
-- MASTER_CONNECT_RETRY=1: reconnect within a second after the primary is restarted (default 60s).
CHANGE MASTER TO
  MASTER_HOST='mariadb-primary',
  MASTER_PORT=3306,
  MASTER_USER='repl',
  MASTER_PASSWORD='repl_pw',
  MASTER_USE_GTID=slave_pos,
  MASTER_CONNECT_RETRY=1;
START SLAVE;
