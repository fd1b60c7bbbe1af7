import EddyCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte-string helpers shared by every store: lexicographic order (the order RocksDB's default
/// bytewise comparator uses), order-preserving encodings of integers and of variable-length
/// keys, and prefix bounds. Internal: the store key layouts are an implementation detail.
enum ByteKeys {
    /// Compares two byte strings the way RocksDB's bytewise comparator does (memcmp, then length).
    @inline(__always)
    static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in compare(pa, pb) }
        }
    }

    @inline(__always)
    static func compare(_ pa: UnsafeBufferPointer<UInt8>, _ pb: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(pa.count, pb.count)
        if common > 0 {
            let c = memcmp(pa.baseAddress!, pb.baseAddress!, common)
            if c != 0 { return Int(c) }
        }
        return pa.count - pb.count
    }

    /// The smallest byte string greater than every string that starts with `prefix`, or `nil`
    /// when there is none (the prefix is empty or all 0xFF): the exclusive end of a prefix scan.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8]? {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return nil
    }

    /// Appends `value` as 8 big-endian bytes with the sign bit flipped, so that byte order equals
    /// numeric order for negative and positive timestamps alike.
    @inline(__always)
    static func appendOrdered(_ value: Int64, to bytes: inout [UInt8]) {
        let bits = UInt64(bitPattern: value) ^ (1 << 63)
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
        }
    }

    /// Reads 8 bytes written by ``appendOrdered(_:to:)`` at `offset`.
    @inline(__always)
    static func readOrdered(_ bytes: [UInt8], at offset: Int) -> Int64 {
        var bits: UInt64 = 0
        for i in 0..<8 { bits = bits << 8 | UInt64(bytes[offset + i]) }
        return Int64(bitPattern: bits ^ (1 << 63))
    }

    /// Appends `key` escaped so that the encoding is prefix-free and order-preserving: 0x00 becomes
    /// 0x00 0xFF and the key ends with 0x00 0x01. Then `escaped(a) + x < escaped(b) + y` whenever
    /// `a < b`, whatever follows, so composite keys (key, timestamp) sort by key first and a scan
    /// of one key never sees another key that merely starts with the same bytes.
    static func appendEscaped(_ key: [UInt8], to bytes: inout [UInt8]) {
        bytes.reserveCapacity(bytes.count + key.count + 2)
        for byte in key {
            bytes.append(byte)
            if byte == 0 { bytes.append(0xFF) }
        }
        bytes.append(0)
        bytes.append(1)
    }

    /// The exclusive upper bound of every composite key whose escaped key part is `key`:
    /// the escaped key with its terminator 0x00 0x01 replaced by 0x00 0x02.
    static func appendEscapedEnd(_ key: [UInt8], to bytes: inout [UInt8]) {
        appendEscaped(key, to: &bytes)
        bytes[bytes.count - 1] = 2
    }

    /// Decodes an escaped key starting at `offset`; returns the key and the offset after its
    /// terminator. Throws ``EddyError/Code/corrupt`` for bytes that were not written by
    /// ``appendEscaped(_:to:)``.
    static func readEscaped(_ bytes: [UInt8], at offset: Int) throws -> (key: [UInt8], next: Int) {
        var key: [UInt8] = []
        var i = offset
        while i < bytes.count {
            let byte = bytes[i]
            if byte != 0 {
                key.append(byte)
                i += 1
                continue
            }
            guard i + 1 < bytes.count else { break }
            switch bytes[i + 1] {
            case 0xFF: key.append(0); i += 2
            case 1: return (key, i + 2)
            default: throw EddyError(.corrupt, "malformed escaped key at byte \(i)")
            }
        }
        throw EddyError(.corrupt, "escaped key has no terminator")
    }
}
