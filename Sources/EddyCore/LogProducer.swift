/// Called once per record when its append is acknowledged (per the topic's fsync policy) or
/// has failed. The embedded log calls it on the thread that called `send` or `flush`; Kafka
/// calls it on the thread that polls the producer (inside `send`, `flush` or `poll`).
public typealias DeliveryHandler = (Result<RecordMetadata, EddyError>) -> Void

/// Appends records to topics (Kafka's Producer). Confined to one thread at a time.
///
/// Records are batched per partition; `send` may return before the record is durable. Every
/// record is acknowledged or reported failed through its delivery handler, never dropped;
/// `flush` returns when all sent records are acknowledged and throws the first failure.
public protocol LogProducer: AnyObject {
    /// Queues `record`. Throws at once for what can be known at once (unknown topic or
    /// partition, record over the size limit, closed or fenced producer).
    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws
    /// Queues one record given as raw bytes (`nil`: a null key or value), without a delivery
    /// handler: what `send(ProducerRecord(...))` does, without building the record's arrays.
    /// The bytes are copied before it returns. The default builds a ``ProducerRecord``.
    func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
              headers: [Header], timestamp: Timestamp?) throws
    /// Appends everything queued and waits for the acknowledgements.
    func flush() throws
    /// Serves delivery handlers of acknowledged records without blocking.
    func poll()
    /// Partition count of `topic`, for callers that choose partitions themselves.
    func partitionCount(of topic: String) throws -> Int
    /// Flushes and releases the producer. Later calls throw ``EddyError/Code/closed``.
    func close() throws
}

extension LogProducer {
    /// Queues `record` with no delivery handler; failures surface from `flush()`.
    public func send(_ record: ProducerRecord) throws { try send(record, delivery: nil) }

    /// The raw-bytes send as a ``ProducerRecord`` (copies key and value into arrays).
    public func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
                     headers: [Header], timestamp: Timestamp?) throws {
        try send(ProducerRecord(topic: topic, partition: partition, key: key.map { Array($0) }, value: value.map { Array($0) },
                                headers: headers, timestamp: timestamp), delivery: nil)
    }
}

/// A producer whose appends and consumer offsets commit or abort together (Kafka's
/// transactional producer, exactly-once v2).
///
/// Lifecycle: `initTransactions()` once (fences older producers with the same id), then per
/// transaction `beginTransaction()`, `send`…, optionally `sendOffsetsToTransaction`, and
/// `commitTransaction()` or `abortTransaction()`. Errors with ``EddyError/isFatal``
/// (``EddyError/Code/producerFenced``) require closing the producer; errors with
/// ``EddyError/isAbortable`` require `abortTransaction()`.
public protocol TransactionalProducer: LogProducer {
    var transactionalID: String { get }
    /// Registers the transactional id, bumps its epoch and aborts what an older incarnation left open.
    func initTransactions() throws
    func beginTransaction() throws
    /// Adds the consumer's offsets (the next offset to read per partition) to the transaction:
    /// they become the group's committed offsets if and only if the transaction commits.
    func sendOffsetsToTransaction(_ offsets: [TopicPartition: Offset], group: ConsumerGroupMetadata) throws
    /// Adds the consumer's offsets with their metadata to the transaction: offsets and
    /// metadata become the group's committed ones together, if and only if the transaction
    /// commits (an abort keeps what was committed before). Metadata over
    /// ``OffsetAndMetadata/maximumMetadataBytes`` is refused with
    /// ``EddyError/Code/invalidArgument``, leaving the transaction as it was.
    ///
    /// Added with a default implementation for producers that store no metadata: it sends the
    /// offsets when every metadata is empty and throws ``EddyError/Code/unsupported``
    /// otherwise. The embedded log and Kafka store the metadata.
    func sendOffsetsToTransaction(_ offsets: [TopicPartition: OffsetAndMetadata], group: ConsumerGroupMetadata) throws
    /// Flushes and commits. Throws if the commit failed; the transaction is then aborted.
    func commitTransaction() throws
    func abortTransaction() throws
}

extension TransactionalProducer {
    /// Default for producers that store no offset metadata: sends the offsets if every
    /// metadata is empty, else throws ``EddyError/Code/unsupported`` (never drops it silently).
    public func sendOffsetsToTransaction(_ offsets: [TopicPartition: OffsetAndMetadata], group: ConsumerGroupMetadata) throws {
        try OffsetAndMetadata.validate(offsets)
        if let (partition, _) = offsets.first(where: { !$0.value.metadata.isEmpty }) {
            throw EddyError(.unsupported, "\(type(of: self)) cannot store offset metadata (sending \(partition))")
        }
        try sendOffsetsToTransaction(offsets.mapValues(\.offset), group: group)
    }
}

/// What a transactional producer needs to commit a consumer's offsets in a transaction and
/// have a stale group member fenced (Kafka's `ConsumerGroupMetadata`).
public struct ConsumerGroupMetadata: Hashable, Sendable {
    public var groupID: String
    public var generation: Int
    public var memberID: String
    public init(groupID: String, generation: Int, memberID: String) {
        self.groupID = groupID
        self.generation = generation
        self.memberID = memberID
    }
}
