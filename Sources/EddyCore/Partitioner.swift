/// Kafka's default partitioner for keyed records: murmur2 of the key bytes, made positive
/// (`& 0x7fffffff`), modulo the partition count. The same key lands on the same partition
/// number on the embedded log and on Kafka (Java and librdkafka's `murmur2_random`).
public enum DefaultPartitioner {
    /// The partition for `key` among `count` partitions. `count` must be positive.
    @inlinable
    public static func partition<C: ContiguousBytes>(key: C, count: Int) -> Int {
        precondition(count > 0, "partition count must be positive")
        let hash = key.withUnsafeBytes { murmur2($0) }
        return Int(UInt32(bitPattern: hash) & 0x7fff_ffff) % count
    }

    /// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed 0x9747b28c, as a signed Int32.
    public static func murmur2(_ data: UnsafeRawBufferPointer) -> Int32 {
        let length = data.count
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h = seed ^ UInt32(truncatingIfNeeded: length)
        let words = length / 4
        for i in 0..<words {
            let offset = i * 4
            var k = UInt32(data[offset]) | UInt32(data[offset + 1]) << 8
                | UInt32(data[offset + 2]) << 16 | UInt32(data[offset + 3]) << 24
            k &*= m
            k ^= k >> r
            k &*= m
            h &*= m
            h ^= k
        }
        let tail = words * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 1:
            h ^= UInt32(data[tail])
            h &*= m
        default:
            break
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }
}
