import EddyCore

/// Eddy's own partitioned log, in-process: the default ``LogBackend``.
///
/// Topics live in a data directory (`DATA/topics.json`, `DATA/<topic>-<partition>/`), or in
/// memory for tests and throwaway data. One `EmbeddedLog` owns its directory: it holds an
/// exclusive lock on `DATA/.lock`, so a second process (or a second `EmbeddedLog` in this
/// process) that opens the same directory gets ``EddyError/Code/locked`` and touches nothing.
///
/// Thread safety: the log, its ``admin`` and its coordinators may be used from any number of
/// threads at once. Producers and consumers it makes are confined to one thread at a time.
///
/// ```swift
/// let log = try EmbeddedLog(directory: "eddy-data")
/// defer { try? log.close() }
/// try log.admin.createTopic("orders", configuration: TopicConfiguration(partitions: 4))
/// let producer = try log.makeProducer(ProducerConfiguration())
/// try producer.send(ProducerRecord(topic: "orders", key: Array("k".utf8), value: Array("v".utf8)))
/// try producer.flush()
/// ```
///
/// Opening runs recovery: every partition re-validates its tail, transactions that a crashed
/// run left open are completed (if they had reached their commit point) or aborted, and the
/// consumer groups' committed offsets are reloaded from the internal topic `__consumer_offsets`.
/// A background thread (``LogMaintenance``) flushes partitions with an fsync interval, applies
/// retention and compaction, expires group members that stopped polling and aborts
/// transactions older than their `transaction.timeout.ms`; a second one (``LingerScheduler``,
/// started on first use) appends producers' batches whose linger time has passed.
///
/// Durability: appends, transaction markers and committed offsets are durable per the topic's
/// fsync policy (the internal topics use `os`, except that a transaction touching an
/// `fsync=always` topic also syncs its commit point and offsets).
public final class EmbeddedLog: LogBackend, @unchecked Sendable {
    // @unchecked: mutable state (`topics`, `registry`, `isClosed`) is reached only under `lock`;
    // `waiters` only under `waitersLock`.

    /// Settings of the log as a whole (topic settings are per topic, in ``TopicConfiguration``).
    public struct Configuration: Sendable {
        /// How often the background thread flushes partitions with `fsync` interval policies
        /// and checks group members' session timeouts.
        public var maintenanceIntervalMilliseconds: Int
        /// How often retention (time and size) is applied (Kafka's `log.retention.check.interval.ms`).
        public var retentionCheckIntervalMilliseconds: Int
        /// How often compacted topics are compacted (Kafka's `log.cleaner.backoff.ms`, roughly).
        public var compactionIntervalMilliseconds: Int

        /// The defaults suit production; tests shorten the intervals to see maintenance happen.
        public init(maintenanceIntervalMilliseconds: Int = 100,
                    retentionCheckIntervalMilliseconds: Int = 60_000,
                    compactionIntervalMilliseconds: Int = 30_000) {
            self.maintenanceIntervalMilliseconds = maintenanceIntervalMilliseconds
            self.retentionCheckIntervalMilliseconds = retentionCheckIntervalMilliseconds
            self.compactionIntervalMilliseconds = compactionIntervalMilliseconds
        }

        func validate() throws {
            if maintenanceIntervalMilliseconds < 1 || retentionCheckIntervalMilliseconds < 1 || compactionIntervalMilliseconds < 1 {
                throw EddyError(.invalidArgument, "EmbeddedLog.Configuration intervals must be >= 1 ms")
            }
        }
    }

    /// Internal topic holding consumer groups' committed offsets (compacted).
    public static let offsetsTopic = "__consumer_offsets"
    /// Internal topic holding transaction commit points, for recovery (compacted).
    public static let transactionStateTopic = "__transaction_state"
    static let internalTopics: Set<String> = [offsetsTopic, transactionStateTopic]

    /// The data directory, or `nil` for an in-memory log.
    public let directory: String?
    /// The log's settings.
    public let configuration: Configuration

