/// A backend that carries partitioned logs: Eddy's embedded log or Apache Kafka.
///
/// The streams runtime and the CLI see only this protocol and the protocols it hands out
/// (``LogAdmin``, ``LogProducer``, ``TransactionalProducer``, ``LogConsumer``), so the same
/// topology runs on either backend. The backend value is shared by all threads; producers
/// and consumers it makes are confined to the thread that uses them.
public protocol LogBackend: AnyObject, Sendable {
    /// Topic and group administration. Thread-safe.
    var admin: any LogAdmin { get }

    /// A producer that appends records; idempotent where the backend supports it.
    func makeProducer(_ configuration: ProducerConfiguration) throws -> any LogProducer

    /// A transactional producer. `transactionalID` identifies it across restarts: a new producer
    /// with the same id fences (makes fail) the older one once it calls `initTransactions()`.
    func makeTransactionalProducer(_ configuration: ProducerConfiguration,
                                   transactionalID: String) throws -> any TransactionalProducer

    /// A consumer, standalone (`assign`) or a member of `configuration.groupID` (`subscribe`).
    func makeConsumer(_ configuration: ConsumerConfiguration) throws -> any LogConsumer
}

/// Topic and consumer-group administration (Kafka's AdminClient). Thread-safe.
public protocol LogAdmin: Sendable {
    /// Creates a topic. Throws ``EddyError/Code/invalidName`` for a bad name (before any path is
    /// built), ``EddyError/Code/topicExists`` if it exists, ``EddyError/Code/invalidArgument``
    /// for a bad configuration.
    func createTopic(_ name: String, configuration: TopicConfiguration) throws
    /// Deletes a topic and its data. Throws ``EddyError/Code/unknownTopic`` if it does not exist.
    func deleteTopic(_ name: String) throws
    /// The topic's configuration and per-partition offsets and sizes.
    func describeTopic(_ name: String) throws -> TopicDescription
    /// Names of all topics, sorted; internal topics (names starting with `__`) included.
    func listTopics() throws -> [String]

    /// The group's committed offsets (partitions with no commit are absent).
    func committedOffsets(group: String) throws -> [TopicPartition: Offset]
    /// Overwrites the group's committed offsets. Refused with ``EddyError/Code/invalidState``
    /// while the group has active members (as Kafka refuses for a non-empty group).
    func alterCommittedOffsets(group: String, offsets: [TopicPartition: Offset]) throws
    /// Removes the group's committed offsets for `topics` (all when `nil`). Same refusal rule.
    func deleteCommittedOffsets(group: String, topics: [String]?) throws
    /// Members currently in the group (empty when the group is not running).
    func describeGroup(_ group: String) throws -> GroupDescription
    /// First offset of each partition whose timestamp is >= `timestamp` (the end offset if none).
    func offsets(forTimestamp timestamp: Timestamp, partitions: [TopicPartition]) throws -> [TopicPartition: Offset]
}

/// A consumer group as seen by the admin.
public struct GroupDescription: Hashable, Sendable {
    public var group: String
    /// Member ids and their assigned partitions.
    public var members: [String: [TopicPartition]]
    public var generation: Int
    public init(group: String, members: [String: [TopicPartition]], generation: Int) {
        self.group = group
        self.members = members
        self.generation = generation
    }
    public var isEmpty: Bool { members.isEmpty }
}

/// Settings of a producer. Unknown keys in `extra` are passed to the backend unchanged
/// (librdkafka properties on Kafka).
public struct ProducerConfiguration: Sendable {
    /// Names the client in logs and metrics.
    public var clientID: String
    /// Records are appended in batches of up to this many bytes per partition.
    public var batchBytes: Int
    /// How long a non-transactional record may wait for its batch to fill before it is appended.
    public var lingerMilliseconds: Int
    /// Compression of the batches this producer writes.
    public var compression: CompressionCodec
    /// Idempotent producers get a producer id; the backend drops retried duplicates.
    public var idempotent: Bool
    /// How long `flush`, `commitTransaction` and blocking calls wait at most.
    public var timeoutMilliseconds: Int
    public var extra: [String: String]
    public init(clientID: String = "eddy-producer", batchBytes: Int = 64 * 1024, lingerMilliseconds: Int = 5,
                compression: CompressionCodec = .none, idempotent: Bool = true,
                timeoutMilliseconds: Int = 30_000, extra: [String: String] = [:]) {
        self.clientID = clientID
        self.batchBytes = batchBytes
        self.lingerMilliseconds = lingerMilliseconds
        self.compression = compression
        self.idempotent = idempotent
        self.timeoutMilliseconds = timeoutMilliseconds
        self.extra = extra
    }
}

/// Which records a consumer sees of transactional topics.
public enum IsolationLevel: String, Hashable, Sendable {
    /// Everything appended, including open and aborted transactions.
    case readUncommitted = "read_uncommitted"
    /// Only committed transactions; reads stop at the last stable offset.
    case readCommitted = "read_committed"
}

/// Where a consumer starts when its group has no committed offset for a partition.
public enum OffsetReset: String, Hashable, Sendable {
    case earliest, latest
    /// Throw ``EddyError/Code/offsetOutOfRange``.
    case none
}

/// Settings of a consumer.
public struct ConsumerConfiguration: Sendable {
    /// The group to join with `subscribe` and to commit offsets for; `nil` for a standalone consumer.
    public var groupID: String?
    public var clientID: String
    public var isolation: IsolationLevel
    public var autoOffsetReset: OffsetReset
    /// Most records one `poll` returns.
    public var maximumPollRecords: Int
    /// Most bytes one `poll` reads across partitions (``Limits/defaultFetchMaximumBytes``).
    public var fetchMaximumBytes: Int
    /// Most bytes one `poll` reads from one partition.
    public var partitionFetchMaximumBytes: Int
    /// A member that has not polled for this long is removed from its group.
    public var sessionTimeoutMilliseconds: Int
    /// Kafka's `enable.auto.commit`; Eddy's runtime commits explicitly.
    public var enableAutoCommit: Bool
    public var extra: [String: String]
    public init(groupID: String? = nil, clientID: String = "eddy-consumer",
                isolation: IsolationLevel = .readCommitted, autoOffsetReset: OffsetReset = .earliest,
                maximumPollRecords: Int = 10_000, fetchMaximumBytes: Int = Limits.defaultFetchMaximumBytes,
                partitionFetchMaximumBytes: Int = 8 * 1_048_576, sessionTimeoutMilliseconds: Int = 45_000,
                enableAutoCommit: Bool = false, extra: [String: String] = [:]) {
        self.groupID = groupID
        self.clientID = clientID
        self.isolation = isolation
        self.autoOffsetReset = autoOffsetReset
        self.maximumPollRecords = maximumPollRecords
        self.fetchMaximumBytes = fetchMaximumBytes
        self.partitionFetchMaximumBytes = partitionFetchMaximumBytes
        self.sessionTimeoutMilliseconds = sessionTimeoutMilliseconds
        self.enableAutoCommit = enableAutoCommit
        self.extra = extra
    }
}
