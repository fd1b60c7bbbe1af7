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
/// windowed aggregation).
///
/// Changes to those windows are written back (Kafka Streams' record cache, write side): each
/// update serialises its value at once (so serde errors and oversized values fail the record
/// that caused them) but reaches the byte store only at ``writeBack()``, which the runtime calls
/// before every commit, and then only the latest value per key and window. Windows that the
/// retention has passed by then are not written at all: their entries would be expired on
/// every read and on restore, so neither RocksDB nor the changelog gets them. An emit-final
/// aggregation whose windows close within a commit interval thus writes nothing but its
/// latest windows. Older windows, and reads that need the byte store (``fetch(_:from:to:)``,
/// ``all()``), write back first or go to the byte store directly. After an abort the runtime
/// drops the task and this wrapper with it. Cached windows are dropped with
/// ``removeWindows(startingBefore:)`` (their pending changes written back first, when still
/// live) and once the retention passes them. The byte store must not be written around this
/// wrapper while it is in use.
///
/// The wrapper is confined to its task's thread and calls nothing that could reach it again,
/// so its mutable state skips the runtime's exclusivity checks.
public final class PersistentTaskWindowStore<Key, Value>: TaskWindowStore, WriteBackStore {
    /// The underlying byte store, for the runtime's commit protocol.
    public let stateStore: any WindowStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    /// The serdes' calls as plain closures, for the per-record paths: calling a method of
    /// `AnySerde<Key>` from unspecialised code looks its metadata up every time.
    let serializeKey: (Key) throws -> [UInt8]
    let serializeValue: (Value, inout [UInt8]) throws -> Void
    let deserializeKey: ([UInt8]) throws -> Key
    public let windowSize: Int64
    public var name: String { stateStore.name }
    public let retention: Int64
    /// Window starts above this one are entirely in `cache`; nil until first used.
    @exclusivity(unchecked) private var ownedAfter: Timestamp? = nil
    typealias CachedWindow = WindowCache<Value>
    /// Window start -> its entries, for owned windows still within retention.
    @exclusivity(unchecked) private var cache: [Timestamp: CachedWindow] = [:]
    /// Starts of the cached windows with pending changes.
    @exclusivity(unchecked) private var dirtyWindows: Set<Timestamp> = []
    /// The window used last (records mostly fall in the latest window): found without hashing.
    @exclusivity(unchecked) private var lastWindow: CachedWindow? = nil
    @exclusivity(unchecked) private var lastWindowStart: Timestamp = .min
    /// The most keys a dropped window held: new windows reserve room for as many.
    @exclusivity(unchecked) private var largestDroppedWindow = 0
    /// Windows before this start were dropped from `cache` by ``removeWindows(startingBefore:)``:
    /// reads of them go to the byte store.
    @exclusivity(unchecked) private var evictedBelow: Timestamp = .min
    /// The latest window start written through this wrapper or held by the byte store (which
    /// sees written-back windows only at ``writeBack()``); nil until first used.
    @exclusivity(unchecked) private var latestStart: Timestamp? = nil

    init(_ store: any WindowStore, windowSize: Int64, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.windowSize = windowSize
        self.keySerde = keySerde
        self.valueSerde = valueSerde
        retention = store.retentionMilliseconds
        let key = keySerde.base, value = valueSerde.base
        serializeKey = { try key.serialize($0) }
        serializeValue = { try value.serialize($0, appendingTo: &$1) }
        deserializeKey = { try key.deserialize($0) }
    }

    /// Windows starting here or later are written only through this wrapper and still cached:
    /// they start after the byte store's latest window when the wrapper first touched it, and
    /// were not evicted.
    private var firstOwnedStart: Timestamp {
        let (after, overflow) = byteStoreTimeAtStart.addingReportingOverflow(1)
        return max(overflow ? .max : after, evictedBelow)
    }
    /// The byte store's latest window start when this wrapper first touched it (`.min`: none).
    private var byteStoreTimeAtStart: Timestamp {
        if let ownedAfter { return ownedAfter }
        let time = stateStore.observedStreamTime ?? .min
        ownedAfter = time
        return time
    }
    private func owns(_ start: Timestamp) -> Bool { start >= firstOwnedStart }
    /// The oldest live window start: the byte store forgets and refuses older windows once it
    /// has seen `latestStart`.
    private var liveFloor: Timestamp {
        guard let time = streamTime else { return .min }
        let (value, overflow) = time.subtractingReportingOverflow(retention - 1)
        return overflow ? .min : value
    }
    /// The latest window start of the byte store and of this wrapper's writes (every write of
    /// the byte store goes through this wrapper, so this is the byte store's stream time once
    /// the changes are written back).
    private var streamTime: Timestamp? {
        let time = max(byteStoreTimeAtStart, latestStart ?? .min)
        return time == .min ? nil : time
    }
    /// Notes a write to the window at `start`; returns false when the window is expired (the
    /// byte store would refuse the write).
    private func advance(to start: Timestamp) -> Bool {
        if start > latestStart ?? .min { latestStart = start }
        return start >= liveFloor
    }

