import EddyCore

/// A value stored for a key in one window.
public struct WindowEntry: Hashable, Sendable {
    public var key: [UInt8]
    /// The window's start, milliseconds since the epoch.
    public var windowStart: Timestamp
    public var value: [UInt8]
    public init(key: [UInt8], windowStart: Timestamp, value: [UInt8]) {
        self.key = key
        self.windowStart = windowStart
        self.value = value
    }
}

/// A store of values per (key, window start) with time-based retention (Kafka Streams'
/// `WindowStore`). Reads see uncommitted writes.
///
/// Retention: the store's stream time is the largest window start written. Windows starting
/// before `streamTime - retention + 1` are expired: a write of one is ignored, reads skip them,
/// and the store drops them in bulk, a whole time segment (``segmentIntervalMilliseconds``) at a
/// time, at the next commit. Time bounds of fetches are inclusive, like Kafka's.
///
/// ```swift
/// try windows.put(key, windowStart: 60_000, value: count)
/// let lastHour = try windows.fetch(key, from: now - 3_600_000, to: now)
/// ```
public protocol WindowStore: StateStore {
    /// How long windows are kept, measured back from the stream time.
    var retentionMilliseconds: Int64 { get }
    /// The width of the time segments that expire together.
    var segmentIntervalMilliseconds: Int64 { get }
    /// The largest window start written so far (uncommitted writes included), `nil` before any.
    var observedStreamTime: Timestamp? { get }
    /// Sets the value of `key` in the window starting at `windowStart`; `nil` removes it.
    /// Ignored when the window is expired.
    func put(_ key: [UInt8], windowStart: Timestamp, value: [UInt8]?) throws
    /// The value of `key` in the window starting at `windowStart`, or `nil`.
    func fetch(_ key: [UInt8], windowStart: Timestamp) throws -> [UInt8]?
    /// The windows of `key` starting in [from, to], by window start (descending with `reverse`),
    /// at most `limit`.
    func fetch(_ key: [UInt8], from: Timestamp, to: Timestamp, reverse: Bool, limit: Int) throws -> [WindowEntry]
    /// The windows of keys in [keyFrom, keyTo] starting in [from, to], at most `limit`, ordered
    /// by time segment, then key, then window start.
    func fetch(keyFrom: [UInt8], keyTo: [UInt8], from: Timestamp, to: Timestamp, limit: Int) throws -> [WindowEntry]
    /// Every live window, in the order of the key-range fetch, at most `limit`.
    func all(limit: Int) throws -> [WindowEntry]
    /// The windows of every key starting in [from, to] (Kafka's `fetchAll(timeFrom, timeTo)`),
    /// in the order of the key-range fetch. Reads only the time segments the range covers.
    func fetchAll(from: Timestamp, to: Timestamp) throws -> [WindowEntry]
}

extension WindowStore {
    /// The windows of `key` starting in [from, to], ascending by window start.
    public func fetch(_ key: [UInt8], from: Timestamp, to: Timestamp) throws -> [WindowEntry] {
        try fetch(key, from: from, to: to, reverse: false, limit: .max)
    }
    /// The windows of keys in [keyFrom, keyTo] starting in [from, to].
    public func fetch(keyFrom: [UInt8], keyTo: [UInt8], from: Timestamp, to: Timestamp) throws -> [WindowEntry] {
        try fetch(keyFrom: keyFrom, keyTo: keyTo, from: from, to: to, limit: .max)
    }
    /// Every live window.
    public func all() throws -> [WindowEntry] { try all(limit: .max) }
}

/// Defaults for window and session stores.
public enum SegmentedStoreDefaults {
    /// Kafka Streams' choice: half the retention, but at least a minute.
    public static func segmentInterval(retentionMilliseconds: Int64) -> Int64 {
        max(retentionMilliseconds / 2, 60_000)
    }
}

/// The window logic shared by ``RocksDBWindowStore`` and ``InMemoryWindowStore``.
final class WindowLogic {
    let segments: SegmentedLogic
    var core: StoreCore { segments.core }

    init(core: StoreCore, retention: Int64, segmentInterval: Int64) throws {
        segments = try SegmentedLogic(core: core, retention: retention, segmentInterval: segmentInterval, suffixCount: 1)
    }

    var observedStreamTime: Timestamp? { segments.streamTime == .min ? nil : segments.streamTime }

    func put(_ key: [UInt8], windowStart: Timestamp, value: [UInt8]?) throws {
        try segments.write(key, [windowStart], value)
    }

    func fetch(_ key: [UInt8], windowStart: Timestamp) throws -> [UInt8]? {
        try segments.get(key, [windowStart])
    }

    func fetch(_ key: [UInt8], from: Timestamp, to: Timestamp, reverse: Bool, limit: Int) throws -> [WindowEntry] {
        var result: [WindowEntry] = []
        guard limit > 0 else { return result }
        try segments.visit(keyFrom: key, keyTo: key, timeFrom: from, timeTo: to) { key, suffix, value in
            result.append(WindowEntry(key: key, windowStart: suffix[0], value: value))
            return reverse || result.count < limit
        }
        if reverse {
            result.reverse()
            if result.count > limit { result.removeLast(result.count - limit) }
        }
        return result
    }

    func fetch(keyFrom: [UInt8]?, keyTo: [UInt8]?, from: Timestamp, to: Timestamp, limit: Int) throws -> [WindowEntry] {
        var result: [WindowEntry] = []
        guard limit > 0 else { return result }
        try segments.visit(keyFrom: keyFrom, keyTo: keyTo, timeFrom: from, timeTo: to) { key, suffix, value in
            result.append(WindowEntry(key: key, windowStart: suffix[0], value: value))
            return result.count < limit
        }
        return result
    }
}
