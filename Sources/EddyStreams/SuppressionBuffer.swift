import EddyCore
import EddyState

/// An update held back by ``SuppressNode``: the change (the new value of the latest update,
/// the old value from before the first), and the latest update's timestamp and headers.
struct BufferedChange<Value> {
    var change: Change<Value>
    var timestamp: Timestamp
    var headers: [Header]
}

/// The buffer of a ``SuppressNode`` (Kafka's time-ordered key-value buffer): per key, the
/// update to emit and its emit time, plus the node's observed stream time. Entries come out by
/// emit time, then key (by its serialised bytes, like Kafka; in first update order when the key
/// has no serde, which keeps the buffer in memory).
///
/// A key is held at most once: its first update sets its emit time, later ones keep it (Kafka's
/// non-resetting buffer). For windowed keys the emit time follows from the key anyway.
///
/// Confined to the task's thread.
protocol SuppressionBuffer<Key, Value>: TaskStore {
    associatedtype Key
    associatedtype Value
    /// The largest timestamp the node has seen (`Int64.min` before any); restored with the buffer.
    func observedStreamTime() throws -> Timestamp
    /// Records a new observed stream time.
    func setObservedStreamTime(_ time: Timestamp) throws
    /// The update held for `key` and its emit time, if any.
    func get(_ key: Key) throws -> (emitTime: Timestamp, entry: BufferedChange<Value>)?
    /// Buffers an update of `key`. Not held yet: kept whole, to emit at `emitTime`. Held: the
    /// new value, timestamp and headers replace the held ones, which keep their old value and
    /// emit time.
    func buffer(_ key: Key, emitTime: Timestamp, change: Change<Value>, timestamp: Timestamp, headers: [Header]) throws
    /// Removes and returns, in the buffer's order, every update due at or before `time`.
    func takeDue(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)]
    /// Removes and returns the update that comes out first, if any (to emit early).
    func takeFirst() throws -> (key: Key, entry: BufferedChange<Value>)?
    /// The number of held updates (one per key).
    func recordCount() throws -> Int
    /// The bytes of the held updates, as their store entries take them (see
    /// ``SuppressionBufferLimits``); 0 unless the buffer was made to measure them.
    func byteCount() throws -> Int
}

/// A task store that keeps changes in memory and writes them into its byte store's write
/// buffer only when asked: the runtime calls ``writeBack()`` on every such store of a task
/// before the task's stores prepare their commit.
protocol WriteBackStore: TaskStore {
    /// Writes the changes made since the last call into the byte store's write buffer.
    func writeBack() throws
}

extension BufferedChange {
    /// The store value of the update: timestamp (8) · flags (1: new value present, 2: old value
    /// present) · the present values as chunks · header count (4) · per header: key chunk, flag
    /// (1: value present), value chunk.
    func encoded(_ valueSerde: AnySerde<Value>) throws -> [UInt8] {
        var bytes = StoreBytes.ordered(timestamp)
        let flags: UInt8 = (change.newValue != nil ? 1 : 0) | (change.oldValue != nil ? 2 : 0)
        bytes.append(flags)
        if let new = change.newValue { StoreBytes.appendChunk(try valueSerde.serialize(new), to: &bytes) }
        if let old = change.oldValue { StoreBytes.appendChunk(try valueSerde.serialize(old), to: &bytes) }
        bytes.appendBigEndian(UInt32(headers.count))
        for header in headers {
            StoreBytes.appendChunk(Array(header.key.utf8), to: &bytes)
            bytes.append(header.value == nil ? 0 : 1)
            if let value = header.value { StoreBytes.appendChunk(value, to: &bytes) }
        }
        return bytes
    }

    /// Decodes ``encoded(_:)``'s bytes, read from store `store`.
    static func decode(_ bytes: [UInt8], _ valueSerde: AnySerde<Value>, store name: String) throws -> BufferedChange<Value> {
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
}

/// The emit order of a suppression buffer's keys: per emit time, the keys due then, in
/// first-buffered order until sorted. Keys never move between times (emit times do not reset),
/// so the buffers keep their entries in a dictionary by key and this index beside it.
struct EmitOrder<Slot: Hashable> {
    private var buckets: [Timestamp: [Slot]] = [:]
    /// The emit times of `buckets`, ascending, from `timesStart` on (the ones before are gone:
    /// a rate-limiting buffer has one time per millisecond of its limit, too many to shift for
    /// each removal).
    private var times: [Timestamp] = []
    private var timesStart = 0
    /// The first bucket is in emit order, and its first `firstTaken` slots are gone: set by
    /// ``takeFirst(sort:)``, so emitting early neither sorts nor shifts the bucket for each slot.
    private var firstIsSorted = false
    private var firstTaken = 0

