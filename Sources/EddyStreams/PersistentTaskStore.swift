import EddyCore
import EddyState

/// A ``TaskKeyValueStore`` over an EddyState ``KeyValueStore`` (RocksDB or in-memory bytes):
/// keys and values go through serdes. ``flush()`` commits the store's write buffer (for an
/// unlogged store); the stream threads of the runtime drive the full commit protocol through
/// ``stateStore`` instead.
public final class PersistentTaskKeyValueStore<Key, Value>: TaskKeyValueStore {
    /// The underlying byte store, for the runtime's commit protocol.
    public let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    public var name: String { stateStore.name }

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }
    public func get(_ key: Key) throws -> Value? {
        try stateStore.get(keySerde.serialize(key)).map { try valueSerde.deserialize($0) }
    }
    public func put(_ key: Key, _ value: Value?) throws {
        let k = try keySerde.serialize(key)
        if let value { try stateStore.put(k, valueSerde.serialize(value)) } else { try stateStore.delete(k) }
    }
    @discardableResult public func delete(_ key: Key) throws -> Value? {
        try stateStore.delete(keySerde.serialize(key)).map { try valueSerde.deserialize($0) }
    }
    public func all() throws -> [(key: Key, value: Value)] {
        try stateStore.all().map { (try keySerde.deserialize($0.key), try valueSerde.deserialize($0.value)) }
    }
    public func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    public func close() { stateStore.close() }
}

/// A ``TaskWindowStore`` over an EddyState ``WindowStore`` through serdes. Retention is the
/// underlying store's (whole segments expire as stream time advances).
public final class PersistentTaskWindowStore<Key, Value>: TaskWindowStore {
    /// The underlying byte store, for the runtime's commit protocol.
    public let stateStore: any WindowStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    public let windowSize: Int64
    public var name: String { stateStore.name }
    public var retention: Int64 { stateStore.retentionMilliseconds }

    init(_ store: any WindowStore, windowSize: Int64, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.windowSize = windowSize
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }
    public func fetch(_ key: Key, windowStart start: Timestamp) throws -> Value? {
        try stateStore.fetch(keySerde.serialize(key), windowStart: start).map { try valueSerde.deserialize($0) }
    }
    public func put(_ key: Key, windowStart start: Timestamp, _ value: Value?) throws {
        try stateStore.put(keySerde.serialize(key), windowStart: start, value: value.map { try valueSerde.serialize($0) })
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
    public func removeWindows(startingBefore start: Timestamp) throws {}
    public func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    public func close() { stateStore.close() }
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
