import EddyCore
import EddyState

/// Which input of a stream–stream join a record came from.
enum JoinSide: UInt8, Sendable {
    case left = 0
    case right = 1
}

/// A record of a left or outer stream–stream join that has found no partner yet.
struct UnmatchedRecord<Key, Left, Right> {
    var key: Key
    var time: Timestamp
    var left: Left?
    var right: Right?
}

/// The "spurious results" store of left and outer stream–stream joins (Kafka's KIP-633 shared
/// outer-join store): records that found no partner, held until their window closes, then
/// emitted with `nil` for the missing side; a record that finds a partner first is removed.
///
/// Entries are ordered by close time (record timestamp + the side's look-ahead + grace), then
/// side (left first), then timestamp, then key (by its serialised bytes; in arrival order when
/// the key has no serde, which keeps it in memory). Records with the same key, side and
/// timestamp share an entry, in arrival order; a match removes them all.
///
/// Confined to the task's thread.
protocol OuterJoinStore<Key, Left, Right>: TaskStore {
    associatedtype Key
    associatedtype Left
    associatedtype Right
    /// Holds an unmatched record (`left` or `right` set, by side) until `closeTime`.
    func add(_ key: Key, time: Timestamp, closeTime: Timestamp, left: Left?, right: Right?) throws
    /// Removes the unmatched records of `key` at `time` on `side` (they found a partner).
    func remove(_ key: Key, time: Timestamp, closeTime: Timestamp, side: JoinSide) throws
    /// Removes and returns, in the store's order, every record whose close time is before `time`.
    func takeClosed(before time: Timestamp) throws -> [UnmatchedRecord<Key, Left, Right>]
}

/// An ``OuterJoinStore`` of Swift values in memory: buckets per close time.
final class InMemoryOuterJoinStore<Key: Hashable, Left, Right>: OuterJoinStore {
    struct Entry {
        var key: Key
        var time: Timestamp
        var side: JoinSide
        var lefts: [Left] = []
        var rights: [Right] = []
        var sequence: Int
    }
    let name: String
    /// Orders keys like the persistent store does, when known.
    let keySerde: AnySerde<Key>?
    private var buckets: [Timestamp: [Entry]] = [:]
    /// Close times in ascending order.
    private var closeTimes: [Timestamp] = []
    private var sequence = 0

    init(name: String, keySerde: AnySerde<Key>?) {
        self.name = name
        self.keySerde = keySerde
    }

    func add(_ key: Key, time: Timestamp, closeTime: Timestamp, left: Left?, right: Right?) {
        let side: JoinSide = left != nil ? .left : .right
        if var bucket = buckets.removeValue(forKey: closeTime) {
            if let i = bucket.firstIndex(where: { $0.key == key && $0.time == time && $0.side == side }) {
                if let left { bucket[i].lefts.append(left) }
                if let right { bucket[i].rights.append(right) }
            } else {
                bucket.append(entry(key, time, side, left, right))
            }
            buckets[closeTime] = bucket
            return
        }
        buckets[closeTime] = [entry(key, time, side, left, right)]
        var i = closeTimes.count
        while i > 0 && closeTimes[i - 1] > closeTime { i -= 1 }
        closeTimes.insert(closeTime, at: i)
    }

    private func entry(_ key: Key, _ time: Timestamp, _ side: JoinSide, _ left: Left?, _ right: Right?) -> Entry {
        sequence += 1
        return Entry(key: key, time: time, side: side, lefts: left.map { [$0] } ?? [], rights: right.map { [$0] } ?? [],
                     sequence: sequence)
    }

    func remove(_ key: Key, time: Timestamp, closeTime: Timestamp, side: JoinSide) {
        guard var bucket = buckets[closeTime] else { return }
        bucket.removeAll { $0.key == key && $0.time == time && $0.side == side }
        buckets[closeTime] = bucket  // an empty bucket stays until its close time passes
    }

    func takeClosed(before time: Timestamp) throws -> [UnmatchedRecord<Key, Left, Right>] {
        var result: [UnmatchedRecord<Key, Left, Right>] = []
        var n = 0
        while n < closeTimes.count, closeTimes[n] < time {
            let bucket = try ordered(buckets.removeValue(forKey: closeTimes[n]) ?? [])
            for e in bucket {
                for l in e.lefts { result.append(UnmatchedRecord(key: e.key, time: e.time, left: l, right: nil)) }
                for r in e.rights { result.append(UnmatchedRecord(key: e.key, time: e.time, left: nil, right: r)) }
            }
            n += 1
        }
        if n > 0 { closeTimes.removeFirst(n) }
        return result
    }

