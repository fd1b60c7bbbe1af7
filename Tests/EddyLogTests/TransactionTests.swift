import EddyCore
@testable import EddyLog
import Foundation
import Testing

@Suite struct TransactionTests {
    private func readAll(_ fixture: BackendFixture, _ topic: String, partitions: Int = 1, isolation: IsolationLevel,
                         expecting count: Int, timeoutMilliseconds: Int = 2_000) throws -> [ConsumerRecord] {
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(isolation: isolation))
        defer { try? consumer.close() }
        try consumer.assign((0..<partitions).map { TopicPartition(topic, $0) })
        var records = try pollRecords(consumer, count: count, timeoutMilliseconds: timeoutMilliseconds)
        // Make sure nothing more arrives.
        records += try consumer.poll(timeoutMilliseconds: 50)
        return records
    }

    @Test(arguments: BackendKind.allCases)
    func abortedDataIsInvisibleToReadCommittedAndVisibleToReadUncommitted(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx-abort"))
        try producer.initTransactions()
        try producer.beginTransaction()
        for i in 0..<10 { try producer.send(ProducerRecord(topic: topic, partition: i % 2, value: payload("committed-\(i)"))) }
        try producer.commitTransaction()
        try producer.beginTransaction()
        for i in 0..<10 { try producer.send(ProducerRecord(topic: topic, partition: i % 2, value: payload("aborted-\(i)"))) }
        try producer.flush()
        try producer.abortTransaction()
        try producer.beginTransaction()
        for i in 0..<4 { try producer.send(ProducerRecord(topic: topic, partition: i % 2, value: payload("after-\(i)"))) }
        try producer.commitTransaction()

        let committed = try readAll(fixture, topic, partitions: 2, isolation: .readCommitted, expecting: 14)
        let values = Set(committed.map { String(decoding: $0.value!, as: UTF8.self) })
        #expect(committed.count == 14)
        #expect(values == Set((0..<10).map { "committed-\($0)" } + (0..<4).map { "after-\($0)" }))

        let everything = try readAll(fixture, topic, partitions: 2, isolation: .readUncommitted, expecting: 24)
        #expect(everything.count == 24)
        #expect(everything.contains { $0.value == payload("aborted-3") })
        // Control markers take offsets but are never returned.
        let ends = try fixture.admin.describeTopic(topic).partitions.map(\.endOffset)
        #expect(ends == [15, 15])
    }

    @Test(arguments: BackendKind.allCases)
    func theLastStableOffsetStopsAtAnOpenTransaction(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let tp = TopicPartition(topic, 0)
        let plain = try fixture.backend.makeProducer(ProducerConfiguration())
        for i in 0..<3 { try plain.send(ProducerRecord(topic: topic, value: payload("before-\(i)"))) }
        try plain.flush()
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx-lso"))
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, value: payload("open")))
        try producer.flush()
        for i in 0..<2 { try plain.send(ProducerRecord(topic: topic, value: payload("during-\(i)"))) }
        try plain.flush()

        var partition = try fixture.admin.describeTopic(topic).partitions[0]
        #expect(partition.lastStableOffset == 3)
        #expect(partition.endOffset == 6)
        let committedReader = try fixture.backend.makeConsumer(ConsumerConfiguration(isolation: .readCommitted))
        try committedReader.assign([tp])
        #expect(try committedReader.endOffsets([tp]) == [tp: 3])
        let visible = try pollRecords(committedReader, count: 4, timeoutMilliseconds: 300)
        #expect(visible.map(\.offset) == [0, 1, 2])
        let uncommittedReader = try fixture.backend.makeConsumer(ConsumerConfiguration(isolation: .readUncommitted))
        try uncommittedReader.assign([tp])
        #expect(try uncommittedReader.endOffsets([tp]) == [tp: 6])

        try producer.commitTransaction()
        partition = try fixture.admin.describeTopic(topic).partitions[0]
        #expect(partition.lastStableOffset == partition.endOffset)
        let rest = try pollRecords(committedReader, count: 3)
        #expect(rest.map(\.value) == [payload("open"), payload("during-0"), payload("during-1")])
    }

    @Test(arguments: BackendKind.allCases)
    func aFencedProducerCannotSendOrCommit(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let id = fixture.topicName("tx-fence")
        let old = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: id)
        try old.initTransactions()
        try old.beginTransaction()
        try old.send(ProducerRecord(topic: topic, value: payload("zombie")))
        try old.flush()

        let new = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: id)
        try new.initTransactions()
        // The zombie's open transaction was aborted by the new incarnation.
        let partition = try fixture.admin.describeTopic(topic).partitions[0]
        #expect(partition.lastStableOffset == partition.endOffset)

        expectEddyError(.producerFenced) { try old.commitTransaction() }
        // Fenced is fatal: every later call fails the same way.
        expectEddyError(.producerFenced) { try old.beginTransaction() }
        expectEddyError(.producerFenced) { try old.send(ProducerRecord(topic: topic, value: payload("x"))) }

        try new.beginTransaction()
        try new.send(ProducerRecord(topic: topic, value: payload("fresh")))
        try new.commitTransaction()
        let records = try readAll(fixture, topic, isolation: .readCommitted, expecting: 1)
        #expect(records.map(\.value) == [payload("fresh")])
    }

    @Test(arguments: BackendKind.allCases)
    func aFencedProducersBufferedAppendFails(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let id = fixture.topicName("tx-fence")
        let old = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: id)
        try old.initTransactions()
        try old.beginTransaction()
        var failures: [EddyError] = []
        try old.send(ProducerRecord(topic: topic, value: payload("buffered"))) { result in
            if case .failure(let error) = result { failures.append(error) }
        }
        let new = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: id)
        try new.initTransactions()
        expectEddyError(.producerFenced) { try old.commitTransaction() }
        #expect(failures.map(\.code) == [.producerFenced])
        #expect(try fixture.admin.describeTopic(topic).partitions[0].endOffset == 0)
    }

    @Test(arguments: BackendKind.allCases)
    func offsetsCommittedInAnAbortedTransactionAreNotVisible(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let input = try fixture.createTopic()
        let output = try fixture.createTopic()
        let group = fixture.topicName("group")
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.subscribe([input], listener: nil)
        _ = try consumer.poll(timeoutMilliseconds: 0)
        let metadata = try #require(consumer.groupMetadata())
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx-offsets"))
        try producer.initTransactions()

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: output, value: payload("out-1")))
        try producer.sendOffsetsToTransaction([TopicPartition(input, 0): 10], group: metadata)
        try producer.abortTransaction()
        #expect(try fixture.admin.committedOffsets(group: group).isEmpty)
        #expect(try consumer.committed([TopicPartition(input, 0)]).isEmpty)

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: output, value: payload("out-2")))
        try producer.sendOffsetsToTransaction([TopicPartition(input, 0): 20], group: metadata)
        // Not visible before the commit.
        #expect(try fixture.admin.committedOffsets(group: group).isEmpty)
        try producer.commitTransaction()
        #expect(try fixture.admin.committedOffsets(group: group) == [TopicPartition(input, 0): 20])
        let records = try readAll(fixture, output, isolation: .readCommitted, expecting: 1)
        #expect(records.map(\.value) == [payload("out-2")])
    }

    @Test(arguments: BackendKind.allCases)
    func offsetsOfAStaleGroupMemberAreFenced(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let input = try fixture.createTopic(partitions: 2)
        let group = fixture.topicName("group")
        let first = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        try first.subscribe([input], listener: nil)
        _ = try first.poll(timeoutMilliseconds: 0)
        let stale = try #require(first.groupMetadata())
        let second = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        try second.subscribe([input], listener: nil)
        _ = try first.poll(timeoutMilliseconds: 0)
        _ = try second.poll(timeoutMilliseconds: 0)
        #expect(first.groupMetadata()!.generation > stale.generation)

        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx-stale"))
        try producer.initTransactions()
        try producer.beginTransaction()
        expectEddyError(.consumerFenced) { try producer.sendOffsetsToTransaction([TopicPartition(input, 0): 1], group: stale) }
        // The transaction must now be aborted.
        expectEddyError(.transactionAborted) { try producer.commitTransaction() }
        try producer.abortTransaction()
        try producer.beginTransaction()
        try producer.sendOffsetsToTransaction([TopicPartition(input, 0): 1], group: first.groupMetadata()!)
        try producer.commitTransaction()
        #expect(try fixture.admin.committedOffsets(group: group) == [TopicPartition(input, 0): 1])
    }

    @Test func theProducerStateMachineAllowsOnlyTheLegalTransitions() {
        typealias P = EmbeddedTransactionalProducer
        #expect(P.transition(.uninitialized, on: .begin) == nil)
        #expect(P.transition(.uninitialized, on: .initialize) == .ready)
        #expect(P.transition(.ready, on: .initialize) == nil)
        #expect(P.transition(.ready, on: .send) == nil)
        #expect(P.transition(.ready, on: .commit) == nil)
        #expect(P.transition(.ready, on: .begin) == .inTransaction)
        #expect(P.transition(.inTransaction, on: .begin) == nil)
        #expect(P.transition(.inTransaction, on: .send) == .inTransaction)
        #expect(P.transition(.inTransaction, on: .commit) == .ready)
        #expect(P.transition(.inTransaction, on: .abort) == .ready)
        #expect(P.transition(.inTransaction, on: .abortableFailure) == .abortableError)
        #expect(P.transition(.abortableError, on: .commit) == nil)
        #expect(P.transition(.abortableError, on: .send) == nil)
        #expect(P.transition(.abortableError, on: .abort) == .ready)
        #expect(P.transition(.inTransaction, on: .fatalFailure) == .fatalError)
        #expect(P.transition(.fatalError, on: .abort) == nil)
        #expect(P.transition(.fatalError, on: .close) == .closed)
        #expect(P.transition(.closed, on: .close) == nil)
    }

    @Test(arguments: BackendKind.allCases)
    func illegalCallsAreInvalidStateErrors(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx-illegal"))
        expectEddyError(.invalidState) { try producer.beginTransaction() }
        try producer.initTransactions()
        expectEddyError(.invalidState) { try producer.send(ProducerRecord(topic: topic, value: payload("x"))) }
        expectEddyError(.invalidState) { try producer.commitTransaction() }
        try producer.beginTransaction()
        expectEddyError(.invalidState) { try producer.beginTransaction() }
        try producer.close()
        expectEddyError(.closed) { try producer.beginTransaction() }
        expectEddyError(.invalidName) {
            _ = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "a/b")
        }
    }

    @Test(arguments: BackendKind.allCases)
    func closingAProducerInsideATransactionAbortsIt(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: fixture.topicName("tx-close"))
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, value: payload("never")))
        try producer.flush()
        try producer.close()
        let partition = try fixture.admin.describeTopic(topic).partitions[0]
        #expect(partition.lastStableOffset == partition.endOffset)
        #expect(try readAll(fixture, topic, isolation: .readCommitted, expecting: 1, timeoutMilliseconds: 200).isEmpty)
    }

    @Test func aTransactionOpenLongerThanItsTimeoutIsAbortedAndItsProducerFenced() throws {
        let log = EmbeddedLog.inMemory(configuration: .init(maintenanceIntervalMilliseconds: 10))
        defer { try? log.close() }
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let producer = try log.makeTransactionalProducer(ProducerConfiguration(extra: ["transaction.timeout.ms": "100"]),
                                                         transactionalID: "slow")
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: "t", value: payload("stuck")))
        // On a loaded machine the timeout may already have fenced the producer here.
        try? producer.flush()
        let deadline = ClientLock.monotonicMilliseconds() + 5_000
        while try log.admin.describeTopic("t").partitions[0].lastStableOffset == 0 && ClientLock.monotonicMilliseconds() < deadline {
            usleep(10_000)
        }
        let partition = try log.admin.describeTopic("t").partitions[0]
        #expect(partition.lastStableOffset == partition.endOffset)
        do {
            try producer.commitTransaction()
            Issue.record("a timed-out transaction committed")
        } catch let error as EddyError {
            #expect(error.code == .producerFenced)
            #expect(error.message.contains("transaction.timeout.ms"), "\(error)")
        }
        expectEddyError(.invalidArgument) {
            _ = try log.makeTransactionalProducer(ProducerConfiguration(extra: ["transaction.timeout.ms": "soon"]), transactionalID: "x")
        }
    }

    /// Seeded: interleaves several transactional producers, committing or aborting at random;
    /// a read_committed reader sees exactly the committed records, in per-producer order.
    @Test(arguments: BackendKind.allCases)
    func randomInterleavedTransactionsShowExactlyTheCommittedRecords(kind: BackendKind) throws {
        let seed = clientTestSeed("randomInterleavedTransactionsShowExactlyTheCommittedRecords")
        var random = ClientTestRandom(seed: seed)
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 3)
        let producers = try (0..<3).map { i in
            try fixture.backend.makeTransactionalProducer(ProducerConfiguration(batchBytes: 512), transactionalID: fixture.topicName("tx-random"))
        }
        for producer in producers {
            try producer.initTransactions()
            try producer.beginTransaction()
        }
        var expected: Set<String> = []
        var pending: [[String]] = Array(repeating: [], count: producers.count)
        for step in 0..<400 {
            let index = Int(random.next() % UInt64(producers.count))
            let producer = producers[index]
            switch random.next() % 10 {
            case 0:
                try producer.commitTransaction()
                expected.formUnion(pending[index])
                pending[index] = []
                try producer.beginTransaction()
            case 1:
                try producer.abortTransaction()
                pending[index] = []
                try producer.beginTransaction()
            default:
                let value = "p\(index)-\(step)"
                try producer.send(ProducerRecord(topic: topic, partition: Int(random.next() % 3), value: payload(value)))
                pending[index].append(value)
            }
        }
        for (index, producer) in producers.enumerated() {
            try producer.commitTransaction()
            expected.formUnion(pending[index])
        }
        let records = try readAll(fixture, topic, partitions: 3, isolation: .readCommitted, expecting: expected.count)
        let seen = records.map { String(decoding: $0.value!, as: UTF8.self) }
        #expect(seen.count == expected.count, "seed \(seed)")
        #expect(Set(seen) == expected, "seed \(seed)")
    }
}

/// SplitMix64: a small seeded generator for reproducible randomised tests.
struct ClientTestRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
