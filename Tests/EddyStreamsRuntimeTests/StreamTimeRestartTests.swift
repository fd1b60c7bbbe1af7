import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Testing

/// Stream time across a stop and restart of a ``StreamsApplication`` (Kafka Streams'
/// partition time in the committed offsets' metadata): a windowed count with no grace on the
/// embedded log, run once over input that arrives in two chunks with a restart in between, and
/// once uninterrupted over the same input.
@Suite("Stream time survives a restart", .serialized)
struct StreamTimeRestartTests {
    @Test("a record already late before a restart is dropped after it, exactly as in an uninterrupted run, and counted",
          arguments: [ProcessingGuarantee.exactlyOnce, .atLeastOnce, .atMostOnce])
    func lateRecordAfterRestart(_ guarantee: ProcessingGuarantee) throws {
        let fixture = try StreamTimeFixture()
        defer { fixture.remove() }
        // Partition 0's stream time reaches 20000, closing window [0, 10000) of every key;
        // partition 1 (another task) only reaches 5000.
        try fixture.produce([(0, "a", 1_000), (0, "b", 20_000), (1, "c", 5_000)])
        let first = try fixture.runToIdle("restarted", guarantee)
        #expect(first.droppedLateRecords == 0 && first.processedRecords == 3)
        #expect(try fixture.committedPartitionTimes("restarted") == [0: 20_000, 1: 5_000])

        // After the restart a@2000 is late on partition 0; c@6000 is not on partition 1.
        try fixture.produce([(0, "a", 2_000), (0, "d", 25_000), (1, "c", 6_000)])
        let second = try fixture.runToIdle("restarted", guarantee)
        #expect(second.droppedLateRecords == 1, "\(second)")
        #expect(second.processedRecords == 3)
        #expect(try fixture.committedPartitionTimes("restarted") == [0: 25_000, 1: 6_000])

        let reference = try fixture.runToIdle("uninterrupted", guarantee)
        #expect(reference.droppedLateRecords == 1 && reference.processedRecords == 6)
        let expected = ["a@0": [1], "b@20000": [1], "c@0": [1, 2], "d@20000": [1]]
        #expect(try fixture.output("restarted") == expected)
        #expect(try fixture.output("uninterrupted") == expected)

        // The metadata is what carries it: after an offset reset (which commits offsets without
        // metadata, as `eddy app reset` does) the stream time is unknown again and the same
        // kind of late record is counted in the closed window.
        let admin = fixture.log.admin
        try admin.alterCommittedOffsets(group: "restarted", offsets: try admin.committedOffsets(group: "restarted"))
        #expect(try fixture.committedPartitionTimes("restarted").isEmpty)
        try fixture.produce([(0, "a", 3_000)])
        let afterReset = try fixture.runToIdle("restarted", guarantee)
        #expect(afterReset.droppedLateRecords == 0, "\(afterReset)")
        // (The window was already expired from the store too, so its count starts again.)
        #expect(try fixture.output("restarted")["a@0"]?.count == 2)
    }

    @Test("tasks re-initialised after a failed commit resume the committed stream time")
    func failedCommitResumesStreamTime() throws {
        let fixture = try StreamTimeFixture()
        defer { fixture.remove() }
        try fixture.produce([(0, "a", 1_000), (0, "b", 20_000), (1, "c", 5_000)])
        let logged = LogLines()
        let app = try fixture.application("fenced", .exactlyOnce, log: { logged.append($0) })
        try app.start()
        defer { app.close() }
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        // A new incarnation of the thread's transactional id fences its producer: the commit
        // of the next records fails, and the tasks are rebuilt from the last commit and
        // process those records again.
        let zombie = try fixture.log.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "fenced-0")
        try zombie.initTransactions()
        try fixture.produce([(0, "a", 2_000), (0, "d", 25_000), (1, "c", 6_000)])
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        #expect(app.failure == nil, "\(String(describing: app.failure))")
        app.close()
        #expect(logged.all.contains { $0.contains("re-initialising its tasks") }, "no failed commit: \(logged.all)")
        // a@2000 was dropped by the rebuilt task too (stream time 20000 from the commit); each
        // attempt counted it.
        #expect(app.metrics.droppedLateRecords >= 1)
        #expect(try fixture.output("fenced") == ["a@0": [1], "b@20000": [1], "c@0": [1, 2], "d@20000": [1]])
    }
}

