import CRdKafka
import EddyCore
import Foundation

/// librdkafka's in-process mock Kafka cluster (`rd_kafka_mock_cluster_new`): real Kafka protocol
/// on 127.0.0.1, for tests, examples and `eddy kafka-mock`.
///
/// Known limits (librdkafka 2.0.2): no read_committed filtering of aborted or open transactions;
/// offsets sent with `send_offsets_to_transaction` are not stored; no deduplication of an
/// idempotent retry after a client timeout; no fencing of a second producer with the same
/// transactional id; Admin CreateTopics times out (use ``createTopic(_:partitions:replicationFactor:)``);
/// about 5 MB kept per partition; the first group assignment takes about 3 s.
///
/// Thread-safe: the mock functions post to the cluster's own thread.
public final class KafkaMockCluster: @unchecked Sendable {
    // @unchecked Sendable: `cluster` and `client` are librdkafka handles whose mock functions
    // are thread-safe (they enqueue operations on the mock cluster thread); nothing else mutable.
    private let client: RDKafkaClient
    private let cluster: OpaquePointer
    private let lock = NSLock()
    private var requested: [String: TopicConfiguration] = [:]

    /// The cluster's `bootstrap.servers` (`rd_kafka_mock_cluster_bootstraps`).
    public let bootstrapServers: String
    public let brokerCount: Int

    /// Starts a cluster of `brokers` brokers (ids 1...brokers) that lives until this object goes away.
    public init(brokers: Int = 3) throws {
        guard brokers >= 1 && brokers <= 64 else {
            throw EddyError(.invalidArgument, "a mock cluster has 1...64 brokers, got \(brokers)")
        }
        // A mock cluster hangs off a client handle; that handle is not otherwise used.
        client = try RDKafkaClient(kind: .producer, properties: ["log_level": "3"], context: RDKafkaClientContext(logLevel: 3))
        guard let cluster = rd_kafka_mock_cluster_new(client.handle, Int32(brokers)) else {
            throw EddyError(.io, "rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        brokerCount = brokers
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { rd_kafka_mock_cluster_destroy(cluster) }

    /// Creates a topic (`rd_kafka_mock_topic_create`): the way to create topics on the mock,
    /// whose Admin CreateTopics times out.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        try Names.validateTopic(name)
        guard partitions >= 1 && partitions <= Limits.maximumPartitions else {
            throw EddyError(.invalidArgument, "partitions must be 1...\(Limits.maximumPartitions), got \(partitions)")
        }
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(min(replicationFactor, brokerCount)))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw RDKafkaError.error(err, "mock topic \(name)") }
    }

    /// Creates a topic with `rd_kafka_mock_topic_create` and remembers the configuration asked
    /// for. The mock keeps no topic configs and has no DescribeConfigs, so
    /// ``requestedConfiguration(of:)`` is the only record of them (what was requested, not what
    /// a broker stored).
    public func createTopic(_ name: String, configuration: TopicConfiguration) throws {
        try createTopic(name, partitions: configuration.partitions)
        lock.withLock { requested[name] = configuration }
    }

    /// The configuration a topic was created with through ``createTopic(_:configuration:)``
    /// (nil for topics created otherwise).
    public func requestedConfiguration(of name: String) -> TopicConfiguration? {
        lock.withLock { requested[name] }
    }

    /// Takes broker `id` down (`rd_kafka_mock_broker_set_down`): its connections close.
    public func setBrokerDown(_ id: Int) throws {
        try check(rd_kafka_mock_broker_set_down(cluster, Int32(id)), "broker \(id) down")
    }

    /// Brings broker `id` back (`rd_kafka_mock_broker_set_up`).
    public func setBrokerUp(_ id: Int) throws {
        try check(rd_kafka_mock_broker_set_up(cluster, Int32(id)), "broker \(id) up")
    }

    /// Delays broker `id`'s responses (`rd_kafka_mock_broker_set_rtt`).
    public func setRoundTripTime(broker id: Int, milliseconds: Int) throws {
        try check(rd_kafka_mock_broker_set_rtt(cluster, Int32(id), Int32(milliseconds)), "broker \(id) rtt")
    }

    /// Moves the leader of a partition (`rd_kafka_mock_partition_set_leader`).
    public func setLeader(_ partition: TopicPartition, broker id: Int) throws {
        try check(rd_kafka_mock_partition_set_leader(cluster, partition.topic, Int32(partition.partition), Int32(id)),
                  "leader of \(partition)")
    }

    /// The next `errors.count` requests of `api` (on any broker) fail with these errors, in
    /// order (`rd_kafka_mock_push_request_errors_array`; the variadic form cannot be called from Swift).
    public func pushRequestErrors(_ api: KafkaAPIKey, _ errors: [KafkaErrorCode]) {
        let codes = errors.map { rd_kafka_resp_err_t($0.rawValue) }
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster, api.rawValue, codes.count, $0.baseAddress)
        }
    }

    /// Forgets errors pushed for `api` and not yet consumed (`rd_kafka_mock_clear_request_errors`).
    public func clearRequestErrors(_ api: KafkaAPIKey) {
        rd_kafka_mock_clear_request_errors(cluster, api.rawValue)
    }

    private func check(_ err: rd_kafka_resp_err_t, _ what: String) throws {
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw RDKafkaError.error(err, "mock cluster: \(what)") }
    }
}

/// A Kafka protocol API (request type), for fault injection on the mock cluster.
public struct KafkaAPIKey: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let produce = KafkaAPIKey(rawValue: 0)
    public static let fetch = KafkaAPIKey(rawValue: 1)
    public static let listOffsets = KafkaAPIKey(rawValue: 2)
    public static let metadata = KafkaAPIKey(rawValue: 3)
    public static let offsetCommit = KafkaAPIKey(rawValue: 8)
    public static let offsetFetch = KafkaAPIKey(rawValue: 9)
    public static let findCoordinator = KafkaAPIKey(rawValue: 10)
    public static let joinGroup = KafkaAPIKey(rawValue: 11)
    public static let heartbeat = KafkaAPIKey(rawValue: 12)
    public static let syncGroup = KafkaAPIKey(rawValue: 14)
    public static let initProducerID = KafkaAPIKey(rawValue: 22)
    public static let addPartitionsToTransaction = KafkaAPIKey(rawValue: 24)
    public static let addOffsetsToTransaction = KafkaAPIKey(rawValue: 25)
    public static let endTransaction = KafkaAPIKey(rawValue: 26)
    public static let transactionOffsetCommit = KafkaAPIKey(rawValue: 28)
}

/// A Kafka protocol error code (the broker's numbering), for fault injection on the mock cluster.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let notLeaderForPartition = KafkaErrorCode(rawValue: 6)
    public static let requestTimedOut = KafkaErrorCode(rawValue: 7)
    public static let coordinatorLoadInProgress = KafkaErrorCode(rawValue: 14)
    public static let coordinatorNotAvailable = KafkaErrorCode(rawValue: 15)
    public static let notCoordinator = KafkaErrorCode(rawValue: 16)
    public static let notEnoughReplicas = KafkaErrorCode(rawValue: 19)
    public static let invalidProducerEpoch = KafkaErrorCode(rawValue: 47)
    public static let invalidTransactionState = KafkaErrorCode(rawValue: 48)
    public static let concurrentTransactions = KafkaErrorCode(rawValue: 51)
    public static let transactionCoordinatorFenced = KafkaErrorCode(rawValue: 52)
    public static let producerFenced = KafkaErrorCode(rawValue: 90)
    /// librdkafka's name for the code (`rd_kafka_err2name`).
    public var description: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue))) }
}
