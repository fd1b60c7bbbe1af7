import EddyCore

/// The embedded log's producer. Confined to one thread at a time (its owner); the log's
/// linger thread (``LingerScheduler``) may append its lingering batches in the background
/// (through the shared ``ProducerCore``).
///
/// Records are encoded at once into a per-partition ``RecordBatchBuilder`` (no per-record
/// syscall; one uncontended lock per call). A partition's batch is appended to its log when
/// it would exceed `batchBytes` (capped by the topic's `maximumRecordBytes`), on `flush`, or
/// once its oldest record has waited `lingerMilliseconds` — by the next `send`/`poll`, or by
/// the log's linger thread if the owner is idle.
///
/// Partitioning: an explicit partition wins; keyed records go to ``DefaultPartitioner``
/// (murmur2, like Kafka); keyless records stick to one partition per topic until its batch is
/// appended, then move to the next (Kafka's sticky partitioner, round-robin between batches).
///
/// Appends are acknowledged per the topic's fsync policy. Delivery handlers always run on the
/// owner's thread: inside `send`, `flush` or `poll` (results of background appends wait for
/// the next of these calls, as with Kafka's producer). This producer writes batches without a
/// producer id: it never retries, so it never duplicates (`idempotent` needs nothing more).
final class EmbeddedProducer: LogProducer {
    private let core: ProducerCore

    init(log: EmbeddedLog, configuration: ProducerConfiguration) throws {
        try RecordAccumulator.validate(configuration)
        core = ProducerCore(log: log, configuration: configuration)
    }

    deinit {
        try? core.close()
    }

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws { try core.send(record, delivery: delivery) }
    func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
              headers: [Header], timestamp: Timestamp?) throws {
        try core.send { accumulator, append in
            try accumulator.add(topic: topic, partition: partition, key: key, value: value, headers: headers,
                                timestamp: timestamp, delivery: nil, append: append)
        }
    }
    func flush() throws { try core.flush() }
    func poll() { core.poll() }
    func partitionCount(of topic: String) throws -> Int { try core.partitionCount(of: topic) }
    /// Flushes and releases the producer. If the log is already closed, pending records are
    /// reported failed (``EddyError/Code/closed``) through their delivery handlers.
    func close() throws { try core.close() }
}

/// The state of an ``EmbeddedProducer`` shared by its owner thread and the log's linger
/// thread, which holds it strongly (no weak reference: a weak reference would move the
/// object's reference count to a side table and slow every retain on the hot path).
final class ProducerCore: @unchecked Sendable {
    // @unchecked: `accumulator`, `closed` and `lingerScheduled` are reached only under `lock`;
    // delivery handlers run outside it, on the owner's thread.
    private let log: EmbeddedLog
    private let lock = ClientLock()
    /// Unchecked exclusivity: reached only under `lock`, never by two overlapping accesses.
    @exclusivity(unchecked) private var accumulator: RecordAccumulator
    private var closed = false
    private var lingerScheduled = false

    init(log: EmbeddedLog, configuration: ProducerConfiguration) {
        self.log = log
        accumulator = RecordAccumulator(log: log, configuration: configuration, transactional: nil)
    }

    /// Must hold `lock`: the deadline to hand to the linger thread, if it is not yet scheduled.
    private func scheduleIfNeeded() -> Int64? {
        guard !lingerScheduled, let deadline = accumulator.lingerDeadline else { return nil }
        lingerScheduled = true
        return deadline
    }

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws {
        try send { accumulator, append in try accumulator.add(record, delivery: delivery, append: append) }
    }

