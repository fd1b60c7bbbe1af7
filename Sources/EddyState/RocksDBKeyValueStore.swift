import EddyCore

/// A ``KeyValueStore`` in a column family of its task's RocksDB database. Open it with
/// ``TaskStateDirectory/keyValueStore(named:changelog:)``.
public final class RocksDBKeyValueStore: KeyValueStore, RestorableStore {
    let logic: KeyValueLogic

    /// Wraps an engine opened by ``TaskStateDirectory``.
    init(engine: RocksDBEngine, changelog: TopicPartition?) throws {
        logic = KeyValueLogic(core: try StoreCore(name: engine.name, engine: engine, changelog: changelog))
    }

    public var name: String { logic.core.name }
    public var changelog: TopicPartition? { logic.core.changelog }
    public var checkpoint: Offset? { logic.core.checkpoint }
    public var hasUncommittedChanges: Bool { logic.core.hasUncommittedChanges }
    public func prepareCommit(producer: any LogProducer, timestamp: Timestamp? = nil) throws {
        try logic.core.prepareCommit(producer: producer, timestamp: timestamp)
    }
    public func commit() throws { try logic.commit() }
    public func abort() { logic.abort() }
    public func close() { logic.core.close() }

    public func get(_ key: [UInt8]) throws -> [UInt8]? { try logic.get(key) }
    public func put(_ key: [UInt8], _ value: [UInt8]) throws { try logic.put(key, value) }
    @discardableResult public func delete(_ key: [UInt8]) throws -> [UInt8]? { try logic.delete(key) }
    @discardableResult public func putIfAbsent(_ key: [UInt8], _ value: [UInt8]) throws -> [UInt8]? {
        try logic.putIfAbsent(key, value)
    }
    public func forEach(from: [UInt8]?, to: [UInt8]?, reverse: Bool = false, _ body: (KeyValue) throws -> Bool) throws {
        try logic.forEach(from: from, to: to, reverse: reverse, body)
    }
    public func forEachBorrowed(from: [UInt8]?, to: [UInt8]?, reverse: Bool = false,
                                _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try logic.forEachBorrowed(from: from, to: to, reverse: reverse, body)
    }
    public func approximateCount() throws -> Int { try logic.approximateCount() }

    var core: StoreCore { logic.core }
    func restoreChange(_ record: ConsumerRecord) throws -> KeyChange? {
        guard let key = record.key else { return nil }
        return (key, record.value)
    }
    func restoreMetadata() -> [String: Int64] { [:] }
    func reloadAfterRestore() throws {}
}
