import EddyCore
import Foundation

/// The transaction coordinator of one embedded log: transactional ids, producer ids and
/// epochs, fencing, and the two-phase end of a transaction.
///
/// A commit is: (1) write a `prepareCommit` record (the partitions touched and the consumer
/// offsets sent) to the internal topic `__transaction_state` — the commit point; (2) write a
/// commit marker to every partition touched; (3) store the consumer offsets in
/// `__consumer_offsets`; (4) write a `complete` record. An abort writes abort markers. When
/// the log opens after a crash, ``recover()`` finds every transaction still open in any
/// partition and commits it if its producer's latest state record is `prepareCommit` (redoing
/// steps 2–4), else aborts it. So data and offsets of a transaction become visible together
/// or not at all, even across a crash.
///
/// Fencing: `initTransactions` bumps the id's epoch and aborts what the older incarnation left
/// open; the older producer's appends, offset sends and commits then fail with
/// ``EddyError/Code/producerFenced``. Appends and ends of one transactional id are serialised
/// by the id's own lock, so a zombie's append cannot slip in after the abort that fenced it.
///
/// Thread-safe. Lock order: the table lock, then an entry's lock, then the log's and the group
/// coordinator's locks, then partition locks.
final class TransactionCoordinator: @unchecked Sendable {
    // @unchecked: `entries` is reached only under `lock`, an entry's fields only under its lock;
    // `log` is set once at start-up.

    /// Default of Kafka's `transaction.timeout.ms`: an open transaction older than this is
    /// aborted by the maintenance thread and its producer fenced.
    static let defaultTimeoutMilliseconds = 60_000

    weak var log: EmbeddedLog?
    private let lock = ClientLock()
    private var entries: [String: Entry] = [:]
    /// Test seam: commits fail right after writing their commit point (before any marker).
    var failAfterCommitPoint = false

    final class Entry: @unchecked Sendable {
        // @unchecked: every field is reached only under `lock`.
        let lock = ClientLock()
        var producerID: Int64
        var epoch: Int16
        /// Partitions the open transaction has appended to.
        var partitions: [TopicPartition: PartitionLog] = [:]
        /// Consumer offsets (with their metadata) sent to the open transaction, per group.
        var offsets: [String: [TopicPartition: OffsetAndMetadata]] = [:]
        /// The commit point was written; the transaction can only commit now.
        var preparedCommit = false
        /// Partitions whose commit marker is written (a retried commit skips them).
        var marked: Set<TopicPartition> = []
        /// Monotonic time the open transaction began (its first append or offsets).
        var startedAt: Int64 = 0
        /// Kafka's `transaction.timeout.ms` of the current incarnation.
        var timeoutMilliseconds = TransactionCoordinator.defaultTimeoutMilliseconds
        /// Why older epochs are fenced, when it was not a newer producer (for the message).
        var fenceReason: String?

        init(producerID: Int64, epoch: Int16) {
            self.producerID = producerID
            self.epoch = epoch
        }

        var isOngoing: Bool { !partitions.isEmpty || !offsets.isEmpty || preparedCommit }
    }

    private func requireLog() throws -> EmbeddedLog {
        guard let log, log.isOpen else { throw EddyError(.closed, "the embedded log is closed") }
        return log
    }

    private func entry(_ transactionalID: String) throws -> Entry {
        try lock.withLock {
            guard let entry = entries[transactionalID] else {
                throw EddyError(.invalidState, "transactional id \(transactionalID) is not registered; call initTransactions() first")
            }
            return entry
        }
    }

    /// Must hold `entry.lock`.
    private func checkCurrent(_ entry: Entry, _ transactionalID: String, producerID: Int64, epoch: Int16) throws {
        guard entry.producerID == producerID && entry.epoch == epoch else {
            if let reason = entry.fenceReason, entry.producerID == producerID && entry.epoch == epoch &+ 1 {
                throw EddyError(.producerFenced, "producer with transactional id \(transactionalID) (producer id \(producerID), epoch \(epoch)) was fenced: \(reason)")
            }
            throw EddyError(.producerFenced,
                            "producer with transactional id \(transactionalID) (producer id \(producerID), epoch \(epoch)) was fenced by a newer producer (producer id \(entry.producerID), epoch \(entry.epoch))")
        }
    }

    // MARK: - Producer-facing operations

