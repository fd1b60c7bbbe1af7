import EddyCore

/// The embedded log's consumer. Confined to one thread at a time; rebalance callbacks run on
/// that thread, inside `poll`.
///
/// `poll` reads whole batches straight from the partitions' logs, decodes them with
/// ``RecordBatch/forEachRecord(in:maximumBytes:context:_:)``, skips control batches and — for
/// `read_committed` — batches of aborted transactions, with Kafka's Fetcher rule
/// (``AbortedTransactionFilter``). Reads stop at the last stable offset for `read_committed`.
/// When nothing is available it blocks on a condition variable signalled by every append (no
/// spinning), waking at least every third of the session timeout to keep its membership alive.
///
/// A subscribed consumer is a member of its group (see ``GroupCoordinator``): it must `poll`
/// at least once per `sessionTimeoutMilliseconds` or it is removed from the group, its commits
/// fail with ``EddyError/Code/consumerFenced``, and its next `poll` rejoins.
///
/// Positions with no committed offset start per `autoOffsetReset`; a position that retention
/// overtook also resets (or throws ``EddyError/Code/offsetOutOfRange`` for `.none`).
final class EmbeddedConsumer: LogConsumer {
    /// Most partitions one consumer may be assigned.
    static let maximumAssignedPartitions = 100_000
    /// Longest `poll` wait honoured (about a year); larger timeouts are clamped to it.
    static let longestWaitMilliseconds = 365 * 24 * 3_600_000
    /// Default of Kafka's `auto.commit.interval.ms` (read from `extra` when set).
    static let defaultAutoCommitIntervalMilliseconds = 5_000

    private struct PartitionState {
        var log: PartitionLog
        var position: Offset?
        var paused = false
        /// Average stored bytes per record seen so far (0: unknown), to size reads so that a
        /// poll limited by `maximumPollRecords` does not copy megabytes it will not decode.
        var bytesPerRecord = 0
        /// Records a poll decoded beyond its record limit (the rest of the last batch it read),
        /// handed out first by the next poll if the position is still `pendingPosition`: a
        /// batch is read and decoded once however small `maximumPollRecords` is.
        var pending: ConsumerRecords.PartitionRecords?
        var pendingPosition: Offset = 0
        /// The position once the pending records are handed out (past their last batch).
        var pendingEnd: Offset = 0
    }

    /// Smallest read asked of a partition, whatever the record-size estimate says.
    static let minimumReadBytes = 64 * 1024

    private enum Mode {
        case none
        case assigned
        case subscribed(topics: [String], listener: (any RebalanceListener)?)
    }

    private let log: EmbeddedLog
    private let configuration: ConsumerConfiguration
    private var mode: Mode = .none
    private var order: [TopicPartition] = [] {
        didSet { assignedTopics = Set(order.map(\.topic)) }
    }
    /// Topics of `order`: appends to them wake this consumer's `poll`.
    private var assignedTopics: Set<String> = []
    private let waiter = DataWaiter()
    private var states: [TopicPartition: PartitionState] = [:]
    private var nextStart = 0
    private var memberID: String?
    private var generation = -1
    private var closed = false
    private let autoCommitInterval: Int64
    private var lastAutoCommit: Int64

    init(log: EmbeddedLog, configuration: ConsumerConfiguration) throws {
        if let group = configuration.groupID { try Names.validate(group, what: "group id") }
        if configuration.maximumPollRecords < 1 {
            throw EddyError(.invalidArgument, "maximumPollRecords must be >= 1, got \(configuration.maximumPollRecords)")
        }
        if configuration.fetchMaximumBytes < 1 || configuration.partitionFetchMaximumBytes < 1 {
            throw EddyError(.invalidArgument, "fetchMaximumBytes and partitionFetchMaximumBytes must be >= 1")
        }
        if configuration.sessionTimeoutMilliseconds < 1 {
            throw EddyError(.invalidArgument, "sessionTimeoutMilliseconds must be >= 1, got \(configuration.sessionTimeoutMilliseconds)")
        }
        var interval = Int64(EmbeddedConsumer.defaultAutoCommitIntervalMilliseconds)
        if let text = configuration.extra["auto.commit.interval.ms"] {
            guard let value = Int64(text), value >= 0 else {
                throw EddyError(.invalidArgument, "auto.commit.interval.ms must be a number >= 0, got \(text)")
            }
            interval = value
        }
        self.log = log
        self.configuration = configuration
        autoCommitInterval = interval
        lastAutoCommit = ClientLock.monotonicMilliseconds()
    }