    /// Runs `add` (one record into the accumulator) under the lock, then the completions.
    @inline(__always)
    func send(_ add: (inout RecordAccumulator, RecordAccumulator.Append) throws -> Void) throws {
        lock.lock()
        if closed {
            lock.unlock()
            throw EddyError(.closed, "the producer is closed")
        }
        do {
            // The closure reads `self.log` only when a batch is appended, not per record.
            try add(&accumulator) { batch, partition in try self.log.append(&batch, to: partition) }
        } catch {
            let completions = accumulator.takeCompletions()
            lock.unlock()
            RecordAccumulator.run(completions)
            throw error
        }
        let completions = accumulator.takeCompletions()
        let deadline = scheduleIfNeeded()
        lock.unlock()
        if let deadline { log.lingerScheduler.schedule(self, at: deadline) }
        if !completions.isEmpty { RecordAccumulator.run(completions) }
    }

    func flush() throws {
        let (completions, error) = try lock.withLock { () -> ([RecordAccumulator.Completion], (any Error)?) in
            if closed { throw EddyError(.closed, "the producer is closed") }
            try accumulator.drainAll { batch, partition in try self.log.append(&batch, to: partition) }
            var failure: (any Error)?
            do { try accumulator.takeFirstError() } catch { failure = error }
            return (accumulator.takeCompletions(), failure)
        }
        RecordAccumulator.run(completions)
        if let error { throw error }
    }

    func poll() {
        let completions = lock.withLock { () -> [RecordAccumulator.Completion] in
            if closed { return [] }
            accumulator.drainLingering { batch, partition in try self.log.append(&batch, to: partition) }
            return accumulator.takeCompletions()
        }
        RecordAccumulator.run(completions)
    }

    /// Called by the linger thread at the scheduled deadline: appends the batches that are due.
    /// Returns the next deadline if records still wait (the producer stays scheduled).
    func lingerTick() -> Int64? {
        lock.withLock {
            lingerScheduled = false
            if closed { return nil }
            accumulator.drainLingering { batch, partition in try self.log.append(&batch, to: partition) }
            return scheduleIfNeeded()
        }
    }

    func partitionCount(of topic: String) throws -> Int {
        if lock.withLock({ closed }) { throw EddyError(.closed, "the producer is closed") }
        return try log.topic(topic).partitions.count
    }

    func close() throws {
        if lock.withLock({ closed }) { return }
        var failure: (any Error)?
        if log.isOpen {
            do { try flush() } catch { failure = error }
        }
        let completions = lock.withLock { () -> [RecordAccumulator.Completion] in
            accumulator.discardAll(EddyError(.closed, "the producer closed before these records were appended"))
            closed = true
            return accumulator.takeCompletions()
        }
        RecordAccumulator.run(completions)
        if let failure { throw failure }
    }
}

/// Per-partition batches of a producer: encoding, size limits, linger, partitioning and the
/// delivery handlers. Shared by ``EmbeddedProducer`` and ``EmbeddedTransactionalProducer``;
/// the `append` closure passed to each call decides how a full batch reaches its partition.
///
/// The per-record path does no syscall and no dictionary lookup when consecutive records go
/// to the same topic; buffers are classes so that appending a record copies nothing but the
/// record's own bytes into the batch being built.
struct RecordAccumulator {
    /// Largest `batchBytes` a producer may ask for (batches are also capped per topic).
    static let maximumBatchBytes = Limits.maximumRecordBytesCeiling
    /// Most topics one producer caches; beyond it the cache is cleared (a bound, not a limit).
    static let maximumCachedTopics = 10_000

    typealias Append = (inout [UInt8], PartitionLog) throws -> PartitionLog.AppendResult
    typealias Completion = (DeliveryHandler, Result<RecordMetadata, EddyError>)

    /// For transactional producers: the identity stamped into every batch.
    struct TransactionalIdentity {
        var producerID: Int64
        var epoch: Int16
    }

    private struct Pending {
        var index: Int
        var timestamp: Timestamp
        var handler: DeliveryHandler
    }

