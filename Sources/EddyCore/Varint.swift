/// Variable-length integers as Kafka writes them: unsigned LEB128, and zig-zag for signed
/// values (`varint` = zig-zag Int32, `varlong` = zig-zag Int64). Pure functions.
public enum Varint {
    /// Largest encoded size of an unsigned 64-bit varint.
    public static let maximumBytes64 = 10
    /// Largest encoded size of an unsigned 32-bit varint.
    public static let maximumBytes32 = 5

    /// Zig-zag maps signed to unsigned so small magnitudes stay short: 0, -1, 1, -2 -> 0, 1, 2, 3.
    @inlinable public static func zigZag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }
    /// Inverse of ``zigZag(_:)``.
    @inlinable public static func unZigZag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    /// Number of bytes ``appendUnsigned(_:to:)`` writes for `value`.
    @inlinable public static func size(unsigned value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }
    /// Number of bytes a zig-zag varlong of `value` takes.
    @inlinable public static func size(signed value: Int64) -> Int { size(unsigned: zigZag(value)) }

    /// Appends `value` as an unsigned varint.
    @inlinable public static func appendUnsigned(_ value: UInt64, to bytes: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    /// Appends `value` as a zig-zag varint (varlong).
    @inlinable public static func appendSigned(_ value: Int64, to bytes: inout [UInt8]) {
        appendUnsigned(zigZag(value), to: &bytes)
    }
}

/// Reads big-endian integers and varints from a byte buffer, with bounds checks that throw
/// ``EddyError/Code/corrupt`` instead of trapping. Used by every decoder of untrusted bytes.
public struct ByteReader {
    /// The bytes being read. The caller keeps them alive while the reader is used.
    public let buffer: UnsafeRawBufferPointer
    /// Position of the next byte to read.
    public var position: Int
    /// What the bytes are, for error messages ("batch at offset 42 of 0000.log").
    public var context: String

    /// Creates a reader over `buffer` starting at `position`.
    public init(_ buffer: UnsafeRawBufferPointer, position: Int = 0, context: String = "buffer") {
        self.buffer = buffer
        self.position = position
        self.context = context
    }

    /// Bytes left.
    @inlinable public var remaining: Int { buffer.count - position }

    @inlinable func need(_ count: Int) throws {
        if count < 0 || remaining < count {
            throw EddyError(.corrupt, "\(context): needed \(count) bytes at position \(position), \(remaining) left")
        }
    }

    public mutating func readUInt8() throws -> UInt8 {
        try need(1)
        defer { position += 1 }
        return buffer[position]
    }
    public mutating func readInt16() throws -> Int16 {
        try need(2)
        defer { position += 2 }
        return Int16(bitPattern: UInt16(buffer[position]) << 8 | UInt16(buffer[position + 1]))
    }
    public mutating func readInt32() throws -> Int32 { Int32(bitPattern: try readUInt32()) }
    public mutating func readUInt32() throws -> UInt32 {
        try need(4)
        defer { position += 4 }
        return UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }
    public mutating func readInt64() throws -> Int64 {
        try need(8)
        defer { position += 8 }
        return Int64(bigEndian: buffer.loadUnaligned(fromByteOffset: position, as: Int64.self))
    }
    /// An unsigned LEB128 varint of at most 10 bytes.
    public mutating func readUnsignedVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readUInt8()
            if shift == 63 && byte > 1 {
                throw EddyError(.corrupt, "\(context): varint overflows 64 bits at position \(position - 1)")
            }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw EddyError(.corrupt, "\(context): varint longer than 10 bytes at position \(position)") }
        }
    }
    /// A zig-zag varlong.
    public mutating func readVarlong() throws -> Int64 { Varint.unZigZag(try readUnsignedVarint()) }
    /// A zig-zag varint that must fit in Int32.
    public mutating func readVarint() throws -> Int32 {
        let value = try readVarlong()
        guard let narrow = Int32(exactly: value) else {
            throw EddyError(.corrupt, "\(context): varint \(value) does not fit 32 bits at position \(position)")
        }
        return narrow
    }
    /// `count` bytes as a new array.
    public mutating func readBytes(_ count: Int) throws -> [UInt8] {
        try need(count)
        defer { position += count }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[position..<position + count]))
    }
    /// `count` bytes as a view into the buffer (no copy).
    public mutating func readSlice(_ count: Int) throws -> UnsafeRawBufferPointer {
        try need(count)
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: buffer[position..<position + count])
    }
    /// Skips `count` bytes.
    public mutating func skip(_ count: Int) throws {
        try need(count)
        position += count
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` big-endian.
    @inlinable public mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
    /// Overwrites `MemoryLayout<T>.size` bytes at `index` with `value` big-endian.
    @inlinable public mutating func storeBigEndian<T: FixedWidthInteger>(_ value: T, at index: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value.bigEndian, toByteOffset: index, as: T.self) }
    }
}
