-- Chunked table checksums, primary against replica (the approach of pt-table-checksum, read-only).
-- {table}, {key}, {columns} and {nulls} are quoted identifiers and expressions built by the code from
-- information_schema, never from user input; values are bound parameters.

-- name: table_columns
SELECT c.column_name, s.seq_in_index IS NOT NULL
FROM information_schema.columns c
LEFT JOIN information_schema.statistics s
  ON s.table_schema = c.table_schema AND s.table_name = c.table_name AND s.column_name = c.column_name
 AND s.index_name = 'PRIMARY'
WHERE c.table_schema = %(database)s AND c.table_name = %(table)s
ORDER BY s.seq_in_index IS NULL, s.seq_in_index, c.ordinal_position;

-- name: chunk_boundaries
-- Every chunk_rows-th value of the first primary-key column: the chunks' lower bounds.
SELECT k FROM (
    SELECT {key} AS k, ROW_NUMBER() OVER (ORDER BY {key}) AS n FROM {table}
) numbered WHERE MOD(n - 1, %(chunk_rows)s) = 0 ORDER BY k;

-- name: chunk_checksum
SELECT COUNT(*),
       COALESCE(LOWER(CONV(BIT_XOR(CAST(CRC32(CONCAT_WS('#', {columns}, {nulls})) AS UNSIGNED)), 10, 16)), '0')
FROM {table} WHERE {where};

-- name: gtid_position
SELECT @@gtid_binlog_pos;

-- name: wait_for_gtid
SELECT MASTER_GTID_WAIT(%(gtid)s, %(timeout)s);

-- name: gtid_position_mysql
SELECT @@gtid_executed;

-- name: wait_for_gtid_mysql
SELECT WAIT_FOR_EXECUTED_GTID_SET(%(gtid)s, %(timeout)s);
