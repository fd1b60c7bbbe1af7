import EddyCore
import Foundation

/// Where a ``SchemaRegistry`` keeps its history: an ordered list of keyed records, the latest
/// record per key winning and a `nil` value deleting the key (a compacted log's semantics).
///
/// Implementations: ``InMemorySchemaStorage`` (tests, throwaway registries) and
/// ``LogSchemaStorage`` (a compacted topic `_schemas` on any ``LogBackend``). The registry calls
/// them under its own lock, one call at a time.
public protocol SchemaStorage: AnyObject, Sendable {
    /// Every record stored so far, oldest first (after compaction: at least the latest per key).
    func load() throws -> [SchemaStorageRecord]
    /// Appends one record durably (returns once it would survive a restart).
    func append(_ record: SchemaStorageRecord) throws
}

/// One record of the registry's history.
public struct SchemaStorageRecord: Hashable, Sendable {
    public var key: [UInt8]
    /// `nil` deletes the key (a tombstone).
    public var value: [UInt8]?
    public init(key: [UInt8], value: [UInt8]?) {
        self.key = key
        self.value = value
    }
}

/// Keeps the registry's history in memory only; lost when the process ends.
public final class InMemorySchemaStorage: SchemaStorage, @unchecked Sendable {
    // @unchecked: `records` is only touched under `lock`.
    private let lock = NSLock()
    private var records: [SchemaStorageRecord] = []

    public init() {}

    public func load() throws -> [SchemaStorageRecord] { lock.withLock { records } }
    public func append(_ record: SchemaStorageRecord) throws { lock.withLock { records.append(record) } }
}

/// Keeps the registry's history in a compacted topic (by default `_schemas`, one partition) of
/// a log backend, as Confluent Schema Registry keeps it in Kafka. The topic is created on first
/// use; ``load()`` reads it from the beginning to its end, so a registry restarted on the same
/// backend finds every subject, version, id and configuration again.
///
/// Holds one producer and one consumer, used only under an internal lock (the log protocols'
/// producers and consumers are confined to one thread at a time).
public final class LogSchemaStorage: SchemaStorage, @unchecked Sendable {
    // @unchecked: `producer` and `consumer` are only used under `lock`, one thread at a time,
    // which is the confinement the log protocols ask for.
    private let lock = NSLock()
    private let producer: any LogProducer
    private let consumer: any LogConsumer
    private let partition: TopicPartition
    /// Longest wait for one poll while loading.
    static let pollTimeoutMilliseconds = 200

    /// Opens (creating it if missing) `topic` on `backend`.
    public init(backend: any LogBackend, topic: String = "_schemas") throws {
        let topics = try backend.admin.listTopics()
        if !topics.contains(topic) {
            var configuration = TopicConfiguration()
            configuration.partitions = 1
            configuration.cleanupPolicy = .compact
            configuration.fsync = .always
            do {
                try backend.admin.createTopic(topic, configuration: configuration)
            } catch let error as EddyError where error.code == .topicExists {
                // Created concurrently by another registry: use it.
            }
        }
        partition = TopicPartition(topic, 0)
        producer = try backend.makeProducer(ProducerConfiguration(clientID: "eddy-schema-registry", lingerMilliseconds: 0))
        consumer = try backend.makeConsumer(ConsumerConfiguration(clientID: "eddy-schema-registry", isolation: .readCommitted))
        try consumer.assign([partition])
    }

    public func load() throws -> [SchemaStorageRecord] {
        try lock.withLock {
            try consumer.seekToBeginning([partition])
            let end = try consumer.endOffsets([partition])[partition] ?? 0
            var records: [SchemaStorageRecord] = []
            while try consumer.position(partition) < end {
                for record in try consumer.poll(timeoutMilliseconds: Self.pollTimeoutMilliseconds) {
                    guard let key = record.key else { continue }
                    records.append(SchemaStorageRecord(key: key, value: record.value))
                }
            }
            return records
        }
    }

    public func append(_ record: SchemaStorageRecord) throws {
        try lock.withLock {
            try producer.send(ProducerRecord(topic: partition.topic, partition: 0, key: record.key, value: record.value))
            try producer.flush()
        }
    }

    deinit {
        try? producer.close()
        try? consumer.close()
    }
}
