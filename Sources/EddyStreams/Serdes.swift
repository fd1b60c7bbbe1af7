import EddyCore
import Foundation

/// UTF-8 text. Deserializing bytes that are not valid UTF-8 throws ``EddyError/Code/serialization``.
public struct StringSerde: Serde {
    public init() {}
    @inlinable public func serialize(_ value: String) throws -> [UInt8] { Array(value.utf8) }
    @inlinable public func deserialize(_ bytes: [UInt8]) throws -> String {
        // ASCII (the common case for keys) is valid UTF-8: decode it without the generic
        // validating initialiser, which looks up type metadata on every call.
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw EddyError(.serialization, "\(bytes.count) bytes are not valid UTF-8")
        }
        return text
    }
    @inlinable public func serialize(_ value: String, appendingTo buffer: inout [UInt8]) throws {
        buffer.append(contentsOf: value.utf8)
    }
    @inlinable public func deserialize(from bytes: UnsafeRawBufferPointer) throws -> String {
        let utf8 = bytes.assumingMemoryBound(to: UInt8.self)
        var ascii = true
        for byte in utf8 where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: utf8, as: UTF8.self) }
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw EddyError(.serialization, "\(bytes.count) bytes are not valid UTF-8")
        }
        return text
    }
}

/// A 64-bit signed integer as 8 bytes, big-endian (Kafka's `LongSerde`).
public struct Int64Serde: Serde {
    public init() {}
    @inlinable public func serialize(_ value: Int64) throws -> [UInt8] { BigEndian.bytes(UInt64(bitPattern: value)) }
    @inlinable public func deserialize(_ bytes: [UInt8]) throws -> Int64 {
        Int64(bitPattern: try BigEndian.read64(bytes, what: "Int64"))
    }
    @inlinable public func serialize(_ value: Int64, appendingTo buffer: inout [UInt8]) throws {
        BigEndian.append(UInt64(bitPattern: value), to: &buffer)
    }
    @inlinable public func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Int64 {
        Int64(bitPattern: try BigEndian.read64(bytes, what: "Int64"))
    }
}

/// Swift's `Int` as 8 bytes, big-endian (the same bytes as ``Int64Serde`` and Kafka's `LongSerde`).
public struct IntSerde: Serde {
    public init() {}
    @inlinable public func serialize(_ value: Int) throws -> [UInt8] { BigEndian.bytes(UInt64(bitPattern: Int64(value))) }
    @inlinable public func deserialize(_ bytes: [UInt8]) throws -> Int {
        Int(Int64(bitPattern: try BigEndian.read64(bytes, what: "Int")))
    }
    @inlinable public func serialize(_ value: Int, appendingTo buffer: inout [UInt8]) throws {
        BigEndian.append(UInt64(bitPattern: Int64(value)), to: &buffer)
    }
    @inlinable public func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Int {
        Int(Int64(bitPattern: try BigEndian.read64(bytes, what: "Int")))
    }
}

/// A 32-bit signed integer as 4 bytes, big-endian (Kafka's `IntegerSerde`).
public struct Int32Serde: Serde {
    public init() {}
    @inlinable public func serialize(_ value: Int32) throws -> [UInt8] {
        let v = UInt32(bitPattern: value)
        return [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16),
                UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }
    @inlinable public func deserialize(_ bytes: [UInt8]) throws -> Int32 {
        guard bytes.count == 4 else {
            throw EddyError(.serialization, "an Int32 needs 4 bytes, got \(bytes.count)")
        }
        return Int32(bitPattern: UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
    }
}

/// An IEEE 754 double as 8 bytes, big-endian (Kafka's `DoubleSerde`).
public struct DoubleSerde: Serde {
    public init() {}
    @inlinable public func serialize(_ value: Double) throws -> [UInt8] { BigEndian.bytes(value.bitPattern) }
    @inlinable public func deserialize(_ bytes: [UInt8]) throws -> Double {
        Double(bitPattern: try BigEndian.read64(bytes, what: "Double"))
    }
    @inlinable public func serialize(_ value: Double, appendingTo buffer: inout [UInt8]) throws {
        BigEndian.append(value.bitPattern, to: &buffer)
    }
    @inlinable public func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Double {
        Double(bitPattern: try BigEndian.read64(bytes, what: "Double"))
    }
}

/// Raw bytes, unchanged (Kafka's `ByteArraySerde`).
public struct BytesSerde: Serde {
    public init() {}
    @inlinable public func serialize(_ value: [UInt8]) throws -> [UInt8] { value }
    @inlinable public func deserialize(_ bytes: [UInt8]) throws -> [UInt8] { bytes }
    @inlinable public func serialize(_ value: [UInt8], appendingTo buffer: inout [UInt8]) throws {
        buffer.append(contentsOf: value)
    }
}

/// Any `Codable` type as JSON (Foundation's encoder and decoder, keys sorted so equal values
/// give equal bytes, which stores and changelogs rely on). Failures throw
/// ``EddyError/Code/serialization`` naming the type.
public struct JSONSerde<Value: Codable & Sendable>: Serde {
    public init() {}
    public func serialize(_ value: Value) throws -> [UInt8] {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return Array(try encoder.encode(value))
        } catch {
            throw EddyError(.serialization, "cannot encode \(Value.self) as JSON: \(error)")
        }
    }
    public func deserialize(_ bytes: [UInt8]) throws -> Value {
        do {
            return try JSONDecoder().decode(Value.self, from: Data(bytes))
        } catch {
            throw EddyError(.serialization, "cannot decode \(Value.self) from \(bytes.count) bytes of JSON: \(error)")
        }
    }
}

