import EddyCore
import EddyLog
import EddyStreams
import Foundation
import Testing

/// Global tables under ``StreamsApplication`` on the embedded log: the global thread reads every
/// partition of the table's topic before the stream threads start, keeps following it, and
/// rebuilds the table at each start.
@Suite("Global tables in the runtime", .serialized)
struct GlobalTableRuntimeTests {
    final class Fixture {
        let root = NSTemporaryDirectory() + "/eddy-global-test-\(UUID().uuidString)"
        let log: EmbeddedLog
        init() throws {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            log = try EmbeddedLog(directory: root + "/log")
            // Different partition counts: a global table needs no co-partitioning.
            try log.admin.createTopic("regions", configuration: TopicConfiguration(partitions: 3))
            try log.admin.createTopic("events", configuration: TopicConfiguration(partitions: 4))
        }
        deinit {
            try? log.close()
            try? FileManager.default.removeItem(atPath: root)
        }

        func send(_ topic: String, _ pairs: [(String, String)]) throws {
            let producer = try log.makeProducer(ProducerConfiguration())
            for (key, value) in pairs {
                try producer.send(ProducerRecord(topic: topic, key: Array(key.utf8), value: Array(value.utf8)))
            }
            try producer.close()
        }

        static func topology() throws -> Topology {
            let builder = StreamsBuilder()
            let regions = builder.globalTable("regions", key: Serdes.string, value: Serdes.string, materializedAs: "regions")
            builder.stream("events", key: Serdes.string, value: Serdes.string)
                .leftJoin(regions, keySelector: { _, user in user }) { user, region in "\(user):\(region ?? "unknown")" }
                .to("out", key: Serdes.string, value: Serdes.string)
            return try builder.build()
        }

        func application(_ lines: LineLog) throws -> StreamsApplication {
            try StreamsApplication(topology: Self.topology(), backend: log,
                                   configuration: StreamsConfiguration(applicationID: "global-app", stateDirectory: root + "/state",
                                                                       threads: 2, processingGuarantee: .exactlyOnce,
                                                                       commitInterval: .milliseconds(50),
                                                                       log: { lines.append($0) }))
        }

        /// Every committed output record, key -> values in order.
        func output() throws -> [String: [String]] {
            let consumer = try log.makeConsumer(ConsumerConfiguration(isolation: .readCommitted))
            defer { try? consumer.close() }
            let partitions = try (0..<log.admin.describeTopic("out").partitions.count).map { TopicPartition("out", $0) }
            try consumer.assign(partitions)
            try consumer.seekToBeginning(partitions)
            let ends = try consumer.endOffsets(partitions)
            var result: [String: [String]] = [:]
            while try partitions.contains(where: { try consumer.position($0) < (ends[$0] ?? 0) }) {
                for record in try consumer.poll(timeoutMilliseconds: 100) {
                    result[String(decoding: record.key ?? [], as: UTF8.self), default: []]
                        .append(String(decoding: record.value ?? [], as: UTF8.self))
                }
            }
            return result
        }
    }

    @Test("streams of any partitioning join the whole table from the first record, across two stream threads")
    func joinsWholeTable() throws {
        let fixture = try Fixture()
        try fixture.send("regions", (0..<50).map { ("u\($0)", "r\($0 % 5)") })
        let lines = LineLog()
        let app = try fixture.application(lines)
        try app.start()
        defer { app.close() }
        #expect(lines.all.contains { $0.contains("global thread: read 50 records of 3 global partitions") }, "\(lines.all)")
        try fixture.send("events", (0..<120).map { ("e\($0)", "u\($0 % 60)") })
        #expect(app.waitUntilIdle(timeout: .seconds(60)), "\(String(describing: app.failure))")
        let output = try fixture.output()
        #expect(output.count == 120)
        for i in 0..<120 {
            let user = i % 60
            #expect(output["e\(i)"] == ["u\(user):\(user < 50 ? "r\(user % 5)" : "unknown")"], "e\(i)")
        }
    }

    @Test("the global thread follows table updates while running, and a restart rebuilds the table from its topic")
    func followsUpdatesAndRebuilds() throws {
        let fixture = try Fixture()
        try fixture.send("regions", [("u1", "north"), ("u2", "south")])
        do {
            let app = try fixture.application(LineLog())
            try app.start()
            defer { app.close() }
            try fixture.send("regions", [("u1", "east"), ("u3", "west")])
            // The update reaches the store without a restart: keep sending events for u1 until
            // one joins the new value.
            var seen = false
            for attempt in 0..<200 where !seen {
                try fixture.send("events", [("probe-\(attempt)", "u1")])
                #expect(app.waitUntilIdle(timeout: .seconds(30)))
                seen = try fixture.output()["probe-\(attempt)"] == ["u1:east"]
                if !seen { Thread.sleep(forTimeInterval: 0.02) }
            }
            #expect(seen, "the update of u1 never reached the global store")
            #expect(app.close())
        }
        // A new run on the same state directory: the table is read again from the topic.
        try fixture.send("events", [("after-1", "u1"), ("after-2", "u2"), ("after-3", "u3"), ("after-4", "u4")])
        let app = try fixture.application(LineLog())
        try app.start()
        defer { app.close() }
        #expect(app.waitUntilIdle(timeout: .seconds(60)), "\(String(describing: app.failure))")
        let output = try fixture.output()
        #expect(output["after-1"] == ["u1:east"])
        #expect(output["after-2"] == ["u2:south"])
        #expect(output["after-3"] == ["u3:west"])
        #expect(output["after-4"] == ["u4:unknown"])
    }

    @Test("a tombstone in the table's topic removes the row")
    func tombstoneRemovesRow() throws {
        let fixture = try Fixture()
        try fixture.send("regions", [("u1", "north"), ("u2", "south")])
        let producer = try fixture.log.makeProducer(ProducerConfiguration())
        try producer.send(ProducerRecord(topic: "regions", key: Array("u2".utf8), value: nil))
        try producer.close()
        let app = try fixture.application(LineLog())
        try app.start()
        defer { app.close() }
        try fixture.send("events", [("e1", "u1"), ("e2", "u2")])
        #expect(app.waitUntilIdle(timeout: .seconds(60)))
        let output = try fixture.output()
        #expect(output["e1"] == ["u1:north"])
        #expect(output["e2"] == ["u2:unknown"])
    }

    @Test("a missing global table topic stops the start with a clear error")
    func missingTopic() throws {
        let fixture = try Fixture()
        let builder = StreamsBuilder()
        let table = builder.globalTable("no-such-topic", key: Serdes.string, value: Serdes.string)
        builder.stream("events", key: Serdes.string, value: Serdes.string)
            .join(table, keySelector: { _, v in v }) { _, region in region }
            .to("out", key: Serdes.string, value: Serdes.string)
        let app = try StreamsApplication(topology: try builder.build(), backend: fixture.log,
                                         configuration: StreamsConfiguration(applicationID: "missing", stateDirectory: fixture.root + "/state"))
        let error = #expect(throws: EddyError.self) { try app.start() }
        #expect(error?.code == .unknownTopic)
        #expect(error?.message.contains("no-such-topic") == true)
    }
}
