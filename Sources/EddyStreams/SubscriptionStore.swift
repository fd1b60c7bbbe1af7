import EddyCore
import EddyState

/// The subscription store of a foreign-key join's right side (Kafka's KIP-213 subscription
/// store): per foreign key, the left keys subscribed to it and the hash of the left value each
/// subscription was made for. Keyed by (foreign key, left key), so a right-row update finds its
/// subscribers with one prefix scan; subscribers come out ordered by the left key's serialised
/// bytes.
///
/// Confined to the task's thread.
protocol SubscriptionStore<Key, ForeignKey>: TaskStore {
    associatedtype Key
    associatedtype ForeignKey
    /// Subscribes `key` to `foreignKey` (or refreshes its hash).
    func subscribe(_ key: Key, to foreignKey: ForeignKey, hash: Int64) throws
    /// Removes the subscription of `key` to `foreignKey`.
    func unsubscribe(_ key: Key, from foreignKey: ForeignKey) throws
    /// The keys subscribed to `foreignKey` with their hashes, by the keys' serialised bytes.
    func subscribers(of foreignKey: ForeignKey) throws -> [(key: Key, hash: Int64)]
}

/// A ``SubscriptionStore`` of Swift values in memory. The join always knows the left key's
/// serde, so subscribers are ordered exactly as in the persistent store.
final class InMemorySubscriptionStore<Key: Hashable, ForeignKey: Hashable>: SubscriptionStore {
    let name: String
    let keySerde: AnySerde<Key>
    private var subscriptions: [ForeignKey: [Key: Int64]] = [:]

    init(name: String, keySerde: AnySerde<Key>) {
        self.name = name
        self.keySerde = keySerde
    }
    func subscribe(_ key: Key, to foreignKey: ForeignKey, hash: Int64) {
        subscriptions[foreignKey, default: [:]][key] = hash
    }
    func unsubscribe(_ key: Key, from foreignKey: ForeignKey) {
        subscriptions[foreignKey]?[key] = nil
        if subscriptions[foreignKey]?.isEmpty == true { subscriptions[foreignKey] = nil }
    }
    func subscribers(of foreignKey: ForeignKey) throws -> [(key: Key, hash: Int64)] {
        guard let found = subscriptions[foreignKey] else { return [] }
        return try found.map { (bytes: try keySerde.serialize($0.key), key: $0.key, hash: $0.value) }
            .sorted { StoreBytes.less($0.bytes, $1.bytes) }
            .map { ($0.key, $0.hash) }
    }
    /// Number of subscriptions, for tests.
    var count: Int { subscriptions.values.reduce(0) { $0 + $1.count } }
    func flush() throws {}
    func close() {}
}

/// A ``SubscriptionStore`` over an EddyState ``KeyValueStore`` (RocksDB, optionally logged to
/// `<application>-<store>-changelog`). Key: the serialised foreign key's length (4 bytes,
/// big-endian) · foreign key · serialised left key (Kafka's `CombinedKey` layout), so the
/// subscriptions of one foreign key are contiguous; value: the 8-byte hash.
final class PersistentSubscriptionStore<Key, ForeignKey>: SubscriptionStore {
    /// The underlying byte store, for the runtime's commit protocol.
    let stateStore: any KeyValueStore
    let keySerde: AnySerde<Key>
    let foreignKeySerde: AnySerde<ForeignKey>
    var name: String { stateStore.name }

    init(_ store: any KeyValueStore, keySerde: AnySerde<Key>, foreignKeySerde: AnySerde<ForeignKey>) {
        self.stateStore = store
        self.keySerde = keySerde
        self.foreignKeySerde = foreignKeySerde
    }

    private func prefix(_ foreignKey: ForeignKey) throws -> [UInt8] {
        var bytes: [UInt8] = []
        StoreBytes.appendChunk(try foreignKeySerde.serialize(foreignKey), to: &bytes)
        return bytes
    }
    func subscribe(_ key: Key, to foreignKey: ForeignKey, hash: Int64) throws {
        var hashBytes: [UInt8] = []
        hashBytes.appendBigEndian(UInt64(bitPattern: hash))
        try stateStore.put(try prefix(foreignKey) + keySerde.serialize(key), hashBytes)
    }
    func unsubscribe(_ key: Key, from foreignKey: ForeignKey) throws {
        try stateStore.delete(try prefix(foreignKey) + keySerde.serialize(key))
    }
    func subscribers(of foreignKey: ForeignKey) throws -> [(key: Key, hash: Int64)] {
        let p = try prefix(foreignKey)
        return try stateStore.prefix(p).map { entry in
            guard entry.value.count == 8 else {
                throw EddyError(.corrupt, "store \(name): subscription hash of \(entry.value.count) bytes")
            }
            var raw: UInt64 = 0
            for byte in entry.value { raw = raw << 8 | UInt64(byte) }
            return (try keySerde.deserialize(Array(entry.key[p.count...])), Int64(bitPattern: raw))
        }
    }
    func flush() throws { if stateStore.hasUncommittedChanges && stateStore.changelog == nil { try stateStore.commit() } }
    func close() { stateStore.close() }
}

extension PersistentSubscriptionStore: StateStoreBacked {
    var backingStateStore: any StateStore { stateStore }
}

extension StorePersistence {
    /// The persistent variant of a foreign-key join's subscription store.
    static func subscriptionStore<K, KO>(_ name: String, _ key: AnySerde<K>, _ foreignKey: AnySerde<KO>) -> Factory {
        { directory, partition in
            PersistentSubscriptionStore(try directory.keyValueStore(named: name, changelog: changelog(name, directory, partition)),
                                        keySerde: key, foreignKeySerde: foreignKey)
        }
    }
}
