#!/bin/sh
# index.sql.sh ROWS: the sqlite3 script (an in-memory database with a cache
# as big as it wants, ROWS rows, an index built over them, queries)
n=${1:-3000000}
cat <<SQL
PRAGMA cache_size = -4000000;
PRAGMA temp_store = MEMORY;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $n)
INSERT INTO t SELECT x, (x * 2654435761) % 4294967296, printf('%.*c', 40 + x % 40, 'v') || x FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)), sum(id % 1000) FROM t;
WITH RECURSIVE q(i, r) AS (SELECT 1, 12345 UNION ALL
	SELECT i + 1, (r * 1103515245 + 12345) % 2147483648 FROM q WHERE i < 100000)
SELECT count(*), sum(length(t.v)), sum(t.id) FROM q, t
	WHERE t.k = ((q.r % $n) + 1) * 2654435761 % 4294967296;
SELECT count(*), sum(k % 1000) FROM t WHERE k < 400000000;
SQL