    let environment: LogEnvironment
    let rootPath: String
    /// The open topics and the lock guarding them, `registry` and `isClosed`; shared with the
    /// maintenance thread, which must never hold the log itself (see ``LogMaintenance``).
    private let table = TopicTable()
    private var lock: ClientLock { table.lock }
    private var topics: [String: TopicHandle] {
        get { table.topics }
        set { table.topics = newValue }
    }
    private var registry: TopicRegistry
    private var isClosed = false
    private let directoryLock: DirectoryLock?

    // Consumers blocked in `poll`, woken by appends to their topics (see `DataWaiter`).
    private let waitersLock = ClientLock()
    private var waiters: [ObjectIdentifier: DataWaiter] = [:]

    let groups: GroupCoordinator
    let transactions: TransactionCoordinator
    let lingerScheduler = LingerScheduler()
    private var maintenance: LogMaintenance?

    /// Opens (creating if needed) the embedded log in `directory`, running recovery.
    ///
    /// Throws ``EddyError/Code/locked`` if another process or another `EmbeddedLog` in this
    /// process has the directory open, ``EddyError/Code/corrupt`` for damage recovery cannot
    /// repair (naming the file and byte offset), ``EddyError/Code/io`` for failed system calls.
    /// Call ``close()`` when done; the lock is also released if the process exits.
    public convenience init(directory: String, configuration: Configuration = Configuration()) throws {
        try self.init(directory: directory, environment: .real, configuration: configuration)
    }

    /// A fresh, empty log held in memory: the same semantics as on disk (transactions, groups,
    /// retention, compaction), no files and no lock. Its data goes when it is closed or freed.
    public static func inMemory(configuration: Configuration = Configuration()) -> EmbeddedLog {
        do {
            return try EmbeddedLog(directory: nil, environment: .inMemory(), configuration: configuration)
        } catch {
            // Opening an empty in-memory file system does no I/O that can fail.
            fatalError("opening an in-memory EmbeddedLog failed: \(error)")
        }
    }

    /// A fresh in-memory log whose wall clock is `clock` (milliseconds since the Unix epoch),
    /// for deterministic tests such as a topology test driver: records sent without a
    /// timestamp get `clock()`, and time retention and tombstone expiry read it. `clock` is
    /// called from any thread. Timeouts (poll, linger, sessions) still use real time.
    public static func inMemory(configuration: Configuration = Configuration(),
                                clock: @escaping @Sendable () -> Timestamp) -> EmbeddedLog {
        let environment = LogEnvironment(fileSystem: InMemoryFileSystem(), clock: ClosureLogClock(read: clock))
        do {
            return try EmbeddedLog(directory: nil, environment: environment, configuration: configuration)
        } catch {
            fatalError("opening an in-memory EmbeddedLog failed: \(error)")
        }
    }

    /// The designated initialiser: `directory == nil` means in memory (under the root `/eddy`
    /// of `environment`'s file system, with no directory lock).
    init(directory: String?, environment: LogEnvironment, configuration: Configuration) throws {
        try configuration.validate()
        self.directory = directory
        self.configuration = configuration
        self.environment = environment
        if let directory {
            directoryLock = try DirectoryLock(directory: directory)
            rootPath = directory
        } else {
            directoryLock = nil
            rootPath = "/eddy"
        }
        groups = GroupCoordinator()
        transactions = TransactionCoordinator()
        do {
            try environment.fileSystem.createDirectory(rootPath)
            registry = try TopicRegistry(directory: rootPath, fileSystem: environment.fileSystem)
        } catch {
            directoryLock?.release()
            throw error
        }
        groups.log = self
        transactions.log = self
        do {
            for (name, topicConfiguration) in registry.topics.sorted(by: { $0.key < $1.key }) {
                topics[name] = try openTopic(name, topicConfiguration, discardOrphans: false)
            }
            for name in EmbeddedLog.internalTopics.sorted() where topics[name] == nil {
                let internalConfiguration = TopicConfiguration.compacted(partitions: 1)
                try registry.put(name, internalConfiguration)
                topics[name] = try openTopic(name, internalConfiguration, discardOrphans: true)
            }
            try transactions.recover()
            try groups.load()
        } catch {
            for handle in topics.values { handle.closeQuietly() }
            directoryLock?.release()
            throw error
        }
        maintenance = LogMaintenance(table: table, groups: groups, transactions: transactions,
                                     clock: environment.clock, configuration: configuration)
    }

