import EddyCore
@testable import EddyKafka
import Foundation
import Testing

/// The cases of `Tests/EddyLogTests/LogBackendConformanceTests.swift`, run against ``KafkaLog``
/// on librdkafka's mock cluster (one cluster shared by the whole test process).
///
/// Where the mock cannot show a behaviour the test says so (`MOCK LIMIT`) and checks what the
/// mock does instead, rather than pretending: the mock keeps no topic configs (no
/// DescribeConfigs), cannot delete topics (no DeleteTopics) or group offsets (no OffsetDelete),
/// and its Admin CreateTopics times out (KafkaLog creates topics with rd_kafka_mock_topic_create).
@Suite struct KafkaLogConformanceTests {
    let log = SharedMockCluster.log

    func createTopic(partitions: Int = 1) throws -> String {
        let name = uniqueName("conformance")
        try log.admin.createTopic(name, configuration: TopicConfiguration(partitions: partitions))
        return name
    }

    @Test func recordsRoundTripWithKeysHeadersTombstonesAndTimestamps() throws {
        let topic = try createTopic()
        let producer = try log.makeProducer(ProducerConfiguration())
        let sent = [
            ProducerRecord(topic: topic, key: kafkaPayload("k1"), value: kafkaPayload("v1"), headers: [Header("h", "x")], timestamp: 1_000),
            ProducerRecord(topic: topic, key: nil, value: kafkaPayload("no key"), timestamp: 1_001),
            ProducerRecord(topic: topic, key: kafkaPayload("k1"), value: nil, headers: [Header(key: "n", value: nil)], timestamp: 1_002),
            ProducerRecord(topic: topic, key: [], value: [], timestamp: 1_003),
        ]
        var delivered: [RecordMetadata] = []
        for record in sent {
            try producer.send(record) { result in
                if case .success(let metadata) = result { delivered.append(metadata) }
            }
        }
        try producer.flush()
        #expect(delivered.map(\.offset) == [0, 1, 2, 3])
        // MOCK LIMIT (measured on 2.0.2): the mock's Produce response carries a fixed
        // LogAppendTime of 1234, so delivery reports show 1234 instead of the create time a
        // real CreateTime topic acknowledges. The consumer below sees the true timestamps.
        #expect(delivered.map(\.timestamp) == [1_000, 1_001, 1_002, 1_003] || delivered.allSatisfy { $0.timestamp == 1_234 })

        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0)])
        let records = try pollKafka(consumer, count: sent.count)
        #expect(records.map(\.offset) == [0, 1, 2, 3])
        #expect(records.map(\.key) == sent.map(\.key))
        #expect(records.map(\.value) == sent.map(\.value))
        #expect(records.map(\.headers) == sent.map(\.headers))
        #expect(records.map(\.timestamp) == sent.map { $0.timestamp! })
        #expect(try consumer.position(TopicPartition(topic, 0)) == 4)
        try consumer.close()
        try producer.close()
    }

    @Test func keyedRecordsLandOnTheDefaultPartitionersPartition() throws {
        let topic = try createTopic(partitions: 7)
        let producer = try log.makeProducer(ProducerConfiguration())
        var expected: [String: Int] = [:]
        for i in 0..<200 {
            let key = "key-\(i)"
            expected[key] = DefaultPartitioner.partition(key: kafkaPayload(key), count: 7)
            try producer.send(ProducerRecord(topic: topic, key: kafkaPayload(key), value: kafkaPayload("\(i)")))
        }
        try producer.flush()
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign((0..<7).map { TopicPartition(topic, $0) })
        let records = try pollKafka(consumer, count: 200)
        #expect(records.count == 200)
        for record in records {
            #expect(expected[String(decoding: record.key!, as: UTF8.self)] == record.partition)
        }
    }

    @Test func keylessRecordsAreSpreadOverEveryPartition() throws {
        let topic = try createTopic(partitions: 4)
        // librdkafka's sticky partitioner moves on after each batch / linger period: small
        // batches and several flushes spread keyless records.
        let producer = try log.makeProducer(ProducerConfiguration(batchBytes: 1_024, lingerMilliseconds: 0,
                                                                  extra: ["sticky.partitioning.linger.ms": "0"]))
        for i in 0..<400 {
            try producer.send(ProducerRecord(topic: topic, value: [UInt8](repeating: UInt8(i % 256), count: 50)))
            if i % 20 == 19 { try producer.flush() }
        }
        try producer.flush()
        let description = try log.admin.describeTopic(topic)
        #expect(description.partitions.map(\.endOffset).reduce(0, +) == 400)
        #expect(description.partitions.allSatisfy { $0.endOffset > 0 })
    }

    @Test func anOversizedRecordIsRefusedAtSendWithoutWritingAnything() throws {
        // MOCK LIMIT: the mock keeps no topic configs, so the topic's max.message.bytes cannot
        // be enforced by the broker; the producer's own limit (message.max.bytes, checked by
        // librdkafka at rd_kafka_produceva) is what refuses the record here.
        let topic = try createTopic()
        let producer = try log.makeProducer(ProducerConfiguration(extra: ["message.max.bytes": "10000"]))
        expectKafkaError(.recordTooLarge) {
            try producer.send(ProducerRecord(topic: topic, value: [UInt8](repeating: 1, count: 10_001)))
        }
        try producer.send(ProducerRecord(topic: topic, value: [UInt8](repeating: 1, count: 9_000)))
        try producer.flush()
        #expect(try log.admin.describeTopic(topic).partitions[0].endOffset == 1)
    }

    @Test func unknownTopicsAndPartitionsAreClearErrors() throws {
        let topic = try createTopic(partitions: 2)
        let producer = try log.makeProducer(ProducerConfiguration())
        expectKafkaError(.unknownTopic) { try producer.send(ProducerRecord(topic: uniqueName("missing"), value: kafkaPayload("x"))) }
        expectKafkaError(.unknownPartition) { try producer.send(ProducerRecord(topic: topic, partition: 2, value: kafkaPayload("x"))) }
        expectKafkaError(.unknownTopic) { _ = try log.admin.describeTopic(uniqueName("missing")) }
        expectKafkaError(.unknownTopic) { try log.admin.deleteTopic(uniqueName("missing")) }
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        expectKafkaError(.unknownTopic) { try consumer.assign([TopicPartition(uniqueName("missing"), 0)]) }
    }

    @Test func invalidTopicNamesAreRejectedBeforeAnyRequestIsSent() throws {
        for name in ["../x", "a/b", "", String(repeating: "a", count: 250), ".", "..", "a b", "é"] {
            expectKafkaError(.invalidName) { try log.admin.createTopic(name, configuration: TopicConfiguration()) }
        }
        let before = try log.admin.listTopics()
        #expect(!before.contains("../x") && !before.contains("a/b"))
        // 249 characters is the longest legal name.
        let longest = String(repeating: "b", count: 240) + String(UInt32.random(in: 100_000_000...999_999_999))
        try log.admin.createTopic(longest, configuration: TopicConfiguration())
        #expect(try log.admin.listTopics().contains(longest))
    }

    @Test func topicsAreCreatedListedAndDescribed() throws {
        let topic = uniqueName("described")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 3, retentionBytes: 1_000_000))
        expectKafkaError(.topicExists) { try log.admin.createTopic(topic, configuration: TopicConfiguration()) }
        expectKafkaError(.invalidArgument) { try log.admin.createTopic(uniqueName("zero"), configuration: TopicConfiguration(partitions: 0)) }
        #expect(try log.admin.listTopics().contains(topic))
        let description = try log.admin.describeTopic(topic)
        #expect(description.partitions.count == 3)
        #expect(description.partitions.allSatisfy { $0.startOffset == 0 && $0.endOffset == 0 && $0.lastStableOffset == 0 })
        // MOCK LIMIT: no DescribeConfigs, so retention.bytes is not read back (a real broker
        // returns 1_000_000 through rd_kafka_DescribeConfigs); the mapping itself is checked here.
        #expect(KafkaAdmin.topicConfigs(TopicConfiguration(partitions: 3, retentionBytes: 1_000_000))["retention.bytes"] == "1000000")
        var readBack = TopicConfiguration(partitions: 3)
        KafkaAdmin.apply(["retention.bytes": "1000000", "cleanup.policy": "compact"], to: &readBack)
        #expect(readBack.retentionBytes == 1_000_000 && readBack.cleanupPolicy == .compact)
        // MOCK LIMIT: the mock has no DeleteTopics; KafkaLog refuses it at once with a clear error.
        expectKafkaError(.unsupported) { try log.admin.deleteTopic(topic) }
        #expect(try log.admin.listTopics().contains(topic))
    }

    @Test func seekPositionTimestampsAndEndOffsetsAgree() throws {
        let topic = try createTopic()
        let tp = TopicPartition(topic, 0)
        let producer = try log.makeProducer(ProducerConfiguration(batchBytes: 200))
        for i in 0..<50 { try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("v\(i)"), timestamp: 10_000 + Int64(i) * 10)) }
        try producer.flush()
        let consumer = try log.makeConsumer(ConsumerConfiguration(maximumPollRecords: 7))
        try consumer.assign([tp])
        #expect(try consumer.beginningOffsets([tp]) == [tp: 0])
        #expect(try consumer.endOffsets([tp]) == [tp: 50])
        // A Kafka poll returns what has been fetched so far (at most maximumPollRecords), which
        // may be fewer than 7 while the fetch is still in flight.
        let first = try pollKafka(consumer, count: 1)
        #expect(first.count <= 7 && first.map(\.offset) == Array(0..<Int64(first.count)))
        #expect(try consumer.position(tp) == Int64(first.count))
        try consumer.seek(tp, to: 30)
        #expect(try pollKafka(consumer, count: 1).first?.offset == 30)
        // MOCK LIMIT (measured on 2.0.2): the mock's ListOffsets answers only EARLIEST/LATEST;
        // a timestamp look-up returns -1 ("none"). So here only "none" is checked; a real broker
        // answers 21 for 10_205 and 0 for 10_000.
        let times = try consumer.offsets(forTimes: [tp: 10_205])
        #expect(times[tp] == .some(21) || times[tp] == .some(nil))
        #expect(try consumer.offsets(forTimes: [tp: 99_999])[tp] == .some(nil))
        let fromStart = try log.admin.offsets(forTimestamp: 10_000, partitions: [tp])
        #expect(fromStart == [tp: 0] || fromStart == [tp: 50])
        #expect(try log.admin.offsets(forTimestamp: 99_999, partitions: [tp]) == [tp: 50])
        try consumer.seekToEnd([tp])
        #expect(try consumer.poll(timeoutMilliseconds: 200).isEmpty)
        try consumer.seekToBeginning([tp])
        #expect(try pollKafka(consumer, count: 1).first?.offset == 0)
    }

    @Test func pausedPartitionsAreNotReadUntilResumed() throws {
        let topic = try createTopic(partitions: 2)
        let producer = try log.makeProducer(ProducerConfiguration())
        for p in 0..<2 { try producer.send(ProducerRecord(topic: topic, partition: p, value: kafkaPayload("p\(p)"))) }
        try producer.flush()
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        consumer.pause([TopicPartition(topic, 1)])
        let records = try pollKafka(consumer, count: 2, timeoutMilliseconds: 1_000)
        #expect(records.map(\.partition) == [0])
        consumer.resume([TopicPartition(topic, 1)])
        #expect(try pollKafka(consumer, count: 1).map(\.partition) == [1])
    }

    @Test func pollBlocksUntilAnotherThreadAppends() throws {
        let topic = try createTopic()
        let consumer = try log.makeConsumer(ConsumerConfiguration(extra: ["fetch.wait.max.ms": "50"]))
        try consumer.assign([TopicPartition(topic, 0)])
        _ = try consumer.poll(timeoutMilliseconds: 300)   // let the fetcher start
        let log = self.log
        let thread = Thread {
            usleep(300_000)
            let producer = try? log.makeProducer(ProducerConfiguration(lingerMilliseconds: 0))
            try? producer?.send(ProducerRecord(topic: topic, value: kafkaPayload("late")))
            try? producer?.flush()
        }
        thread.start()
        let started = monotonicMilliseconds()
        let records = try consumer.poll(timeoutMilliseconds: 8_000)
        let elapsed = monotonicMilliseconds() - started
        #expect(records.map(\.value) == [kafkaPayload("late")])
        #expect(elapsed >= 200 && elapsed < 7_000, "poll returned after \(elapsed) ms")
        let idleStart = monotonicMilliseconds()
        #expect(try consumer.poll(timeoutMilliseconds: 100).isEmpty)
        #expect(monotonicMilliseconds() - idleStart >= 90)
    }

    @Test func aStandaloneConsumerCommitsAndReadsBackOffsets() throws {
        let topic = try createTopic(partitions: 2)
        let group = uniqueName("group")
        let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        try consumer.commit([TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 7])
        #expect(try consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])
                == [TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 7])
        #expect(try log.admin.committedOffsets(group: group)[TopicPartition(topic, 1)] == 7)
        try log.admin.alterCommittedOffsets(group: group, offsets: [TopicPartition(topic, 1): 3])
        #expect(try log.admin.committedOffsets(group: group)[TopicPartition(topic, 1)] == 3)
        // MOCK LIMIT: no OffsetDelete on the mock; KafkaLog refuses it at once, nothing is deleted.
        expectKafkaError(.unsupported) { try log.admin.deleteCommittedOffsets(group: group, topics: [topic]) }
        #expect(try log.admin.committedOffsets(group: group)[TopicPartition(topic, 1)] == 3)
        let noGroup = try log.makeConsumer(ConsumerConfiguration())
        expectKafkaError(.invalidState) { try noGroup.commit([TopicPartition(topic, 0): 1]) }
    }

    @Test func aClosedProducerOrConsumerRefusesWork() throws {
        let topic = try createTopic()
        let producer = try log.makeProducer(ProducerConfiguration())
        try producer.close()
        expectKafkaError(.closed) { try producer.send(ProducerRecord(topic: topic, value: kafkaPayload("x"))) }
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.close()
        expectKafkaError(.closed) { _ = try consumer.poll(timeoutMilliseconds: 0) }
    }
}
