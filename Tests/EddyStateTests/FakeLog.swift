import EddyCore
import Foundation

/// TEST FAKE — not a log backend. An in-memory map of topic-partitions to records with just
/// enough of `LogProducer` and `LogConsumer` for the state tests: the producer appends on
/// `flush` and reports offsets to delivery handlers; the consumer reads assigned partitions.
/// To be replaced by the in-memory EmbeddedLog once it is on main.
final class FakeLog: @unchecked Sendable {
    // @unchecked Sendable: all state is guarded by `lock`.
    private let lock = NSLock()
    private var partitions: [TopicPartition: [ConsumerRecord]] = [:]

    func append(_ record: ProducerRecord) -> RecordMetadata {
        lock.withLock {
            let partition = TopicPartition(record.topic, record.partition ?? 0)
            let offset = Offset(partitions[partition]?.count ?? 0)
            let timestamp = record.timestamp ?? 0
            // Appended in place: copying the array out and back would make appends O(n).
            partitions[partition, default: []].append(
                ConsumerRecord(topic: record.topic, partition: partition.partition, offset: offset,
                               timestamp: timestamp, key: record.key, value: record.value, headers: record.headers))
            return RecordMetadata(topicPartition: partition, offset: offset, timestamp: timestamp)
        }
    }

    func records(_ partition: TopicPartition) -> [ConsumerRecord] {
        lock.withLock { partitions[partition] ?? [] }
    }

    func endOffset(_ partition: TopicPartition) -> Offset {
        Offset(records(partition).count)
    }

    /// The latest value per key of `partition`'s records in [0, upTo), tombstones removing keys:
    /// what a store restored from the changelog must contain.
    func latestValues(_ partition: TopicPartition, upTo: Offset? = nil) -> [[UInt8]: [UInt8]] {
        var state: [[UInt8]: [UInt8]] = [:]
        for record in records(partition) where upTo.map({ record.offset < $0 }) ?? true {
            guard let key = record.key else { continue }
            state[key] = record.value
        }
        return state
    }

    func makeProducer() -> FakeLogProducer { FakeLogProducer(log: self) }
    func makeConsumer(maximumPollRecords: Int = 10_000) -> FakeLogConsumer {
        FakeLogConsumer(log: self, maximumPollRecords: maximumPollRecords)
    }
}

/// TEST FAKE producer: queues on `send`, appends and acknowledges on `flush`. `failNextFlush`
/// makes the next flush report every queued record as failed (and append none).
final class FakeLogProducer: LogProducer {
    let log: FakeLog
    private var queued: [(ProducerRecord, DeliveryHandler?)] = []
    var failNextFlush = false
    private var closed = false

    init(log: FakeLog) { self.log = log }

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws {
        if closed { throw EddyError(.closed, "fake producer closed") }
        queued.append((record, delivery))
    }

    func flush() throws {
        let batch = queued
        queued = []
        if failNextFlush {
            failNextFlush = false
            let error = EddyError(.io, "injected flush failure")
            for (_, handler) in batch { handler?(.failure(error)) }
            throw error
        }
        for (record, handler) in batch { handler?(.success(log.append(record))) }
    }

    /// Drops queued records without acknowledging them (a crash before the flush).
    func discardQueued() { queued = [] }

    func poll() {}
    func partitionCount(of topic: String) throws -> Int { 1 }
    func close() throws {
        try flush()
        closed = true
    }
}

/// TEST FAKE consumer: `assign`, `seek`, `poll` and offsets over ``FakeLog``; group and
/// subscription methods throw `unsupported`.
final class FakeLogConsumer: LogConsumer {
    let log: FakeLog
    let maximumPollRecords: Int
    private var positions: [TopicPartition: Offset] = [:]
    private(set) var polls = 0

    init(log: FakeLog, maximumPollRecords: Int) {
        self.log = log
        self.maximumPollRecords = maximumPollRecords
    }

    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws {
        throw EddyError(.unsupported, "fake consumer: subscribe")
    }
    func assign(_ partitions: [TopicPartition]) throws {
        positions = Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) })
    }
    func unsubscribe() throws { positions = [:] }
    func assignment() -> [TopicPartition] { Array(positions.keys) }

    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] {
        polls += 1
        var result: [ConsumerRecord] = []
        for (partition, position) in positions.sorted(by: { $0.key < $1.key }) {
            let records = log.records(partition)
            guard position < records.count else { continue }
            let end = min(records.count, Int(position) + maximumPollRecords - result.count)
            result.append(contentsOf: records[Int(position)..<end])
            positions[partition] = Offset(end)
            if result.count >= maximumPollRecords { break }
        }
        return result
    }

    func position(_ partition: TopicPartition) throws -> Offset {
        guard let position = positions[partition] else { throw EddyError(.invalidState, "not assigned: \(partition)") }
        return position
    }
    func seek(_ partition: TopicPartition, to offset: Offset) throws { positions[partition] = offset }
    func seekToBeginning(_ partitions: [TopicPartition]) throws { for p in partitions { positions[p] = 0 } }
    func seekToEnd(_ partitions: [TopicPartition]) throws { for p in partitions { positions[p] = log.endOffset(p) } }
    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?] {
        throw EddyError(.unsupported, "fake consumer: offsets(forTimes:)")
    }
    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) })
    }
    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, log.endOffset($0)) })
    }
    func pause(_ partitions: [TopicPartition]) {}
    func resume(_ partitions: [TopicPartition]) {}
    func commit(_ offsets: [TopicPartition: Offset]) throws { throw EddyError(.unsupported, "fake consumer: commit") }
    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { [:] }
    func groupMetadata() -> ConsumerGroupMetadata? { nil }
    func close() throws {}
}
