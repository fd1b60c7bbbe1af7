import EddyCore
import Foundation

/// A deliberately small in-memory log backend for EddySchema's tests, standing in for the
/// embedded log (EddyLog) until it is on main. It keeps every record (no compaction), supports
/// what ``LogSchemaStorage`` uses (topics, a producer, an assigned consumer) and throws
/// `.unsupported` for the rest. Not a conformance-tested backend: do not use it elsewhere.
final class FakeLog: LogBackend, @unchecked Sendable {
    // @unchecked: `topics` is only touched under `lock`.
    let lock = NSLock()
    var topics: [String: (TopicConfiguration, [[ConsumerRecord]])] = [:]
    /// When set, the next append fails with this error (fault injection).
    var failNextAppend: EddyError?

    var admin: any LogAdmin { FakeAdmin(log: self) }

    func makeProducer(_ configuration: ProducerConfiguration) throws -> any LogProducer { FakeProducer(log: self) }
    func makeTransactionalProducer(_ configuration: ProducerConfiguration, transactionalID: String) throws -> any TransactionalProducer {
        throw EddyError(.unsupported, "FakeLog has no transactions")
    }
    func makeConsumer(_ configuration: ConsumerConfiguration) throws -> any LogConsumer { FakeConsumer(log: self) }

    func append(_ record: ProducerRecord) throws {
        try lock.withLock {
            if let failure = failNextAppend {
                failNextAppend = nil
                throw failure
            }
            guard var topic = topics[record.topic] else { throw EddyError(.unknownTopic, "no topic \(record.topic)") }
            let partition = record.partition ?? 0
            guard partition < topic.1.count else { throw EddyError(.unknownPartition, "no partition \(partition)") }
            let offset = Int64(topic.1[partition].count)
            topic.1[partition].append(ConsumerRecord(topic: record.topic, partition: partition, offset: offset, timestamp: record.timestamp ?? 0,
                                                     key: record.key, value: record.value, headers: record.headers))
            topics[record.topic] = topic
        }
    }

    func records(_ tp: TopicPartition) throws -> [ConsumerRecord] {
        try lock.withLock {
            guard let topic = topics[tp.topic], tp.partition < topic.1.count else { throw EddyError(.unknownPartition, "no \(tp)") }
            return topic.1[tp.partition]
        }
    }
}

struct FakeAdmin: LogAdmin {
    let log: FakeLog
    func createTopic(_ name: String, configuration: TopicConfiguration) throws {
        try Names.validateTopic(name)
        try log.lock.withLock {
            guard log.topics[name] == nil else { throw EddyError(.topicExists, "topic \(name) exists") }
            log.topics[name] = (configuration, Array(repeating: [], count: configuration.partitions))
        }
    }
    func deleteTopic(_ name: String) throws {
        try log.lock.withLock {
            guard log.topics.removeValue(forKey: name) != nil else { throw EddyError(.unknownTopic, "no topic \(name)") }
        }
    }
    func describeTopic(_ name: String) throws -> TopicDescription {
        try log.lock.withLock {
            guard let (configuration, partitions) = log.topics[name] else { throw EddyError(.unknownTopic, "no topic \(name)") }
            return TopicDescription(name: name, configuration: configuration, partitions: partitions.enumerated().map {
                PartitionDescription(partition: $0.offset, startOffset: 0, endOffset: Int64($0.element.count), lastStableOffset: Int64($0.element.count), sizeBytes: 0)
            })
        }
    }
    func listTopics() throws -> [String] { log.lock.withLock { log.topics.keys.sorted() } }
    func committedOffsets(group: String) throws -> [TopicPartition: Offset] { throw EddyError(.unsupported, "FakeLog has no groups") }
    func alterCommittedOffsets(group: String, offsets: [TopicPartition: Offset]) throws { throw EddyError(.unsupported, "FakeLog has no groups") }
    func deleteCommittedOffsets(group: String, topics: [String]?) throws { throw EddyError(.unsupported, "FakeLog has no groups") }
    func describeGroup(_ group: String) throws -> GroupDescription { throw EddyError(.unsupported, "FakeLog has no groups") }
    func offsets(forTimestamp timestamp: Timestamp, partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        throw EddyError(.unsupported, "FakeLog has no time index")
    }
}

final class FakeProducer: LogProducer {
    let log: FakeLog
    var pending: [(ProducerRecord, DeliveryHandler?)] = []
    init(log: FakeLog) { self.log = log }
    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws { pending.append((record, delivery)) }
    func flush() throws {
        let batch = pending
        pending = []
        for (record, delivery) in batch {
            do {
                try log.append(record)
                delivery?(.success(RecordMetadata(topicPartition: TopicPartition(record.topic, record.partition ?? 0), offset: 0, timestamp: 0)))
            } catch let error as EddyError {
                delivery?(.failure(error))
                throw error
            }
        }
    }
    func poll() {}
    func partitionCount(of topic: String) throws -> Int { try log.admin.describeTopic(topic).partitions.count }
    func close() throws { try flush() }
}

final class FakeConsumer: LogConsumer {
    let log: FakeLog
    var positions: [TopicPartition: Offset] = [:]
    init(log: FakeLog) { self.log = log }
    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws { throw EddyError(.unsupported, "FakeLog has no groups") }
    func assign(_ partitions: [TopicPartition]) throws { positions = Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) }) }
    func unsubscribe() throws { positions = [:] }
    func assignment() -> [TopicPartition] { positions.keys.sorted() }
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] {
        var out: [ConsumerRecord] = []
        for (tp, position) in positions.sorted(by: { $0.key < $1.key }) {
            // At most 3 records per poll so callers must loop like with a real backend.
            let records = try log.records(tp).dropFirst(Int(position)).prefix(3)
            out += records
            positions[tp] = position + Int64(records.count)
        }
        return out
    }
    func position(_ partition: TopicPartition) throws -> Offset { positions[partition] ?? 0 }
    func seek(_ partition: TopicPartition, to offset: Offset) throws { positions[partition] = offset }
    func seekToBeginning(_ partitions: [TopicPartition]) throws { for p in partitions { positions[p] = 0 } }
    func seekToEnd(_ partitions: [TopicPartition]) throws { for p in partitions { positions[p] = Int64(try log.records(p).count) } }
    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?] { throw EddyError(.unsupported, "no time index") }
    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) }) }
    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        Dictionary(uniqueKeysWithValues: try partitions.map { ($0, Int64(try log.records($0).count)) })
    }
    func pause(_ partitions: [TopicPartition]) {}
    func resume(_ partitions: [TopicPartition]) {}
    func commit(_ offsets: [TopicPartition: Offset]) throws { throw EddyError(.unsupported, "FakeLog has no groups") }
    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { throw EddyError(.unsupported, "FakeLog has no groups") }
    func groupMetadata() -> ConsumerGroupMetadata? { nil }
    func close() throws {}
}
