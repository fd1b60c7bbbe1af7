import EddyCore

/// A ``WindowStore`` in a column family of its task's RocksDB database; expired segments are
/// removed with RocksDB range deletions. Open it with ``TaskStateDirectory``.
public final class RocksDBWindowStore: WindowStore, RestorableStore {
    let logic: WindowLogic

    /// Wraps an engine opened by ``TaskStateDirectory``.
    init(engine: RocksDBEngine, retentionMilliseconds: Int64, segmentIntervalMilliseconds: Int64,
         changelog: TopicPartition?) throws {
        let core = try StoreCore(name: engine.name, engine: engine, changelog: changelog)
        logic = try WindowLogic(core: core, retention: retentionMilliseconds, segmentInterval: segmentIntervalMilliseconds)
    }

    public var name: String { logic.core.name }
    public var changelog: TopicPartition? { logic.core.changelog }
    public var checkpoint: Offset? { logic.core.checkpoint }
    public var hasUncommittedChanges: Bool { logic.core.hasUncommittedChanges }
    public func prepareCommit(producer: any LogProducer, timestamp: Timestamp? = nil) throws {
        try logic.core.prepareCommit(producer: producer, timestamp: timestamp)
    }
    public func commit() throws { try logic.segments.commit() }
    public func abort() { logic.segments.abort() }
    public func close() { logic.core.close() }
    public var retentionMilliseconds: Int64 { logic.segments.retention }
    public var segmentIntervalMilliseconds: Int64 { logic.segments.segmentInterval }
    public var observedStreamTime: Timestamp? { logic.observedStreamTime }

    var core: StoreCore { logic.core }
    func restoreChange(_ record: ConsumerRecord) throws -> KeyChange? { try logic.segments.restoreChange(record) }
    func restoreMetadata() -> [String: Int64] { logic.segments.restoreMetadata() }
    func reloadAfterRestore() throws { try logic.segments.reloadAfterRestore() }

    public func put(_ key: [UInt8], windowStart: Timestamp, value: [UInt8]?) throws {
        try logic.put(key, windowStart: windowStart, value: value)
    }
    public func fetch(_ key: [UInt8], windowStart: Timestamp) throws -> [UInt8]? {
        try logic.fetch(key, windowStart: windowStart)
    }
    public func fetch(_ key: [UInt8], from: Timestamp, to: Timestamp, reverse: Bool, limit: Int) throws -> [WindowEntry] {
        try logic.fetch(key, from: from, to: to, reverse: reverse, limit: limit)
    }
    public func fetch(keyFrom: [UInt8], keyTo: [UInt8], from: Timestamp, to: Timestamp, limit: Int) throws -> [WindowEntry] {
        try logic.fetch(keyFrom: keyFrom, keyTo: keyTo, from: from, to: to, limit: limit)
    }
    public func all(limit: Int) throws -> [WindowEntry] {
        try logic.fetch(keyFrom: nil, keyTo: nil, from: .min, to: .max, limit: limit)
    }
    public func fetchAll(from: Timestamp, to: Timestamp) throws -> [WindowEntry] {
        try logic.fetch(keyFrom: nil, keyTo: nil, from: from, to: to, limit: .max)
    }
}
