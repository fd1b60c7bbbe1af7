import EddyCore
@testable import EddyKafka
import EddyStreams
import Foundation
import Testing

/// Stream time across a restart of a ``StreamsApplication`` on ``KafkaLog`` (a private mock
/// cluster): the partition time goes to the group as commit metadata and comes back when the
/// task is created again. At-least-once, because the mock stores offsets (and metadata) of
/// plain commits but not of commits sent in a transaction; the embedded log's runtime tests
/// cover exactly-once.
@Suite struct KafkaStreamTimeTests {
    @Test func aRecordLateBeforeARestartIsDroppedAfterIt() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        // The mock lets the second run in only once the first run's member timed out: keep that short.
        let log = try KafkaLog(mockCluster: cluster, extra: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"])
        let app = uniqueKafkaName("stream-time")
        let input = app + "-events"
        try log.admin.createTopic(input, configuration: TopicConfiguration(partitions: 1))
        try log.admin.createTopic(app + "-out", configuration: TopicConfiguration(partitions: 1))
        let stateDirectory = FileManager.default.temporaryDirectory.path + "/eddy-kafka-stream-time-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let lines = LogLines()

        func produce(_ records: [(String, Timestamp)]) throws {
            let producer = try log.makeProducer(ProducerConfiguration())
            for (key, timestamp) in records {
                try producer.send(ProducerRecord(topic: input, partition: 0, key: Array(key.utf8), value: Array("v".utf8), timestamp: timestamp))
            }
            try producer.flush()
            try producer.close()
        }
        /// Runs the application until it has processed `count` records in total, then closes it
        /// (a graceful close commits) and returns its counters.
        func run(untilProcessed count: Int) throws -> TaskMetrics {
            let builder = StreamsBuilder()
            builder.stream(input, key: Serdes.string, value: Serdes.string).groupByKey()
                .windowed(by: .of(size: 10_000, grace: 0)).count(materializedAs: "counts")
                .toStream().map { windowed, count in ("\(windowed.key)@\(windowed.window.start)", "\(count ?? -1)") }
                .to(app + "-out", key: Serdes.string, value: Serdes.string)
            let application = try StreamsApplication(
                topology: try builder.build(), backend: log,
                configuration: StreamsConfiguration(applicationID: app, stateDirectory: stateDirectory, threads: 1,
                                                    processingGuarantee: .atLeastOnce, commitInterval: .milliseconds(100),
                                                    log: { lines.append($0) }))
            try application.start()
            let done = try KafkaStreamsRuntimeTests.eventually(60) { application.processedRecordCount >= count }
            #expect(application.close())
            #expect(done, "processed \(application.processedRecordCount) of \(count); \(lines.all.suffix(5))")
            if let failure = application.failure { throw failure }
            return application.metrics
        }
        func committedTime() throws -> Timestamp? {
            let consumer = try log.makeConsumer(ConsumerConfiguration(groupID: app))
            defer { try? consumer.close() }
            let entry = try consumer.committedWithMetadata([TopicPartition(input, 0)])[TopicPartition(input, 0)]
            guard let metadata = entry?.metadata, let bytes = Data(base64Encoded: metadata), bytes.count == 9, bytes.first == 1 else { return nil }
            return bytes.dropFirst().reduce(Int64(0)) { ($0 << 8) | Int64($1) }
        }

        try produce([("a", 1_000), ("b", 20_000)])
        let first = try run(untilProcessed: 2)
        #expect(first.droppedLateRecords == 0)
        #expect(try committedTime() == 20_000)

        // Window [0, 10000) closed at stream time 20000, before the restart.
        try produce([("a", 2_000), ("d", 25_000)])
        let second = try run(untilProcessed: 2)
        #expect(second.droppedLateRecords == 1, "\(second)")
        #expect(try committedTime() == 25_000)
        let outputs = try readAll(log, topic: app + "-out").map { String(decoding: $0.key ?? [], as: UTF8.self) }
        #expect(outputs.sorted() == ["a@0", "b@20000", "d@20000"], "\(outputs)")
    }
}
