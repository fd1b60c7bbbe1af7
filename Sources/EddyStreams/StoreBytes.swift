import EddyCore
import Foundation

/// Byte layouts shared by the internal buffer stores of joins, suppression and foreign-key
/// joins (``JoinSideStore``, ``OuterJoinStore``, ``SuppressionBuffer``, ``SubscriptionStore``).
///
/// Integers in keys are order-preserving (sign bit flipped, big-endian), so a store's byte
/// order is time order; lists of values are length-prefixed. Decoding checks every length and
/// throws ``EddyError/Code/corrupt`` instead of trapping: the bytes come from disk and from
/// changelog topics.
enum StoreBytes {
    /// Appends `value` so that byte order is numeric order.
    static func appendOrdered(_ value: Int64, to bytes: inout [UInt8]) {
        bytes.appendBigEndian(UInt64(bitPattern: value) ^ (1 << 63))
    }

    /// Reads an ordered Int64 at `offset` (the caller checked that 8 bytes are there).
    static func readOrdered(_ bytes: [UInt8], at offset: Int) -> Int64 {
        var raw: UInt64 = 0
        for i in 0..<8 { raw = raw << 8 | UInt64(bytes[offset + i]) }
        return Int64(bitPattern: raw ^ (1 << 63))
    }

    /// The 8 ordered bytes of `value`.
    static func ordered(_ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8)
        appendOrdered(value, to: &bytes)
        return bytes
    }

    /// Appends a 4-byte big-endian length and then `chunk`.
    static func appendChunk(_ chunk: [UInt8], to bytes: inout [UInt8]) {
        bytes.appendBigEndian(UInt32(chunk.count))
        bytes.append(contentsOf: chunk)
    }

    /// Reads a chunk written by ``appendChunk(_:to:)`` at `offset`, advancing it.
    static func readChunk(_ bytes: [UInt8], at offset: inout Int, store: String) throws -> [UInt8] {
        let length = try readUInt32(bytes, at: &offset, store: store)
        guard bytes.count - offset >= Int(length) else {
            throw EddyError(.corrupt, "store \(store): a chunk of \(length) bytes runs past the end of a \(bytes.count)-byte value")
        }
        defer { offset += Int(length) }
        return Array(bytes[offset..<offset + Int(length)])
    }

    /// Reads a 4-byte big-endian integer at `offset`, advancing it.
    static func readUInt32(_ bytes: [UInt8], at offset: inout Int, store: String) throws -> UInt32 {
        guard bytes.count - offset >= 4 else {
            throw EddyError(.corrupt, "store \(store): a value of \(bytes.count) bytes ends inside a length field")
        }
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return value
    }

    /// A list of byte strings: the count, then each as a chunk.
    static func encodeList(_ items: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + items.reduce(0) { $0 + 4 + $1.count })
        bytes.appendBigEndian(UInt32(items.count))
        for item in items { appendChunk(item, to: &bytes) }
        return bytes
    }

    /// The list ``encodeList(_:)`` wrote.
    static func decodeList(_ bytes: [UInt8], store: String) throws -> [[UInt8]] {
        var offset = 0
        let count = try readUInt32(bytes, at: &offset, store: store)
        guard Int(count) <= (bytes.count - offset) / 4 else {
            throw EddyError(.corrupt, "store \(store): a list claims \(count) items in \(bytes.count) bytes")
        }
        var items: [[UInt8]] = []
        items.reserveCapacity(Int(count))
        for _ in 0..<count { items.append(try readChunk(bytes, at: &offset, store: store)) }
        guard offset == bytes.count else {
            throw EddyError(.corrupt, "store \(store): \(bytes.count - offset) bytes left after a list")
        }
        return items
    }

    /// Lexicographic comparison by unsigned bytes (the order of the byte stores).
    static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let common = min(pa.count, pb.count)
                if common > 0 {
                    let c = memcmp(pa.baseAddress!, pb.baseAddress!, common)
                    if c != 0 { return c < 0 }
                }
                return pa.count < pb.count
            }
        }
    }

    /// The indices of `keys` in the byte order of the keys (``less(_:_:)``). Sorts pairs of
    /// eight bytes (big-endian) and an index, comparing whole keys only on equal pairs: the
    /// elements are plain integers, so the sort moves no reference-counted arrays. The eight
    /// bytes start after the prefix all keys share (keys such as `user-1234` would otherwise
    /// tie on `user-123` and fall back to whole-key comparisons).
    static func sortedIndices(_ keys: [[UInt8]]) -> [Int] {
        guard keys.count > 1 else { return Array(keys.indices) }
        var shared = keys[0].count
        for key in keys.dropFirst() where shared > 0 {
            shared = min(shared, key.count)
            keys[0].withUnsafeBufferPointer { first in
                key.withUnsafeBufferPointer { other in
                    var j = 0
                    while j < shared && first[j] == other[j] { j += 1 }
                    shared = j
                }
            }
        }
        var order: [(prefix: UInt64, index: Int)] = []
        order.reserveCapacity(keys.count)
        for (i, key) in keys.enumerated() {
            var prefix: UInt64 = 0
            key.withUnsafeBufferPointer { p in
                for j in shared..<(shared + 8) { prefix = prefix << 8 | UInt64(j < p.count ? p[j] : 0) }
            }
            order.append((prefix, i))
        }
        order.sort { a, b in
            a.prefix != b.prefix ? a.prefix < b.prefix : less(keys[a.index], keys[b.index])
        }
        return order.map(\.index)
    }
}

/// Serialised key bytes as a dictionary key in the typed stores' caches. Those dictionaries
/// live in generic code that Swift does not specialise, where an `[UInt8]` key hashes and
/// compares byte by byte through `Array`'s generic witnesses; this type does each in one call.
struct ByteKey: Hashable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
    static func == (a: ByteKey, b: ByteKey) -> Bool {
        a.bytes.withUnsafeBufferPointer { pa in
            b.bytes.withUnsafeBufferPointer { pb in
                pa.count == pb.count && (pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0)
            }
        }
    }
}
