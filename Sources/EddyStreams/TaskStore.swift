import EddyCore
import Foundation

/// A store a task's processors use, with typed keys and values.
///
/// Each task owns its instances; they are confined to the task's thread and are not
/// thread-safe. The in-memory implementations keep Swift values (no serialisation on the hot
/// path); persistent ones wrap EddyState's byte stores with serdes.
public protocol TaskStore: AnyObject {
    /// The store's name, unique in a topology.
    var name: String { get }
    /// Writes buffered changes through (nothing to do for in-memory stores).
    func flush() throws
    /// Releases resources; the store is not used afterwards.
    func close()
}

/// What kind of store a topology declares; used by ``Topology/describe(_:)`` and the builder's checks.
public enum StoreKind: String, Sendable {
    case keyValue = "key-value"
    case window
    case session
}

/// A key-value store: the latest value per key.
public protocol TaskKeyValueStore<Key, Value>: TaskStore {
    associatedtype Key
    associatedtype Value
    /// The value for `key`, or `nil`.
    func get(_ key: Key) throws -> Value?
    /// Sets the value for `key`; `nil` deletes it.
    func put(_ key: Key, _ value: Value?) throws
    /// Removes `key`, returning its old value.
    @discardableResult func delete(_ key: Key) throws -> Value?
    /// Every entry (in key order for persistent stores, in no particular order in memory).
    func all() throws -> [(key: Key, value: Value)]
}

/// A window store: values per key and window start, for windows of one size.
public protocol TaskWindowStore<Key, Value>: TaskStore {
    associatedtype Key
    associatedtype Value
    /// Size of the windows, to compute window ends.
    var windowSize: Int64 { get }
    /// How long a window is kept after its start.
    var retention: Int64 { get }
    /// The value of `key` in the window starting at `start`, or `nil`.
    func fetch(_ key: Key, windowStart start: Timestamp) throws -> Value?
    /// Sets the value of `key` in the window starting at `start` (`nil` deletes it).
    func put(_ key: Key, windowStart start: Timestamp, _ value: Value?) throws
    /// Values of `key` in windows starting in `from...to`, by ascending start.
    func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(start: Timestamp, value: Value)]
    /// Sets the value of `key` in the window starting at `start` to `body(old value)` and
    /// returns both: a ``fetch(_:windowStart:)`` and a ``put(_:windowStart:_:)`` in one call
    /// (persistent stores serialise the key and look the window up once).
    func update(_ key: Key, windowStart start: Timestamp, _ body: (Value?) throws -> Value) throws -> (old: Value?, new: Value)
    /// Every entry, by ascending window start.
    func all() throws -> [(key: Windowed<Key>, value: Value)]
    /// The entries of every key in windows starting in `from...to` (Kafka's
    /// `fetchAll(timeFrom, timeTo)`), by ascending window start, then by key: in the order of
    /// the serialised keys when the store knows the key serde, else of the keys' descriptions.
    func fetchAll(from: Timestamp, to: Timestamp) throws -> [(key: Windowed<Key>, value: Value)]
    /// Removes windows starting before `start` (expiry by retention; persistent stores
    /// expire whole segments on their own and may ignore this).
    func removeWindows(startingBefore start: Timestamp) throws
}

extension TaskWindowStore {
    /// The default: a ``fetch(_:windowStart:)`` then a ``put(_:windowStart:_:)``.
    public func update(_ key: Key, windowStart start: Timestamp, _ body: (Value?) throws -> Value) throws -> (old: Value?, new: Value) {
        let old = try fetch(key, windowStart: start)
        let new = try body(old)
        try put(key, windowStart: start, new)
        return (old, new)
    }
}

/// A session store: per key, sessions (inclusive `[start, end]` windows) and their values.
public protocol TaskSessionStore<Key, Value>: TaskStore {
    associatedtype Key
    associatedtype Value
    /// How long a session is kept after its end.
    var retention: Int64 { get }
    /// Sessions of `key` that end at or after `earliestEnd` and start at or before `latestStart`.
    func findSessions(_ key: Key, earliestEnd: Timestamp, latestStart: Timestamp) throws -> [(window: Window, value: Value)]
    /// Stores `value` for the session `window` of `key`.
    func put(_ key: Key, _ window: Window, _ value: Value) throws
    /// Removes the session `window` of `key`.
    func remove(_ key: Key, _ window: Window) throws
    /// Every session, by start.
    func all() throws -> [(key: Windowed<Key>, value: Value)]
    /// Drops sessions that ended before `time`.
    func removeSessions(endingBefore time: Timestamp) throws
}