    /// The earliest emit time held, if any.
    var first: Timestamp? { timesStart < times.count ? times[timesStart] : nil }

    /// Drops the slots ``takeFirst(sort:)`` took from the first bucket, before it changes.
    private mutating func compactFirst() {
        if firstTaken > 0 { buckets[times[timesStart]]!.removeFirst(firstTaken) }
        firstTaken = 0
        firstIsSorted = false
    }

    /// Forgets the first `n` emit times.
    private mutating func dropTimes(_ n: Int) {
        timesStart += n
        if timesStart == times.count {
            times.removeAll(keepingCapacity: true)
            timesStart = 0
        } else if timesStart > 1024 && timesStart * 2 > times.count {
            times.removeFirst(timesStart)
            timesStart = 0
        }
    }

    /// Adds `slot`, due at `time`; it must not be held already.
    mutating func insert(_ slot: Slot, at time: Timestamp) {
        if buckets[time] != nil {
            if time == times[timesStart] { compactFirst() }
            buckets[time]!.append(slot)
            return
        }
        // Emit times mostly grow: search from the end.
        var i = times.count
        while i > timesStart && times[i - 1] > time { i -= 1 }
        if i == timesStart {
            if timesStart < times.count { compactFirst() }
            if timesStart > 0 {
                // Before every held time: reuse a freed place.
                timesStart -= 1
                times[timesStart] = time
                buckets[time] = [slot]
                return
            }
        }
        buckets[time] = [slot]
        times.insert(time, at: i)
    }

    /// Removes the slots due at or before `time`, by emit time and then in the order `sort`
    /// gives each time's slots (ascending; it must keep the order of slots that compare equal).
    mutating func takeDue(upTo time: Timestamp, sort: ([Slot]) throws -> [Slot]) rethrows -> [(time: Timestamp, slot: Slot)] {
        guard let first, first <= time else { return [] }
        var result: [(time: Timestamp, slot: Slot)] = []
        var n = 0
        while timesStart + n < times.count, times[timesStart + n] <= time {
            let due = times[timesStart + n]
            let slots = buckets.removeValue(forKey: due) ?? []
            let sorted = n == 0 && firstIsSorted ? Array(slots[firstTaken...]) : try sort(slots)
            result.reserveCapacity(result.count + sorted.count)
            for slot in sorted { result.append((due, slot)) }
            n += 1
        }
        dropTimes(n)
        firstIsSorted = false
        firstTaken = 0
        return result
    }

    /// Removes the slot that comes out first (`sort` as for ``takeDue(upTo:sort:)``).
    mutating func takeFirst(sort: ([Slot]) throws -> [Slot]) rethrows -> (time: Timestamp, slot: Slot)? {
        guard let first else { return nil }
        if !firstIsSorted {
            buckets[first] = try sort(buckets[first]!)
            firstIsSorted = true
            firstTaken = 0
        }
        let slot = buckets[first]![firstTaken]
        firstTaken += 1
        if firstTaken == buckets[first]!.count {
            buckets[first] = nil
            dropTimes(1)
            firstIsSorted = false
            firstTaken = 0
        }
        return (first, slot)
    }
}

/// A ``SuppressionBuffer`` of Swift values in memory.
final class InMemorySuppressionBuffer<Key: Hashable, Value>: SuppressionBuffer {
    struct Slot {
        var emitTime: Timestamp
        var entry: BufferedChange<Value>
        /// The update's bytes as a store entry would take them (0 unless measured).
        var bytes: Int
    }
    let name: String
    /// Orders keys like the persistent buffer does, when known.
    let keySerde: AnySerde<Key>?
    /// Set when a byte limit needs the updates measured (with `keySerde`).
    let valueSerde: AnySerde<Value>?
    private var observed: Timestamp = .min
    private var slots: [Key: Slot] = [:]
    private var order = EmitOrder<Key>()
    private var bytes = 0

