import EddyCore

/// The embedded log's producer. Confined to one thread at a time (the thread that calls it
/// runs the appends and the delivery handlers).
///
/// Records are encoded at once into a per-partition ``RecordBatchBuilder`` (no per-record
/// syscall or allocation beyond the encoding). A partition's batch is appended to its log when
/// it would exceed `batchBytes` (capped by the topic's `maximumRecordBytes`), on `flush`, or
/// when its oldest record has waited `lingerMilliseconds` — checked on each `send` and `poll`:
/// the embedded producer has no background thread, so a producer left idle holds its batches
/// until the next `send`, `poll`, `flush` or `close`.
///
/// Partitioning: an explicit partition wins; keyed records go to ``DefaultPartitioner``
/// (murmur2, like Kafka); keyless records stick to one partition per topic until its batch is
/// appended, then move to the next (Kafka's sticky partitioner, round-robin between batches).
///
/// Appends are acknowledged per the topic's fsync policy before the delivery handlers run.
/// This producer writes batches without a producer id: it never retries, so it never
/// duplicates (`idempotent` is accepted and needs nothing more).
final class EmbeddedProducer: LogProducer {
    private let log: EmbeddedLog
    private var accumulator: RecordAccumulator
    private var closed = false

    init(log: EmbeddedLog, configuration: ProducerConfiguration) throws {
        try RecordAccumulator.validate(configuration)
        self.log = log
        accumulator = RecordAccumulator(log: log, configuration: configuration, transactional: nil)
    }

    deinit {
        if !closed { try? close() }
    }

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws {
        guard !closed else { throw EddyError(.closed, "the producer is closed") }
        try accumulator.add(record, delivery: delivery) { batch, partition in try log.append(&batch, to: partition) }
    }

    func flush() throws {
        guard !closed else { throw EddyError(.closed, "the producer is closed") }
        try accumulator.drainAll { batch, partition in try log.append(&batch, to: partition) }
        try accumulator.takeFirstError()
    }

    func poll() {
        guard !closed else { return }
        accumulator.drainLingering { batch, partition in try log.append(&batch, to: partition) }
    }

    func partitionCount(of topic: String) throws -> Int {
        guard !closed else { throw EddyError(.closed, "the producer is closed") }
        return try log.topic(topic).partitions.count
    }

    func close() throws {
        guard !closed else { return }
        defer { closed = true }
        if log.isOpen { try flush() }
    }
}

/// Per-partition batches of a producer: encoding, size limits, linger, partitioning and the
/// delivery handlers. Shared by ``EmbeddedProducer`` and ``EmbeddedTransactionalProducer``;
/// the `append` closure passed to each call decides how a full batch reaches its partition.
struct RecordAccumulator {
    /// Largest `batchBytes` a producer may ask for (batches are also capped per topic).
    static let maximumBatchBytes = Limits.maximumRecordBytesCeiling
    /// Most topics one producer caches; beyond it the cache is cleared (a bound, not a limit).
    static let maximumCachedTopics = 10_000

    typealias Append = (inout [UInt8], PartitionLog) throws -> PartitionLog.AppendResult

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

    private struct PartitionBuffer {
        var builder: RecordBatchBuilder
        var pending: [Pending] = []
        /// Monotonic time of the first record in the batch.
        var openedAt: Int64 = 0
        var nextSequence: Int32 = 0
        /// Whether (topic, partition) is in `nonEmpty`.
        var listed = false
    }

    private final class TopicState {
        let handle: TopicHandle
        var buffers: [PartitionBuffer?]
        var stickyPartition: Int
        let batchLimit: Int
        /// The topic was deleted (seen on an append): look it up again.
        var stale = false
        init(handle: TopicHandle, batchBytes: Int) {
            self.handle = handle
            buffers = Array(repeating: nil, count: handle.partitions.count)
            stickyPartition = Int.random(in: 0..<handle.partitions.count)
            batchLimit = min(batchBytes, handle.configuration.maximumRecordBytes)
        }
    }

