/// Turns values into bytes and back. Serdes are values, used from any thread.
///
/// A deserializer throws ``EddyError/Code/serialization`` for bytes it cannot read; the
/// streams runtime hands that to the application's deserialization error handler.
public protocol Serde<Value>: Sendable {
    associatedtype Value
    func serialize(_ value: Value) throws -> [UInt8]
    func deserialize(_ bytes: [UInt8]) throws -> Value
}