    deinit {
        if !closed { try? close() }
    }

    private func checkOpen() throws {
        if closed { throw EddyError(.closed, "the consumer is closed") }
        try log.checkOpen()
    }

    private func requireGroup() throws -> String {
        guard let group = configuration.groupID else {
            throw EddyError(.invalidState, "the consumer has no groupID; set ConsumerConfiguration.groupID to commit or subscribe")
        }
        return group
    }

    // MARK: - Assignment

    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws {
        try checkOpen()
        let group = try requireGroup()
        for topic in topics { try Names.validateTopic(topic) }
        let unique = Array(Set(topics)).sorted()
        switch mode {
        case .assigned:
            throw EddyError(.invalidState, "the consumer has a manual assignment; unsubscribe() before subscribe()")
        case .subscribed:
            mode = .subscribed(topics: unique, listener: listener)
            if let memberID { log.groups.resubscribe(group: group, memberID: memberID, topics: unique) }
        case .none:
            mode = .subscribed(topics: unique, listener: listener)
            memberID = try log.groups.join(group: group, clientID: configuration.clientID, topics: unique,
                                           sessionTimeoutMilliseconds: configuration.sessionTimeoutMilliseconds)
            generation = -1
        }
    }

    func assign(_ partitions: [TopicPartition]) throws {
        try checkOpen()
        if case .subscribed = mode {
            throw EddyError(.invalidState, "the consumer is subscribed to a group; unsubscribe() before assign()")
        }
        guard partitions.count <= EmbeddedConsumer.maximumAssignedPartitions else {
            throw EddyError(.invalidArgument, "\(partitions.count) partitions assigned; the limit is \(EmbeddedConsumer.maximumAssignedPartitions)")
        }
        var next: [TopicPartition: PartitionState] = [:]
        var nextOrder: [TopicPartition] = []
        for tp in partitions where next[tp] == nil {
            next[tp] = try states[tp] ?? PartitionState(log: log.partition(tp))
            nextOrder.append(tp)
        }
        states = next
        order = nextOrder
        mode = partitions.isEmpty ? .none : .assigned
    }

    func unsubscribe() throws {
        if closed { throw EddyError(.closed, "the consumer is closed") }
        if case .subscribed(_, let listener) = mode {
            if !order.isEmpty { listener?.partitionsRevoked(order) }
            if let group = configuration.groupID, let memberID { log.groups.leave(group: group, memberID: memberID) }
            memberID = nil
            generation = -1
        }
        states = [:]
        order = []
        mode = .none
    }

    func assignment() -> [TopicPartition] { order.sorted() }

    /// Applies what the group coordinator says, running the listener's callbacks here.
    private func syncGroup() throws {
        guard case .subscribed(let topics, let listener) = mode, let group = configuration.groupID else { return }
        for _ in 0..<1_000 {
            guard let member = memberID else {
                memberID = try log.groups.join(group: group, clientID: configuration.clientID, topics: topics,
                                               sessionTimeoutMilliseconds: configuration.sessionTimeoutMilliseconds)
                generation = -1
                continue
            }
            switch log.groups.heartbeat(group: group, memberID: member) {
            case .unknownMember:
                // Removed (session timeout): everything is lost; rejoin.
                let lost = order
                states = [:]
                order = []
                memberID = nil
                generation = -1
                if !lost.isEmpty { listener?.partitionsRevoked(lost) }
            case .revoke(let partitions):
                listener?.partitionsRevoked(partitions)
                for tp in partitions { states[tp] = nil }
                order.removeAll { states[$0] == nil }
                log.groups.acknowledgeRevocation(group: group, memberID: member, partitions: partitions)
            case .assign(let partitions, let newGeneration):
                generation = newGeneration
                var added: [TopicPartition] = []
                for tp in partitions where states[tp] == nil {
                    guard let partitionLog = try? log.partition(tp) else { continue }
                    states[tp] = PartitionState(log: partitionLog)
                    order.append(tp)
                    added.append(tp)
                }
                listener?.partitionsAssigned(added)
                return
            case .stable(let current):
                generation = current
                return
            }
        }
    }

