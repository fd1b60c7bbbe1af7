import EddyCore
import Testing

/// A consumer and a transactional producer that store plain offsets only, as a backend
/// written before offset metadata existed would: they get the protocols' default
/// implementations of the metadata overloads.
private final class OffsetsOnlyClient: LogConsumer, TransactionalProducer {
    var committedOffsets: [TopicPartition: Offset] = [:]
    var sentOffsets: [TopicPartition: Offset] = [:]

    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws {}
    func assign(_ partitions: [TopicPartition]) throws {}
    func unsubscribe() throws {}
    func assignment() -> [TopicPartition] { [] }
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] { [] }
    func position(_ partition: TopicPartition) throws -> Offset { 0 }
    func seek(_ partition: TopicPartition, to offset: Offset) throws {}
    func seekToBeginning(_ partitions: [TopicPartition]) throws {}
    func seekToEnd(_ partitions: [TopicPartition]) throws {}
    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?] { [:] }
    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { [:] }
    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { [:] }
    func pause(_ partitions: [TopicPartition]) {}
    func resume(_ partitions: [TopicPartition]) {}
    func commit(_ offsets: [TopicPartition: Offset]) throws { committedOffsets.merge(offsets) { $1 } }
    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] {
        committedOffsets.filter { partitions.contains($0.key) }
    }
    func groupMetadata() -> ConsumerGroupMetadata? { ConsumerGroupMetadata(groupID: "g", generation: 1, memberID: "m") }
    func close() throws {}

    var transactionalID: String { "tx" }
    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws {}
    func flush() throws {}
    func poll() {}
    func partitionCount(of topic: String) throws -> Int { 1 }
    func initTransactions() throws {}
    func beginTransaction() throws {}
    func sendOffsetsToTransaction(_ offsets: [TopicPartition: Offset], group: ConsumerGroupMetadata) throws {
        sentOffsets.merge(offsets) { $1 }
    }
    func commitTransaction() throws {}
    func abortTransaction() throws {}
}

@Suite struct OffsetAndMetadataTests {
    let tp = TopicPartition("t", 0)

    @Test func theMetadataLimitIsKafkasAndCountsUTF8Bytes() throws {
        #expect(OffsetAndMetadata.maximumMetadataBytes == 4096)
        try OffsetAndMetadata.validate([tp: OffsetAndMetadata(1, metadata: String(repeating: "x", count: 4096))])
        try OffsetAndMetadata.validate([tp: OffsetAndMetadata(1)])
        for tooLong in [String(repeating: "x", count: 4097), String(repeating: "€", count: 1366)] {  // 4097 and 4098 bytes
            do {
                try OffsetAndMetadata.validate([tp: OffsetAndMetadata(1), TopicPartition("t", 1): OffsetAndMetadata(2, metadata: tooLong)])
                Issue.record("\(tooLong.utf8.count) bytes accepted")
            } catch let error as EddyError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("t-1") && error.message.contains("\(tooLong.utf8.count) bytes"), "\(error)")
            }
        }
    }

    @Test func backendsWithoutMetadataCommitEmptyMetadataAndRefuseTheRest() throws {
        let client = OffsetsOnlyClient()
        try client.commit([tp: OffsetAndMetadata(5)])
        #expect(client.committedOffsets == [tp: 5])
        #expect(try client.committedWithMetadata([tp]) == [tp: OffsetAndMetadata(5)])
        #expect(throws: EddyError.self) { try client.commit([tp: OffsetAndMetadata(6, metadata: "time")]) }
        #expect(client.committedOffsets == [tp: 5])
        let group = try #require(client.groupMetadata())
        try client.sendOffsetsToTransaction([tp: OffsetAndMetadata(7)], group: group)
        #expect(client.sentOffsets == [tp: 7])
        do {
            try client.sendOffsetsToTransaction([tp: OffsetAndMetadata(8, metadata: "time")], group: group)
            Issue.record("metadata was dropped silently")
        } catch let error as EddyError {
            #expect(error.code == .unsupported)
        }
        #expect(client.sentOffsets == [tp: 7])
    }
}
