import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// Collects results from many threads.
final class ThreadResults: @unchecked Sendable {
    private let lock = ClientLock()
    private var values: [String] = []
    private var errors: [String] = []

    func add(_ batch: [String]) { lock.withLock { values += batch } }
    func fail(_ error: String) { lock.withLock { errors.append(error) } }
    var count: Int { lock.withLock { values.count } }
    var all: [String] { lock.withLock { values } }
    var failures: [String] { lock.withLock { errors } }
}

/// Runs `body` on `count` threads and waits for all of them.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    for index in 0..<count {
        let thread = Thread {
            body(index)
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    for _ in 0..<count { done.wait() }
}

@Suite struct EmbeddedLogTests {
    private func inMemoryEnvironment() -> LogEnvironment {
        LogEnvironment(fileSystem: InMemoryFileSystem(), clock: SystemLogClock())
    }

    @Test func topicsDataAndCommittedOffsetsSurviveCloseAndReopen() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        var log: EmbeddedLog? = try EmbeddedLog(directory: directory)
        try log!.admin.createTopic("orders", configuration: TopicConfiguration(partitions: 3, cleanupPolicy: .compactDelete, fsync: .always))
        let producer = try log!.makeProducer(ProducerConfiguration())
        for i in 0..<90 { try producer.send(ProducerRecord(topic: "orders", key: payload("k\(i)"), value: payload("v\(i)"))) }
        try producer.close()
        let consumer = try log!.makeConsumer(ConsumerConfiguration(groupID: "billing"))
        try consumer.subscribe(["orders"], listener: nil)
        #expect(try pollRecords(consumer, count: 90).count == 90)
        try consumer.commitPositions()
        try consumer.commit([TopicPartition("orders", 0): 3])
        let committed = try log!.admin.committedOffsets(group: "billing")
        try consumer.close()
        try log!.close()
        log = nil

