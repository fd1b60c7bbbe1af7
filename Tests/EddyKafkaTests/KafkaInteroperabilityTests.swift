import EddyCore
@testable import EddyKafka
import Foundation
import Testing

/// Records cross between Eddy and real Kafka clients (kcat, Python's confluent-kafka) through the
/// shared mock cluster. A missing tool skips its test with a printed message (Scripts/setup
/// installs both).
@Suite struct KafkaInteroperabilityTests {
    /// Runs a program, feeding `input`; returns its standard output, or nil when it is not installed.
    static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String, error: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus == 127 { return nil }
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func available(_ check: [String]) -> Bool {
        (try? run(check))??.status == 0
    }

    @Test func recordsProducedByKcatAreConsumedByEddyAndTheOtherWayRound() throws {
        guard Self.available(["kcat", "-V"]) else {
            print("SKIPPED: kcat is not installed (apt-get install kcat, or Scripts/setup)")
            return
        }
        let log = SharedMockCluster.log
        let bootstrap = SharedMockCluster.cluster.bootstrapServers
        let topic = uniqueName("kcat")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        let before = Int64(Date().timeIntervalSince1970 * 1_000)
        let produced = try #require(try Self.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", "0", "-K", ":",
                                                   "-H", "source=kcat", "-H", "n=1"], input: "k1:v1\nk2:v2\n"))
        #expect(produced.status == 0, "\(produced.error)")
        let after = Int64(Date().timeIntervalSince1970 * 1_000)
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0)])
        let records = try pollKafka(consumer, count: 2)
        #expect(records.map { $0.key.map { String(decoding: $0, as: UTF8.self) } } == ["k1", "k2"])
        #expect(records.map { $0.value.map { String(decoding: $0, as: UTF8.self) } } == ["v1", "v2"])
        #expect(records.allSatisfy { $0.headers == [Header("source", "kcat"), Header("n", "1")] })
        // kcat cannot set a timestamp: the create time lies within the run.
        #expect(records.allSatisfy { $0.timestamp >= before - 1_000 && $0.timestamp <= after + 1_000 })

        let back = uniqueName("kcat-back")
        try log.admin.createTopic(back, configuration: TopicConfiguration(partitions: 1))
        let producer = try log.makeProducer(ProducerConfiguration())
        try producer.send(ProducerRecord(topic: back, partition: 0, key: kafkaPayload("ek"), value: kafkaPayload("ev"),
                                         headers: [Header("a", "1"), Header("b", "2")], timestamp: 1_700_000_000_123))
        try producer.flush()
        let consumed = try #require(try Self.run(["kcat", "-C", "-b", bootstrap, "-t", back, "-p", "0", "-o", "beginning",
                                                   "-c", "1", "-e", "-f", "%k|%s|%h|%T\\n"]))
        #expect(consumed.status == 0, "\(consumed.error)")
        #expect(consumed.output.trimmingCharacters(in: .whitespacesAndNewlines) == "ek|ev|a=1,b=2|1700000000123")
    }

    static let python = """
        import sys, json
        from confluent_kafka import Producer, Consumer, TopicPartition
        bootstrap, mode, topic = sys.argv[1], sys.argv[2], sys.argv[3]
        if mode == "produce":
            p = Producer({"bootstrap.servers": bootstrap})
            for i in range(3):
                p.produce(topic, key=b"pk%d" % i, value=b"pv%d" % i, partition=0,
                          headers=[("lang", b"python"), ("i", str(i).encode())], timestamp=1_600_000_000_000 + i)
            if p.flush(10) != 0: sys.exit(2)
        else:
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-" + topic, "enable.auto.commit": False})
            c.assign([TopicPartition(topic, 0, 0)])
            out = []
            while len(out) < 1:
                m = c.poll(10)
                if m is None: sys.exit(3)
                if m.error(): continue
                out.append({"key": m.key().decode(), "value": m.value().decode(), "timestamp": m.timestamp()[1],
                            "headers": [[k, v.decode()] for k, v in (m.headers() or [])]})
            print(json.dumps(out))
            c.close()
        """

    @Test func recordsProducedByConfluentKafkaForPythonAreConsumedByEddyAndTheOtherWayRound() throws {
        guard Self.available(["python3", "-c", "import confluent_kafka"]) else {
            print("SKIPPED: Python's confluent-kafka is not installed (pip install confluent-kafka, or Scripts/setup)")
            return
        }
        let log = SharedMockCluster.log
        let bootstrap = SharedMockCluster.cluster.bootstrapServers
        let topic = uniqueName("python")
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1))
        let produced = try #require(try Self.run(["python3", "-c", Self.python, bootstrap, "produce", topic]))
        #expect(produced.status == 0, "\(produced.error)")
        let consumer = try log.makeConsumer(ConsumerConfiguration())
        try consumer.assign([TopicPartition(topic, 0)])
        let records = try pollKafka(consumer, count: 3)
        #expect(records.map { String(decoding: $0.key!, as: UTF8.self) } == ["pk0", "pk1", "pk2"])
        #expect(records.map { String(decoding: $0.value!, as: UTF8.self) } == ["pv0", "pv1", "pv2"])
        #expect(records.map(\.timestamp) == [1_600_000_000_000, 1_600_000_000_001, 1_600_000_000_002])
        #expect(records.map(\.headers) == (0..<3).map { [Header("lang", "python"), Header("i", "\($0)")] })

        let back = uniqueName("python-back")
        try log.admin.createTopic(back, configuration: TopicConfiguration(partitions: 1))
        let producer = try log.makeProducer(ProducerConfiguration())
        try producer.send(ProducerRecord(topic: back, partition: 0, key: kafkaPayload("ek"), value: kafkaPayload("ev"),
                                         headers: [Header("x", "y")], timestamp: 1_650_000_000_042))
        try producer.flush()
        let consumed = try #require(try Self.run(["python3", "-c", Self.python, bootstrap, "consume", back]))
        #expect(consumed.status == 0, "\(consumed.error)")
        #expect(consumed.output.trimmingCharacters(in: .whitespacesAndNewlines)
                == #"[{"key": "ek", "value": "ev", "timestamp": 1650000000042, "headers": [["x", "y"]]}]"#)
    }
}
