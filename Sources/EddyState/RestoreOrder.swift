/// The order a restore batch is written in: its changes sorted by key (RocksDB's bytewise
/// order), only the last change of each key kept. A batch is applied atomically, so only a key's
/// final state in the batch matters; an SST file needs strictly increasing keys; and a
/// `WriteBatch` in key order lets RocksDB's skip-list memtable reuse its insertion point.
///
/// Cost: one pass to read each key's first eight bytes, then a sort of 16-byte entries that
/// compares those prefixes as integers and looks at the key arrays only when two prefixes are
/// equal (keys sharing eight leading bytes, or duplicates). Sorting indices with a comparison
/// of the key arrays themselves cost several times as much (two array accesses and a `memcmp`
/// call per comparison).
enum RestoreOrder {
    /// One change of the batch: the big-endian integer of its key's first eight bytes (zero-
    /// padded), and its position in the batch.
    struct Entry {
        var prefix: UInt64
        var index: Int32
    }

    /// Positions in `changes` of the last change of every key, in ascending key order.
    /// `changes.count` must fit in `Int32` (restore batches hold at most
    /// ``StateRestorer/maximumBatchRecords``).
    static func lastChangePerKey(_ changes: [KeyChange]) -> [Int32] {
        precondition(changes.count <= Int(Int32.max), "a restore batch of \(changes.count) changes is too large to order")
        var entries: [Entry] = []
        entries.reserveCapacity(changes.count)
        for index in changes.indices {
            entries.append(Entry(prefix: prefix(changes[index].key), index: Int32(truncatingIfNeeded: index)))
        }
        entries.sort { a, b in
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            let order = ByteKeys.compare(changes[Int(a.index)].key, changes[Int(b.index)].key)
            return order < 0 || (order == 0 && a.index < b.index)
        }
        var result: [Int32] = []
        result.reserveCapacity(entries.count)
        for position in entries.indices {
            let entry = entries[position]
            if position + 1 < entries.count {
                let next = entries[position + 1]
                // Equal keys are adjacent, oldest first: keep only the last of a run.
                if next.prefix == entry.prefix && changes[Int(next.index)].key == changes[Int(entry.index)].key { continue }
            }
            result.append(entry.index)
        }
        return result
    }

    /// The first eight bytes of `key` as a big-endian integer, zero-padded: comparing these
    /// integers orders keys as the bytewise comparator does, except that keys equal in their
    /// first eight bytes (after padding) compare equal and need a full comparison.
    @inline(__always)
    static func prefix(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { bytes in
            if bytes.count >= 8 { return UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)) }
            var value: UInt64 = 0
            for (position, byte) in bytes.enumerated() { value |= UInt64(byte) << (56 - 8 * UInt64(position)) }
            return value
        }
    }
}
