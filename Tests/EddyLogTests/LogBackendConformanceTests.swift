import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// The backends every conformance test runs against. A Kafka backend adds a case here (and a
/// branch in ``BackendFixture/init(_:)``); the tests only use the EddyCore protocols.
enum BackendKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case embeddedOnDisk = "embedded log on disk"
    case embeddedInMemory = "embedded log in memory"
    var testDescription: String { rawValue }
}

/// A backend for one test, torn down (closed, files removed) when the fixture goes away.
final class BackendFixture {
    let kind: BackendKind
    let backend: any LogBackend
    let directory: String?
    private var topicNumber = 0

    init(_ kind: BackendKind, configuration: EmbeddedLog.Configuration = .init()) throws {
        self.kind = kind
        switch kind {
        case .embeddedOnDisk:
            let directory = try FixtureDirectory.make()
            self.directory = directory
            backend = try EmbeddedLog(directory: directory, configuration: configuration)
        case .embeddedInMemory:
            directory = nil
            backend = EmbeddedLog.inMemory(configuration: configuration)
        }
    }

    deinit {
        try? (backend as? EmbeddedLog)?.close()
        if let directory { FixtureDirectory.remove(directory) }
    }

    var admin: any LogAdmin { backend.admin }

    /// A topic name no other test of this fixture uses (backends such as Kafka are shared).
    func topicName(_ prefix: String = "topic") -> String {
        topicNumber += 1
        return "\(prefix)-\(topicNumber)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Creates a fresh topic with `partitions` partitions and returns its name.
    func createTopic(partitions: Int = 1, _ configure: (inout TopicConfiguration) -> Void = { _ in }) throws -> String {
        let name = topicName()
        var configuration = TopicConfiguration(partitions: partitions)
        configure(&configuration)
        try admin.createTopic(name, configuration: configuration)
        return name
    }
}

enum FixtureDirectory {
    static func make() throws -> String {
        var template = Array("/tmp/eddy-log-test-XXXXXX".utf8CString)
        guard let pointer = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw EddyError.system("mkdtemp", path: "/tmp", errno: errno)
        }
        return String(cString: pointer)
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Polls until `count` records arrived or `timeoutMilliseconds` passed.
func pollRecords(_ consumer: any LogConsumer, count: Int, timeoutMilliseconds: Int = 5_000) throws -> [ConsumerRecord] {
    var records: [ConsumerRecord] = []
    let deadline = ClientLock.monotonicMilliseconds() + Int64(timeoutMilliseconds)
    while records.count < count {
        let left = deadline - ClientLock.monotonicMilliseconds()
        if left <= 0 { break }
        records += try consumer.poll(timeoutMilliseconds: Int(min(left, 200)))
    }
    return records
}

func payload(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The seed of a randomised test: `EDDY_SEED` when set (to replay a failure), else a fresh
/// one. Printed either way; failing expectations repeat it.
func clientTestSeed(_ test: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
    print("\(test) seed \(seed) (replay with EDDY_SEED=\(seed))")
    return seed
}

func expectEddyError(_ code: EddyError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected EddyError .\(code.rawValue), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as EddyError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected EddyError .\(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct LogBackendConformanceTests {
    @Test(arguments: BackendKind.allCases)
    func recordsRoundTripWithKeysHeadersTombstonesAndTimestamps(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        let sent = [
            ProducerRecord(topic: topic, key: payload("k1"), value: payload("v1"), headers: [Header("h", "x")], timestamp: 1_000),
            ProducerRecord(topic: topic, key: nil, value: payload("no key"), timestamp: 1_001),
            ProducerRecord(topic: topic, key: payload("k1"), value: nil, headers: [Header(key: "n", value: nil)], timestamp: 1_002),
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
        #expect(delivered.map(\.timestamp) == [1_000, 1_001, 1_002, 1_003])

        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0)])
        let records = try pollRecords(consumer, count: sent.count)
        #expect(records.map(\.offset) == [0, 1, 2, 3])
        #expect(records.map(\.key) == sent.map(\.key))
        #expect(records.map(\.value) == sent.map(\.value))
        #expect(records.map(\.headers) == sent.map(\.headers))
        #expect(records.map(\.timestamp) == sent.map { $0.timestamp! })
        #expect(try consumer.position(TopicPartition(topic, 0)) == 4)
        try consumer.close()
        try producer.close()
    }

    @Test(arguments: BackendKind.allCases)
    func keyedRecordsLandOnTheDefaultPartitionersPartition(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 7)
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        var expected: [String: Int] = [:]
        for i in 0..<200 {
            let key = "key-\(i)"
            expected[key] = DefaultPartitioner.partition(key: payload(key), count: 7)
            try producer.send(ProducerRecord(topic: topic, key: payload(key), value: payload("\(i)")))
        }
        try producer.flush()
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration())
        try consumer.assign((0..<7).map { TopicPartition(topic, $0) })
        let records = try pollRecords(consumer, count: 200)
        #expect(records.count == 200)
        for record in records {
            #expect(expected[String(decoding: record.key!, as: UTF8.self)] == record.partition)
        }
    }

