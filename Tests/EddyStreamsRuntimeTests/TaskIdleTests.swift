import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Testing

/// Task idling (Kafka's `max.task.idle.ms`): a stream–table join task whose table partition has
/// records the consumer has not fetched yet waits for them, so stream records that come later
/// in event time find their table rows.
@Suite("Task idling", .serialized)
struct TaskIdleTests {
    static let keys = 2_000
    static let events = 6_000

    /// Writes the table (all before the events in event time), then the events, and runs an
    /// inner stream–table join; returns the number of joined outputs.
    func joinedOutputs(maximumTaskIdle: Duration?) throws -> Int {
        let root = NSTemporaryDirectory() + "/eddy-idle-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let log = try EmbeddedLog(directory: root + "/log")
        defer { try? log.close() }
        try log.admin.createTopic("users", configuration: TopicConfiguration(partitions: 2))
        try log.admin.createTopic("events", configuration: TopicConfiguration(partitions: 2))
        let producer = try log.makeProducer(ProducerConfiguration())
        for i in 0..<Self.keys {
            try producer.send(ProducerRecord(topic: "users", key: Array("user-\(i)".utf8), value: Array("region-\(i % 7)".utf8),
                                             timestamp: 1_000))
        }
        for i in 0..<Self.events {
            try producer.send(ProducerRecord(topic: "events", key: Array("user-\(i % Self.keys)".utf8), value: Array("e\(i)".utf8),
                                             timestamp: 2_000 + Int64(i)))
        }
        try producer.close()

        let builder = StreamsBuilder()
        let users = builder.table("users", key: Serdes.string, value: Serdes.string, materializedAs: "users")
        builder.stream("events", key: Serdes.string, value: Serdes.string)
            .join(users) { event, region in "\(event)@\(region)" }
            .to("joined", key: Serdes.string, value: Serdes.string)
        // Small polls, so the first polls return events before the table partitions are fetched.
        let app = try StreamsApplication(
            topology: try builder.build(), backend: log,
            configuration: StreamsConfiguration(applicationID: "idle", stateDirectory: root + "/state",
                                                processingGuarantee: .atLeastOnce, commitInterval: .milliseconds(50),
                                                maximumTaskIdle: maximumTaskIdle, maximumPollRecords: 100))
        try app.start()
        defer { app.close() }
        #expect(app.waitUntilIdle(timeout: .seconds(120)), "\(String(describing: app.failure))")
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        defer { try? consumer.close() }
        let partitions = (0..<2).map { TopicPartition("joined", $0) }
        return try consumer.endOffsets(partitions).values.reduce(0) { $0 + Int($1) }
    }

    @Test("a join waits for table records the consumer has not fetched yet, so every event is joined")
    func waitsForLaggingPartition() throws {
        #expect(try joinedOutputs(maximumTaskIdle: .zero) == Self.events)
    }

    @Test("with task idling off (nil), events processed before their table rows arrive are not joined")
    func idlingOff() throws {
        // The reference for the test above: without waiting, some events come too early.
        #expect(try joinedOutputs(maximumTaskIdle: nil) < Self.events)
    }

    @Test("a negative idle time is refused")
    func negativeRefused() throws {
        let configuration = StreamsConfiguration(applicationID: "idle", stateDirectory: "/tmp/x", maximumTaskIdle: .milliseconds(-1))
        #expect(throws: EddyError.self) { try configuration.validate() }
    }
}