/// A serde for optional values: `nil` is a null key or a null value (a tombstone) in the log;
/// any other value is written by `wrapped`. Use it for streams whose records may have no key,
/// e.g. `builder.stream("lines", key: Serdes.optional(Serdes.string), value: Serdes.string)`.
public struct OptionalSerde<Wrapped: Serde>: Serde {
    /// The serde of non-nil values.
    public let wrapped: Wrapped
    /// A serde for optional values of `wrapped`.
    public init(_ wrapped: Wrapped) { self.wrapped = wrapped }
    /// The empty byte string stands for `nil` when bytes must be produced (e.g. inside a
    /// composite key); the log itself stores a real null, see ``NullableSerde``.
    public func serialize(_ value: Wrapped.Value?) throws -> [UInt8] {
        guard let value else { return [] }
        return try wrapped.serialize(value)
    }
    public func deserialize(_ bytes: [UInt8]) throws -> Wrapped.Value? { try wrapped.deserialize(bytes) }
    /// Appends the wrapped serde's bytes of a non-nil value; nothing for `nil`.
    public func serialize(_ value: Wrapped.Value?, appendingTo buffer: inout [UInt8]) throws {
        guard let value else { return }
        try wrapped.serialize(value, appendingTo: &buffer)
    }
    public func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Wrapped.Value? { try wrapped.deserialize(from: bytes) }
}

/// A serde that can stand for a null key or value of the log (Kafka's `null`).
///
/// The runtime asks this once per source and sink, never per record: a record whose key or
/// value is null reaches a node only when that node's serde is nullable; otherwise the source
/// skips it and counts it in ``TaskMetrics/skippedNullRecords``.
public protocol NullableSerde: Serde {
    /// The value that a null in the log becomes.
    var nullValue: Value { get }
    /// Whether `value` is written as a null.
    func isNull(_ value: Value) -> Bool
}

extension OptionalSerde: NullableSerde {
    public var nullValue: Wrapped.Value? { nil }
    public func isNull(_ value: Wrapped.Value?) -> Bool { value == nil }
}

/// Built-in serdes, for short call sites: `Serdes.string`, `Serdes.int64`, `Serdes.json(Order.self)`.
public enum Serdes {
    /// UTF-8 text.
    public static var string: StringSerde { StringSerde() }
    /// `Int` as 8 big-endian bytes.
    public static var int: IntSerde { IntSerde() }
    /// `Int64` as 8 big-endian bytes.
    public static var int64: Int64Serde { Int64Serde() }
    /// `Int32` as 4 big-endian bytes.
    public static var int32: Int32Serde { Int32Serde() }
    /// `Double` as 8 big-endian bytes.
    public static var double: DoubleSerde { DoubleSerde() }
    /// Raw bytes.
    public static var bytes: BytesSerde { BytesSerde() }
    /// JSON for a `Codable` type.
    public static func json<T: Codable & Sendable>(_ type: T.Type = T.self) -> JSONSerde<T> { JSONSerde<T>() }
    /// `nil`-able values: `nil` is a null in the log.
    public static func optional<S: Serde>(_ wrapped: S) -> OptionalSerde<S> { OptionalSerde(wrapped) }
    /// Keys of a time window: the inner key followed by the window start, 8 bytes big-endian
    /// (Kafka's `TimeWindowedSerde`; the end is `start + size`).
    public static func timeWindowed<S: Serde>(_ inner: S, windowSize: Int64) -> TimeWindowedSerde<S> {
        TimeWindowedSerde(inner, windowSize: windowSize)
    }
    /// Keys of a session window: the inner key, then end and start, 8 bytes each, big-endian
    /// (Kafka's `SessionWindowedSerde`).
    public static func sessionWindowed<S: Serde>(_ inner: S) -> SessionWindowedSerde<S> { SessionWindowedSerde(inner) }
}

/// Big-endian helpers shared by the numeric serdes.
@usableFromInline
enum BigEndian {
    @inlinable static func bytes(_ v: UInt64) -> [UInt8] {
        [UInt8(truncatingIfNeeded: v >> 56), UInt8(truncatingIfNeeded: v >> 48),
         UInt8(truncatingIfNeeded: v >> 40), UInt8(truncatingIfNeeded: v >> 32),
         UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16),
         UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }
    @inlinable static func append(_ v: UInt64, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self)) }
    }
    @inlinable static func read64(_ bytes: UnsafeRawBufferPointer, what: String) throws -> UInt64 {
        guard bytes.count == 8 else {
            throw EddyError(.serialization, "a \(what) needs 8 bytes, got \(bytes.count)")
        }
        return UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }
    @inlinable static func read64(_ bytes: [UInt8], what: String) throws -> UInt64 {
        guard bytes.count == 8 else {
            throw EddyError(.serialization, "a \(what) needs 8 bytes, got \(bytes.count)")
        }
        return read64(bytes, at: 0)
    }
    @inlinable static func read64(_ bytes: [UInt8], at i: Int) -> UInt64 {
        var v: UInt64 = 0
        for j in i..<(i + 8) { v = v << 8 | UInt64(bytes[j]) }
        return v
    }
}
