import EddyCore
import EddyState

/// An update held back by ``SuppressNode``: the change (the new value of the latest update,
/// the old value from before the first), and the latest update's timestamp and headers.
struct BufferedChange<Value> {
    var change: Change<Value>
    var timestamp: Timestamp
    var headers: [Header]
}

/// The buffer of a ``SuppressNode`` (Kafka's time-ordered key-value buffer): per close time and
/// key, the update to emit when the window closes, plus the node's observed stream time.
/// Entries come out by close time, then key (by its serialised bytes, like Kafka; in first
/// update order when the key has no serde, which keeps the buffer in memory).
///
/// Confined to the task's thread.
protocol SuppressionBuffer<Key, Value>: TaskStore {
    associatedtype Key
    associatedtype Value
    /// The largest timestamp the node has seen (`Int64.min` before any); restored with the buffer.
    func observedStreamTime() throws -> Timestamp
    /// Records a new observed stream time.
    func setObservedStreamTime(_ time: Timestamp) throws
    /// The update buffered for `key` closing at `closeTime`, if any.
    func get(_ key: Key, closeTime: Timestamp) throws -> BufferedChange<Value>?
    /// Buffers (or replaces) the update for `key` closing at `closeTime`.
    func put(_ key: Key, closeTime: Timestamp, _ entry: BufferedChange<Value>) throws
    /// Buffers an update of `key` closing at `closeTime`: the first update is kept whole; a
    /// later one replaces the new value, timestamp and headers and keeps the first's old value.
    func buffer(_ key: Key, closeTime: Timestamp, change: Change<Value>, timestamp: Timestamp, headers: [Header]) throws
    /// Removes and returns, in the buffer's order, every update closing at or before `time`.
    func takeClosed(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)]
}

extension SuppressionBuffer {
    func buffer(_ key: Key, closeTime: Timestamp, change: Change<Value>, timestamp: Timestamp, headers: [Header]) throws {
        if var entry = try get(key, closeTime: closeTime) {
            entry.change.newValue = change.newValue
            entry.timestamp = timestamp
            entry.headers = headers
            try put(key, closeTime: closeTime, entry)
        } else {
            try put(key, closeTime: closeTime, BufferedChange(change: change, timestamp: timestamp, headers: headers))
        }
    }
}

/// A task store that keeps changes in memory and writes them into its byte store's write
/// buffer only when asked: the runtime calls ``writeBack()`` on every such store of a task
/// before the task's stores prepare their commit.
protocol WriteBackStore: TaskStore {
    /// Writes the changes made since the last call into the byte store's write buffer.
    func writeBack() throws
}

/// A ``SuppressionBuffer`` of Swift values in memory.
final class InMemorySuppressionBuffer<Key: Hashable, Value>: SuppressionBuffer {
    /// The updates closing at one time, in first-update order, with an index by key.
    struct Pending {
        var entries: [(key: Key, entry: BufferedChange<Value>)] = []
        var index: [Key: Int] = [:]
    }
    let name: String
    /// Orders keys like the persistent buffer does, when known.
    let keySerde: AnySerde<Key>?
    private var observed: Timestamp = .min
    private var buffer: [Timestamp: Pending] = [:]
    /// Close times in ascending order.
    private var closeTimes: [Timestamp] = []

    init(name: String, keySerde: AnySerde<Key>?) {
        self.name = name
        self.keySerde = keySerde
    }

    func observedStreamTime() -> Timestamp { observed }
    func setObservedStreamTime(_ time: Timestamp) { observed = time }

    func get(_ key: Key, closeTime: Timestamp) -> BufferedChange<Value>? {
        guard let pending = buffer[closeTime], let i = pending.index[key] else { return nil }
        return pending.entries[i].entry
    }

    func put(_ key: Key, closeTime: Timestamp, _ entry: BufferedChange<Value>) {
        if buffer[closeTime] == nil {
            buffer[closeTime] = Pending()
            var i = closeTimes.count
            while i > 0 && closeTimes[i - 1] > closeTime { i -= 1 }
            closeTimes.insert(closeTime, at: i)
        }
        if let i = buffer[closeTime]!.index[key] {
            buffer[closeTime]!.entries[i].entry = entry
        } else {
            buffer[closeTime]!.index[key] = buffer[closeTime]!.entries.count
            buffer[closeTime]!.entries.append((key, entry))
        }
    }