    /// The cached window at `start`, opened empty when absent. A new window is sized like the
    /// largest cached one (windows fill alike, and growing a dictionary entry by entry rehashes
    /// it over and over); opening one forgets the windows the retention has passed.
    private func window(_ start: Timestamp) -> CachedWindow {
        if start == lastWindowStart, let lastWindow { return lastWindow }
        if let window = cache[start] {
            (lastWindowStart, lastWindow) = (start, window)
            return window
        }
        let floor = liveFloor
        for expired in cache.keys where expired < floor { dropWindow(expired) }
        let window = CachedWindow(capacity: cache.values.reduce(largestDroppedWindow) { max($0, $1.capacityHint) })
        cache[start] = window
        (lastWindowStart, lastWindow) = (start, window)
        return window
    }
    /// The cached window at `start`, if any.
    private func cachedWindow(_ start: Timestamp) -> CachedWindow? {
        if start == lastWindowStart, let lastWindow { return lastWindow }
        return cache[start]
    }
    /// Forgets the cached window at `start`.
    private func dropWindow(_ start: Timestamp) {
        if let dropped = cache.removeValue(forKey: start) { largestDroppedWindow = max(largestDroppedWindow, dropped.capacityHint) }
        dirtyWindows.remove(start)
        if start == lastWindowStart { lastWindow = nil }
    }
    /// Changes the owned window at `start` through `change` when the window is live, then
    /// notes the write (the latest start, and the window as having pending changes). For an
    /// expired window (the byte store would refuse the write) `expired` runs instead.
    private func writeOwned(_ start: Timestamp, expired: () throws -> Void, _ change: (CachedWindow) throws -> Void) throws {
        // A window later than the latest start is live and becomes the latest; the store's
        // stream time moves only once the change has succeeded.
        guard start >= liveFloor else { return try expired() }
        let window = window(start)
        let wasClean = !window.hasPending
        try change(window)
        _ = advance(to: start)
        if wasClean { dirtyWindows.insert(start) }
    }
    /// Throws when a key or value of these sizes exceeds ``StateLimits``.
    private func checkLimits(_ key: [UInt8], _ valueBytes: Int?) throws {
        if key.count > StateLimits.maximumKeyBytes || valueBytes ?? 0 > StateLimits.maximumValueBytes {
            try StateLimits.check(keyBytes: key.count, valueBytes: valueBytes, store: name)
        }
    }
    /// Serialises a value only to check it and the key against the store's limits (a write to
    /// an expired window keeps nothing, but a bad value still fails its record).
    private func validate(_ key: [UInt8], _ value: Value?) throws {
        try StateLimits.check(key: key, value: try value.map { try valueSerde.serialize($0) }, store: name)
    }