    /// Registers `transactionalID` (or takes it over), bumps its epoch and ends what an older
    /// incarnation left open (aborted, or committed if it had reached its commit point).
    func initTransactions(_ transactionalID: String,
                          timeoutMilliseconds: Int = TransactionCoordinator.defaultTimeoutMilliseconds) throws -> (producerID: Int64, epoch: Int16) {
        let log = try requireLog()
        let entry = try lock.withLock { () -> Entry in
            if let entry = entries[transactionalID] { return entry }
            let entry = Entry(producerID: try log.allocateProducerID(), epoch: -1)
            entries[transactionalID] = entry
            return entry
        }
        return try entry.lock.withLock {
            if entry.isOngoing {
                if entry.preparedCommit {
                    try completeCommit(entry, transactionalID, log: log)
                } else {
                    try writeAborts(entry, log: log)
                }
            }
            try bumpEpoch(entry, log: log)
            entry.fenceReason = nil
            entry.timeoutMilliseconds = timeoutMilliseconds
            return (entry.producerID, entry.epoch)
        }
    }

    /// Appends a transactional batch for the current incarnation of `transactionalID`.
    func append(_ batch: inout [UInt8], to partition: PartitionLog, transactionalID: String,
                producerID: Int64, epoch: Int16) throws -> PartitionLog.AppendResult {
        let log = try requireLog()
        let entry = try entry(transactionalID)
        return try entry.lock.withLock {
            try checkCurrent(entry, transactionalID, producerID: producerID, epoch: epoch)
            if entry.preparedCommit {
                throw EddyError(.invalidState, "transaction of \(transactionalID) is committing; retry commitTransaction()")
            }
            if !entry.isOngoing { entry.startedAt = ClientLock.monotonicMilliseconds() }
            entry.partitions[partition.topicPartition] = partition
            return try log.append(&batch, to: partition)
        }
    }

    /// Adds consumer offsets to the open transaction after checking the group member is current.
    func addOffsets(_ offsets: [TopicPartition: OffsetAndMetadata], group: ConsumerGroupMetadata, transactionalID: String,
                    producerID: Int64, epoch: Int16) throws {
        let log = try requireLog()
        let entry = try entry(transactionalID)
        try entry.lock.withLock {
            try checkCurrent(entry, transactionalID, producerID: producerID, epoch: epoch)
            if entry.preparedCommit {
                throw EddyError(.invalidState, "transaction of \(transactionalID) is committing; retry commitTransaction()")
            }
            try log.groups.validate(group)
            for (tp, entry) in offsets where entry.offset < 0 {
                throw EddyError(.invalidArgument, "offset \(entry.offset) for \(tp) is negative")
            }
            try OffsetAndMetadata.validate(offsets)
            if !entry.isOngoing { entry.startedAt = ClientLock.monotonicMilliseconds() }
            entry.offsets[group.groupID, default: [:]].merge(offsets) { $1 }
        }
    }

    /// Commits or aborts the open transaction of the current incarnation. A commit that fails
    /// after its commit point can be retried (it resumes); it can no longer abort.
    func endTransaction(commit: Bool, transactionalID: String, producerID: Int64, epoch: Int16) throws {
        let log = try requireLog()
        let entry = try entry(transactionalID)
        try entry.lock.withLock {
            try checkCurrent(entry, transactionalID, producerID: producerID, epoch: epoch)
            guard entry.isOngoing else { return }
            if commit {
                try completeCommit(entry, transactionalID, log: log)
            } else {
                if entry.preparedCommit {
                    throw EddyError(.invalidState, "transaction of \(transactionalID) reached its commit point; it can only commit (retry commitTransaction())")
                }
                try writeAborts(entry, log: log)
            }
        }
    }

    /// A producer closes: its open transaction (if it is still the current incarnation) is
    /// aborted, so the partitions' last stable offsets move on.
    func release(transactionalID: String, producerID: Int64, epoch: Int16) {
        guard let log = try? requireLog(), let entry = try? entry(transactionalID) else { return }
        entry.lock.withLock {
            guard entry.producerID == producerID && entry.epoch == epoch && entry.isOngoing else { return }
            if entry.preparedCommit {
                try? completeCommit(entry, transactionalID, log: log)
            } else {
                try? writeAborts(entry, log: log)
            }
        }
    }

    /// The log is closing: every open transaction ends (committed past its commit point, else aborted).
    func abortAllOpen() {
        guard let log else { return }
        let all = lock.withLock { entries }
        for (id, entry) in all {
            entry.lock.withLock {
                guard entry.isOngoing else { return }
                if entry.preparedCommit {
                    try? completeCommit(entry, id, log: log)
                } else {
                    try? writeAborts(entry, log: log)
                }
            }
        }
    }

