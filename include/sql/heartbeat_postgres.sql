-- Replication heartbeat, PostgreSQL. Written on the primary, read on the streaming standby:
-- `now() - pg_last_xact_replay_timestamp()` grows while the primary is idle, so it cannot tell an
-- idle primary from a stuck standby; a heartbeat written by the check itself can.
-- Lives in the monitored database, schema `_multicloud_dr`.

-- name: create_heartbeat
CREATE SCHEMA IF NOT EXISTS _multicloud_dr;
CREATE TABLE IF NOT EXISTS _multicloud_dr.heartbeat (
    id         integer PRIMARY KEY,
    seq        bigint NOT NULL,
    written_at timestamptz NOT NULL
);

-- name: write_heartbeat
INSERT INTO _multicloud_dr.heartbeat (id, seq, written_at) VALUES (1, 1, clock_timestamp())
ON CONFLICT (id) DO UPDATE SET seq = heartbeat.seq + 1, written_at = clock_timestamp()
RETURNING seq, written_at;

-- name: read_heartbeat
SELECT seq, written_at FROM _multicloud_dr.heartbeat WHERE id = 1;

-- name: primary_replication
SELECT application_name, client_addr::text, state, sync_state,
       EXTRACT(EPOCH FROM write_lag)::float8, EXTRACT(EPOCH FROM flush_lag)::float8,
       EXTRACT(EPOCH FROM replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
FROM pg_stat_replication
ORDER BY application_name;

-- name: standby_state
SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state(),
       EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
       (SELECT status FROM pg_stat_wal_receiver);

-- name: primary_now
SELECT clock_timestamp();