    public func fetch(_ key: Key, windowStart start: Timestamp) throws -> Value? {
        let k = try keySerde.serialize(key)
        guard start >= liveFloor else { return nil }
        if owns(start) { return cachedWindow(start)?.value(ByteKey(k)) }
        return try stateStore.fetch(k, windowStart: start).map { try valueSerde.deserialize($0) }
    }
    public func put(_ key: Key, windowStart start: Timestamp, _ value: Value?) throws {
        let k = try keySerde.serialize(key)
        guard owns(start) else {
            if advance(to: start) { try stateStore.put(k, windowStart: start, value: value.map { try valueSerde.serialize($0) }) }
            return
        }
        try writeOwned(start, expired: { try validate(k, value) }) { window in
            if let value {
                try window.set(ByteKey(k), value, serialize: { try serializeValue(value, &$0) }) { try checkLimits(k, $0) }
            } else {
                try checkLimits(k, nil)
                window.delete(ByteKey(k))
            }
        }
    }
    public func update(_ key: Key, windowStart start: Timestamp, _ body: (Value?) throws -> Value) throws -> (old: Value?, new: Value) {
        let k = try keySerde.serialize(key)
        guard owns(start) else {
            let old = start >= liveFloor ? try stateStore.fetch(k, windowStart: start).map { try valueSerde.deserialize($0) } : nil
            let new = try body(old)
            if advance(to: start) { try stateStore.put(k, windowStart: start, value: try valueSerde.serialize(new)) }
            return (old, new)
        }
        var old: Value? = nil
        var new: Value? = nil
        try writeOwned(start, expired: { new = try body(nil); try validate(k, new) }) { window in
            try window.update(ByteKey(k), { value in
                old = value
                new = try body(value)
                return new!
            }, serialize: serializeValue) { try checkLimits(k, $0) }
        }
        return (old, new!)
    }
    /// ``update(_:windowStart:_:)`` without returning the values (an emit-final aggregation
    /// forwards nothing per update): no result tuple, and the value serialised directly.
    func accumulate(_ key: Key, windowStart start: Timestamp, _ body: (Value?) throws -> Value) throws {
        guard owns(start) else {
            _ = try update(key, windowStart: start, body)
            return
        }
        let k = try serializeKey(key)
        try writeOwned(start, expired: { try validate(k, try body(nil)) }) { window in
            try window.update(ByteKey(k), body, serialize: serializeValue) { try checkLimits(k, $0) }
        }
    }
    /// Values of `key` in windows starting in `from...to`, from the byte store after a write-back.
    public func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(start: Timestamp, value: Value)] {
        try writeBack()
        return try stateStore.fetch(keySerde.serialize(key), from: from, to: to).map { ($0.windowStart, try valueSerde.deserialize($0.value)) }
    }
    /// Every entry, from the byte store after a write-back.
    public func all() throws -> [(key: Windowed<Key>, value: Value)] {
        try writeBack()
        return try stateStore.all().map { entry in
            (Windowed(key: try keySerde.deserialize(entry.key), window: Window(start: entry.windowStart, end: entry.windowStart + windowSize)),
             try valueSerde.deserialize(entry.value))
        }.sorted { $0.key.window.start < $1.key.window.start }
    }
    /// The entries of every key in windows starting in `from...to`, by window start, then by
    /// serialised key. Windows this wrapper owns come from its cache, older ones from the byte
    /// store (``WindowStore/fetchAll(from:to:)``, which reads only the segments of the range).
    public func fetchAll(from: Timestamp, to: Timestamp) throws -> [(key: Windowed<Key>, value: Value)] {
        var result: [(key: Windowed<Key>, value: Value)] = []
        try forEachWindow(from: from, to: to, older: { result = $0 }) { window, keys, slots, entries in
            for j in keys.indices {
                result.append((Windowed(key: try deserializeKey(keys[j]), window: window), entries.value(atSlot: slots[j])))
            }
        }
        return result
    }
    /// ``fetchAll(from:to:)`` window by window, for an emit-final aggregation: `older` gets the
    /// entries of windows before the cached ones (read from the byte store, rare: only right
    /// after a restart), then `cached` each cached window in the range by ascending start,
    /// with its live slots in key order. Per window rather than per entry, so the caller builds
    /// its records in one loop.
    func forEachWindow(from: Timestamp, to: Timestamp,
                       older: ([(key: Windowed<Key>, value: Value)]) throws -> Void,
                       cached: (_ window: Window, _ keys: [[UInt8]], _ slots: [Int], _ entries: WindowCache<Value>) throws -> Void) throws {
        let low = max(from, liveFloor)
        guard low <= to else { return }
        let firstOwned = firstOwnedStart
        if low < firstOwned {
            var entries = try stateStore.fetchAll(from: low, to: min(to, firstOwned - 1))
            entries.sort { $0.windowStart != $1.windowStart ? $0.windowStart < $1.windowStart : StoreBytes.less($0.key, $1.key) }
            if !entries.isEmpty {
                try older(try entries.map { entry in
                    (Windowed(key: try keySerde.deserialize(entry.key),
                              window: Window(start: entry.windowStart, end: entry.windowStart + windowSize)),
                     try valueSerde.deserialize(entry.value))
                })
            }
        }
        for start in cache.keys.filter({ $0 >= max(low, firstOwned) && $0 <= to }).sorted() {
            let entries = cache[start]!
            let (keys, slots) = entries.liveInKeyOrder()
            try cached(Window(start: start, end: start + windowSize), keys, slots, entries)
        }
    }
    /// Drops cached windows before `start`, writing their pending changes back while the byte
    /// store still keeps them; the byte store expires whole segments by itself.
    public func removeWindows(startingBefore start: Timestamp) throws {
        evictedBelow = max(evictedBelow, start)
        let floor = liveFloor
        for old in cache.keys.sorted() where old < start {
            if dirtyWindows.contains(old), old >= floor { try write(cache[old]!, start: old) }
            dropWindow(old)
        }
    }
    /// Writes the pending changes of live cached windows into the byte store's write buffer,
    /// oldest window first, and drops those of windows the retention has passed.
    func writeBack() throws {
        guard !dirtyWindows.isEmpty else { return }
        let floor = liveFloor
        for start in dirtyWindows.sorted() {
            guard let window = cache[start] else { continue }
            if start >= floor {
                try write(window, start: start)
            } else {
                window.discardPending()
            }
            dirtyWindows.remove(start)
        }
    }
    private func write(_ window: CachedWindow, start: Timestamp) throws {
        try window.writeBack { key, value in try stateStore.put(key, windowStart: start, value: value) }
    }
    public func flush() throws {
        try writeBack()
        if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() }
    }
    public func close() {
        cache = [:]
        dirtyWindows = []
        lastWindow = nil
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
