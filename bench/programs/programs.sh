# bench/programs/programs.sh: the programs of the real-program suite.
# Sourced by bench/programs/run. For each program NAME in $programs:
#   NAME_prepare   writes its input into $data (once per run), sizes times $scale
#                  (1 with --quick, 4 by default)
#   NAME_cmd       sets argv (the command), and optionally stdin (a file),
#                  server (the measured server's command line, argv is then its
#                  client) and port
# Every program's output (stdout, or the client's) must be the same in every
# way; the runner compares checksums. $here is this folder, $port a free port.

programs="sort xz numpy sqlite memcached memcached-presized redis node"
# Debian packages each program needs (installed by the runner if missing)
program_packages="coreutils xz-utils python3-numpy sqlite3 memcached redis-server nodejs"

sort_prepare() {
	awk -v n=$((600000 * scale)) 'BEGIN { srand(1); for (i = 0; i < n; i++)
		printf "%08x%08x %07d word%d\n", int(rand() * 4294967296), int(rand() * 4294967296), i, int(rand() * 5000) }' \
		> "$data/sort.in"
}
sort_cmd() {
	# -S larger than the input: one in-memory sort, as a user with enough "RAM" asks for
	argv=(env LC_ALL=C sort -S $(( $(stat -c %s "$data/sort.in") * 3 / 1048576 + 16 ))M "$data/sort.in")
}

xz_prepare() {
	awk -v n=$((1048576 * scale)) 'BEGIN { srand(2); for (i = 0; i < 4000; i++) { w = "";
		l = 2 + int(rand() * 9); for (j = 0; j < l; j++) w = w sprintf("%c", 97 + int(rand() * 26)); v[i] = w }
		s = 0; while (s < n) { x = v[int(rand() * rand() * 4000)]; printf "%s%s", x, (rand() < 0.08 ? "\n" : " "); s += length(x) + 1 } }' \
		> "$data/xz.in"
}
xz_cmd() { argv=(xz -9 -T1 -c "$data/xz.in"); }

numpy_prepare() { :; }
numpy_cmd() { argv=(/usr/bin/python3 "$here/numpy_work.py" $((12000000 * scale))); }

sqlite_prepare() {
	local n=$((500000 * scale)) l=$((30000 * scale))
	cat > "$data/sqlite.sql" <<SQL
PRAGMA cache_size = -8000000;
PRAGMA temp_store = MEMORY;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $n)
INSERT INTO t SELECT x, (x * 2654435761) % 4294967296, printf('%.*c', 80 + x % 40, 'v') || x FROM c;
CREATE INDEX tk ON t(k);
WITH RECURSIVE q(i, r) AS (SELECT 1, 12345 UNION ALL
	SELECT i + 1, (r * 1103515245 + 12345) % 2147483648 FROM q WHERE i < $l)
SELECT count(*), sum(length(t.v)), sum(t.id) FROM q, t
	WHERE t.k = ((q.r % $n) + 1) * 2654435761 % 4294967296;
SELECT count(*), sum(k % 1000) FROM t WHERE k < 400000000;
SQL
}
sqlite_cmd() { argv=(sqlite3 :memory:); stdin=$data/sqlite.sql; }

kv_n() { echo $((100000 * scale)); }
kv_q() { echo $((10000 * scale)); }
memcached_prepare() { :; }
memcached_cmd() {
	local n
	n=$(kv_n)
	server="memcached -u root -l 127.0.0.1 -p $port -U 0 -t 2 -m $((n * 1300 / 1048576 + 64))"
	argv=(/usr/bin/python3 "$here/kvclient.py" mc "$port" "$n" "$(kv_q)")
}
memcached-presized_prepare() { :; }
memcached-presized_cmd() {
	memcached_cmd
	# buckets >= items: no hash table growth while loading
	local hp
	hp=$(/usr/bin/python3 -c "print(($(kv_n) - 1).bit_length())")
	server="$server -o hashpower=$hp"
}

redis_prepare() { :; }
redis_cmd() {
	server="redis-server --bind 127.0.0.1 --port $port --save '' --appendonly no --protected-mode no --daemonize no"
	argv=(/usr/bin/python3 "$here/kvclient.py" redis "$port" "$(kv_n)" "$(kv_q)")
}

node_prepare() { :; }
node_cmd() { argv=(node "$here/node_work.js" $((6000000 * scale))); }
