import EddyCore
import EddyState

/// A ``TaskKeyValueStore`` over an EddyState ``KeyValueStore`` (RocksDB or in-memory bytes):
/// keys and values go through serdes. ``flush()`` commits the store's write buffer (for an
/// unlogged store); the stream threads of the runtime drive the full commit protocol through
/// ``stateStore`` instead.
///
/// Reads go through a cache of deserialized values (Kafka Streams' record cache, read side):
/// a table joined by a stream is read once per record, and a RocksDB lookup plus a
/// deserialization costs far more than a dictionary lookup. Writes go through to the byte
/// store at once, so the cache never holds anything the store does not, and commit, abort
/// and restoration keep working on the byte store alone. After an abort the runtime drops
/// the task and with it this wrapper and its cache; the byte store must not be written
/// around this wrapper while it is in use. At most ``maximumCachedEntries`` entries; when full
/// the cache starts over.
public final class PersistentTaskKeyValueStore<Key, Value>: TaskKeyValueStore {
    /// Most deserialized entries a store keeps in its read cache.
    public static var maximumCachedEntries: Int { 100_000 }

    /// The underlying byte store, for the runtime's commit protocol.
    public let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    /// Serialized key -> value (`nil`: known absent).
    private var cache: [ByteKey: Value?] = [:]
    public var name: String { stateStore.name }

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }
    private func remember(_ key: [UInt8], _ value: Value?) {
        if cache.count >= Self.maximumCachedEntries { cache.removeAll(keepingCapacity: true) }
        cache[ByteKey(key)] = .some(value)
    }
    public func get(_ key: Key) throws -> Value? {
        let k = try keySerde.serialize(key)
        if let cached = cache[ByteKey(k)] { return cached }
        let value = try stateStore.get(k).map { try valueSerde.deserialize($0) }
        remember(k, value)
        return value
    }
    public func put(_ key: Key, _ value: Value?) throws {
        let k = try keySerde.serialize(key)
        cache[ByteKey(k)] = nil
        if let value { try stateStore.put(k, valueSerde.serialize(value)) } else { try stateStore.delete(k) }
        remember(k, value)
    }
    @discardableResult public func delete(_ key: Key) throws -> Value? {
        let k = try keySerde.serialize(key)
        cache[ByteKey(k)] = nil
        let old = try stateStore.delete(k).map { try valueSerde.deserialize($0) }
        remember(k, nil)
        return old
    }
    public func all() throws -> [(key: Key, value: Value)] {
        try stateStore.all().map { (try keySerde.deserialize($0.key), try valueSerde.deserialize($0.value)) }
    }
    public func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    public func close() {
        cache = [:]
        stateStore.close()
    }
}

/// A ``TaskWindowStore`` over an EddyState ``WindowStore`` through serdes. Retention is the
/// underlying store's (whole segments expire as stream time advances).
///
/// Windows that start after the latest window the byte store held when this wrapper first
/// touched it (after restoration) are written only through this wrapper, so it keeps all of
/// their entries as deserialized values and answers ``fetch(_:windowStart:)`` for them without
/// RocksDB, including the "no aggregate yet" answer that a new window gives for every key
/// (a RocksDB miss walks the memtable and the files' filters; it was the largest cost of a
/// windowed aggregation). Writes go through to the byte store at once, so commit, abort and
/// restoration keep working on it alone; after an abort the runtime drops the task and this
/// wrapper with it. Cached windows are dropped with ``removeWindows(startingBefore:)`` and once
/// the byte store's retention passes them. The byte store must not be written around this
/// wrapper while it is in use.
public final class PersistentTaskWindowStore<Key, Value>: TaskWindowStore {
    /// The underlying byte store, for the runtime's commit protocol.
    public let stateStore: any WindowStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    public let windowSize: Int64
    public var name: String { stateStore.name }
    public var retention: Int64 { stateStore.retentionMilliseconds }
    /// Window starts above this one are entirely in `cache`; nil until first used.
    private var ownedAfter: Timestamp? = nil
    /// Window start -> serialized key -> value, for owned windows still within retention.
    private var cache: [Timestamp: [ByteKey: Value]] = [:]
    /// Windows before this start were dropped from `cache` by ``removeWindows(startingBefore:)``:
    /// reads of them go to the byte store.
    private var evictedBelow: Timestamp = .min