    deinit {
        if !isClosed { try? close() }
    }

    /// Stops the background thread, aborts transactions still open, closes every partition
    /// (flushing it) and releases the directory lock. Producers, consumers and the admin made
    /// from this log throw ``EddyError/Code/closed`` afterwards. Idempotent. Throws the first
    /// failure to flush or close a partition, after trying all of them.
    public func close() throws {
        let alreadyClosed = lock.withLock { () -> Bool in
            defer { isClosed = true }
            return isClosed
        }
        if alreadyClosed { return }
        maintenance?.stop()
        maintenance = nil
        lingerScheduler.stop()
        transactions.abortAllOpen()
        groups.closeAll()
        let handles = lock.withLock { Array(topics.values) }
        var firstError: (any Error)?
        for handle in handles {
            for partition in handle.partitions {
                do { try partition.close() } catch { if firstError == nil { firstError = error } }
            }
        }
        notifyData()
        directoryLock?.release()
        if let firstError { throw firstError }
    }

    /// Test seam: stops the background thread and drops the log as a crash would — nothing
    /// is flushed, closed or aborted, and the directory lock is released — so a test can open
    /// the same files again and exercise recovery. The object is unusable afterwards.
    func simulateCrash() {
        let alreadyClosed = lock.withLock { () -> Bool in
            defer { isClosed = true }
            return isClosed
        }
        if alreadyClosed { return }
        maintenance?.stop()
        maintenance = nil
        lingerScheduler.stop()
        groups.closeAll()
        notifyData()
        directoryLock?.release()
    }

    /// Topic and group administration.
    public var admin: any LogAdmin { EmbeddedAdmin(log: self) }

    /// A producer. Throws ``EddyError/Code/invalidArgument`` for a bad configuration,
    /// ``EddyError/Code/closed`` if the log is closed.
    public func makeProducer(_ configuration: ProducerConfiguration) throws -> any LogProducer {
        try checkOpen()
        return try EmbeddedProducer(log: self, configuration: configuration)
    }

    /// A transactional producer for `transactionalID` (validated like a topic name).
    public func makeTransactionalProducer(_ configuration: ProducerConfiguration,
                                          transactionalID: String) throws -> any TransactionalProducer {
        try checkOpen()
        return try EmbeddedTransactionalProducer(log: self, configuration: configuration, transactionalID: transactionalID)
    }

    /// A consumer. Its `groupID`, if any, is validated like a topic name.
    public func makeConsumer(_ configuration: ConsumerConfiguration) throws -> any LogConsumer {
        try checkOpen()
        return try EmbeddedConsumer(log: self, configuration: configuration)
    }

    // MARK: - Internal: topics

    func checkOpen() throws {
        if lock.withLock({ isClosed }) { throw EddyError(.closed, "the embedded log is closed") }
    }

    var isOpen: Bool { lock.withLock { !isClosed } }

    /// The wall-clock time of the log's environment.
    var now: Timestamp { environment.clock.nowMilliseconds }

    private func partitionDirectory(_ topic: String, _ partition: Int) -> String {
        rootPath + "/" + topic + "-" + String(partition)
    }