    func takeClosed(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)] {
        var result: [(key: Key, entry: BufferedChange<Value>)] = []
        var n = 0
        while n < closeTimes.count, closeTimes[n] <= time {
            var entries = buffer.removeValue(forKey: closeTimes[n])?.entries ?? []
            if let keySerde, entries.count > 1 {
                let keys = try entries.map { try keySerde.serialize($0.key) }
                entries = entries.indices.sorted { StoreBytes.less(keys[$0], keys[$1]) }.map { entries[$0] }
            }
            result += entries
            n += 1
        }
        if n > 0 { closeTimes.removeFirst(n) }
        return result
    }

    /// Number of buffered updates, for tests.
    var count: Int { buffer.values.reduce(0) { $0 + $1.entries.count } }
    func flush() throws {}
    func close() {}
}

/// A ``SuppressionBuffer`` over an EddyState ``KeyValueStore`` (in memory and logged to
/// `<application>-<store>-changelog` under the runtime, RocksDB otherwise; see ``StorePersistence/suppressionBuffer(_:_:_:)``). Key: close time (8 ordered bytes) · serialised key;
/// value: timestamp, the change's values and the headers. The observed stream time is the
/// entry of the one-byte key `0x00`, which sorts before every entry (close times are never
/// negative).
///
/// The node is the store's only reader and writer, so the whole buffer is mirrored in memory
/// (loaded on first use: the store is filled by restoration after it is opened) and the store
/// is written back, not through (Kafka's time-ordered buffer does the same with its dirty
/// keys): ``writeBack()``, which the runtime calls before each commit, puts the entries changed
/// since the last write-back and deletes the emitted ones the store holds. An update that is
/// buffered and emitted between two commits never reaches the store or its changelog, and no
/// read ever touches RocksDB after the first.
final class PersistentSuppressionBuffer<Key, Value>: SuppressionBuffer, WriteBackStore {
    /// One buffered update. `stored`: the byte store holds an entry for it (written back, or
    /// loaded); `dirty`: changed since the last write-back.
    struct Slot {
        var key: Key
        var entry: BufferedChange<Value>
        var stored: Bool
        var dirty: Bool
    }
    /// The underlying byte store, for the runtime's commit protocol.
    let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    var name: String { stateStore.name }
    static var observedKey: [UInt8] { [0] }

    private var loaded = false
    private var observed: Timestamp = .min
    private var observedDirty = false
    /// Close time -> serialised key -> update.
    private var slots: [Timestamp: [ByteKey: Slot]] = [:]
    /// The close times of `slots`, ascending.
    private var closeTimes: [Timestamp] = []
    /// (close time, serialised key) of the slots changed since the last write-back.
    private var dirty: [(Timestamp, [UInt8])] = []
    /// Store keys of emitted updates the byte store holds: deleted at the next write-back.
    private var removed: [[UInt8]] = []

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    /// Reads the whole byte store into memory, once. Callers test `loaded` first: the check
    /// costs nothing inline, whereas entering this unspecialised generic function looks up
    /// generic metadata on every call.
    private func load() throws {
        var entries: [KeyValue] = []
        try stateStore.forEach(from: nil, to: nil, reverse: false) { entries.append($0); return true }
        for entry in entries {
            if entry.key == Self.observedKey {
                guard entry.value.count == 8 else {
                    throw EddyError(.corrupt, "store \(name): stream time of \(entry.value.count) bytes")
                }
                observed = StoreBytes.readOrdered(entry.value, at: 0)
                continue
            }
            guard entry.key.count >= 8 else { throw EddyError(.corrupt, "store \(name): key of \(entry.key.count) bytes") }
            let close = StoreBytes.readOrdered(entry.key, at: 0)
            let keyBytes = Array(entry.key[8...])
            insertCloseTime(close)
            slots[close, default: [:]][ByteKey(keyBytes)] = Slot(key: try keySerde.deserialize(keyBytes), entry: try decode(entry.value),
                                                        stored: true, dirty: false)
        }
        loaded = true
    }

