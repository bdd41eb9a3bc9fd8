-- Replication heartbeat, MySQL/MariaDB. The replication checks write one row on the primary and
-- read it back on the replica: lag measured from replicated data, not from what the replica says
-- about itself. One row per primary (server id), so a promoted replica writes its own row.
-- The checking user needs CREATE on `_multicloud_dr` once, then INSERT/UPDATE/SELECT on the table.

-- name: create_heartbeat
CREATE DATABASE IF NOT EXISTS `_multicloud_dr`;
CREATE TABLE IF NOT EXISTS `_multicloud_dr`.`heartbeat` (
    source_server_id INT UNSIGNED NOT NULL,
    seq              BIGINT UNSIGNED NOT NULL,
    written_at       DATETIME(6) NOT NULL COMMENT 'the primary''s clock, UTC',
    PRIMARY KEY (source_server_id)
) ENGINE=InnoDB;

-- name: write_heartbeat
INSERT INTO `_multicloud_dr`.`heartbeat` (source_server_id, seq, written_at)
VALUES (@@server_id, 1, UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE seq = seq + 1, written_at = UTC_TIMESTAMP(6);

-- name: read_own_heartbeat
SELECT @@server_id, seq, written_at, UTC_TIMESTAMP(6)
FROM `_multicloud_dr`.`heartbeat` WHERE source_server_id = @@server_id;

-- name: read_heartbeat
SELECT seq, written_at FROM `_multicloud_dr`.`heartbeat` WHERE source_server_id = %(server_id)s;

-- name: primary_now
SELECT UTC_TIMESTAMP(6);
