import EddyCore
import EddyState

/// The records of one side of a stream–stream join that later records of the other side may
/// still join: per key, every record with its timestamp, duplicates kept (two records with the
/// same key and timestamp are both kept, in arrival order).
///
/// Kafka Streams keeps these in a window store with `retainDuplicates` and a sequence number in
/// the key. Here a (key, timestamp) slot of a window store holds the *list* of values that
/// arrived for it: the same contents, but a restart cannot reuse a sequence number and
/// overwrite a buffered record (Kafka's sequence restarts at 0), and a fetch needs no key
/// range. Adding a duplicate rewrites the slot, which is cheap while duplicates are few; a
/// slot is bounded by ``StateLimits/maximumValueBytes``.
///
/// Confined to the task's thread.
protocol JoinSideStore<Key, Value>: TaskStore {
    associatedtype Key
    associatedtype Value
    /// The largest timestamp put so far (uncommitted puts included); `Int64.min` before any.
    /// Restored with the store, so the join's stream time survives a restart.
    var observedStreamTime: Timestamp { get }
    /// Adds `value` of `key` at `time`.
    func put(_ key: Key, time: Timestamp, _ value: Value) throws
    /// The values of `key` with timestamps in `[from, to]`, by timestamp, then arrival.
    func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(time: Timestamp, value: Value)]
    /// Drops records older than `horizon` (persistent stores drop whole segments on their own
    /// as their retention passes, and ignore this).
    func expire(before horizon: Timestamp) throws
}

/// A ``JoinSideStore`` of Swift values in memory: no serialisation.
final class InMemoryJoinSideStore<Key: Hashable, Value>: JoinSideStore {
    let name: String
    private(set) var observedStreamTime: Timestamp = .min
    /// Per key, the records in timestamp order (arrival order among equal timestamps).
    private var records: [Key: [(time: Timestamp, value: Value)]] = [:]

    init(name: String) { self.name = name }

    func put(_ key: Key, time: Timestamp, _ value: Value) {
        if time > observedStreamTime { observedStreamTime = time }
        var list = records.removeValue(forKey: key) ?? []
        var i = list.count
        while i > 0 && list[i - 1].time > time { i -= 1 }
        list.insert((time, value), at: i)
        records[key] = list
    }

    func fetch(_ key: Key, from: Timestamp, to: Timestamp) -> [(time: Timestamp, value: Value)] {
        guard let list = records[key] else { return [] }
        return list.filter { $0.time >= from && $0.time <= to }
    }

    func expire(before horizon: Timestamp) {
        for (k, list) in records {
            let kept = list.filter { $0.time >= horizon }
            records[k] = kept.isEmpty ? nil : kept
        }
    }

    /// Number of records held, for tests.
    var count: Int { records.values.reduce(0) { $0 + $1.count } }
    func flush() throws {}
    func close() {}
}

/// A ``JoinSideStore`` over an EddyState ``WindowStore`` (RocksDB, optionally logged to
/// `<application>-<store>-changelog`): the window start is the record's timestamp, the value
/// the list of the records' serialised values. Retention is the join's window size plus grace,
/// so expired records go a whole segment at a time.
final class PersistentJoinSideStore<Key, Value>: JoinSideStore {
    /// The underlying byte store, for the runtime's commit protocol.
    let stateStore: any WindowStore
    let keySerde: AnySerde<Key>
    let valueSerde: AnySerde<Value>
    var name: String { stateStore.name }

    init(_ store: any WindowStore, keySerde: AnySerde<Key>, valueSerde: AnySerde<Value>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
    }

    var observedStreamTime: Timestamp { stateStore.observedStreamTime ?? .min }

    func put(_ key: Key, time: Timestamp, _ value: Value) throws {
        let k = try keySerde.serialize(key)
        var list = try stateStore.fetch(k, windowStart: time).map { try StoreBytes.decodeList($0, store: name) } ?? []
        list.append(try valueSerde.serialize(value))
        try stateStore.put(k, windowStart: time, value: StoreBytes.encodeList(list))
    }

    func fetch(_ key: Key, from: Timestamp, to: Timestamp) throws -> [(time: Timestamp, value: Value)] {
        var result: [(time: Timestamp, value: Value)] = []
        for entry in try stateStore.fetch(try keySerde.serialize(key), from: from, to: to) {
            for bytes in try StoreBytes.decodeList(entry.value, store: name) {
                result.append((entry.windowStart, try valueSerde.deserialize(bytes)))
            }
        }
        return result
    }

    func expire(before horizon: Timestamp) {}
    func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    func close() { stateStore.close() }
}

extension PersistentJoinSideStore: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}