    private func insertCloseTime(_ close: Timestamp) {
        guard slots[close] == nil else { return }
        // Close times mostly grow: search from the end.
        var i = closeTimes.count
        while i > 0 && closeTimes[i - 1] > close { i -= 1 }
        closeTimes.insert(close, at: i)
    }

    func observedStreamTime() throws -> Timestamp {
        if !loaded { try load() }
        return observed
    }

    func setObservedStreamTime(_ time: Timestamp) throws {
        if !loaded { try load() }
        observed = time
        observedDirty = true
    }

    func get(_ key: Key, closeTime: Timestamp) throws -> BufferedChange<Value>? {
        if !loaded { try load() }
        return slots[closeTime]?[ByteKey(try keySerde.serialize(key))]?.entry
    }

    func put(_ key: Key, closeTime: Timestamp, _ entry: BufferedChange<Value>) throws {
        if !loaded { try load() }
        try set(key, keyBytes: try keySerde.serialize(key), closeTime: closeTime) { $0 = entry }
    }

    func buffer(_ key: Key, closeTime: Timestamp, change: Change<Value>, timestamp: Timestamp, headers: [Header]) throws {
        if !loaded { try load() }
        try set(key, keyBytes: try keySerde.serialize(key), closeTime: closeTime) { entry in
            if entry == nil {
                entry = BufferedChange(change: change, timestamp: timestamp, headers: headers)
            } else {
                entry!.change.newValue = change.newValue
                entry!.timestamp = timestamp
                entry!.headers = headers
            }
        }
    }

    /// Updates the slot of (`closeTime`, `keyBytes`) in place and marks it dirty.
    private func set(_ key: Key, keyBytes: [UInt8], closeTime: Timestamp,
                     _ update: (inout BufferedChange<Value>?) throws -> Void) throws {
        insertCloseTime(closeTime)
        var wasDirty = false
        try { (slot: inout Slot?) in
            var entry = slot?.entry
            try update(&entry)
            guard let entry else { return }
            if slot == nil {
                slot = Slot(key: key, entry: entry, stored: false, dirty: true)
            } else {
                wasDirty = slot!.dirty
                slot!.entry = entry
                slot!.dirty = true
            }
        }(&slots[closeTime, default: [:]][ByteKey(keyBytes)])
        if !wasDirty { dirty.append((closeTime, keyBytes)) }
    }