    /// Aborts transactions open longer than their producer's `transaction.timeout.ms` and
    /// fences those producers (their next call throws ``EddyError/Code/producerFenced``), so a
    /// hung producer cannot hold back `read_committed` readers forever. Called by the
    /// maintenance thread.
    func abortExpired() {
        guard let log, log.isOpen else { return }
        let now = ClientLock.monotonicMilliseconds()
        let all = lock.withLock { entries }
        for (_, entry) in all {
            entry.lock.withLock {
                guard entry.isOngoing, !entry.preparedCommit,
                      now - entry.startedAt > Int64(entry.timeoutMilliseconds) else { return }
                do {
                    try writeAborts(entry, log: log)
                    try bumpEpoch(entry, log: log)
                    entry.fenceReason = "its transaction was open longer than transaction.timeout.ms (\(entry.timeoutMilliseconds) ms) and was aborted"
                } catch {
                    // Retried on the next round.
                }
            }
        }
    }

    // MARK: - Ending transactions (hold the entry's lock)

    private func bumpEpoch(_ entry: Entry, log: EmbeddedLog) throws {
        if entry.epoch == Int16.max {
            entry.producerID = try log.allocateProducerID()
            entry.epoch = 0
        } else {
            entry.epoch += 1
        }
    }

    private func liveLog(of tp: TopicPartition, _ partition: PartitionLog, log: EmbeddedLog) -> Bool {
        // A topic deleted during the transaction has nothing left to mark.
        guard let handle = log.topicIfPresent(tp.topic), tp.partition < handle.partitions.count else { return false }
        return handle.partitions[tp.partition] === partition
    }

    private func writeAborts(_ entry: Entry, log: EmbeddedLog) throws {
        let now = log.now
        for (tp, partition) in entry.partitions.sorted(by: { $0.key < $1.key }) where liveLog(of: tp, partition, log: log) {
            _ = try partition.appendControl(.abort, producerID: entry.producerID, producerEpoch: entry.epoch, timestamp: now)
            entry.partitions[tp] = nil
        }
        entry.partitions = [:]
        entry.offsets = [:]
        entry.marked = []
        log.notifyData()
    }

    private func completeCommit(_ entry: Entry, _ transactionalID: String, log: EmbeddedLog) throws {
        // A transaction touching an fsync=always topic makes its commit point and its offsets
        // durable before it reports success (and before `complete` could outlive them).
        let mustSync = entry.partitions.values.contains { $0.configuration.fsync == .always }
        if !entry.preparedCommit {
            let record = TransactionStateRecord(
                producerID: entry.producerID, epoch: entry.epoch, state: .prepareCommit,
                partitions: entry.partitions.keys.sorted().map { .init(topic: $0.topic, partition: $0.partition) },
                offsets: entry.offsets.flatMap { group, offsets in
                    offsets.map { .init(group: group, topic: $0.key.topic, partition: $0.key.partition, offset: $0.value.offset,
                                        metadata: $0.value.metadata.isEmpty ? nil : $0.value.metadata) }
                })
            try writeState(record, transactionalID: transactionalID, log: log, sync: mustSync)
            entry.preparedCommit = true
            if failAfterCommitPoint {
                throw EddyError(.io, "injected failure after the commit point of \(transactionalID)")
            }
        }
        let now = log.now
        for (tp, partition) in entry.partitions.sorted(by: { $0.key < $1.key })
        where !entry.marked.contains(tp) && liveLog(of: tp, partition, log: log) {
            _ = try partition.appendControl(.commit, producerID: entry.producerID, producerEpoch: entry.epoch, timestamp: now)
            entry.marked.insert(tp)
        }
        log.notifyData()
        for (group, offsets) in entry.offsets.sorted(by: { $0.key < $1.key }) {
            try log.groups.applyTransactional(group: group, offsets: offsets)
        }
        if mustSync && !entry.offsets.isEmpty {
            try log.partition(TopicPartition(EmbeddedLog.offsetsTopic, 0)).flush()
        }
        try writeState(TransactionStateRecord(producerID: entry.producerID, epoch: entry.epoch, state: .complete,
                                              partitions: [], offsets: []),
                       transactionalID: transactionalID, log: log, sync: false)
        entry.partitions = [:]
        entry.offsets = [:]
        entry.marked = []
        entry.preparedCommit = false
    }

    // MARK: - The transaction state topic

