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
    /// Removes and returns, in the buffer's order, every update closing at or before `time`.
    func takeClosed(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)]
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

/// A ``SuppressionBuffer`` over an EddyState ``KeyValueStore`` (RocksDB, optionally logged to
/// `<application>-<store>-changelog`). Key: close time (8 ordered bytes) · serialised key;
/// value: timestamp, the change's values and the headers. The observed stream time is the
/// entry of the one-byte key `0x00`, which sorts before every entry (close times are never
/// negative). The smallest close time is cached, so records that close nothing cost no scan.
final class PersistentSuppressionBuffer<Key, Value>: SuppressionBuffer {
    /// The underlying byte store, for the runtime's commit protocol.
    let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    var name: String { stateStore.name }
    static var observedKey: [UInt8] { [0] }
    private var observedCache: Timestamp? = nil
    /// The smallest buffered close time: `.some(nil)` when the buffer is known to be empty,
    /// `nil` when unknown (read lazily: the store is filled by restoration after it is opened).
    private var minimumCloseTime: Timestamp?? = nil

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    func observedStreamTime() throws -> Timestamp {
        if let observedCache { return observedCache }
        var time = Timestamp.min
        if let bytes = try stateStore.get(Self.observedKey) {
            guard bytes.count == 8 else { throw EddyError(.corrupt, "store \(name): stream time of \(bytes.count) bytes") }
            time = StoreBytes.readOrdered(bytes, at: 0)
        }
        observedCache = time
        return time
    }

    func setObservedStreamTime(_ time: Timestamp) throws {
        try stateStore.put(Self.observedKey, StoreBytes.ordered(time))
        observedCache = time
    }

    private func storeKey(_ key: Key, _ closeTime: Timestamp) throws -> [UInt8] {
        var bytes = StoreBytes.ordered(closeTime)
        bytes.append(contentsOf: try keySerde.serialize(key))
        return bytes
    }

    func get(_ key: Key, closeTime: Timestamp) throws -> BufferedChange<Value>? {
        try stateStore.get(try storeKey(key, closeTime)).map(decode)
    }

    func put(_ key: Key, closeTime: Timestamp, _ entry: BufferedChange<Value>) throws {
        try stateStore.put(try storeKey(key, closeTime), try encode(entry))
        if case .some(let known) = minimumCloseTime, known.map({ closeTime < $0 }) ?? true {
            minimumCloseTime = .some(closeTime)
        }
    }

    func takeClosed(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)] {
        if case .some(let known) = minimumCloseTime, known.map({ $0 > time }) ?? true { return [] }
        var closed: [KeyValue] = []
        var next: Timestamp? = nil
        try stateStore.forEach(from: StoreBytes.ordered(.min), to: nil, reverse: false) { entry in
            guard entry.key.count >= 8 else { return true }
            let close = StoreBytes.readOrdered(entry.key, at: 0)
            if close > time {
                next = close
                return false
            }
            closed.append(entry)
            return true
        }
        minimumCloseTime = .some(next)
        var result: [(key: Key, entry: BufferedChange<Value>)] = []
        for entry in closed {
            result.append((try keySerde.deserialize(Array(entry.key[8...])), try decode(entry.value)))
            try stateStore.delete(entry.key)
        }
        return result
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

    func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    func close() { stateStore.close() }
}

extension PersistentSuppressionBuffer: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}

extension StorePersistence {
    /// The persistent variant of a suppression buffer, when both serdes are known.
    static func suppressionBuffer<K, V>(_ name: String, _ key: AnySerde<K>?, _ value: AnySerde<V>?) -> StorePersistence.Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            PersistentSuppressionBuffer(try directory.keyValueStore(named: name, changelog: StorePersistence.changelog(name, directory, partition)),
                                        keySerde: key, valueSerde: value)
        }
    }
}
