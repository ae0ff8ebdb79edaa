-- Roles and database for the rwsplit PostgreSQL test cluster.
-- Run once by scripts/postgres.sh on a freshly initdb'd primary, as the
-- bootstrap superuser over the unix socket, connected to database "postgres".
-- Standbys are cloned afterwards with pg_basebackup, so they get all of this.

-- Application role used by the tests: owns the test database, NOT a superuser.
CREATE ROLE rwsplit LOGIN PASSWORD 'rwsplit_pw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;

-- Streaming replication role used by pg_basebackup and the standbys' primary_conninfo.
CREATE ROLE repl REPLICATION LOGIN PASSWORD 'repl_pw';

-- Superuser for fault-injection tests only (pg_terminate_backend, pg_wal_replay_pause, ...).
CREATE ROLE rwsplit_admin SUPERUSER LOGIN PASSWORD 'admin_pw';

-- Lets rwsplit read pg_stat_replication / pg_stat_wal_receiver in full (lag checks).
GRANT pg_monitor TO rwsplit;

CREATE DATABASE rwsplit_test OWNER rwsplit ENCODING 'UTF8' TEMPLATE template0;
