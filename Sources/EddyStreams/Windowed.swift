import EddyCore

/// A time interval `[start, end)` in milliseconds (for session windows both ends are inclusive,
/// as in Kafka Streams).
public struct Window: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// First millisecond of the window.
    public var start: Timestamp
    /// End of the window: exclusive for time windows, inclusive for session windows.
    public var end: Timestamp
    /// A window from `start` to `end`.
    public init(start: Timestamp, end: Timestamp) {
        self.start = start
        self.end = end
    }
    public static func < (a: Window, b: Window) -> Bool { a.start == b.start ? a.end < b.end : a.start < b.start }
    public var description: String { "[\(start),\(end))" }
}

/// A key of a windowed aggregation: the record key and the window it was aggregated in.
public struct Windowed<Key> {
    /// The record key.
    public var key: Key
    /// The window.
    public var window: Window
    /// A windowed key.
    @inline(__always)
    public init(key: Key, window: Window) {
        self.key = key
        self.window = window
    }
}

extension Windowed: Equatable where Key: Equatable {}
extension Windowed: Hashable where Key: Hashable {}
extension Windowed: Sendable where Key: Sendable {}
extension Windowed: CustomStringConvertible {
    public var description: String { "\(key)@\(window)" }
}

/// Serde for ``Windowed`` keys of time windows: inner key bytes then the window start as 8
/// big-endian bytes (Kafka's `TimeWindowedSerializer`). The end is restored as `start + windowSize`.
public struct TimeWindowedSerde<Inner: Serde>: Serde {
    /// The serde of the inner key.
    public let inner: Inner
    /// The size of the windows, to restore their ends.
    public let windowSize: Int64
    /// A serde for keys of `windowSize`-millisecond windows.
    public init(_ inner: Inner, windowSize: Int64) {
        self.inner = inner
        self.windowSize = windowSize
    }
    public func serialize(_ value: Windowed<Inner.Value>) throws -> [UInt8] {
        var out = try inner.serialize(value.key)
        BigEndian.append(UInt64(bitPattern: value.window.start), to: &out)
        return out
    }
    /// Appends the inner key's bytes, then the window start.
    public func serialize(_ value: Windowed<Inner.Value>, appendingTo buffer: inout [UInt8]) throws {
        try inner.serialize(value.key, appendingTo: &buffer)
        BigEndian.append(UInt64(bitPattern: value.window.start), to: &buffer)
    }
    public func deserialize(_ bytes: [UInt8]) throws -> Windowed<Inner.Value> {
        guard bytes.count >= 8 else {
            throw EddyError(.serialization, "a time-windowed key needs at least 8 bytes, got \(bytes.count)")
        }
        let start = Int64(bitPattern: BigEndian.read64(bytes, at: bytes.count - 8))
        let key = try inner.deserialize(Array(bytes[0..<(bytes.count - 8)]))
        return Windowed(key: key, window: Window(start: start, end: start &+ windowSize))
    }
}

/// Serde for ``Windowed`` keys of session windows: inner key bytes, then the window end and
/// start as 8 big-endian bytes each (Kafka's `SessionKeySchema`).
public struct SessionWindowedSerde<Inner: Serde>: Serde {
    /// The serde of the inner key.
    public let inner: Inner
    /// A serde for session-windowed keys.
    public init(_ inner: Inner) { self.inner = inner }
    public func serialize(_ value: Windowed<Inner.Value>) throws -> [UInt8] {
        var out = try inner.serialize(value.key)
        BigEndian.append(UInt64(bitPattern: value.window.end), to: &out)
        BigEndian.append(UInt64(bitPattern: value.window.start), to: &out)
        return out
    }
    /// Appends the inner key's bytes, then the session end and start.
    public func serialize(_ value: Windowed<Inner.Value>, appendingTo buffer: inout [UInt8]) throws {
        try inner.serialize(value.key, appendingTo: &buffer)
        BigEndian.append(UInt64(bitPattern: value.window.end), to: &buffer)
        BigEndian.append(UInt64(bitPattern: value.window.start), to: &buffer)
    }
    public func deserialize(_ bytes: [UInt8]) throws -> Windowed<Inner.Value> {
        guard bytes.count >= 16 else {
            throw EddyError(.serialization, "a session-windowed key needs at least 16 bytes, got \(bytes.count)")
        }
        let n = bytes.count
        let end = Int64(bitPattern: BigEndian.read64(bytes, at: n - 16))
        let start = Int64(bitPattern: BigEndian.read64(bytes, at: n - 8))
        let key = try inner.deserialize(Array(bytes[0..<(n - 16)]))
        return Windowed(key: key, window: Window(start: start, end: end))
    }
}
