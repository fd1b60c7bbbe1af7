/// Turns values into bytes and back. Serdes are values, used from any thread.
///
/// A deserializer throws ``EddyError/Code/serialization`` for bytes it cannot read; the
/// streams runtime hands that to the application's deserialization error handler.
///
/// `serialize(_:appendingTo:)` and `deserialize(from:)` are the same conversions on caller-owned
/// buffers, which the streams runtime uses on its per-record path to avoid an array per key and
/// value. Their defaults go through `serialize(_:)` and `deserialize(_:)`; a serde implements them
/// only to be faster, and must give the same bytes and values.
public protocol Serde<Value>: Sendable {
    associatedtype Value
    func serialize(_ value: Value) throws -> [UInt8]
    func deserialize(_ bytes: [UInt8]) throws -> Value
    /// Appends the bytes of `value` to `buffer` (what `serialize(_:)` returns). On a throw,
    /// `buffer` may hold part of them; the caller discards it.
    func serialize(_ value: Value, appendingTo buffer: inout [UInt8]) throws
    /// The value of `bytes`, viewed in place (valid only during the call).
    func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Value
}

extension Serde {
    /// Appends what `serialize(_:)` returns.
    public func serialize(_ value: Value, appendingTo buffer: inout [UInt8]) throws {
        buffer.append(contentsOf: try serialize(value))
    }
    /// `deserialize(_:)` of a copy of the bytes.
    public func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Value {
        try deserialize(Array(bytes))
    }
}