        let reopened = try EmbeddedLog(directory: directory)
        defer { try? reopened.close() }
        #expect(try reopened.admin.listTopics() == [EmbeddedLog.offsetsTopic, EmbeddedLog.transactionStateTopic, "orders"])
        let description = try reopened.admin.describeTopic("orders")
        #expect(description.configuration.cleanupPolicy == .compactDelete)
        #expect(description.configuration.fsync == .always)
        #expect(description.partitions.map(\.endOffset).reduce(0, +) == 90)
        #expect(try reopened.admin.committedOffsets(group: "billing") == committed)
        #expect(committed[TopicPartition("orders", 0)] == 3)
        let again = try reopened.makeConsumer(ConsumerConfiguration(groupID: "billing"))
        try again.subscribe(["orders"], listener: nil)
        let rest = try pollRecords(again, count: 100, timeoutMilliseconds: 300)
        #expect(rest.count == Int(description.partitions[0].endOffset) - 3)
        #expect(rest.allSatisfy { $0.partition == 0 && $0.offset >= 3 })
    }

    @Test func aLogDroppedWithoutCloseReleasesItsDirectory() throws {
        let directory = try FixtureDirectory.make()
        defer { FixtureDirectory.remove(directory) }
        do {
            let log = try EmbeddedLog(directory: directory, configuration: .init(maintenanceIntervalMilliseconds: 1))
            try log.admin.createTopic("t", configuration: TopicConfiguration())
            usleep(20_000)
        }
        let again = try EmbeddedLog(directory: directory)
        #expect(try again.admin.listTopics().contains("t"))
        try again.close()
    }

    @Test func aTransactionLeftOpenByACrashIsAbortedWhenTheLogReopens() throws {
        let environment = inMemoryEnvironment()
        let first = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
        try first.admin.createTopic("t", configuration: TopicConfiguration(partitions: 2))
        let producer = try first.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "app")
        try producer.initTransactions()
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: "t", partition: 0, value: payload("committed")))
        try producer.commitTransaction()
        try producer.beginTransaction()
        for p in 0..<2 { try producer.send(ProducerRecord(topic: "t", partition: p, value: payload("open"))) }
        try producer.flush()
        #expect(try first.admin.describeTopic("t").partitions.map(\.lastStableOffset) == [2, 0])
        first.simulateCrash()

        let second = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
        defer { try? second.close() }
        let partitions = try second.admin.describeTopic("t").partitions
        #expect(partitions.allSatisfy { $0.lastStableOffset == $0.endOffset })
        let consumer = try second.makeConsumer(ConsumerConfiguration(isolation: .readCommitted))
        try consumer.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        let records = try pollRecords(consumer, count: 2, timeoutMilliseconds: 300)
        #expect(records.map(\.value) == [payload("committed")])
        // The same transactional id carries on with a newer epoch.
        let next = try second.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "app")
        try next.initTransactions()
        try next.beginTransaction()
        try next.send(ProducerRecord(topic: "t", partition: 1, value: payload("later")))
        try next.commitTransaction()
        #expect(try pollRecords(consumer, count: 1).map(\.value) == [payload("later")])
    }

    @Test func aTransactionPastItsCommitPointIsCompletedWhenTheLogReopens() throws {
        let environment = inMemoryEnvironment()
        let first = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
        try first.admin.createTopic("in", configuration: TopicConfiguration(partitions: 1))
        try first.admin.createTopic("out", configuration: TopicConfiguration(partitions: 2))
        let consumer = try first.makeConsumer(ConsumerConfiguration(groupID: "eos"))
        try consumer.subscribe(["in"], listener: nil)
        _ = try consumer.poll(timeoutMilliseconds: 0)
        let producer = try first.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "eos-app")
        try producer.initTransactions()
        try producer.beginTransaction()
        for p in 0..<2 { try producer.send(ProducerRecord(topic: "out", partition: p, value: payload("result-\(p)"))) }
        try producer.sendOffsetsToTransaction([TopicPartition("in", 0): 42], group: consumer.groupMetadata()!)
        first.transactions.failAfterCommitPoint = true
        expectEddyError(.io) { try producer.commitTransaction() }
        // The commit point is written; nothing is visible yet.
        #expect(try first.admin.committedOffsets(group: "eos").isEmpty)
        #expect(try first.admin.describeTopic("out").partitions.map(\.lastStableOffset) == [0, 0])
        first.simulateCrash()

        let second = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
        defer { try? second.close() }
        #expect(try second.admin.committedOffsets(group: "eos") == [TopicPartition("in", 0): 42])
        let reader = try second.makeConsumer(ConsumerConfiguration(isolation: .readCommitted))
        try reader.assign([TopicPartition("out", 0), TopicPartition("out", 1)])
        let records = try pollRecords(reader, count: 2)
        #expect(Set(records.map(\.value!)) == [payload("result-0"), payload("result-1")])
    }

    @Test func producerIDsAreNeverReusedAcrossReopens() throws {
        let environment = inMemoryEnvironment()
        var seen: Set<Int64> = []
        for _ in 0..<3 {
            let log = try EmbeddedLog(directory: nil, environment: environment, configuration: .init())
            for i in 0..<5 {
                let (producerID, _) = try log.transactions.initTransactions("id-\(UUID().uuidString)-\(i)")
                #expect(seen.insert(producerID).inserted)
            }
            try log.close()
        }
    }

    @Test func internalTopicsExistAndCannotBeDeletedOrRecreated() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        let topics = try log.admin.listTopics()
        #expect(topics.contains(EmbeddedLog.offsetsTopic))
        #expect(topics.contains(EmbeddedLog.transactionStateTopic))
        expectEddyError(.invalidArgument) { try log.admin.deleteTopic(EmbeddedLog.offsetsTopic) }
        expectEddyError(.topicExists) { try log.admin.createTopic(EmbeddedLog.offsetsTopic, configuration: TopicConfiguration()) }
        #expect(try log.admin.describeTopic(EmbeddedLog.offsetsTopic).configuration.cleanupPolicy == .compact)
    }

    @Test func closingTheLogMakesItsClientsFailWithClosed() throws {
        let log = EmbeddedLog.inMemory()
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let producer = try log.makeProducer(ProducerConfiguration())
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition("t", 0)])
        try log.close()
        try log.close()  // idempotent
        expectEddyError(.closed) { _ = try consumer.poll(timeoutMilliseconds: 0) }
        expectEddyError(.closed) { try producer.send(ProducerRecord(topic: "t", value: payload("x"))) }
        expectEddyError(.closed) { _ = try log.admin.listTopics() }
        expectEddyError(.closed) { _ = try log.makeProducer(ProducerConfiguration()) }
    }

    @Test func aConsumerBlockedInPollWakesWhenTheLogCloses() throws {
        let log = EmbeddedLog.inMemory()
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition("t", 0)])
        let thread = Thread {
            usleep(100_000)
            try? log.close()
        }
        thread.start()
        let started = ClientLock.monotonicMilliseconds()
        expectEddyError(.closed) { _ = try consumer.poll(timeoutMilliseconds: 10_000) }
        #expect(ClientLock.monotonicMilliseconds() - started < 5_000)
    }

    @Test func lingeringRecordsReachTheirPartitionWithoutAFlush() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let producer = try log.makeProducer(ProducerConfiguration(lingerMilliseconds: 500))
        var acknowledged: [Offset] = []
        let sentAt = ClientLock.monotonicMilliseconds()
        try producer.send(ProducerRecord(topic: "t", value: payload("a"))) { result in
            if case .success(let metadata) = result { acknowledged.append(metadata.offset) }
        }
        #expect(acknowledged.isEmpty)
        #expect(try log.admin.describeTopic("t").partitions[0].endOffset == 0)
        // The owner stays idle: the log's linger thread appends the batch.
        let reader = try log.makeConsumer(ConsumerConfiguration())
        try reader.assign([TopicPartition("t", 0)])
        let records = try reader.poll(timeoutMilliseconds: 10_000)
        #expect(records.map(\.value) == [payload("a")])
        #expect(ClientLock.monotonicMilliseconds() - sentAt >= 490)
        // The handler runs on the owner's thread, at its next call.
        #expect(acknowledged.isEmpty)
        producer.poll()
        #expect(acknowledged == [0])
        // A full batch goes at once, linger or not.
        let eager = try log.makeProducer(ProducerConfiguration(batchBytes: 1_000, lingerMilliseconds: 60_000))
        for _ in 0..<30 { try eager.send(ProducerRecord(topic: "t", value: [UInt8](repeating: 0, count: 100))) }
        #expect(try log.admin.describeTopic("t").partitions[0].endOffset > 1)
    }

    @Test func anInMemoryLogCanRunOnAClockOfTheCallersChoosing() throws {
        let clock = ManualLogClock(nowMilliseconds: 1_234_000)
        let log = EmbeddedLog.inMemory(clock: { clock.nowMilliseconds })
        defer { try? log.close() }
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let producer = try log.makeProducer(ProducerConfiguration())
        try producer.send(ProducerRecord(topic: "t", value: payload("a")))
        clock.advance(by: 5)
        try producer.send(ProducerRecord(topic: "t", value: payload("b")))
        try producer.flush()
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition("t", 0)])
        #expect(try pollRecords(consumer, count: 2).map(\.timestamp) == [1_234_000, 1_234_005])
    }

    @Test func anAppendWakesOnlyConsumersOfItsTopic() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        try log.admin.createTopic("a", configuration: TopicConfiguration())
        try log.admin.createTopic("b", configuration: TopicConfiguration())
        let producer = try log.makeProducer(ProducerConfiguration(lingerMilliseconds: 0))
        let waiter = DataWaiter()
        log.beginWaiting(waiter, topics: ["a"])
        try producer.send(ProducerRecord(topic: "b", value: payload("elsewhere")))
        #expect(!waiter.isSignalled)
        try producer.send(ProducerRecord(topic: "a", value: payload("here")))
        #expect(waiter.isSignalled)
        log.endWaiting(waiter)
        log.beginWaiting(waiter, topics: ["a"])
        log.notifyData()  // group changes wake everyone
        #expect(waiter.isSignalled)
        log.endWaiting(waiter)
    }

    @Test func aDeliveryHandlerMaySendAgainWithoutDeadlock() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let producer = try log.makeProducer(ProducerConfiguration(lingerMilliseconds: 0))
        var chained: [Offset] = []
        try producer.send(ProducerRecord(topic: "t", value: payload("first"))) { result in
            guard case .success(let metadata) = result else { return }
            chained.append(metadata.offset)
            try? producer.send(ProducerRecord(topic: "t", value: payload("second"))) { result in
                if case .success(let metadata) = result { chained.append(metadata.offset) }
            }
        }
        try producer.flush()
        #expect(chained == [0, 1])
        #expect(try log.admin.describeTopic("t").partitions[0].endOffset == 2)
    }

    @Test func autoCommitCommitsPositionsWhenTheConsumerCloses() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        try log.admin.createTopic("t", configuration: TopicConfiguration())
        let producer = try log.makeProducer(ProducerConfiguration())
        for i in 0..<5 { try producer.send(ProducerRecord(topic: "t", value: payload("\(i)"))) }
        try producer.flush()
        let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: "auto", enableAutoCommit: true,
                                                                  extra: ["auto.commit.interval.ms": "60000"]))
        try consumer.subscribe(["t"], listener: nil)
        #expect(try pollRecords(consumer, count: 5).count == 5)
        #expect(try log.admin.committedOffsets(group: "auto").isEmpty)
        try consumer.close()
        #expect(try log.admin.committedOffsets(group: "auto") == [TopicPartition("t", 0): 5])
    }

    @Test func theMaintenanceThreadAppliesTimeRetention() throws {
        let log = EmbeddedLog.inMemory(configuration: .init(maintenanceIntervalMilliseconds: 10,
                                                            retentionCheckIntervalMilliseconds: 20))
        defer { try? log.close() }
        try log.admin.createTopic("old", configuration: TopicConfiguration(retentionMilliseconds: 60_000, segmentBytes: 1_024))
        let producer = try log.makeProducer(ProducerConfiguration())
        let longAgo = log.now - 3_600_000
        for i in 0..<40 {
            try producer.send(ProducerRecord(topic: "old", value: [UInt8](repeating: UInt8(i), count: 200), timestamp: longAgo))
            try producer.flush()
        }
        let deadline = ClientLock.monotonicMilliseconds() + 5_000
        while try log.admin.describeTopic("old").partitions[0].startOffset == 0 && ClientLock.monotonicMilliseconds() < deadline {
            usleep(20_000)
        }
        let partition = try log.admin.describeTopic("old").partitions[0]
        #expect(partition.startOffset > 0)
        #expect(partition.endOffset == 40)
    }

    /// Seeded: producers, a consumer group and a standalone reader on many threads at once.
    @Test func manyProducersAndConsumersOnManyThreadsAtOnce() throws {
        let seed = clientTestSeed("manyProducersAndConsumersOnManyThreadsAtOnce")
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        let partitions = 6
        try log.admin.createTopic("load", configuration: TopicConfiguration(partitions: partitions))
        let producers = 4, perProducer = 2_500
        let total = producers * perProducer
        let grouped = ThreadResults()
        let standalone = ThreadResults()
        let producedDone = ThreadResults()

        runThreads(producers + 3) { index in
            do {
                if index < producers {
                    var random = ClientTestRandom(seed: seed &+ UInt64(index))
                    let producer = try log.makeProducer(ProducerConfiguration(batchBytes: 4_096, lingerMilliseconds: 1))
                    for i in 0..<perProducer {
                        let size = Int(random.next() % 64)
                        let keyed = random.next() % 2 == 0
                        try producer.send(ProducerRecord(topic: "load", key: keyed ? payload("p\(index)-\(i)") : nil,
                                                         value: payload("p\(index)-\(i)") + [UInt8](repeating: 7, count: size)))
                    }
                    try producer.close()
                    producedDone.add(["\(index)"])
                } else if index < producers + 2 {
                    let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: "workers", maximumPollRecords: 500))
                    let listener = RecordingListener()
                    listener.consumer = consumer
                    listener.commitOnRevoke = true
                    try consumer.subscribe(["load"], listener: listener)
                    let deadline = ClientLock.monotonicMilliseconds() + 60_000
                    while grouped.count < total && ClientLock.monotonicMilliseconds() < deadline {
                        let records = try consumer.poll(timeoutMilliseconds: 100)
                        grouped.add(records.map { String(decoding: $0.value!.prefix { $0 != 7 }, as: UTF8.self) })
                        if !records.isEmpty { try consumer.commitPositions() }
                    }
                    if !listener.commitErrors.isEmpty { grouped.fail("revoke commits failed: \(listener.commitErrors)") }
                    try consumer.close()
                } else {
                    let consumer = try log.makeConsumer(ConsumerConfiguration(isolation: .readUncommitted, maximumPollRecords: 300))
                    try consumer.assign((0..<partitions).map { TopicPartition("load", $0) })
                    var seen = 0
                    var last: [Int: Offset] = [:]
                    let deadline = ClientLock.monotonicMilliseconds() + 60_000
                    while seen < total && ClientLock.monotonicMilliseconds() < deadline {
                        for record in try consumer.poll(timeoutMilliseconds: 100) {
                            if let previous = last[record.partition], record.offset != previous + 1 {
                                standalone.fail("partition \(record.partition): offset \(record.offset) after \(previous)")
                            }
                            last[record.partition] = record.offset
                            seen += 1
                        }
                    }
                    standalone.add(Array(repeating: "", count: seen))
                }
            } catch {
                grouped.fail("thread \(index): \(error)")
            }
        }
        #expect(producedDone.count == producers)
        #expect(grouped.failures.isEmpty, "seed \(seed): \(grouped.failures)")
        #expect(standalone.failures.isEmpty, "seed \(seed): \(standalone.failures)")
        #expect(standalone.count == total, "seed \(seed)")
        let values = grouped.all
        #expect(values.count == total, "seed \(seed): \(values.count) records, duplicates \(values.count - Set(values).count)")
        #expect(Set(values).count == total, "seed \(seed)")
    }

    @Test func transactionalProducersOnManyThreadsCommitExactlyTheirRecords() throws {
        let log = EmbeddedLog.inMemory()
        defer { try? log.close() }
        try log.admin.createTopic("tx", configuration: TopicConfiguration(partitions: 3))
        let results = ThreadResults()
        let threads = 4, transactions = 40
        runThreads(threads) { index in
            do {
                let producer = try log.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "writer-\(index)")
                try producer.initTransactions()
                for t in 0..<transactions {
                    try producer.beginTransaction()
                    for r in 0..<5 { try producer.send(ProducerRecord(topic: "tx", key: payload("\(index)-\(t)-\(r)"), value: payload("\(index)-\(t)-\(r)"))) }
                    if t % 4 == 3 { try producer.abortTransaction() } else { try producer.commitTransaction() }
                }
                try producer.close()
            } catch {
                results.fail("writer \(index): \(error)")
            }
        }
        #expect(results.failures.isEmpty, "\(results.failures)")
        let consumer = try log.makeConsumer(ConsumerConfiguration(isolation: .readCommitted))
        try consumer.assign((0..<3).map { TopicPartition("tx", $0) })
        let expected = threads * transactions * 3 / 4 * 5
        let records = try pollRecords(consumer, count: expected + 1, timeoutMilliseconds: 1_000)
        #expect(records.count == expected)
        #expect(records.allSatisfy { record in
            let parts = String(decoding: record.value!, as: UTF8.self).split(separator: "-")
            return Int(parts[1])! % 4 != 3
        })
    }
}