    // MARK: - Polling

    /// Throws ``EddyError/Code/invalidState`` when the consumer neither subscribed nor
    /// assigned partitions (as Kafka's consumer does), rather than waiting for nothing.
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] {
        try pollRecords(timeoutMilliseconds: timeoutMilliseconds).records()
    }

    /// ``poll(timeoutMilliseconds:)`` without a record object per record: the records stay in
    /// the bytes read from the partitions' logs.
    func pollRecords(timeoutMilliseconds: Int) throws -> ConsumerRecords {
        try checkOpen()
        if case .none = mode {
            throw EddyError(.invalidState, "the consumer is not subscribed to any topic and has no assigned partitions")
        }
        // Clamped so that `Int.max` ("wait forever") cannot overflow the deadline.
        let deadline = ClientLock.monotonicMilliseconds() + Int64(min(max(0, timeoutMilliseconds), EmbeddedConsumer.longestWaitMilliseconds))
        let heartbeatInterval = max(1, configuration.sessionTimeoutMilliseconds / 3)
        if configuration.enableAutoCommit { try autoCommitIfDue() }
        while true {
            try syncGroup()
            log.beginWaiting(waiter, topics: assignedTopics)
            defer { log.endWaiting(waiter) }
            let records = try fetch()
            if !records.partitions.isEmpty { return records }
            let left = deadline - ClientLock.monotonicMilliseconds()
            if left <= 0 { return ConsumerRecords() }
            waiter.wait(milliseconds: min(Int(left), heartbeatInterval))
            try checkOpen()
        }
    }

    private func autoCommitIfDue(force: Bool = false) throws {
        guard configuration.groupID != nil, !order.isEmpty else { return }
        let now = ClientLock.monotonicMilliseconds()
        guard force || now - lastAutoCommit >= autoCommitInterval else { return }
        lastAutoCommit = now
        var offsets: [TopicPartition: Offset] = [:]
        for (tp, state) in states { if let position = state.position { offsets[tp] = position } }
        if !offsets.isEmpty { try commit(offsets) }
    }

    /// Where reading starts for a partition without a position: the committed offset, else the reset policy.
    private func initialPosition(_ tp: TopicPartition, _ partition: PartitionLog) throws -> Offset {
        if let group = configuration.groupID, let committed = log.groups.committed(group: group, tp) {
            if committed >= partition.startOffset && committed <= partition.endOffset { return committed }
        }
        return try resetPosition(tp, partition)
    }

    private func resetPosition(_ tp: TopicPartition, _ partition: PartitionLog) throws -> Offset {
        switch configuration.autoOffsetReset {
        case .earliest: return partition.startOffset
        case .latest: return configuration.isolation == .readCommitted ? partition.lastStableOffset : partition.endOffset
        case .none: throw EddyError(.offsetOutOfRange, "\(tp) has no valid committed offset and autoOffsetReset is none")
        }
    }

    private func fetch() throws -> ConsumerRecords {
        let count = order.count
        guard count > 0 else { return ConsumerRecords() }
        var records = ConsumerRecords()
        var total = 0
        var budget = configuration.fetchMaximumBytes
        let start = nextStart % count
        nextStart = (start + 1) % count
        for step in 0..<count {
            let tp = order[(start + step) % count]
            guard var state = states[tp], !state.paused else { continue }
            let part = try read(tp, &state, limit: configuration.maximumPollRecords - total, budget: &budget)
            states[tp] = state
            if let part, !part.isEmpty {
                total += part.count
                records.partitions.append(part)
            }
            if total >= configuration.maximumPollRecords || budget <= 0 { break }
        }
        return records
    }

    /// At most `limit` records of `tp` from its position on: the pending records of the last
    /// read if the position has not moved since, else whole batches read from the log.
    private func read(_ tp: TopicPartition, _ state: inout PartitionState, limit: Int,
                      budget: inout Int) throws -> ConsumerRecords.PartitionRecords? {
        var position: Offset
        if let current = state.position { position = current } else { position = try initialPosition(tp, state.log) }
        if let pending = state.pending {
            state.pending = nil
            if position == state.pendingPosition {
                return handOut(pending, limit: limit, end: state.pendingEnd, state: &state)
            }
        }
        let fetched: PartitionLog.FetchedData
        var maxBytes = max(1, min(configuration.partitionFetchMaximumBytes, budget))
        if state.bytesPerRecord > 0 {
            let estimate = limit.multipliedReportingOverflow(by: state.bytesPerRecord + state.bytesPerRecord / 4)
            if !estimate.overflow { maxBytes = min(maxBytes, max(EmbeddedConsumer.minimumReadBytes, estimate.partialValue)) }
        }
        do {
            fetched = try state.log.read(from: position, maxBytes: maxBytes, isolation: configuration.isolation)
        } catch let error as EddyError where error.code == .offsetOutOfRange {
            state.position = try resetPosition(tp, state.log)
            return nil
        }
        guard !fetched.bytes.isEmpty else {
            state.position = position
            return nil
        }
        budget -= fetched.bytes.count
        var entries: [ConsumerRecords.Entry] = []
        var extra: [UInt8] = []
        var decodedBytes = 0
        var filter = AbortedTransactionFilter(isolation: configuration.isolation, aborted: fetched.abortedTransactions)
        do {
            defer { state.position = position }
            try fetched.bytes.withUnsafeBytes { all in
                var at = 0
                // Whole batches: the records past `limit` wait in `pending` for the next poll.
                while at + RecordBatch.headerSize <= all.count && entries.count < limit {
                    let rest = UnsafeRawBufferPointer(rebasing: all[at...])
                    let header = try RecordBatch.parseHeader(rest, context: "\(tp) at offset \(position)")
                    let size = header.totalSize
                    guard size <= rest.count else { break }
                    let batch = UnsafeRawBufferPointer(rebasing: rest[0..<size])
                    let batchStart = at
                    at += size
                    if header.lastOffset < position { continue }
                    if try filter.skips(header, batch: batch) {
                        position = header.lastOffset + 1
                        continue
                    }
                    // No second CRC pass: PartitionLog.read returns only batches that passed theirs.
                    decodedBytes += size
                    try RecordBatch.appendEntries(of: batch, header: header, batchStart: batchStart, from: position,
                                                  maximumBytes: Limits.maximumRecordBytesCeiling, into: &entries,
                                                  extra: &extra, extraBase: all.count,
                                                  context: { "\(tp) batch at offset \(header.baseOffset)" })
                    position = max(position, header.lastOffset + 1)
                }
            }
        }
        if !entries.isEmpty && decodedBytes > 0 { state.bytesPerRecord = max(1, decodedBytes / entries.count) }
        guard !entries.isEmpty else { return nil }
        let bytes = extra.isEmpty ? fetched.bytes : fetched.bytes + extra
        let all = ConsumerRecords.PartitionRecords(topicPartition: tp, bytes: bytes, entries: entries[...])
        return handOut(all, limit: limit, end: position, state: &state)
    }

    /// The first `limit` records of `records`; the rest become the partition's pending records.
    /// `end` is the position once all of them are handed out.
    private func handOut(_ records: ConsumerRecords.PartitionRecords, limit: Int, end: Offset,
                         state: inout PartitionState) -> ConsumerRecords.PartitionRecords {
        guard records.count > limit else {
            state.position = end
            return records
        }
        let cut = records.entries.startIndex + limit
        let next = records.entries[cut - 1].offset + 1
        state.pending = records.slice(cut..<records.entries.endIndex)
        state.pendingPosition = next
        state.pendingEnd = end
        state.position = next
        return records.slice(records.entries.startIndex..<cut)
    }

    // MARK: - Positions and offsets

    private func state(_ tp: TopicPartition) throws -> PartitionState {
        guard let state = states[tp] else { throw EddyError(.invalidState, "\(tp) is not assigned to this consumer") }
        return state
    }

    func position(_ partition: TopicPartition) throws -> Offset {
        try checkOpen()
        var state = try state(partition)
        if let position = state.position { return position }
        let position = try initialPosition(partition, state.log)
        state.position = position
        states[partition] = state
        return position
    }

    func seek(_ partition: TopicPartition, to offset: Offset) throws {
        try checkOpen()
        guard offset >= 0 else { throw EddyError(.invalidArgument, "cannot seek \(partition) to negative offset \(offset)") }
        var state = try state(partition)
        state.position = offset
        states[partition] = state
    }

    func seekToBeginning(_ partitions: [TopicPartition]) throws {
        try checkOpen()
        for tp in partitions {
            var state = try state(tp)
            state.position = state.log.startOffset
            states[tp] = state
        }
    }

    func seekToEnd(_ partitions: [TopicPartition]) throws {
        try checkOpen()
        for tp in partitions {
            var state = try state(tp)
            state.position = configuration.isolation == .readCommitted ? state.log.lastStableOffset : state.log.endOffset
            states[tp] = state
        }
    }

    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?] {
        try checkOpen()
        var result: [TopicPartition: Offset?] = [:]
        for (tp, time) in times { result[tp] = .some(try log.partition(tp).offset(forTimestamp: time)) }
        return result
    }

    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        try checkOpen()
        var result: [TopicPartition: Offset] = [:]
        for tp in partitions { result[tp] = try log.partition(tp).startOffset }
        return result
    }

    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        try checkOpen()
        var result: [TopicPartition: Offset] = [:]
        for tp in partitions {
            let partition = try log.partition(tp)
            result[tp] = configuration.isolation == .readCommitted ? partition.lastStableOffset : partition.endOffset
        }
        return result
    }

    func pause(_ partitions: [TopicPartition]) {
        for tp in partitions { states[tp]?.paused = true }
    }

    func resume(_ partitions: [TopicPartition]) {
        for tp in partitions { states[tp]?.paused = false }
    }

    func commit(_ offsets: [TopicPartition: Offset]) throws {
        try commit(offsets.mapValues { OffsetAndMetadata($0) })
    }

    /// Stores offsets and metadata in `__consumer_offsets` (one batch: all or nothing).
    func commit(_ offsets: [TopicPartition: OffsetAndMetadata]) throws {
        try checkOpen()
        let group = try requireGroup()
        guard !offsets.isEmpty else { return }
        if case .subscribed = mode {
            guard let memberID else {
                throw EddyError(.consumerFenced, "the consumer is not a member of group \(group) (it was removed); poll() to rejoin")
            }
            try log.groups.commit(group: group, memberID: memberID, generation: generation, offsets: offsets)
        } else {
            try log.groups.commit(group: group, memberID: nil, generation: -1, offsets: offsets)
        }
    }

    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        try checkOpen()
        let group = try requireGroup()
        let all = log.groups.committed(group: group)
        var result: [TopicPartition: Offset] = [:]
        for tp in partitions { if let offset = all[tp] { result[tp] = offset } }
        return result
    }

    func committedWithMetadata(_ partitions: [TopicPartition]) throws -> [TopicPartition: OffsetAndMetadata] {
        try checkOpen()
        let group = try requireGroup()
        let all = log.groups.committedWithMetadata(group: group)
        var result: [TopicPartition: OffsetAndMetadata] = [:]
        for tp in partitions { if let entry = all[tp] { result[tp] = entry } }
        return result
    }

    func groupMetadata() -> ConsumerGroupMetadata? {
        guard let group = configuration.groupID else { return nil }
        return ConsumerGroupMetadata(groupID: group, generation: generation, memberID: memberID ?? "")
    }

    /// Commits positions if auto-commit is on, runs the revoke callback, leaves the group.
    func close() throws {
        guard !closed else { return }
        defer { closed = true }
        if configuration.enableAutoCommit && log.isOpen {
            try? autoCommitIfDue(force: true)
        }
        if log.isOpen { try unsubscribe() } else if let group = configuration.groupID, let memberID {
            log.groups.leave(group: group, memberID: memberID)
        }
    }
}
