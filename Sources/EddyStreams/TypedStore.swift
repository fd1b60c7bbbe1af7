import EddyCore

/// A store a task's processors use, with typed keys and values.
///
/// Each task owns its instances; they are confined to the task's thread and are not
/// thread-safe. The in-memory implementations here keep Swift values (no serialisation on
/// the hot path). Reading them from a test goes through the ``TopologyTestDriver``.
public protocol TypedStore: AnyObject {
    /// The store's name, unique in a topology.
    var name: String { get }
    /// Writes buffered changes through (nothing to do for in-memory stores).
    func flush() throws
    /// Releases resources; the store is not used afterwards.
    func close()
}

/// What kind of store a topology declares; used by ``Topology/describe()`` and the builder's checks.
public enum StoreKind: String, Sendable {
    case keyValue = "key-value"
    case window
    case session
}

/// A key-value store: the latest value per key.
public final class TypedKeyValueStore<Key: Hashable, Value>: TypedStore {
    public let name: String
    var entries: [Key: Value] = [:]
    public init(name: String) { self.name = name }

    /// The value for `key`, or `nil`.
    public func get(_ key: Key) -> Value? { entries[key] }
    /// Sets the value for `key`; `nil` deletes it.
    public func put(_ key: Key, _ value: Value?) { entries[key] = value }
    /// Removes `key`, returning its old value.
    @discardableResult public func delete(_ key: Key) -> Value? { entries.removeValue(forKey: key) }
    /// Every entry, in no particular order.
    public func all() -> [(key: Key, value: Value)] { entries.map { ($0.key, $0.value) } }
    /// Every entry as a dictionary.
    public var dictionary: [Key: Value] { entries }
    /// Number of keys.
    public var count: Int { entries.count }
    public func flush() throws {}
    public func close() {}
}

/// A window store: values per key and window start, for windows of a fixed size; windows
/// whose end is more than `retention` behind stream time are removed.
public final class TypedWindowStore<Key: Hashable, Value>: TypedStore {
    public let name: String
    /// Size of the windows stored, to compute window ends.
    public let windowSize: Int64
    /// How long a window is kept after its start; at least window size + grace.
    public let retention: Int64
    /// start -> key -> value.
    var windows: [Timestamp: [Key: Value]] = [:]
    /// Window starts in ascending order.
    var starts: [Timestamp] = []

    public init(name: String, windowSize: Int64, retention: Int64) {
        self.name = name
        self.windowSize = windowSize
        self.retention = retention
    }

    /// The value of `key` in the window starting at `start`, or `nil`.
    public func fetch(_ key: Key, windowStart start: Timestamp) -> Value? { windows[start]?[key] }

    /// Sets the value of `key` in the window starting at `start` (`nil` deletes it).
    public func put(_ key: Key, windowStart start: Timestamp, _ value: Value?) {
        if windows[start] == nil {
            guard value != nil else { return }
            windows[start] = [:]
            insertStart(start)
        }
        windows[start]![key] = value
    }

    /// Values of `key` in windows starting in `from...to`, by ascending start.
    public func fetch(_ key: Key, from: Timestamp, to: Timestamp) -> [(start: Timestamp, value: Value)] {
        var result: [(start: Timestamp, value: Value)] = []
        var i = lowerBound(from)
        while i < starts.count, starts[i] <= to {
            if let v = windows[starts[i]]?[key] { result.append((starts[i], v)) }
            i += 1
        }
        return result
    }

    /// Every entry, ordered by window start (keys in no particular order within a window).
    public func all() -> [(key: Windowed<Key>, value: Value)] {
        var result: [(key: Windowed<Key>, value: Value)] = []
        for start in starts {
            for (k, v) in windows[start] ?? [:] {
                result.append((Windowed(key: k, window: Window(start: start, end: start + windowSize)), v))
            }
        }
        return result
    }

    /// Removes windows starting before `start`, returning nothing (expiry by retention).
    func removeWindows(startingBefore start: Timestamp) {
        var n = 0
        while n < starts.count, starts[n] < start {
            windows[starts[n]] = nil
            n += 1
        }
        if n > 0 { starts.removeFirst(n) }
    }

    /// Removes and returns the windows whose start is before `start`, ascending (emit-final).
    func takeWindows(startingBefore start: Timestamp) -> [(start: Timestamp, entries: [Key: Value])] {
        var result: [(start: Timestamp, entries: [Key: Value])] = []
        var n = 0
        while n < starts.count, starts[n] < start {
            result.append((starts[n], windows[starts[n]] ?? [:]))
            windows[starts[n]] = nil
            n += 1
        }
        if n > 0 { starts.removeFirst(n) }
        return result
    }

    func lowerBound(_ t: Timestamp) -> Int {
        var lo = 0, hi = starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if starts[mid] < t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
    private func insertStart(_ start: Timestamp) {
        if let last = starts.last, last < start { starts.append(start); return }
        starts.insert(start, at: lowerBound(start))
    }
    public func flush() throws {}
    public func close() {}
}

/// A session store: per key, the sessions (inclusive `[start, end]` windows) and their values.
public final class TypedSessionStore<Key: Hashable, Value>: TypedStore {
    public let name: String
    /// How long a session is kept after its end.
    public let retention: Int64
    var sessions: [Key: [(window: Window, value: Value)]] = [:]

    public init(name: String, retention: Int64) {
        self.name = name
        self.retention = retention
    }

    /// Sessions of `key` that end at or after `earliestEnd` and start at or before `latestStart`.
    public func findSessions(_ key: Key, earliestEnd: Timestamp, latestStart: Timestamp) -> [(window: Window, value: Value)] {
        (sessions[key] ?? []).filter { $0.window.end >= earliestEnd && $0.window.start <= latestStart }
    }
    /// Stores `value` for the session `window` of `key` (replacing one with the same window).
    public func put(_ key: Key, _ window: Window, _ value: Value) {
        var list = sessions[key] ?? []
        if let i = list.firstIndex(where: { $0.window == window }) { list[i].value = value } else {
            list.append((window, value))
            list.sort { $0.window < $1.window }
        }
        sessions[key] = list
    }
    /// Removes the session `window` of `key`.
    public func remove(_ key: Key, _ window: Window) {
        guard var list = sessions[key] else { return }
        list.removeAll { $0.window == window }
        sessions[key] = list.isEmpty ? nil : list
    }
    /// Every session, by key and start.
    public func all() -> [(key: Windowed<Key>, value: Value)] {
        sessions.flatMap { k, list in list.map { (Windowed(key: k, window: $0.window), $0.value) } }
            .sorted { $0.key.window < $1.key.window }
    }
    /// Drops sessions that ended before `time`.
    func removeSessions(endingBefore time: Timestamp) {
        for (k, list) in sessions {
            let kept = list.filter { $0.window.end >= time }
            sessions[k] = kept.isEmpty ? nil : kept
        }
    }
    public func flush() throws {}
    public func close() {}
}