    // `@exclusivity(unchecked)` on the per-record state below: buffers are reached only through
    // their accumulator, one call at a time (under the producer's lock, or by the owner of a
    // transactional producer), and no access overlaps another, so the run-time exclusivity
    // checks (two calls each per access, several accesses per record) buy nothing.
    private final class PartitionBuffer {
        let partition: Int
        @exclusivity(unchecked) var builder: RecordBatchBuilder
        @exclusivity(unchecked) var pending: [Pending] = []
        /// Monotonic time of the first record in the batch.
        @exclusivity(unchecked) var openedAt: Int64 = 0
        @exclusivity(unchecked) var nextSequence: Int32 = 0
        /// Whether it is in `nonEmpty`.
        @exclusivity(unchecked) var listed = false
        init(partition: Int, builder: RecordBatchBuilder) {
            self.partition = partition
            self.builder = builder
        }
    }

    private final class TopicState {
        let handle: TopicHandle
        @exclusivity(unchecked) var buffers: [PartitionBuffer?]
        @exclusivity(unchecked) var stickyPartition: Int
        let batchLimit: Int
        /// The topic was deleted (seen on an append): look it up again.
        @exclusivity(unchecked) var stale = false
        init(handle: TopicHandle, batchBytes: Int) {
            self.handle = handle
            buffers = Array(repeating: nil, count: handle.partitions.count)
            stickyPartition = Int.random(in: 0..<handle.partitions.count)
            batchLimit = min(batchBytes, handle.configuration.maximumRecordBytes)
        }
    }

    private let log: EmbeddedLog
    private let clock: any LogClock
    let configuration: ProducerConfiguration
    var transactional: TransactionalIdentity?
    private var topics: [String: TopicState] = [:]
    private var lastTopic: TopicState?
    /// Buffers holding records.
    private var nonEmpty: [(TopicState, PartitionBuffer)] = []
    private var oldestPendingAt: Int64 = .max
    private var firstError: EddyError?
    /// Delivery handlers to run, with their results. The owner runs them outside any lock
    /// (a handler may call `send`).
    private var completions: [Completion] = []

    static func validate(_ configuration: ProducerConfiguration) throws {
        if configuration.batchBytes < RecordBatch.headerSize || configuration.batchBytes > maximumBatchBytes {
            throw EddyError(.invalidArgument, "batchBytes must be \(RecordBatch.headerSize)...\(maximumBatchBytes), got \(configuration.batchBytes)")
        }
        if configuration.lingerMilliseconds < 0 {
            throw EddyError(.invalidArgument, "lingerMilliseconds must be >= 0, got \(configuration.lingerMilliseconds)")
        }
        if configuration.timeoutMilliseconds < 0 {
            throw EddyError(.invalidArgument, "timeoutMilliseconds must be >= 0, got \(configuration.timeoutMilliseconds)")
        }
    }

    init(log: EmbeddedLog, configuration: ProducerConfiguration, transactional: TransactionalIdentity?) {
        self.log = log
        clock = log.environment.clock
        self.configuration = configuration
        self.transactional = transactional
    }

    var hasPendingRecords: Bool { !nonEmpty.isEmpty }
    /// Whether delivery handlers wait to run.
    var hasCompletions: Bool { !completions.isEmpty }

    /// When the oldest pending batch is due (monotonic ms), if any.
    var lingerDeadline: Int64? {
        // With no linger every record was appended at once: nothing waits.
        nonEmpty.isEmpty || configuration.lingerMilliseconds == 0 ? nil : oldestPendingAt &+ Int64(configuration.lingerMilliseconds)
    }

    /// Takes the delivery handlers whose results are known; run them outside locks.
    mutating func takeCompletions() -> [Completion] {
        guard !completions.isEmpty else { return [] }
        defer { completions.removeAll(keepingCapacity: true) }
        return completions
    }

    static func run(_ completions: [Completion]) {
        for (handler, result) in completions { handler(result) }
    }

    private mutating func topicState(_ name: String) throws -> TopicState {
        if let state = lastTopic, !state.stale, state.handle.name == name { return state }
        if let state = topics[name], !state.stale {
            lastTopic = state
            return state
        }
        let handle = try log.topic(name)
        if topics.count >= RecordAccumulator.maximumCachedTopics && !hasPendingRecords { topics.removeAll() }
        let state = TopicState(handle: handle, batchBytes: configuration.batchBytes)
        topics[name] = state
        lastTopic = state
        return state
    }

