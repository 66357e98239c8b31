// Heap.java MB: keeps MB megabytes of live long[] arrays (64 KiB each) on the
// Java heap, fills them from a xorshift generator, reads every one back three
// times and prints a checksum (the same on every run, whatever the GC).
public class Heap {
    public static void main(String[] args) {
        int mb = args.length > 0 ? Integer.parseInt(args[0]) : 600;
        int n = mb * 16;                 // arrays of 8192 longs = 64 KiB
        long[][] a = new long[n][];
        long x = 88172645463325252L;
        for (int i = 0; i < n; i++) {
            long[] b = new long[8192];
            for (int j = 0; j < b.length; j++) {
                x ^= x << 13; x ^= x >>> 7; x ^= x << 17;
                b[j] = x;
            }
            a[i] = b;
        }
        long sum = 0;
        for (int pass = 0; pass < 3; pass++) {
            for (int i = 0; i < n; i++) {
                long[] b = a[(int) ((i * 2654435761L + pass) % n)];
                for (int j = 0; j < b.length; j += 1)
                    sum = sum * 31 + b[j];
            }
        }
        System.out.println(n + " arrays " + Long.toHexString(sum));
    }
}