    init(_ store: any WindowStore, windowSize: Int64, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.windowSize = windowSize
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    /// Windows starting here or later are written only through this wrapper and still cached:
    /// they start after the byte store's latest window when the wrapper first touched it, and
    /// were not evicted.
    private var firstOwnedStart: Timestamp {
        if ownedAfter == nil { ownedAfter = stateStore.observedStreamTime ?? .min }
        let (after, overflow) = ownedAfter!.addingReportingOverflow(1)
        return max(overflow ? .max : after, evictedBelow)
    }
    private func owns(_ start: Timestamp) -> Bool { start >= firstOwnedStart }
    /// The byte store's oldest live window start (it forgets and refuses older windows).
    private var liveFloor: Timestamp {
        guard let time = stateStore.observedStreamTime else { return .min }
        let (value, overflow) = time.subtractingReportingOverflow(stateStore.retentionMilliseconds - 1)
        return overflow ? .min : value
    }

    /// Adds an empty cached window at `start`, sized like the largest cached one (windows fill
    /// alike, and growing a dictionary entry by entry rehashes it over and over), and forgets
    /// the windows the byte store no longer keeps.
    private func openWindow(_ start: Timestamp, floor: Timestamp) {
        var bucket: [ByteKey: Value] = [:]
        bucket.reserveCapacity(cache.values.reduce(0) { max($0, $1.count) })
        for expired in cache.keys where expired < floor { cache[expired] = nil }
        cache[start] = bucket
    }

    public func fetch(_ key: Key, windowStart start: Timestamp) throws -> Value? {
        let k = try keySerde.serialize(key)
        if owns(start) {
            guard start >= liveFloor else { return nil }
            return cache[start]?[ByteKey(k)]
        }
        return try stateStore.fetch(k, windowStart: start).map { try valueSerde.deserialize($0) }
    }
    public func put(_ key: Key, windowStart start: Timestamp, _ value: Value?) throws {
        let k = try keySerde.serialize(key)
        // The byte store first: if it throws, the cache still matches it.
        try stateStore.put(k, windowStart: start, value: value.map { try valueSerde.serialize($0) })
        if owns(start) { cacheWrite(start, k, value) }
    }
    /// Mirrors a write the byte store took into the cache of an owned window.
    private func cacheWrite(_ start: Timestamp, _ key: [UInt8], _ value: Value?) {
        let floor = liveFloor  // the write may have advanced the byte store's stream time
        guard start >= floor else { return }  // refused by the byte store; fetch answers nil
        guard let value else {
            cache[start]?[ByteKey(key)] = nil
            return
        }
        if cache[start] == nil { openWindow(start, floor: floor) }
        cache[start]![ByteKey(key)] = value
    }
    public func update(_ key: Key, windowStart start: Timestamp, _ body: (Value?) throws -> Value) throws -> (old: Value?, new: Value) {
        let k = try keySerde.serialize(key)
        let owned = owns(start)
        let old: Value?
        if owned {
            old = start >= liveFloor ? cache[start]?[ByteKey(k)] : nil
        } else {
            old = try stateStore.fetch(k, windowStart: start).map { try valueSerde.deserialize($0) }
        }
        let new = try body(old)
        try stateStore.put(k, windowStart: start, value: try valueSerde.serialize(new))
        if owned { cacheWrite(start, k, new) }
        return (old, new)
    }
    public func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(start: Timestamp, value: Value)] {
        try stateStore.fetch(keySerde.serialize(key), from: from, to: to).map { ($0.windowStart, try valueSerde.deserialize($0.value)) }
    }
    public func all() throws -> [(key: Windowed<Key>, value: Value)] {
        try stateStore.all().map { entry in
            (Windowed(key: try keySerde.deserialize(entry.key), window: Window(start: entry.windowStart, end: entry.windowStart + windowSize)),
             try valueSerde.deserialize(entry.value))
        }.sorted { $0.key.window.start < $1.key.window.start }
    }
    /// The entries of every key in windows starting in `from...to`, by window start, then by
    /// serialised key. Windows this wrapper owns come from its cache, older ones from the byte
    /// store (``WindowStore/fetchAll(from:to:)``, which reads only the segments of the range).
    public func fetchAll(from: Timestamp, to: Timestamp) throws -> [(key: Windowed<Key>, value: Value)] {
        guard from <= to else { return [] }
        let firstOwned = firstOwnedStart
        var result: [(key: Windowed<Key>, value: Value)] = []
        if from < firstOwned {
            var entries = try stateStore.fetchAll(from: from, to: min(to, firstOwned - 1))
            entries.sort { $0.windowStart != $1.windowStart ? $0.windowStart < $1.windowStart : StoreBytes.less($0.key, $1.key) }
            for entry in entries {
                result.append((Windowed(key: try keySerde.deserialize(entry.key),
                                        window: Window(start: entry.windowStart, end: entry.windowStart + windowSize)),
                               try valueSerde.deserialize(entry.value)))
            }
        }
        let low = max(from, firstOwned, liveFloor)
        guard low <= to else { return result }
        for start in cache.keys.filter({ $0 >= low && $0 <= to }).sorted() {
            let bucket = cache[start]!
            let entries = Array(bucket)
            let keys = entries.map(\.key.bytes)
            let window = Window(start: start, end: start + windowSize)
            result.reserveCapacity(result.count + keys.count)
            for i in StoreBytes.sortedIndices(keys) {
                result.append((Windowed(key: try keySerde.deserialize(keys[i]), window: window), entries[i].value))
            }
        }
        return result
    }
    /// Drops cached windows before `start`; the byte store expires whole segments by itself.
    public func removeWindows(startingBefore start: Timestamp) throws {
        evictedBelow = max(evictedBelow, start)
        for old in cache.keys where old < start { cache[old] = nil }
    }
    public func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    public func close() {
        cache = [:]
        stateStore.close()
    }
}