    static func stateKey(_ transactionalID: String) -> [UInt8] { Array("txn/\(transactionalID)".utf8) }

    private func writeState(_ record: TransactionStateRecord, transactionalID: String, log: EmbeddedLog, sync: Bool) throws {
        let partition = try log.partition(TopicPartition(EmbeddedLog.transactionStateTopic, 0))
        let value = try JSONEncoder().encode(record)
        var builder = RecordBatchBuilder()
        builder.append(key: TransactionCoordinator.stateKey(transactionalID), value: Array(value), timestamp: log.now)
        var batch = try builder.build()
        _ = try partition.append(&batch)
        if sync { try partition.flush() }
    }

    /// Start-up: ends every transaction a previous run left open in any partition (committing
    /// those past their commit point) and restores producer ids and epochs per transactional id.
    func recover() throws {
        guard let log else { throw EddyError(.closed, "the embedded log is closed") }
        let statePartition = try log.partition(TopicPartition(EmbeddedLog.transactionStateTopic, 0))
        var latest: [String: TransactionStateRecord] = [:]
        let decoder = JSONDecoder()
        try PartitionScanner.forEachRecord(in: statePartition, isolation: .readUncommitted) { _, view in
            guard let key = view.key else { return }
            let text = String(decoding: key, as: UTF8.self)
            guard text.hasPrefix("txn/") else { return }
            let id = String(text.dropFirst(4))
            guard let value = view.value else { latest[id] = nil; return }
            do {
                latest[id] = try decoder.decode(TransactionStateRecord.self, from: Data(value))
            } catch {
                throw EddyError(.corrupt, "\(EmbeddedLog.transactionStateTopic): record for \(id) at offset \(view.offset) does not parse: \(error)")
            }
        }
        var preparedByProducer: [Int64: (String, TransactionStateRecord)] = [:]
        for (id, record) in latest where record.state == .prepareCommit {
            preparedByProducer[record.producerID] = (id, record)
        }
        // Every transaction still open anywhere.
        let now = log.now
        for handle in log.allTopics() {
            for partition in handle.partitions {
                let stable = partition.lastStableOffset
                guard stable < partition.endOffset else { continue }
                var open: [Int64: Int16] = [:]
                try PartitionScanner.forEachBatch(in: partition, from: stable, isolation: .readUncommitted) { header, _, _ in
                    guard header.isTransactional && header.producerID >= 0 else { return }
                    if header.isControl { open[header.producerID] = nil } else { open[header.producerID] = header.producerEpoch }
                }
                for (producerID, epoch) in open.sorted(by: { $0.key < $1.key }) {
                    let commits = preparedByProducer[producerID] != nil
                    _ = try partition.appendControl(commits ? .commit : .abort, producerID: producerID,
                                                    producerEpoch: epoch, timestamp: now)
                }
            }
        }
        // Offsets of transactions past their commit point, then mark them complete.
        for (_, (id, record)) in preparedByProducer.sorted(by: { $0.key < $1.key }) {
            var byGroup: [String: [TopicPartition: OffsetAndMetadata]] = [:]
            for o in record.offsets {
                byGroup[o.group, default: [:]][TopicPartition(o.topic, o.partition)] = OffsetAndMetadata(o.offset, metadata: o.metadata ?? "")
            }
            for (group, offsets) in byGroup.sorted(by: { $0.key < $1.key }) {
                try log.groups.applyTransactional(group: group, offsets: offsets)
            }
            try writeState(TransactionStateRecord(producerID: record.producerID, epoch: record.epoch, state: .complete,
                                                  partitions: [], offsets: []),
                           transactionalID: id, log: log, sync: false)
        }
        lock.withLock {
            for (id, record) in latest {
                entries[id] = Entry(producerID: record.producerID, epoch: record.epoch)
            }
        }
    }
}

/// A record of `__transaction_state` (JSON), keyed `txn/<transactional id>`.
///
/// A committed offset's `metadata` is absent when empty: records written before offsets had
/// metadata decode unchanged, and records without metadata are written as before.
struct TransactionStateRecord: Codable {
    enum State: String, Codable { case prepareCommit, complete }
    struct Partition: Codable { var topic: String; var partition: Int }
    struct CommittedOffset: Codable {
        var group: String
        var topic: String
        var partition: Int
        var offset: Offset
        var metadata: String? = nil
    }
    var producerID: Int64
    var epoch: Int16
    var state: State
    var partitions: [Partition]
    var offsets: [CommittedOffset]
}