    /// An empty buffer. `valueSerde` (with `keySerde`): measure the held updates' bytes.
    init(name: String, keySerde: AnySerde<Key>?, valueSerde: AnySerde<Value>? = nil) {
        self.name = name
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    func observedStreamTime() -> Timestamp { observed }
    func setObservedStreamTime(_ time: Timestamp) { observed = time }

    func get(_ key: Key) -> (emitTime: Timestamp, entry: BufferedChange<Value>)? {
        slots[key].map { ($0.emitTime, $0.entry) }
    }

    func buffer(_ key: Key, emitTime: Timestamp, change: Change<Value>, timestamp: Timestamp, headers: [Header]) throws {
        var slot: Slot
        if let held = slots[key] {
            slot = held
            slot.entry.change.newValue = change.newValue
            slot.entry.timestamp = timestamp
            slot.entry.headers = headers
        } else {
            slot = Slot(emitTime: emitTime, entry: BufferedChange(change: change, timestamp: timestamp, headers: headers), bytes: 0)
            order.insert(key, at: emitTime)
        }
        if let valueSerde, let keySerde {
            let size = 8 + (try keySerde.serialize(key)).count + (try slot.entry.encoded(valueSerde)).count
            bytes += size - slot.bytes
            slot.bytes = size
        }
        slots[key] = slot
    }

    /// Sorts one emit time's keys by their serialised bytes, when the key serde is known.
    private func sorted(_ keys: [Key]) throws -> [Key] {
        guard let keySerde, keys.count > 1 else { return keys }
        let serialised = try keys.map { try keySerde.serialize($0) }
        return StoreBytes.sortedIndices(serialised).map { keys[$0] }
    }

    private func remove(_ key: Key) -> (key: Key, entry: BufferedChange<Value>) {
        let slot = slots.removeValue(forKey: key)!
        bytes -= slot.bytes
        return (key, slot.entry)
    }

    func takeDue(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)] {
        try order.takeDue(upTo: time, sort: sorted).map { remove($0.slot) }
    }

    func takeFirst() throws -> (key: Key, entry: BufferedChange<Value>)? {
        try order.takeFirst(sort: sorted).map { remove($0.slot) }
    }

    func recordCount() -> Int { slots.count }
    func byteCount() -> Int { bytes }
    func flush() throws {}
    func close() {}
}

/// A ``SuppressionBuffer`` over an EddyState ``KeyValueStore`` (in memory and logged to
/// `<application>-<store>-changelog` under the runtime, RocksDB otherwise; see
/// ``StorePersistence/suppressionBuffer(_:_:_:measuresBytes:)``). Key: emit time (8 ordered
/// bytes) · serialised key; value: ``BufferedChange/encoded(_:)``. The observed stream time is
/// the entry of the one-byte key `0x00`, which sorts before every entry (emit times are never
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
    /// One held update. `stored`: the byte store holds an entry for it (written back, or
    /// loaded); `dirty`: changed since the last write-back.
    struct Slot {
        var key: Key
        var emitTime: Timestamp
        var entry: BufferedChange<Value>
        var stored: Bool
        var dirty: Bool
        /// The store entry's bytes (0 unless measured).
        var bytes: Int
        /// The encoded entry when measured, reused by the write-back.
        var encoded: [UInt8]?
    }
    /// The underlying byte store, for the runtime's commit protocol.
    let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    /// Whether the held updates' bytes are counted (for a byte limit): each update is then
    /// encoded when buffered rather than at the write-back.
    let measuresBytes: Bool
    var name: String { stateStore.name }
    static var observedKey: [UInt8] { [0] }

