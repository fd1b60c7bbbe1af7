import EddyCore
@testable import EddyKafka
import Foundation
import Testing

/// Offset metadata (`rd_kafka_topic_partition_t.metadata`) through librdkafka, on the mock cluster.
@Suite struct KafkaOffsetMetadataTests {
    let log = SharedMockCluster.log

    @Test func aTopicPartitionListCarriesMetadataBothWays() {
        let list = RDKafkaTopicPartitionList([TopicPartition("t", 0): OffsetAndMetadata(5, metadata: "AQAAAAAAAE4g"),
                                              TopicPartition("t", 1): OffsetAndMetadata(6)])
        let elements = list.elements
        #expect(elements.map(\.topicPartition) == [TopicPartition("t", 0), TopicPartition("t", 1)])
        #expect(elements.map(\.offset) == [5, 6])
        #expect(elements.map(\.metadata) == ["AQAAAAAAAE4g", ""])
        #expect(list.pointer.pointee.elems[0].metadata_size == 12)
        #expect(list.pointer.pointee.elems[1].metadata == nil)
    }

    @Test func aCommitStoresMetadataInTheGroupAndAnotherConsumerReadsItBack() throws {
        let topic = uniqueName("metadata")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 2))
        let group = uniqueName("group")
        let (p0, p1) = (TopicPartition(topic, 0), TopicPartition(topic, 1))
        let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.assign([p0, p1])
        try consumer.commit([p0: OffsetAndMetadata(5, metadata: "AQAAAAAAAE4g"), p1: OffsetAndMetadata(7, metadata: "ünïcode ✓")])
        #expect(try consumer.committedWithMetadata([p0, p1])
                == [p0: OffsetAndMetadata(5, metadata: "AQAAAAAAAE4g"), p1: OffsetAndMetadata(7, metadata: "ünïcode ✓")])
        #expect(try consumer.committed([p0, p1]) == [p0: 5, p1: 7])
        // A second client of the group fetches them from the broker (OffsetFetch).
        let other = try log.makeConsumer(ConsumerConfiguration(groupID: group))
        #expect(try other.committedWithMetadata([p0, p1])[p0] == OffsetAndMetadata(5, metadata: "AQAAAAAAAE4g"))
        // A commit without metadata replaces it with none.
        try consumer.commit([p0: 8])
        #expect(try other.committedWithMetadata([p0]) == [p0: OffsetAndMetadata(8)])
        // Over the limit: refused before librdkafka sees it, nothing committed.
        let tooLong = String(repeating: "m", count: OffsetAndMetadata.maximumMetadataBytes + 1)
        expectKafkaError(.invalidArgument) { try consumer.commit([p0: OffsetAndMetadata(9, metadata: tooLong)]) }
        #expect(try other.committedWithMetadata([p0]) == [p0: OffsetAndMetadata(8)])
        try other.close()
        try consumer.close()
    }

    @Test func offsetsWithMetadataAreSentToATransaction() throws {
        let topic = uniqueName("eos-metadata")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        let group = uniqueName("eos-group")
        let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.subscribe([topic], listener: nil)
        var metadata: ConsumerGroupMetadata?
        let deadline = monotonicMilliseconds() + 15_000
        while monotonicMilliseconds() < deadline {
            _ = try consumer.poll(timeoutMilliseconds: 100)
            if !consumer.assignment().isEmpty, let m = consumer.groupMetadata(), m.generation > 0 { metadata = m; break }
        }
        let groupMetadata = try #require(metadata)
        let producer = try log.makeTransactionalProducer(ProducerConfiguration(timeoutMilliseconds: 10_000),
                                                         transactionalID: uniqueName("tx"))
        try producer.initTransactions()
        try producer.beginTransaction()
        let tooLong = String(repeating: "m", count: OffsetAndMetadata.maximumMetadataBytes + 1)
        expectKafkaError(.invalidArgument) {
            try producer.sendOffsetsToTransaction([TopicPartition(topic, 0): OffsetAndMetadata(0, metadata: tooLong)], group: groupMetadata)
        }
        try producer.sendOffsetsToTransaction([TopicPartition(topic, 0): OffsetAndMetadata(0, metadata: "AQAAAAAAAE4g")],
                                              group: groupMetadata)
        try producer.commitTransaction()
        // MOCK LIMIT: the mock answers TxnOffsetCommit without storing the offsets (see
        // KafkaFaultInjectionTests), so neither offset nor metadata can be read back here; the
        // embedded log's tests show the transactional round trip.
        try consumer.close()
        try producer.close()
    }
}
