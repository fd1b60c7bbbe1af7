/// Told about partitions a group member loses and gains. Called on the consumer's thread,
/// inside `poll` (like Kafka's ConsumerRebalanceListener): revoked partitions are reported
/// before they go, so the owner can commit their progress.
public protocol RebalanceListener: AnyObject {
    func partitionsRevoked(_ partitions: [TopicPartition])
    func partitionsAssigned(_ partitions: [TopicPartition])
}

/// Reads records from partitions (Kafka's Consumer). Confined to one thread at a time.
///
/// A consumer either `assign`s partitions itself or `subscribe`s as a member of its group;
/// the group spreads the subscribed topics' partitions over its members with the range
/// assignor (partition *i* of co-partitioned topics goes to the same member) and rebalances
/// when members join or leave.
public protocol LogConsumer: AnyObject {
    /// Joins the group and subscribes to `topics`. Assignment happens inside `poll`.
    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws
    /// Reads exactly these partitions, outside any group assignment.
    func assign(_ partitions: [TopicPartition]) throws
    /// Leaves the group or drops the manual assignment.
    func unsubscribe() throws
    /// The partitions this consumer currently reads.
    func assignment() -> [TopicPartition]

    /// Records after the current positions, up to the configured record and byte limits;
    /// waits up to `timeoutMilliseconds` when none are available. Rebalance callbacks run here.
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord]
    /// What `poll` returns, kept in the bytes read from the log: no allocation per record (see
    /// ``ConsumerRecords``). Same positions, limits and callbacks as `poll`. The default copies
    /// the records of `poll`; backends that can hand out their buffers implement it.
    func pollRecords(timeoutMilliseconds: Int) throws -> ConsumerRecords

    /// The next offset `poll` will read from `partition`.
    func position(_ partition: TopicPartition) throws -> Offset
    func seek(_ partition: TopicPartition, to offset: Offset) throws
    func seekToBeginning(_ partitions: [TopicPartition]) throws
    func seekToEnd(_ partitions: [TopicPartition]) throws
    /// First offset per partition whose timestamp is >= the given one (`nil`: none).
    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?]
    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset]
    /// End offsets as this consumer's isolation level sees them (the LSO for read_committed).
    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset]

    func pause(_ partitions: [TopicPartition])
    func resume(_ partitions: [TopicPartition])

    /// Commits `offsets` (next offset to read) for the group, with no metadata (any metadata
    /// committed before for these partitions is cleared). Throws
    /// ``EddyError/Code/consumerFenced`` if this member's generation is stale.
    func commit(_ offsets: [TopicPartition: Offset]) throws
    /// The group's committed offsets for `partitions`.
    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset]
    /// Commits `offsets` with their metadata (Kafka's `commitSync(Map<TopicPartition,
    /// OffsetAndMetadata>)`): offset and metadata of each partition are stored together and
    /// replace what was committed before. Same fencing as the plain `commit(_:)`;
    /// metadata over ``OffsetAndMetadata/maximumMetadataBytes`` is refused with
    /// ``EddyError/Code/invalidArgument`` and nothing is committed.
    ///
    /// Added with a default implementation for consumers that store no metadata: it commits
    /// the offsets when every metadata is empty and throws ``EddyError/Code/unsupported``
    /// otherwise. The embedded log and Kafka store the metadata.
    func commit(_ offsets: [TopicPartition: OffsetAndMetadata]) throws
    /// The group's committed offsets for `partitions` with their metadata (empty when the
    /// commit carried none); partitions with no commit are absent. The default implementation
    /// (for consumers that store no metadata) returns ``committed(_:)`` with empty metadata.
    func committedWithMetadata(_ partitions: [TopicPartition]) throws -> [TopicPartition: OffsetAndMetadata]
    /// The group, generation and member id, for ``TransactionalProducer/sendOffsetsToTransaction(_:group:)``.
    func groupMetadata() -> ConsumerGroupMetadata?

    /// Leaves the group (triggering a rebalance for the others) and releases resources.
    func close() throws
}

extension LogConsumer {
    /// Default for consumers that store no metadata: commits the offsets if every metadata is
    /// empty, else throws ``EddyError/Code/unsupported`` (never drops metadata silently).
    public func commit(_ offsets: [TopicPartition: OffsetAndMetadata]) throws {
        try OffsetAndMetadata.validate(offsets)
        if let (partition, _) = offsets.first(where: { !$0.value.metadata.isEmpty }) {
            throw EddyError(.unsupported, "\(type(of: self)) cannot store offset metadata (committing \(partition))")
        }
        try commit(offsets.mapValues(\.offset))
    }

    /// Default for consumers that store no metadata: the committed offsets, with empty metadata.
    public func committedWithMetadata(_ partitions: [TopicPartition]) throws -> [TopicPartition: OffsetAndMetadata] {
        try committed(partitions).mapValues { OffsetAndMetadata($0) }
    }

    /// The records of ``poll(timeoutMilliseconds:)``, copied into ``ConsumerRecords``.
    public func pollRecords(timeoutMilliseconds: Int) throws -> ConsumerRecords {
        ConsumerRecords(copying: try poll(timeoutMilliseconds: timeoutMilliseconds))
    }

    /// Commits the current positions of all assigned partitions.
    public func commitPositions() throws {
        var offsets: [TopicPartition: Offset] = [:]
        for partition in assignment() { offsets[partition] = try position(partition) }
        try commit(offsets)
    }
}
