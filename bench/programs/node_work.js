// node_work.js N: N float64 from a xorshift generator in a Float64Array,
// sorted, sha256 of the sorted bytes, then 4 rounds of 1M random gathers.
'use strict';
const crypto = require('crypto');
const n = Number(process.argv[2]);
const a = new Float64Array(n);
let x = 88172645463325252n & 0xffffffffn, y = 362436069, z = 521288629, w = 88675123;
x = Number(x);
function next() {  // xorshift128, 32-bit lanes
	const t = (x ^ (x << 11)) >>> 0;
	x = y; y = z; z = w;
	w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
	return w;
}
for (let i = 0; i < n; i++) a[i] = (next() * 4294967296 + next()) / 18446744073709551616;
a.sort();
console.log(crypto.createHash('sha256').update(new Uint8Array(a.buffer)).digest('hex'));
for (let r = 0; r < 4; r++) {
	let s = 0;
	for (let i = 0; i < (1 << 20); i++) s += a[next() % n];
	console.log(r, s);
}
