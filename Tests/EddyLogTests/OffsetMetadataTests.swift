import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// Committed offsets with metadata (Kafka's `OffsetAndMetadata`) on the embedded log: plain
/// and transactional commits, aborts, the size limit, and durability across a reopen.
@Suite struct OffsetMetadataTests {
    private func inMemoryEnvironment() -> LogEnvironment {
        LogEnvironment(fileSystem: InMemoryFileSystem(), clock: SystemLogClock())
    }

    /// A group member of `group` subscribed to `topic`, past its first poll (so its metadata is current).
    private func member(_ backend: any LogBackend, group: String, topic: String) throws -> any LogConsumer {
        let consumer = try backend.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.subscribe([topic], listener: nil)
        _ = try consumer.poll(timeoutMilliseconds: 0)
        return consumer
    }

    @Test(arguments: BackendKind.allCases)
    func aPlainCommitStoresMetadataAndAPlainOffsetClearsIt(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let group = fixture.topicName("group")
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        let (p0, p1) = (TopicPartition(topic, 0), TopicPartition(topic, 1))
        try consumer.assign([p0, p1])
        try consumer.commit([p0: OffsetAndMetadata(5, metadata: "AQAAAAAAAE4g"), p1: OffsetAndMetadata(7)])
        #expect(try consumer.committedWithMetadata([p0, p1])
                == [p0: OffsetAndMetadata(5, metadata: "AQAAAAAAAE4g"), p1: OffsetAndMetadata(7)])
        #expect(try consumer.committed([p0, p1]) == [p0: 5, p1: 7])
        // A later commit replaces offset and metadata; one without metadata clears it (as in Kafka).
        try consumer.commit([p0: OffsetAndMetadata(6, metadata: "ünïcode ✓")])
        #expect(try consumer.committedWithMetadata([p0]) == [p0: OffsetAndMetadata(6, metadata: "ünïcode ✓")])
        try consumer.commit([p0: 8])
        #expect(try consumer.committedWithMetadata([p0, p1]) == [p0: OffsetAndMetadata(8), p1: OffsetAndMetadata(7)])
        // An admin reset writes offsets without metadata too.
        try consumer.commit([p1: OffsetAndMetadata(9, metadata: "x")])
        try fixture.admin.alterCommittedOffsets(group: group, offsets: [p1: 2])
        #expect(try consumer.committedWithMetadata([p1]) == [p1: OffsetAndMetadata(2)])
        #expect(try consumer.committedWithMetadata([TopicPartition(topic, 5)]).isEmpty)
    }

    @Test(arguments: BackendKind.allCases)
    func metadataOverTheLimitIsRefusedAndNothingIsCommitted(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let group = fixture.topicName("group")
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        let (p0, p1) = (TopicPartition(topic, 0), TopicPartition(topic, 1))
        try consumer.assign([p0, p1])
        let limit = OffsetAndMetadata.maximumMetadataBytes
        #expect(limit == 4096)
        let atLimit = String(repeating: "m", count: limit)
        try consumer.commit([p0: OffsetAndMetadata(1, metadata: atLimit)])
        #expect(try consumer.committedWithMetadata([p0])[p0]?.metadata == atLimit)
        // The limit counts UTF-8 bytes: 2049 two-byte characters are 4098 bytes.
        for tooLong in [String(repeating: "m", count: limit + 1), String(repeating: "é", count: limit / 2 + 1)] {
            do {
                try consumer.commit([p1: OffsetAndMetadata(3), p0: OffsetAndMetadata(2, metadata: tooLong)])
                Issue.record("metadata of \(tooLong.utf8.count) bytes was accepted")
            } catch let error as EddyError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("\(limit)") && error.message.contains("offset.metadata.max.bytes"), "\(error)")
            }
        }
        #expect(try consumer.committedWithMetadata([p0, p1]) == [p0: OffsetAndMetadata(1, metadata: atLimit)])

        let member = try member(fixture.backend, group: fixture.topicName("group"), topic: topic)
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx"))
        try producer.initTransactions()
        try producer.beginTransaction()
        expectEddyError(.invalidArgument) {
            try producer.sendOffsetsToTransaction([p0: OffsetAndMetadata(1, metadata: String(repeating: "m", count: limit + 1))],
                                                  group: member.groupMetadata()!)
        }
        // The transaction is still usable.
        try producer.sendOffsetsToTransaction([p0: OffsetAndMetadata(4, metadata: "ok")], group: member.groupMetadata()!)
        try producer.commitTransaction()
        #expect(try member.committedWithMetadata([p0]) == [p0: OffsetAndMetadata(4, metadata: "ok")])
    }

    @Test(arguments: BackendKind.allCases)
    func transactionalMetadataIsCommittedWithTheTransactionAndAnAbortKeepsTheOldOne(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let input = try fixture.createTopic()
        let output = try fixture.createTopic()
        let group = fixture.topicName("group")
        let consumer = try member(fixture.backend, group: group, topic: input)
        let tp = TopicPartition(input, 0)
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx"))
        try producer.initTransactions()

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: output, value: payload("one")))
        try producer.sendOffsetsToTransaction([tp: OffsetAndMetadata(10, metadata: "time-1")], group: consumer.groupMetadata()!)
        #expect(try consumer.committedWithMetadata([tp]).isEmpty)
        try producer.commitTransaction()
        #expect(try consumer.committedWithMetadata([tp]) == [tp: OffsetAndMetadata(10, metadata: "time-1")])

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: output, value: payload("two")))
        try producer.sendOffsetsToTransaction([tp: OffsetAndMetadata(20, metadata: "time-2")], group: consumer.groupMetadata()!)
        try producer.abortTransaction()
        #expect(try consumer.committedWithMetadata([tp]) == [tp: OffsetAndMetadata(10, metadata: "time-1")])

        // Offsets sent without metadata (the plain overload) clear it when they commit.
        try producer.beginTransaction()
        try producer.sendOffsetsToTransaction([tp: 30], group: consumer.groupMetadata()!)
        try producer.commitTransaction()
        #expect(try consumer.committedWithMetadata([tp]) == [tp: OffsetAndMetadata(30)])
    }

    @Test func metadataSurvivesAReopenOfTheLogOnDisk() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        let (a, b, c) = (TopicPartition("in", 0), TopicPartition("in", 1), TopicPartition("in", 2))
        do {
            let log = try EmbeddedLog(directory: directory)
            try log.admin.createTopic("in", configuration: TopicConfiguration(partitions: 3))
            try log.admin.createTopic("out", configuration: TopicConfiguration(partitions: 1))
            let plain = try log.makeConsumer(ConsumerConfiguration(groupID: "plain"))
            try plain.assign([a, b, c])
            try plain.commit([a: OffsetAndMetadata(1, metadata: "old"), b: OffsetAndMetadata(2, metadata: "kept")])
            try plain.commit([a: OffsetAndMetadata(3, metadata: "new"), c: OffsetAndMetadata(4)])
            try plain.close()
            let consumer = try member(log, group: "eos", topic: "in")
            let producer = try log.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "eos-app")
            try producer.initTransactions()
            try producer.beginTransaction()
            try producer.send(ProducerRecord(topic: "out", value: payload("r")))
            try producer.sendOffsetsToTransaction([a: OffsetAndMetadata(5, metadata: "committed")], group: consumer.groupMetadata()!)
            try producer.commitTransaction()
            try producer.beginTransaction()
            try producer.sendOffsetsToTransaction([a: OffsetAndMetadata(6, metadata: "aborted")], group: consumer.groupMetadata()!)
            try producer.abortTransaction()
            try producer.close()
            try consumer.close()
            try log.close()
        }
        let log = try EmbeddedLog(directory: directory)
        defer { try? log.close() }
        let plain = try log.makeConsumer(ConsumerConfiguration(groupID: "plain"))
        #expect(try plain.committedWithMetadata([a, b, c])
                == [a: OffsetAndMetadata(3, metadata: "new"), b: OffsetAndMetadata(2, metadata: "kept"), c: OffsetAndMetadata(4)])
        let eos = try log.makeConsumer(ConsumerConfiguration(groupID: "eos"))
        #expect(try eos.committedWithMetadata([a]) == [a: OffsetAndMetadata(5, metadata: "committed")])
        #expect(try log.admin.committedOffsets(group: "eos") == [a: 5])
    }

    @Test func metadataOfATransactionPastItsCommitPointIsAppliedWhenTheLogReopensAfterACrash() throws {
        let environment = inMemoryEnvironment()
        let first = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
        try first.admin.createTopic("in", configuration: TopicConfiguration(partitions: 1))
        let tp = TopicPartition("in", 0)
        let consumer = try member(first, group: "eos", topic: "in")
        let producer = try first.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "eos-app")
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.sendOffsetsToTransaction([tp: OffsetAndMetadata(42, metadata: "AQAAAAAAAE4g")], group: consumer.groupMetadata()!)
        first.transactions.failAfterCommitPoint = true
        expectEddyError(.io) { try producer.commitTransaction() }
        #expect(try first.admin.committedOffsets(group: "eos").isEmpty)
        first.simulateCrash()

        let second = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
        defer { try? second.close() }
        let reader = try second.makeConsumer(ConsumerConfiguration(groupID: "eos"))
        #expect(try reader.committedWithMetadata([tp]) == [tp: OffsetAndMetadata(42, metadata: "AQAAAAAAAE4g")])
    }

    @Test func offsetValuesKeepTheOldLayoutWithoutMetadataAndRejectBadOnes() throws {
        // Without metadata: the 8-byte value every earlier version wrote and reads.
        let plain = GroupCoordinator.encodeOffset(OffsetAndMetadata(0x0102_0304_0506_0708))
        #expect(plain == [1, 2, 3, 4, 5, 6, 7, 8])
        let withMetadata = GroupCoordinator.encodeOffset(OffsetAndMetadata(7, metadata: "hi"))
        #expect(withMetadata == [0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2] + Array("hi".utf8))
        for value in [plain, withMetadata] {
            let decoded = try value.withUnsafeBytes { try GroupCoordinator.decodeOffset($0, context: "test") }
            #expect(GroupCoordinator.encodeOffset(decoded) == value)
        }
        let bad: [([UInt8], EddyError.Code)] = [
            ([0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 3] + Array("hi".utf8), .corrupt),     // length beyond the value
            ([0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1] + Array("hi".utf8), .corrupt),     // bytes after the metadata
            ([0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 0xFF, 0xFE], .corrupt),            // not UTF-8
            ([0, 1, 0, 0], .corrupt),                                                 // truncated
            ([0, 2, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0], .unsupported),                    // a newer version
        ]
        for (value, code) in bad {
            expectEddyError(code) { _ = try value.withUnsafeBytes { try GroupCoordinator.decodeOffset($0, context: "test") } }
        }
    }

    @Test func transactionStateRecordsWrittenBeforeMetadataExistedStillDecode() throws {
        let old = #"{"producerID":3,"epoch":1,"state":"prepareCommit","partitions":[],"offsets":[{"group":"g","topic":"t","partition":0,"offset":9}]}"#
        let record = try JSONDecoder().decode(TransactionStateRecord.self, from: Data(old.utf8))
        #expect(record.offsets.count == 1 && record.offsets[0].offset == 9 && record.offsets[0].metadata == nil)
        // Without metadata the record is written as before (no `metadata` member).
        let encoded = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        #expect(!encoded.contains("metadata"))
    }
}