/// An on-disk embedded log with a 2-partition input topic, and runs of a windowed count
/// (10-second tumbling windows, no grace, an update per accepted record) to idle.
final class StreamTimeFixture {
    let root: String
    let log: EmbeddedLog
    static let partitions = 2
    /// Whether the count emits final results only (``EmitStrategy/onWindowClose``), kept 60 s.
    let emitFinal: Bool

    init(emitFinal: Bool = false) throws {
        self.emitFinal = emitFinal
        root = NSTemporaryDirectory() + "/eddy-stream-time-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        log = try EmbeddedLog(directory: root + "/log")
        for topic in ["events", "restarted-out", "uninterrupted-out", "fenced-out", "wiped-out"] {
            try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: Self.partitions))
        }
    }

    func remove() {
        try? log.close()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Appends (partition, key, timestamp) records to `events`.
    func produce(_ records: [(Int, String, Timestamp)]) throws {
        let producer = try log.makeProducer(ProducerConfiguration())
        for (partition, key, timestamp) in records {
            try producer.send(ProducerRecord(topic: "events", partition: partition, key: Array(key.utf8),
                                             value: Array("v".utf8), timestamp: timestamp))
        }
        try producer.close()
    }

    func topology(output: String) throws -> Topology {
        let builder = StreamsBuilder()
        let windowed = builder.stream("events", key: Serdes.string, value: Serdes.string)
            .groupByKey()
            .windowed(by: .of(size: 10_000, grace: 0))
        let counts = emitFinal ? windowed.emit(.onWindowClose).count(materializedAs: "counts", retention: 60_000)
                               : windowed.count(materializedAs: "counts")
        counts.toStream()
            .map { windowed, count in ("\(windowed.key)@\(windowed.window.start)", "\(count ?? -1)") }
            .to(output, key: Serdes.string, value: Serdes.string)
        return try builder.build()
    }

    /// Application `id` with one thread, writing to `<id>-out`.
    func application(_ id: String, _ guarantee: ProcessingGuarantee,
                     log: @escaping @Sendable (String) -> Void = { _ in }) throws -> StreamsApplication {
        try StreamsApplication(topology: try topology(output: "\(id)-out"), backend: self.log,
                               configuration: StreamsConfiguration(applicationID: id, stateDirectory: root + "/state",
                                                                   threads: 1, processingGuarantee: guarantee,
                                                                   commitInterval: .milliseconds(50), log: log))
    }

    /// Runs application `id` (output `<id>-out`) until it has processed and committed all
    /// input, closes it, and returns its task counters.
    func runToIdle(_ id: String, _ guarantee: ProcessingGuarantee) throws -> TaskMetrics {
        let app = try application(id, guarantee)
        try app.runToIdle()
        return app.metrics
    }

    /// The partition times committed for group `id`, decoded by hand from Kafka Streams'
    /// encoding (Base64 of version byte 1 and a big-endian Int64), per partition of `events`.
    func committedPartitionTimes(_ id: String) throws -> [Int: Timestamp] {
        let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: id))
        defer { try? consumer.close() }
        let committed = try consumer.committedWithMetadata((0..<Self.partitions).map { TopicPartition("events", $0) })
        var times: [Int: Timestamp] = [:]
        for (tp, entry) in committed where !entry.metadata.isEmpty {
            let bytes = try #require(Data(base64Encoded: entry.metadata).map(Array.init))
            // Version 1 is the time alone; version 2 adds processor metadata after it.
            #expect(bytes.count == 9 && bytes[0] == 1 || bytes.count > 13 && bytes[0] == 2, "metadata \(entry.metadata)")
            times[tp.partition] = bytes[1..<9].reduce(Int64(0)) { ($0 << 8) | Int64($1) }
        }
        return times
    }

    /// The committed counts of application `id`, per window key in output order.
    func output(_ id: String) throws -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for r in try log.records(of: "\(id)-out").joined() {
            result[String(decoding: r.key ?? [], as: UTF8.self), default: []].append(Int(String(decoding: r.value ?? [], as: UTF8.self)) ?? -1)
        }
        return result
    }
}