    /// Opens a topic's partitions. With `discardOrphans`, partition directories holding data
    /// (left by a topic of the same name whose deletion was interrupted) are wiped first.
    private func openTopic(_ name: String, _ configuration: TopicConfiguration, discardOrphans: Bool) throws -> TopicHandle {
        var partitions: [PartitionLog] = []
        do {
            for index in 0..<configuration.partitions {
                let tp = TopicPartition(name, index)
                let path = partitionDirectory(name, index)
                var log = try PartitionLog(topicPartition: tp, directory: path, configuration: configuration,
                                           environment: environment)
                if discardOrphans && (log.endOffset > 0 || log.startOffset > 0) {
                    try log.close()
                    try log.deleteFiles()
                    log = try PartitionLog(topicPartition: tp, directory: path, configuration: configuration,
                                           environment: environment)
                }
                partitions.append(log)
            }
        } catch {
            for partition in partitions { try? partition.close() }
            throw error
        }
        return TopicHandle(name: name, configuration: configuration, partitions: partitions)
    }

    func createTopic(_ name: String, configuration: TopicConfiguration) throws {
        try Names.validateTopic(name)
        try configuration.validate()
        try lock.withLock {
            if isClosed { throw EddyError(.closed, "the embedded log is closed") }
            if topics[name] != nil { throw EddyError(.topicExists, "topic \(name) already exists") }
            try registry.put(name, configuration)
            do {
                topics[name] = try openTopic(name, configuration, discardOrphans: true)
            } catch {
                try? registry.remove(name)
                throw error
            }
        }
        groups.topicsChanged()
    }