/// A ``TaskSessionStore`` over an EddyState ``SessionStore`` through serdes.
public final class PersistentTaskSessionStore<Key, Value>: TaskSessionStore {
    /// The underlying byte store, for the runtime's commit protocol.
    public let stateStore: any SessionStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    public var name: String { stateStore.name }
    public var retention: Int64 { stateStore.retentionMilliseconds }

    init(_ store: any SessionStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }
    public func findSessions(_ key: Key, earliestEnd: Timestamp, latestStart: Timestamp) throws -> [(window: Window, value: Value)] {
        try stateStore.findSessions(keySerde.serialize(key), earliestSessionEnd: earliestEnd, latestSessionStart: latestStart)
            .map { (Window(start: $0.window.start, end: $0.window.end), try valueSerde.deserialize($0.value)) }
            .sorted { $0.window < $1.window }
    }
    public func put(_ key: Key, _ window: Window, _ value: Value) throws {
        try stateStore.put(keySerde.serialize(key), session: SessionWindow(start: window.start, end: window.end), value: valueSerde.serialize(value))
    }
    public func remove(_ key: Key, _ window: Window) throws {
        try stateStore.remove(keySerde.serialize(key), session: SessionWindow(start: window.start, end: window.end))
    }
    public func all() throws -> [(key: Windowed<Key>, value: Value)] {
        try stateStore.all().map { entry in
            (Windowed(key: try keySerde.deserialize(entry.key), window: Window(start: entry.window.start, end: entry.window.end)),
             try valueSerde.deserialize(entry.value))
        }.sorted { $0.key.window < $1.key.window }
    }
    public func removeSessions(endingBefore time: Timestamp) throws {}
    public func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    public func close() { stateStore.close() }
}

/// How a topology's store declarations become store instances for a task.
enum StorePersistence {
    /// Opens the persistent (RocksDB) variant of a store in its task's state directory. The
    /// builders return `nil` when the store's serdes are unknown: the store then stays in memory.
    /// `changelogPartition`: when non-nil the store is logged to partition `changelogPartition`
    /// of `<application>-<store>-changelog` (the runtime's tasks); nil leaves it unlogged.
    typealias Factory = (TaskStateDirectory, _ changelogPartition: Int?) throws -> any TaskStore

    /// The changelog of store `name` for a task of `directory`, when logged.
    static func changelog(_ name: String, _ directory: TaskStateDirectory, _ partition: Int?) -> TopicPartition? {
        partition.map { TopicPartition(ChangelogTopic.name(application: directory.application, store: name), $0) }
    }

    static func keyValue<K, V>(_ name: String, _ key: AnySerde<K>?, _ value: AnySerde<V>?) -> Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            PersistentTaskKeyValueStore(try directory.keyValueStore(named: name, changelog: changelog(name, directory, partition)), keySerde: key, valueSerde: value)
        }
    }
    static func window<K, V>(_ name: String, size: Int64, retention: Int64, _ key: AnySerde<K>?, _ value: AnySerde<V>?) -> Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            PersistentTaskWindowStore(try directory.windowStore(named: name, retentionMilliseconds: retention,
                                                                changelog: changelog(name, directory, partition)),
                                      windowSize: size, keySerde: key, valueSerde: value)
        }
    }
    static func session<K, V>(_ name: String, retention: Int64, _ key: AnySerde<K>?, _ value: AnySerde<V>?) -> Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            PersistentTaskSessionStore(try directory.sessionStore(named: name, retentionMilliseconds: retention,
                                                                  changelog: changelog(name, directory, partition)),
                                       keySerde: key, valueSerde: value)
        }
    }
}

/// Where a ``TopologyTestDriver`` (and later the runtime) keeps the stores of its tasks.
public enum StoreBackend: Sendable {
    /// Swift values in memory: fastest, nothing on disk. The default.
    case inMemory
    /// RocksDB, one database per task under `directory/<applicationID>/<task>/`. Stores whose
    /// serdes the topology does not know (e.g. `aggregate` without `valueSerde:`) stay in memory.
    case rocksDB(directory: String)
}