/// A ``TaskKeyValueStore`` of Swift values in a dictionary: no serialisation.
public final class InMemoryTaskKeyValueStore<Key: Hashable, Value>: TaskKeyValueStore {
    public let name: String
    var entries: [Key: Value] = [:]
    /// An empty store named `name`.
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

/// A ``TaskWindowStore`` of Swift values: a dictionary per window start.
public final class InMemoryTaskWindowStore<Key: Hashable, Value>: TaskWindowStore {
    public let name: String
    /// Size of the windows stored, to compute window ends.
    public let windowSize: Int64
    /// How long a window is kept after its start; at least window size + grace.
    public let retention: Int64
    /// start -> key -> value.
    var windows: [Timestamp: [Key: Value]] = [:]
    /// Window starts in ascending order.
    var starts: [Timestamp] = []
    /// Orders the keys of a window in ``fetchAll(from:to:)``, when known.
    var keySerde: AnySerde<Key>?

    /// An empty window store.
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

    /// The entries of every key in windows starting in `from...to`, by window start, then by
    /// serialised key (by description when the store has no key serde).
    public func fetchAll(from: Timestamp, to: Timestamp) throws -> [(key: Windowed<Key>, value: Value)] {
        var result: [(key: Windowed<Key>, value: Value)] = []
        var i = lowerBound(from)
        while i < starts.count, starts[i] <= to {
            let start = starts[i]
            let window = Window(start: start, end: start + windowSize)
            var entries = (windows[start] ?? [:]).map { ($0.key, $0.value) }
            if let keySerde {
                let keys = try entries.map { try keySerde.serialize($0.0) }
                entries = StoreBytes.sortedIndices(keys).map { entries[$0] }
            } else {
                entries.sort { String(describing: $0.0) < String(describing: $1.0) }
            }
            for (key, value) in entries { result.append((Windowed(key: key, window: window), value)) }
            i += 1
        }
        return result
    }

    public func removeWindows(startingBefore start: Timestamp) {
        var n = 0
        while n < starts.count, starts[n] < start {
            windows[starts[n]] = nil
            n += 1
        }
        if n > 0 { starts.removeFirst(n) }
    }

    public func takeWindows(startingBefore start: Timestamp) -> [(start: Timestamp, entries: [(key: Key, value: Value)])] {
        var result: [(start: Timestamp, entries: [(key: Key, value: Value)])] = []
        var n = 0
        while n < starts.count, starts[n] < start {
            result.append((starts[n], (windows[starts[n]] ?? [:]).map { ($0.key, $0.value) }))
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

/// A ``TaskSessionStore`` of Swift values.
public final class InMemoryTaskSessionStore<Key: Hashable, Value>: TaskSessionStore {
    public let name: String
    /// How long a session is kept after its end.
    public let retention: Int64
    var sessions: [Key: [(window: Window, value: Value)]] = [:]

    /// An empty session store.
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
    public func removeSessions(endingBefore time: Timestamp) {
        for (k, list) in sessions {
            let kept = list.filter { $0.window.end >= time }
            sessions[k] = kept.isEmpty ? nil : kept
        }
    }
    public func flush() throws {}
    public func close() {}
}

/// The in-memory store of a global table: a ``TaskKeyValueStore`` of Swift values that one
/// writer (the global thread) and any number of readers (the stream threads' tasks) share.
/// Every call takes a read-write lock, so a read sees each write whole; readers do not block
/// each other.
public final class SharedTaskKeyValueStore<Key: Hashable, Value>: TaskKeyValueStore, @unchecked Sendable {
    // @unchecked: `entries` is read and written only under `lock`.
    public let name: String
    private var entries: [Key: Value] = [:]
    private let lock = ReadWriteLock()
    /// An empty store named `name`.
    public init(name: String) { self.name = name }

    /// The value for `key`, or `nil`.
    public func get(_ key: Key) -> Value? { lock.reading { entries[key] } }
    /// Sets the value for `key`; `nil` deletes it.
    public func put(_ key: Key, _ value: Value?) { lock.writing { entries[key] = value } }
    /// Removes `key`, returning its old value.
    @discardableResult public func delete(_ key: Key) -> Value? { lock.writing { entries.removeValue(forKey: key) } }
    /// Every entry, in no particular order.
    public func all() -> [(key: Key, value: Value)] { lock.reading { entries.map { ($0.key, $0.value) } } }
    /// Number of keys.
    public var count: Int { lock.reading { entries.count } }
    public func flush() throws {}
    public func close() {}
}

/// A POSIX read-write lock.
final class ReadWriteLock: @unchecked Sendable {
    // @unchecked: the lock is the synchronisation.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        precondition(pthread_rwlock_init(lock, nil) == 0, "pthread_rwlock_init failed")
    }
    deinit {
        pthread_rwlock_destroy(lock)
        lock.deinitialize(count: 1)
        lock.deallocate()
    }
    @inline(__always)
    func reading<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
    @inline(__always)
    func writing<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