    /// One close time's entries in the persistent store's order.
    private func ordered(_ bucket: [Entry]) throws -> [Entry] {
        guard bucket.count > 1 else { return bucket }
        let keys: [[UInt8]]? = try keySerde.map { serde in try bucket.map { try serde.serialize($0.key) } }
        return bucket.indices.sorted { a, b in
            let x = bucket[a], y = bucket[b]
            if x.side != y.side { return x.side.rawValue < y.side.rawValue }
            if x.time != y.time { return x.time < y.time }
            if let keys, keys[a] != keys[b] { return StoreBytes.less(keys[a], keys[b]) }
            return x.sequence < y.sequence
        }.map { bucket[$0] }
    }

    /// Number of unmatched records held, for tests.
    var count: Int { buckets.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.lefts.count + $1.rights.count } } }
    func flush() throws {}
    func close() {}
}

/// An ``OuterJoinStore`` over an EddyState ``KeyValueStore`` (RocksDB, optionally logged to
/// `<application>-<store>-changelog`). Key: close time (8 ordered bytes) · side (1) ·
/// timestamp (8 ordered bytes) · serialised key; value: the list of serialised values. Taking
/// the closed records is one range scan from the start of the store, skipped while the cached
/// smallest close time says nothing has closed.
final class PersistentOuterJoinStore<Key, Left, Right>: OuterJoinStore {
    /// The underlying byte store, for the runtime's commit protocol.
    let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let leftSerde: AnySerde<Left>
    let rightSerde: AnySerde<Right>
    var name: String { stateStore.name }
    /// The smallest close time held: `.some(nil)` when the store is known to be empty, `nil`
    /// when unknown (read lazily: restoration fills the store after it is opened). Removals
    /// leave it as is: a stale minimum only costs one scan. Saves a scan per record.
    private var minimumCloseTime: Timestamp?? = nil

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, leftSerde: AnySerde<Left>, rightSerde: AnySerde<Right>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.leftSerde = leftSerde
        self.rightSerde = rightSerde
    }

    private func storeKey(_ key: Key, time: Timestamp, closeTime: Timestamp, side: JoinSide) throws -> [UInt8] {
        var bytes = StoreBytes.ordered(closeTime)
        bytes.append(side.rawValue)
        StoreBytes.appendOrdered(time, to: &bytes)
        bytes.append(contentsOf: try keySerde.serialize(key))
        return bytes
    }

    func add(_ key: Key, time: Timestamp, closeTime: Timestamp, left: Left?, right: Right?) throws {
        let side: JoinSide = left != nil ? .left : .right
        let k = try storeKey(key, time: time, closeTime: closeTime, side: side)
        var list = try stateStore.get(k).map { try StoreBytes.decodeList($0, store: name) } ?? []
        if let left { list.append(try leftSerde.serialize(left)) }
        if let right { list.append(try rightSerde.serialize(right)) }
        try stateStore.put(k, StoreBytes.encodeList(list))
        if case .some(let known) = minimumCloseTime, known.map({ closeTime < $0 }) ?? true {
            minimumCloseTime = .some(closeTime)
        }
    }

    func remove(_ key: Key, time: Timestamp, closeTime: Timestamp, side: JoinSide) throws {
        try stateStore.delete(try storeKey(key, time: time, closeTime: closeTime, side: side))
    }

    func takeClosed(before time: Timestamp) throws -> [UnmatchedRecord<Key, Left, Right>] {
        if case .some(let known) = minimumCloseTime, known.map({ $0 >= time }) ?? true { return [] }
        var closed: [KeyValue] = []
        var next: Timestamp? = nil
        try stateStore.forEach(from: nil, to: nil, reverse: false) { entry in
            let close = entry.key.count >= 8 ? StoreBytes.readOrdered(entry.key, at: 0) : .min
            if close >= time {
                next = close
                return false
            }
            closed.append(entry)
            return true
        }
        minimumCloseTime = .some(next)
        var result: [UnmatchedRecord<Key, Left, Right>] = []
        for entry in closed {
            guard entry.key.count >= 17, let side = JoinSide(rawValue: entry.key[8]) else {
                throw EddyError(.corrupt, "store \(name): an outer-join key of \(entry.key.count) bytes is malformed")
            }
            let time = StoreBytes.readOrdered(entry.key, at: 9)
            let key = try keySerde.deserialize(Array(entry.key[17...]))
            for bytes in try StoreBytes.decodeList(entry.value, store: name) {
                switch side {
                case .left: result.append(UnmatchedRecord(key: key, time: time, left: try leftSerde.deserialize(bytes), right: nil))
                case .right: result.append(UnmatchedRecord(key: key, time: time, left: nil, right: try rightSerde.deserialize(bytes)))
                }
            }
            try stateStore.delete(entry.key)
        }
        return result
    }

    func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    func close() { stateStore.close() }
}

extension PersistentOuterJoinStore: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}