    @Test(arguments: BackendKind.allCases)
    func keylessRecordsAreSpreadOverEveryPartition(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 4)
        // Small batches: the sticky partition moves on after each batch.
        let producer = try fixture.backend.makeProducer(ProducerConfiguration(batchBytes: 1_024))
        for i in 0..<400 { try producer.send(ProducerRecord(topic: topic, value: [UInt8](repeating: UInt8(i % 256), count: 50))) }
        try producer.flush()
        let description = try fixture.admin.describeTopic(topic)
        #expect(description.partitions.map(\.endOffset).reduce(0, +) == 400)
        #expect(description.partitions.allSatisfy { $0.endOffset > 0 })
    }

    @Test(arguments: BackendKind.allCases)
    func anOversizedRecordIsRefusedAtSendWithoutWritingAnything(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic { $0.maximumRecordBytes = 10_000 }
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        expectEddyError(.recordTooLarge) {
            try producer.send(ProducerRecord(topic: topic, value: [UInt8](repeating: 1, count: 10_001)))
        }
        try producer.send(ProducerRecord(topic: topic, value: [UInt8](repeating: 1, count: 9_000)))
        try producer.flush()
        #expect(try fixture.admin.describeTopic(topic).partitions[0].endOffset == 1)
    }

    @Test(arguments: BackendKind.allCases)
    func unknownTopicsAndPartitionsAreClearErrors(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        expectEddyError(.unknownTopic) { try producer.send(ProducerRecord(topic: fixture.topicName("missing"), value: payload("x"))) }
        expectEddyError(.unknownPartition) { try producer.send(ProducerRecord(topic: topic, partition: 2, value: payload("x"))) }
        expectEddyError(.unknownTopic) { _ = try fixture.admin.describeTopic(fixture.topicName("missing")) }
        expectEddyError(.unknownTopic) { try fixture.admin.deleteTopic(fixture.topicName("missing")) }
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration())
        expectEddyError(.unknownTopic) { try consumer.assign([TopicPartition(fixture.topicName("missing"), 0)]) }
    }

    @Test(arguments: BackendKind.allCases)
    func invalidTopicNamesAreRejectedBeforeAnyPathIsBuilt(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let before = try fixture.directory.map { try FileManager.default.contentsOfDirectory(atPath: $0).sorted() }
        for name in ["../x", "a/b", "", String(repeating: "a", count: 250), ".", "..", "a b", "é"] {
            expectEddyError(.invalidName) { try fixture.admin.createTopic(name, configuration: TopicConfiguration()) }
        }
        let after = try fixture.directory.map { try FileManager.default.contentsOfDirectory(atPath: $0).sorted() }
        #expect(before == after)
        if let directory = fixture.directory {
            #expect(!FileManager.default.fileExists(atPath: directory + "/../x-0"))
        }
        // 249 characters is the longest legal name.
        try fixture.admin.createTopic(String(repeating: "b", count: 249), configuration: TopicConfiguration())
    }

    @Test(arguments: BackendKind.allCases)
    func topicsAreCreatedListedDescribedAndDeleted(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 3) { $0.retentionBytes = 1_000_000 }
        expectEddyError(.topicExists) { try fixture.admin.createTopic(topic, configuration: TopicConfiguration()) }
        expectEddyError(.invalidArgument) { try fixture.admin.createTopic(fixture.topicName(), configuration: TopicConfiguration(partitions: 0)) }
        #expect(try fixture.admin.listTopics().contains(topic))
        let description = try fixture.admin.describeTopic(topic)
        #expect(description.partitions.count == 3)
        #expect(description.configuration.retentionBytes == 1_000_000)
        #expect(description.partitions.allSatisfy { $0.startOffset == 0 && $0.endOffset == 0 && $0.lastStableOffset == 0 })
        try fixture.admin.deleteTopic(topic)
        #expect(try !fixture.admin.listTopics().contains(topic))
        // A topic created again under the same name starts empty.
        try fixture.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        #expect(try fixture.admin.describeTopic(topic).partitions[0].endOffset == 0)
    }

    @Test(arguments: BackendKind.allCases)
    func seekPositionTimestampsAndEndOffsetsAgree(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let tp = TopicPartition(topic, 0)
        let producer = try fixture.backend.makeProducer(ProducerConfiguration(batchBytes: 200))
        for i in 0..<50 { try producer.send(ProducerRecord(topic: topic, value: payload("v\(i)"), timestamp: 10_000 + Int64(i) * 10)) }
        try producer.flush()
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(maximumPollRecords: 7))
        try consumer.assign([tp])
        #expect(try consumer.beginningOffsets([tp]) == [tp: 0])
        #expect(try consumer.endOffsets([tp]) == [tp: 50])
        let first = try consumer.poll(timeoutMilliseconds: 1_000)
        #expect(first.map(\.offset) == Array(0..<7))
        #expect(try consumer.position(tp) == 7)
        try consumer.seek(tp, to: 30)
        #expect(try consumer.poll(timeoutMilliseconds: 1_000).first?.offset == 30)
        let times = try consumer.offsets(forTimes: [tp: 10_205])
        #expect(times[tp] == .some(21))
        #expect(try consumer.offsets(forTimes: [tp: 99_999])[tp] == .some(nil))
        #expect(try fixture.admin.offsets(forTimestamp: 10_000, partitions: [tp]) == [tp: 0])
        #expect(try fixture.admin.offsets(forTimestamp: 99_999, partitions: [tp]) == [tp: 50])
        try consumer.seekToEnd([tp])
        #expect(try consumer.poll(timeoutMilliseconds: 50).isEmpty)
        try consumer.seekToBeginning([tp])
        #expect(try consumer.poll(timeoutMilliseconds: 1_000).first?.offset == 0)
    }

    @Test(arguments: BackendKind.allCases)
    func pausedPartitionsAreNotReadUntilResumed(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        for p in 0..<2 { try producer.send(ProducerRecord(topic: topic, partition: p, value: payload("p\(p)"))) }
        try producer.flush()
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        consumer.pause([TopicPartition(topic, 1)])
        let records = try pollRecords(consumer, count: 2, timeoutMilliseconds: 300)
        #expect(records.map(\.partition) == [0])
        consumer.resume([TopicPartition(topic, 1)])
        #expect(try pollRecords(consumer, count: 1).map(\.partition) == [1])
    }

    @Test(arguments: BackendKind.allCases)
    func pollBlocksUntilAnotherThreadAppends(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0)])
        let backend = fixture.backend
        let thread = Thread {
            usleep(150_000)
            let producer = try? backend.makeProducer(ProducerConfiguration())
            try? producer?.send(ProducerRecord(topic: topic, value: payload("late")))
            try? producer?.flush()
        }
        thread.start()
        let started = ClientLock.monotonicMilliseconds()
        let records = try consumer.poll(timeoutMilliseconds: Int.max)
        let elapsed = ClientLock.monotonicMilliseconds() - started
        #expect(records.map(\.value) == [payload("late")])
        #expect(elapsed >= 100 && elapsed < 4_000, "poll returned after \(elapsed) ms")
        // With nothing to read, poll waits out its timeout.
        let idleStart = ClientLock.monotonicMilliseconds()
        #expect(try consumer.poll(timeoutMilliseconds: 100).isEmpty)
        #expect(ClientLock.monotonicMilliseconds() - idleStart >= 90)
    }

    @Test(arguments: BackendKind.allCases)
    func aStandaloneConsumerCommitsAndReadsBackOffsets(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic(partitions: 2)
        let group = fixture.topicName("group")
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(groupID: group))
        try consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        try consumer.commit([TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 7])
        #expect(try consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])
                == [TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 7])
        #expect(try fixture.admin.committedOffsets(group: group)[TopicPartition(topic, 1)] == 7)
        try fixture.admin.alterCommittedOffsets(group: group, offsets: [TopicPartition(topic, 1): 3])
        #expect(try fixture.admin.committedOffsets(group: group)[TopicPartition(topic, 1)] == 3)
        try fixture.admin.deleteCommittedOffsets(group: group, topics: [topic])
        #expect(try fixture.admin.committedOffsets(group: group).isEmpty)
        let noGroup = try fixture.backend.makeConsumer(ConsumerConfiguration())
        expectEddyError(.invalidState) { try noGroup.commit([TopicPartition(topic, 0): 1]) }
        expectEddyError(.invalidState) { _ = try noGroup.poll(timeoutMilliseconds: 10) }
        expectEddyError(.invalidState) { try noGroup.subscribe([topic], listener: nil) }
    }

    @Test(arguments: BackendKind.allCases)
    func aClosedProducerOrConsumerRefusesWork(kind: BackendKind) throws {
        let fixture = try BackendFixture(kind)
        let topic = try fixture.createTopic()
        let producer = try fixture.backend.makeProducer(ProducerConfiguration())
        try producer.close()
        expectEddyError(.closed) { try producer.send(ProducerRecord(topic: topic, value: payload("x"))) }
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration())
        try consumer.close()
        expectEddyError(.closed) { _ = try consumer.poll(timeoutMilliseconds: 0) }
    }
}