    func deleteTopic(_ name: String) throws {
        try Names.validateTopic(name)
        if EmbeddedLog.internalTopics.contains(name) {
            throw EddyError(.invalidArgument, "internal topic \(name) cannot be deleted")
        }
        let handle = try lock.withLock { () -> TopicHandle in
            if isClosed { throw EddyError(.closed, "the embedded log is closed") }
            guard let handle = topics[name] else { throw EddyError(.unknownTopic, "topic \(name) does not exist") }
            try registry.remove(name)
            topics[name] = nil
            handle.markDeleted()
            return handle
        }
        var firstError: (any Error)?
        for partition in handle.partitions {
            do {
                try partition.close()
                try partition.deleteFiles()
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        groups.topicsChanged()
        notifyData()
        if let firstError { throw firstError }
    }

    /// The topic's handle. Throws ``EddyError/Code/unknownTopic``.
    func topic(_ name: String) throws -> TopicHandle {
        try lock.withLock {
            if isClosed { throw EddyError(.closed, "the embedded log is closed") }
            guard let handle = topics[name] else { throw EddyError(.unknownTopic, "topic \(name) does not exist") }
            return handle
        }
    }

    /// The topic's handle, or nil (no error) when it does not exist.
    func topicIfPresent(_ name: String) -> TopicHandle? {
        lock.withLock { isClosed ? nil : topics[name] }
    }

    /// One partition. Throws ``EddyError/Code/unknownTopic`` or ``EddyError/Code/unknownPartition``.
    func partition(_ tp: TopicPartition) throws -> PartitionLog {
        let handle = try topic(tp.topic)
        guard tp.partition >= 0 && tp.partition < handle.partitions.count else {
            throw EddyError(.unknownPartition, "topic \(tp.topic) has \(handle.partitions.count) partitions; there is no partition \(tp.partition)")
        }
        return handle.partitions[tp.partition]
    }

    /// Every open topic, sorted by name.
    func allTopics() -> [TopicHandle] { table.all() }

    func topicNames() throws -> [String] {
        try lock.withLock {
            if isClosed { throw EddyError(.closed, "the embedded log is closed") }
            return topics.keys.sorted()
        }
    }

    func allocateProducerID() throws -> Int64 {
        try lock.withLock {
            if isClosed { throw EddyError(.closed, "the embedded log is closed") }
            return try registry.allocateProducerID()
        }
    }

    // MARK: - Internal: appends and the consumers' wake-up signal

    /// Appends an encoded batch and wakes the consumers blocked on its topic.
    @inline(__always)
    func append(_ batch: inout [UInt8], to partition: PartitionLog) throws -> PartitionLog.AppendResult {
        let result = try partition.append(&batch)
        notifyData(topic: partition.topicPartition.topic)
        return result
    }

    /// Wakes consumers blocked in `poll`: those reading `topic`, or all of them when `topic`
    /// is nil (a group changed, a topic was deleted, transaction markers, the log closed).
    /// Costs one uncontended lock when nobody waits.
    func notifyData(topic: String? = nil) {
        waitersLock.lock()
        defer { waitersLock.unlock() }
        guard !waiters.isEmpty else { return }
        for waiter in waiters.values where topic == nil || waiter.topics.contains(topic!) {
            waiter.wake()
        }
    }

    /// Registers `waiter` for appends to `topics` (and global wake-ups). Call before fetching,
    /// so that an append racing with the fetch still wakes the wait that follows it.
    func beginWaiting(_ waiter: DataWaiter, topics: Set<String>) {
        waiter.reset()
        waitersLock.withLock {
            waiter.topics = topics
            waiters[ObjectIdentifier(waiter)] = waiter
        }
    }

    func endWaiting(_ waiter: DataWaiter) {
        _ = waitersLock.withLock { waiters.removeValue(forKey: ObjectIdentifier(waiter)) }
    }
}

/// What one consumer blocks on in `poll`: its own condition variable, signalled by appends to
/// the topics it reads, so an append wakes only the consumers that can use it.
final class DataWaiter: @unchecked Sendable {
    // @unchecked: `signalled` is reached only under `condition`; `topics` only under the
    // log's `waitersLock`.
    private let condition = ClientLock()
    private var signalled = false
    var topics: Set<String> = []

    func reset() { condition.withLock { signalled = false } }

    /// Whether a wake-up arrived since the last `reset` (for tests).
    var isSignalled: Bool { condition.withLock { signalled } }

    func wake() {
        condition.withLock { signalled = true }
        condition.broadcast()
    }

    /// Blocks until woken or `milliseconds` pass.
    func wait(milliseconds: Int) {
        guard milliseconds > 0 else { return }
        let deadline = ClientLock.monotonicMilliseconds() + Int64(milliseconds)
        condition.lock()
        defer { condition.unlock() }
        while !signalled {
            let left = deadline - ClientLock.monotonicMilliseconds()
            if left <= 0 { return }
            condition.wait(milliseconds: Int(left))
        }
    }
}

/// A topic as the embedded log holds it: its configuration and open partitions. Shared by
/// producers and consumers, which cache it; `isDeleted` tells them to look the topic up again.
final class TopicHandle: @unchecked Sendable {
    // @unchecked: `deleted` is reached only under `lock`; the rest is immutable.
    let name: String
    let configuration: TopicConfiguration
    let partitions: [PartitionLog]
    private let lock = ClientLock()
    private var deleted = false

    init(name: String, configuration: TopicConfiguration, partitions: [PartitionLog]) {
        self.name = name
        self.configuration = configuration
        self.partitions = partitions
    }

    var isDeleted: Bool { lock.withLock { deleted } }
    func markDeleted() { lock.withLock { deleted = true } }

    func closeQuietly() {
        for partition in partitions { try? partition.close() }
    }
}

/// A ``LogClock`` read through a closure (the public face of the clock seam).
struct ClosureLogClock: LogClock {
    let read: @Sendable () -> Int64
    var nowMilliseconds: Int64 { read() }
}

/// The open topics of an ``EmbeddedLog`` by name, with the lock that guards them (and the log's
/// other mutable state). A separate object so the maintenance thread can walk the topics
/// without a reference to the log: a log dropped without `close` is then always freed on the
/// thread that dropped it, which joins the maintenance thread and releases the directory
/// before the drop returns.
final class TopicTable: @unchecked Sendable {
    // @unchecked: `topics` is reached only under `lock`.
    let lock = ClientLock()
    var topics: [String: TopicHandle] = [:]

    /// Every open topic, sorted by name.
    func all() -> [TopicHandle] {
        lock.withLock { topics.values.sorted { $0.name < $1.name } }
    }
}