    private let log: EmbeddedLog
    let configuration: ProducerConfiguration
    var transactional: TransactionalIdentity?
    private var topics: [String: TopicState] = [:]
    /// Buffers holding records, as (topic, partition).
    private var nonEmpty: [(TopicState, Int)] = []
    private var oldestPendingAt: Int64 = .max
    private var firstError: EddyError?

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
        self.configuration = configuration
        self.transactional = transactional
    }

    var hasPendingRecords: Bool { !nonEmpty.isEmpty }

    private mutating func topicState(_ name: String) throws -> TopicState {
        if let state = topics[name], !state.stale { return state }
        let handle = try log.topic(name)
        if topics.count >= RecordAccumulator.maximumCachedTopics && !hasPendingRecords { topics.removeAll() }
        let state = TopicState(handle: handle, batchBytes: configuration.batchBytes)
        topics[name] = state
        return state
    }

    /// Upper bound of a record's encoded size inside a batch (varints at their widest).
    static func estimatedSize(_ record: ProducerRecord) -> Int {
        var size = 1 + 10 + 5 + 5 + 5 + 5 + 5 // length, attributes, timestamp/offset deltas, lengths, header count
        size += record.key?.count ?? 0
        size += record.value?.count ?? 0
        for header in record.headers { size += 10 + header.key.utf8.count + (header.value?.count ?? 0) }
        return size
    }

    /// Encodes `record` into its partition's batch, appending batches that are full or lingered.
    mutating func add(_ record: ProducerRecord, delivery: DeliveryHandler?, append: Append) throws {
        let state = try topicState(record.topic)
        let count = state.handle.partitions.count
        let partition: Int
        if let explicit = record.partition {
            guard explicit >= 0 && explicit < count else {
                throw EddyError(.unknownPartition, "topic \(record.topic) has \(count) partitions; there is no partition \(explicit)")
            }
            partition = explicit
        } else if let key = record.key {
            partition = DefaultPartitioner.partition(key: key, count: count)
        } else {
            partition = state.stickyPartition
        }
        if record.headers.count > Limits.maximumHeadersPerRecord {
            throw EddyError(.invalidArgument, "record has \(record.headers.count) headers; the limit is \(Limits.maximumHeadersPerRecord)")
        }
        let size = RecordAccumulator.estimatedSize(record)
        let limit = state.handle.configuration.maximumRecordBytes
        if RecordBatch.headerSize + size > limit {
            throw EddyError(.recordTooLarge,
                            "record of about \(RecordBatch.headerSize + size) bytes for topic \(record.topic) exceeds its max.message.bytes of \(limit) bytes")
        }
        let now = ClientLock.monotonicMilliseconds()
        if var buffer = state.buffers[partition], !buffer.builder.isEmpty,
           buffer.builder.uncompressedSize + size > state.batchLimit
            || buffer.builder.recordCount >= Limits.maximumRecordsPerBatch {
            state.buffers[partition] = nil
            appendBatch(&buffer, state: state, partition: partition, append: append)
            state.buffers[partition] = buffer
        }
        if state.buffers[partition] == nil {
            let codec = configuration.compression != .none ? configuration.compression : state.handle.configuration.compression
            var builder = RecordBatchBuilder(compression: codec)
            if let transactional {
                builder.producerID = transactional.producerID
                builder.producerEpoch = transactional.epoch
                builder.isTransactional = true
            }
            state.buffers[partition] = PartitionBuffer(builder: builder)
        }
        let timestamp = record.timestamp ?? log.now
        let wasEmpty = state.buffers[partition]!.builder.isEmpty
        if wasEmpty {
            state.buffers[partition]!.openedAt = now
            if now < oldestPendingAt { oldestPendingAt = now }
            if !state.buffers[partition]!.listed {
                state.buffers[partition]!.listed = true
                nonEmpty.append((state, partition))
            }
        }
        let index = state.buffers[partition]!.builder.recordCount
        state.buffers[partition]!.builder.append(key: record.key, value: record.value, headers: record.headers, timestamp: timestamp)
        if let delivery {
            state.buffers[partition]!.pending.append(Pending(index: index, timestamp: timestamp, handler: delivery))
        }
        if transactional == nil && now - oldestPendingAt >= Int64(configuration.lingerMilliseconds) {
            drainLingering(append: append)
        }
    }

    /// Appends the batches whose first record has waited `lingerMilliseconds`.
    mutating func drainLingering(append: Append) {
        guard !nonEmpty.isEmpty else { return }
        let now = ClientLock.monotonicMilliseconds()
        guard now - oldestPendingAt >= Int64(configuration.lingerMilliseconds) else { return }
        let linger = Int64(configuration.lingerMilliseconds)
        var remaining: [(TopicState, Int)] = []
        var oldest = Int64.max
        for (state, partition) in nonEmpty {
            guard var buffer = state.buffers[partition] else { continue }
            if buffer.builder.isEmpty || now - buffer.openedAt >= linger {
                if !buffer.builder.isEmpty { appendBatch(&buffer, state: state, partition: partition, append: append) }
                buffer.listed = false
                state.buffers[partition] = buffer
            } else {
                remaining.append((state, partition))
                oldest = min(oldest, buffer.openedAt)
            }
        }
        nonEmpty = remaining
        oldestPendingAt = oldest
    }

    /// Appends every pending batch.
    mutating func drainAll(append: Append) throws {
        for (state, partition) in nonEmpty {
            guard var buffer = state.buffers[partition] else { continue }
            if !buffer.builder.isEmpty { appendBatch(&buffer, state: state, partition: partition, append: append) }
            buffer.listed = false
            state.buffers[partition] = buffer
        }
        nonEmpty.removeAll(keepingCapacity: true)
        oldestPendingAt = .max
    }

    /// Drops every pending record, failing its delivery handler with `error` (an aborted transaction).
    mutating func discardAll(_ error: EddyError) {
        for (state, partition) in nonEmpty {
            guard var buffer = state.buffers[partition] else { continue }
            for pending in buffer.pending { pending.handler(.failure(error)) }
            buffer.pending.removeAll(keepingCapacity: true)
            buffer.builder.reset()
            buffer.listed = false
            state.buffers[partition] = buffer
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

    /// Builds and appends one batch, runs its delivery handlers, resets the buffer.
    private mutating func appendBatch(_ buffer: inout PartitionBuffer, state: TopicState, partition: Int, append: Append) {
        defer {
            buffer.builder.reset()
            buffer.pending.removeAll(keepingCapacity: true)
        }
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
                pending.handler(.success(RecordMetadata(topicPartition: tp, offset: result.firstOffset + Offset(pending.index),
                                                        timestamp: pending.timestamp)))
            }
        } catch {
            let failure = (error as? EddyError) ?? EddyError(.io, "appending to \(tp) failed: \(error)")
            if firstError == nil { firstError = failure }
            for pending in buffer.pending { pending.handler(.failure(failure)) }
        }
        if partition == state.stickyPartition {
            state.stickyPartition = (partition + 1) % state.handle.partitions.count
        }
    }

    /// The first failure recorded and not yet taken, without clearing it.
    var pendingError: EddyError? { firstError }
}