    private var loaded = false
    private var observed: Timestamp = .min
    private var observedDirty = false
    /// Serialised key -> held update.
    private var slots: [ByteKey: Slot] = [:]
    private var order = EmitOrder<ByteKey>()
    private var bytes = 0
    /// Serialised keys of the slots changed since the last write-back.
    private var dirty: [ByteKey] = []
    /// Store keys of emitted updates the byte store holds: deleted at the next write-back.
    private var removed: [[UInt8]] = []

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>, measuresBytes: Bool = false) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
        self.measuresBytes = measuresBytes
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
            let emitTime = StoreBytes.readOrdered(entry.key, at: 0)
            let keyBytes = ByteKey(Array(entry.key[8...]))
            if let other = slots[keyBytes] {
                throw EddyError(.corrupt, "store \(name): one key held for emit times \(other.emitTime) and \(emitTime)")
            }
            let size = measuresBytes ? entry.key.count + entry.value.count : 0
            slots[keyBytes] = Slot(key: try keySerde.deserialize(keyBytes.bytes), emitTime: emitTime,
                                   entry: try BufferedChange.decode(entry.value, valueSerde, store: name),
                                   stored: true, dirty: false, bytes: size, encoded: measuresBytes ? entry.value : nil)
            bytes += size
            order.insert(keyBytes, at: emitTime)
        }
        loaded = true
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

    func get(_ key: Key) throws -> (emitTime: Timestamp, entry: BufferedChange<Value>)? {
        if !loaded { try load() }
        return slots[ByteKey(try keySerde.serialize(key))].map { ($0.emitTime, $0.entry) }
    }

    func buffer(_ key: Key, emitTime: Timestamp, change: Change<Value>, timestamp: Timestamp, headers: [Header]) throws {
        if !loaded { try load() }
        let keyBytes = ByteKey(try keySerde.serialize(key))
        var wasDirty = false
        var inserted = false
        try { (slot: inout Slot?) in
            if slot == nil {
                slot = Slot(key: key, emitTime: emitTime, entry: BufferedChange(change: change, timestamp: timestamp, headers: headers),
                            stored: false, dirty: true, bytes: 0, encoded: nil)
                inserted = true
            } else {
                wasDirty = slot!.dirty
                slot!.entry.change.newValue = change.newValue
                slot!.entry.timestamp = timestamp
                slot!.entry.headers = headers
                slot!.dirty = true
            }
            if measuresBytes {
                let encoded = try slot!.entry.encoded(valueSerde)
                let size = 8 + keyBytes.bytes.count + encoded.count
                bytes += size - slot!.bytes
                slot!.bytes = size
                slot!.encoded = encoded
            }
        }(&slots[keyBytes])
        if inserted { order.insert(keyBytes, at: emitTime) }
        if !wasDirty { dirty.append(keyBytes) }
    }

    /// Sorts one emit time's keys by their bytes.
    private static func sorted(_ keys: [ByteKey]) -> [ByteKey] {
        StoreBytes.sortedIndices(keys.map(\.bytes)).map { keys[$0] }
    }

    private func remove(_ keyBytes: ByteKey) -> (key: Key, entry: BufferedChange<Value>) {
        let slot = slots.removeValue(forKey: keyBytes)!
        bytes -= slot.bytes
        if slot.stored { removed.append(storeKey(slot.emitTime, keyBytes)) }
        return (slot.key, slot.entry)
    }

    private func storeKey(_ emitTime: Timestamp, _ keyBytes: ByteKey) -> [UInt8] {
        var storeKey = StoreBytes.ordered(emitTime)
        storeKey.append(contentsOf: keyBytes.bytes)
        return storeKey
    }

    func takeDue(upTo time: Timestamp) throws -> [(key: Key, entry: BufferedChange<Value>)] {
        if !loaded { try load() }
        guard let first = order.first, first <= time else { return [] }
        return order.takeDue(upTo: time, sort: Self.sorted).map { remove($0.slot) }
    }

    func takeFirst() throws -> (key: Key, entry: BufferedChange<Value>)? {
        if !loaded { try load() }
        return order.takeFirst(sort: Self.sorted).map { remove($0.slot) }
    }

    func recordCount() throws -> Int {
        if !loaded { try load() }
        return slots.count
    }

    func byteCount() throws -> Int {
        if !loaded { try load() }
        return bytes
    }

    /// Writes the changes since the last write-back into the byte store's write buffer:
    /// deletes of emitted updates it holds, then the changed updates and the stream time.
    func writeBack() throws {
        guard loaded else { return }
        for key in removed { try stateStore.delete(key) }
        removed.removeAll(keepingCapacity: true)
        for keyBytes in dirty {
            // Emitted since it changed: nothing to write (its delete, if stored, is above).
            guard var slot = slots[keyBytes], slot.dirty else { continue }
            try stateStore.put(storeKey(slot.emitTime, keyBytes), try slot.encoded ?? slot.entry.encoded(valueSerde))
            slot.stored = true
            slot.dirty = false
            slots[keyBytes] = slot
        }
        dirty.removeAll(keepingCapacity: true)
        if observedDirty {
            try stateStore.put(Self.observedKey, StoreBytes.ordered(observed))
            observedDirty = false
        }
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
    /// `measuresBytes`: count the held updates' bytes (for a byte limit).
    ///
    /// Logged (under the runtime), the byte store is in memory, as Kafka's suppression buffer
    /// is: the changelog is what makes it durable, and a start restores it from there. Its
    /// changelog stays small (only updates that outlive a commit reach it, and it is compacted),
    /// and the buffer costs no RocksDB write. Unlogged (the test driver's persistent mode), it
    /// is a RocksDB store, so it survives a restart by itself.
    static func suppressionBuffer<K, V>(_ name: String, _ key: AnySerde<K>?, _ value: AnySerde<V>?,
                                        measuresBytes: Bool = false) -> StorePersistence.Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            let store: any KeyValueStore
            if let changelog = StorePersistence.changelog(name, directory, partition) {
                store = try InMemoryKeyValueStore(name: name, changelog: changelog)
            } else {
                store = try directory.keyValueStore(named: name, changelog: nil)
            }
            return PersistentSuppressionBuffer(store, keySerde: key, valueSerde: value, measuresBytes: measuresBytes)
        }
    }
}