    func takeClosed(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)] {
        if !loaded { try load() }
        guard let first = closeTimes.first, first <= time else { return [] }
        var result: [(key: Key, entry: BufferedChange<Value>)] = []
        var n = 0
        while n < closeTimes.count, closeTimes[n] <= time {
            let close = closeTimes[n]
            let bucket = slots.removeValue(forKey: close) ?? [:]
            // Sort the keys alone: plain byte arrays, so the sort runs specialised.
            var keys = bucket.keys.map(\.bytes)
            keys.sort(by: StoreBytes.less)
            result.reserveCapacity(result.count + keys.count)
            for keyBytes in keys {
                let slot = bucket[ByteKey(keyBytes)]!
                if slot.stored {
                    var storeKey = StoreBytes.ordered(close)
                    storeKey.append(contentsOf: keyBytes)
                    removed.append(storeKey)
                }
                result.append((slot.key, slot.entry))
            }
            n += 1
        }
        closeTimes.removeFirst(n)
        return result
    }

    /// Writes the changes since the last write-back into the byte store's write buffer:
    /// deletes of emitted updates it holds, then the changed updates and the stream time.
    func writeBack() throws {
        guard loaded else { return }
        for key in removed { try stateStore.delete(key) }
        removed.removeAll(keepingCapacity: true)
        for (close, keyBytes) in dirty {
            // Emitted since it changed: nothing to write (its delete, if stored, is above).
            guard var slot = slots[close]?[ByteKey(keyBytes)], slot.dirty else { continue }
            var storeKey = StoreBytes.ordered(close)
            storeKey.append(contentsOf: keyBytes)
            try stateStore.put(storeKey, try encode(slot.entry))
            slot.stored = true
            slot.dirty = false
            slots[close]![ByteKey(keyBytes)] = slot
        }
        dirty.removeAll(keepingCapacity: true)
        if observedDirty {
            try stateStore.put(Self.observedKey, StoreBytes.ordered(observed))
            observedDirty = false
        }
    }

    /// Timestamp (8) · flags (1: new value present, 2: old value present) · the present values
    /// as chunks · header count (4) · per header: key chunk, flag (1: value present), value chunk.
    private func encode(_ entry: BufferedChange<Value>) throws -> [UInt8] {
        var bytes = StoreBytes.ordered(entry.timestamp)
        let flags: UInt8 = (entry.change.newValue != nil ? 1 : 0) | (entry.change.oldValue != nil ? 2 : 0)
        bytes.append(flags)
        if let new = entry.change.newValue { StoreBytes.appendChunk(try valueSerde.serialize(new), to: &bytes) }
        if let old = entry.change.oldValue { StoreBytes.appendChunk(try valueSerde.serialize(old), to: &bytes) }
        bytes.appendBigEndian(UInt32(entry.headers.count))
        for header in entry.headers {
            StoreBytes.appendChunk(Array(header.key.utf8), to: &bytes)
            bytes.append(header.value == nil ? 0 : 1)
            if let value = header.value { StoreBytes.appendChunk(value, to: &bytes) }
        }
        return bytes
    }

    private func decode(_ bytes: [UInt8]) throws -> BufferedChange<Value> {
        guard bytes.count >= 13 else { throw EddyError(.corrupt, "store \(name): buffered update of \(bytes.count) bytes") }
        let timestamp = StoreBytes.readOrdered(bytes, at: 0)
        let flags = bytes[8]
        var offset = 9
        let new = flags & 1 != 0 ? try valueSerde.deserialize(try StoreBytes.readChunk(bytes, at: &offset, store: name)) : nil
        let old = flags & 2 != 0 ? try valueSerde.deserialize(try StoreBytes.readChunk(bytes, at: &offset, store: name)) : nil
        let count = try StoreBytes.readUInt32(bytes, at: &offset, store: name)
        guard Int(count) <= (bytes.count - offset) / 5 else {
            throw EddyError(.corrupt, "store \(name): \(count) headers cannot fit in \(bytes.count - offset) bytes")
        }
        var headers: [Header] = []
        for _ in 0..<count {
            let key = String(decoding: try StoreBytes.readChunk(bytes, at: &offset, store: name), as: UTF8.self)
            guard offset < bytes.count else { throw EddyError(.corrupt, "store \(name): truncated header") }
            let present = bytes[offset] != 0
            offset += 1
            headers.append(Header(key: key, value: present ? try StoreBytes.readChunk(bytes, at: &offset, store: name) : nil))
        }
        guard offset == bytes.count else { throw EddyError(.corrupt, "store \(name): \(bytes.count - offset) bytes after a buffered update") }
        return BufferedChange(change: Change(newValue: new, oldValue: old), timestamp: timestamp, headers: headers)
    }

    func flush() throws {
        try writeBack()
        if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() }
    }
    func close() { stateStore.close() }
}

extension PersistentSuppressionBuffer: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}

extension StorePersistence {
    /// The persistent variant of a suppression buffer, when both serdes are known.
    ///
    /// Logged (under the runtime), the byte store is in memory, as Kafka's suppression buffer
    /// is: the changelog is what makes it durable, and a start restores it from there. Its
    /// changelog stays small (only updates that outlive a commit reach it, and it is compacted),
    /// and the buffer costs no RocksDB write. Unlogged (the test driver's persistent mode), it
    /// is a RocksDB store, so it survives a restart by itself.
    static func suppressionBuffer<K, V>(_ name: String, _ key: AnySerde<K>?, _ value: AnySerde<V>?) -> StorePersistence.Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            let store: any KeyValueStore
            if let changelog = StorePersistence.changelog(name, directory, partition) {
                store = try InMemoryKeyValueStore(name: name, changelog: changelog)
            } else {
                store = try directory.keyValueStore(named: name, changelog: nil)
            }
            return PersistentSuppressionBuffer(store, keySerde: key, valueSerde: value)
        }
    }
}
