import CRdKafka
import EddyCore

/// The log protocols of EddyCore over Apache Kafka, through librdkafka.
///
/// The same topologies and CLI commands run on a Kafka cluster: producers are idempotent by
/// default, transactional producers follow Kafka's exactly-once v2 model, consumers use the
/// range assignor (co-partitioned topics land on the same member) and `read_committed` by
/// default. Thread-safe; the producers and consumers it makes are confined to one thread each.
///
/// ```swift
/// let log = try KafkaLog(configuration: KafkaConfiguration(bootstrapServers: "localhost:9092"))
/// let producer = try log.makeProducer(ProducerConfiguration())
/// try producer.send(ProducerRecord(topic: "orders", key: Array("k".utf8), value: Array("v".utf8)))
/// try producer.flush()
/// ```
///
/// On librdkafka's mock cluster pass `mockCluster`: topics are then created with
/// `rd_kafka_mock_topic_create`, because the mock's Admin CreateTopics times out.
public final class KafkaLog: LogBackend, @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable after init; `KafkaAdmin` and
    // `KafkaMockCluster` are Sendable and librdkafka handles are thread-safe.
    public let configuration: KafkaConfiguration
    /// The mock cluster this log talks to, if any.
    public let mockCluster: KafkaMockCluster?
    private let kafkaAdmin: KafkaAdmin

    /// Connects lazily: the constructor fails only for an invalid configuration.
    public init(configuration: KafkaConfiguration, mockCluster: KafkaMockCluster? = nil) throws {
        self.configuration = configuration
        self.mockCluster = mockCluster
        kafkaAdmin = try KafkaAdmin(configuration: configuration, mockCluster: mockCluster)
    }

    /// A log on `cluster` (its bootstrap servers, topic creation through the mock).
    public convenience init(mockCluster cluster: KafkaMockCluster, extra: [String: String] = [:]) throws {
        try self.init(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, extra: extra),
                      mockCluster: cluster)
    }

    public var admin: any LogAdmin { kafkaAdmin }

    public func makeProducer(_ configuration: ProducerConfiguration) throws -> any LogProducer {
        try KafkaProducer(log: self, configuration: configuration, transactionalID: nil)
    }

    public func makeTransactionalProducer(_ configuration: ProducerConfiguration,
                                          transactionalID: String) throws -> any TransactionalProducer {
        try Names.validate(transactionalID, what: "transactional id")
        return try KafkaProducer(log: self, configuration: configuration, transactionalID: transactionalID)
    }

    public func makeConsumer(_ configuration: ConsumerConfiguration) throws -> any LogConsumer {
        try KafkaConsumer(log: self, configuration: configuration)
    }

    /// Partition count of `topic` (metadata, through the admin's client; ``EddyError/Code/unknownTopic``).
    func partitionCount(of topic: String) throws -> Int {
        try kafkaAdmin.metadataClient.partitionCount(of: topic, timeoutMilliseconds: configuration.requestTimeoutMilliseconds)
    }
}