    /// Upper bound of a record's encoded size inside a batch (varints at their widest).
    static func estimatedSize(keyCount: Int, valueCount: Int, headers: [Header]) -> Int {
        var size = 1 + 10 + 5 + 5 + 5 + 5 + 5 // length, attributes, timestamp/offset deltas, lengths, header count
        size += keyCount + valueCount
        for header in headers { size += 10 + header.key.utf8.count + (header.value?.count ?? 0) }
        return size
    }

    /// ``add(topic:partition:key:value:headers:timestamp:delivery:append:)`` for a ``ProducerRecord``.
    mutating func add(_ record: ProducerRecord, delivery: DeliveryHandler?, append: Append) throws {
        try Self.withOptionalBytes(record.key) { key in
            try Self.withOptionalBytes(record.value) { value in
                try add(topic: record.topic, partition: record.partition, key: key, value: value, headers: record.headers,
                        timestamp: record.timestamp, delivery: delivery, append: append)
            }
        }
    }

    static func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        guard let bytes else { return try body(nil) }
        return try bytes.withUnsafeBytes { try body($0) }
    }

    /// Encodes `record` into its partition's batch, appending the batch first if the record
    /// would overflow it. With `lingerMilliseconds == 0` (and not transactional) the batch is
    /// appended at once; otherwise lingering batches go on `drainLingering`, `drainAll`, or the
    /// log's linger thread.
    mutating func add(topic: String, partition explicitPartition: Int?, key: UnsafeRawBufferPointer?,
                      value: UnsafeRawBufferPointer?, headers: [Header], timestamp recordTimestamp: Timestamp?,
                      delivery: DeliveryHandler?, append: Append) throws {
        let state = try topicState(topic)
        let count = state.handle.partitions.count
        let partition: Int
        if let explicit = explicitPartition {
            guard explicit >= 0 && explicit < count else {
                throw EddyError(.unknownPartition, "topic \(topic) has \(count) partitions; there is no partition \(explicit)")
            }
            partition = explicit
        } else if let key {
            partition = DefaultPartitioner.partition(key: key, count: count)
        } else {
            partition = state.stickyPartition
        }
        if headers.count > Limits.maximumHeadersPerRecord {
            throw EddyError(.invalidArgument, "record has \(headers.count) headers; the limit is \(Limits.maximumHeadersPerRecord)")
        }
        let size = RecordAccumulator.estimatedSize(keyCount: key?.count ?? 0, valueCount: value?.count ?? 0, headers: headers)
        let limit = state.handle.configuration.maximumRecordBytes
        if RecordBatch.headerSize + size > limit {
            throw EddyError(.recordTooLarge,
                            "record of about \(RecordBatch.headerSize + size) bytes for topic \(topic) exceeds its max.message.bytes of \(limit) bytes")
        }
        let buffer: PartitionBuffer
        if let existing = state.buffers[partition] {
            buffer = existing
            if !buffer.builder.isEmpty
                && (buffer.builder.uncompressedSize + size > state.batchLimit
                    || buffer.builder.recordCount >= Limits.maximumRecordsPerBatch) {
                appendBatch(buffer, state: state, append: append)
            }
        } else {
            let codec = configuration.compression != .none ? configuration.compression : state.handle.configuration.compression
            var builder = RecordBatchBuilder(compression: codec)
            if let transactional {
                builder.producerID = transactional.producerID
                builder.producerEpoch = transactional.epoch
                builder.isTransactional = true
            }
            buffer = PartitionBuffer(partition: partition, builder: builder)
            state.buffers[partition] = buffer
        }
        let timestamp = recordTimestamp ?? clock.nowMilliseconds
        if buffer.builder.isEmpty {
            let now = ClientLock.monotonicMilliseconds()
            buffer.openedAt = now
            if now < oldestPendingAt { oldestPendingAt = now }
            if !buffer.listed {
                buffer.listed = true
                nonEmpty.append((state, buffer))
            }
        }
        if let delivery {
            buffer.pending.append(Pending(index: buffer.builder.recordCount, timestamp: timestamp, handler: delivery))
        }
        buffer.builder.appendRaw(key: key, value: value, headers: headers, timestamp: timestamp)
        if transactional == nil && configuration.lingerMilliseconds == 0 {
            appendBatch(buffer, state: state, append: append)
        }
    }

    /// Appends the batches whose first record has waited `lingerMilliseconds`.
    mutating func drainLingering(append: Append) {
        guard !nonEmpty.isEmpty else { return }
        let now = ClientLock.monotonicMilliseconds()
        let linger = Int64(configuration.lingerMilliseconds)
        guard now - oldestPendingAt >= linger else { return }
        var remaining: [(TopicState, PartitionBuffer)] = []
        var oldest = Int64.max
        for (state, buffer) in nonEmpty {
            if buffer.builder.isEmpty || now - buffer.openedAt >= linger {
                if !buffer.builder.isEmpty { appendBatch(buffer, state: state, append: append) }
                buffer.listed = false
            } else {
                remaining.append((state, buffer))
                oldest = min(oldest, buffer.openedAt)
            }
        }
        nonEmpty = remaining
        oldestPendingAt = oldest
    }

    /// Appends every pending batch.
    mutating func drainAll(append: Append) throws {
        for (state, buffer) in nonEmpty {
            if !buffer.builder.isEmpty { appendBatch(buffer, state: state, append: append) }
            buffer.listed = false
        }
        nonEmpty.removeAll(keepingCapacity: true)
        oldestPendingAt = .max
    }

    /// Drops every pending record, failing its delivery handler with `error` (an aborted transaction).
    mutating func discardAll(_ error: EddyError) {
        for (_, buffer) in nonEmpty {
            for pending in buffer.pending { completions.append((pending.handler, .failure(error))) }
            buffer.pending.removeAll(keepingCapacity: true)
            buffer.builder.reset()
            buffer.listed = false
        }
        nonEmpty.removeAll(keepingCapacity: true)
        oldestPendingAt = .max
    }

    /// Throws (and clears) the first append failure since the last call.
    mutating func takeFirstError() throws {
        if let error = firstError {
            firstError = nil
            throw error
        }
    }

    /// Builds and appends one batch, queues its delivery results, resets the buffer. The
    /// buffer stays listed in `nonEmpty` (an empty listed buffer is dropped on the next drain).
    private mutating func appendBatch(_ buffer: PartitionBuffer, state: TopicState, append: Append) {
        defer {
            buffer.builder.reset()
            buffer.pending.removeAll(keepingCapacity: true)
        }
        let partition = buffer.partition
        let count = buffer.builder.recordCount
        let tp = TopicPartition(state.handle.name, partition)
        do {
            if transactional != nil {
                buffer.builder.baseSequence = buffer.nextSequence
                buffer.nextSequence = buffer.nextSequence &+ Int32(count)
            }
            if state.handle.isDeleted {
                state.stale = true
                throw EddyError(.unknownTopic, "topic \(tp.topic) was deleted")
            }
            var batch = try buffer.builder.build()
            let result = try append(&batch, state.handle.partitions[partition])
            for pending in buffer.pending {
                completions.append((pending.handler, .success(RecordMetadata(
                    topicPartition: tp, offset: result.firstOffset + Offset(pending.index), timestamp: pending.timestamp))))
            }
        } catch {
            let failure = (error as? EddyError) ?? EddyError(.io, "appending to \(tp) failed: \(error)")
            if firstError == nil { firstError = failure }
            for pending in buffer.pending { completions.append((pending.handler, .failure(failure))) }
        }
        if partition == state.stickyPartition {
            state.stickyPartition = (partition + 1) % state.handle.partitions.count
        }
    }

    /// The first failure recorded and not yet taken, without clearing it.
    var pendingError: EddyError? { firstError }
}
