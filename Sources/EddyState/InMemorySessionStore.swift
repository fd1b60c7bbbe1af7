import EddyCore

/// A ``SessionStore`` held in memory (a sorted map), optionally logged to a changelog. The in-memory
/// twin of ``RocksDBSessionStore``.
public final class InMemorySessionStore: SessionStore, RestorableStore {
    let logic: SessionLogic

    /// Creates an empty store. Throws ``EddyError/Code/invalidArgument`` for a non-positive
    /// retention or segment interval, ``EddyError/Code/invalidName`` for a bad name.
    public init(name: String, retentionMilliseconds: Int64,
                segmentIntervalMilliseconds: Int64? = nil, changelog: TopicPartition? = nil) throws {
        let core = try StoreCore(name: name, engine: InMemoryEngine(), changelog: changelog)
        logic = try SessionLogic(core: core, retention: retentionMilliseconds, segmentInterval: segmentIntervalMilliseconds
            ?? SegmentedStoreDefaults.segmentInterval(retentionMilliseconds: retentionMilliseconds))
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

    public func put(_ key: [UInt8], session: SessionWindow, value: [UInt8]) throws {
        try logic.put(key, session: session, value: value)
    }
    public func remove(_ key: [UInt8], session: SessionWindow) throws {
        try logic.put(key, session: session, value: nil)
    }
    public func fetchSession(_ key: [UInt8], session: SessionWindow) throws -> [UInt8]? {
        try logic.fetchSession(key, session: session)
    }
    public func findSessions(_ key: [UInt8], earliestSessionEnd: Timestamp, latestSessionStart: Timestamp,
                             limit: Int) throws -> [SessionEntry] {
        try logic.findSessions(key, earliestSessionEnd: earliestSessionEnd, latestSessionStart: latestSessionStart, limit: limit)
    }
    public func all(limit: Int) throws -> [SessionEntry] { try logic.all(limit: limit) }
}
