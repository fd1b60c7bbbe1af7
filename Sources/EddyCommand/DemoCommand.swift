import ArgumentParser
import EddyCore
import EddyLog
import Foundation

/// `eddy demo`: the main job of README command (1) on the embedded log.
///
/// Creates a topic, appends a generated data set (keyed page views), reads it all back with a
/// consumer group, checks that every record came back exactly once, in order per partition,
/// and prints what happened.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Create a topic, produce a generated data set, consume it back and report.")

    @OptionGroup var log: LogOptions
    @Option(help: "Topic to (re)create.") var topic: String = "demo-page-views"
    @Option(help: "Number of records to generate.") var records: Int = 1_000_000
    @Option(help: "Number of partitions.") var partitions: Int = 4
    @Option(help: "Number of distinct keys (users).") var keys: Int = 10_000

    func run() throws {
        try reportingErrors {
            let backend = try log.open()
            defer { try? backend.close() }
            if try backend.admin.listTopics().contains(topic) {
                try backend.admin.deleteTopic(topic)
            }
            try backend.admin.createTopic(topic, configuration: TopicConfiguration(partitions: partitions))
            print("created topic \(topic) (\(partitions) partitions) in \(log.directory)")

            // Produce.
            let pages = ["/", "/pricing", "/docs", "/blog", "/signup", "/login"]
            let producer = try backend.makeProducer(ProducerConfiguration(clientID: "eddy-demo", batchBytes: 256 * 1024))
            let counter = DeliveryCounter()
            let start = Date()
            let baseTime: Timestamp = 1_700_000_000_000
            var keyBytes = [[UInt8]]()
            keyBytes.reserveCapacity(keys)
            for k in 0..<keys { keyBytes.append(Array("user-\(k)".utf8)) }
            // Values are JSON built byte by byte (String interpolation would dominate the run).
            let pageBytes = pages.map { Array(",\"page\":\"\($0)\",\"ms\":".utf8) }
            var value = [UInt8]()
            let handler: DeliveryHandler = { counter.record($0) }
            for i in 0..<records {
                let user = (i &* 7919) % keys
                value.removeAll(keepingCapacity: true)
                value.append(contentsOf: Self.userPrefix)
                Self.appendDecimal(user, to: &value)
                value.append(contentsOf: pageBytes[i % pages.count])
                Self.appendDecimal(i % 997, to: &value)
                value.append(UInt8(ascii: "}"))
                try producer.send(ProducerRecord(topic: topic, key: keyBytes[user], value: value,
                                                 timestamp: baseTime + Timestamp(i)), delivery: handler)
            }
            try producer.flush()
            try producer.close()
            let produceSeconds = Date().timeIntervalSince(start)
            if let error = counter.firstError { throw EddyError(.invalidState, "append failed: \(error)") }
            print(String(format: "produced %d records in %.2f s (%.0f records/s)", counter.delivered, produceSeconds,
                         Double(counter.delivered) / produceSeconds))

            // Consume everything back through a consumer group and check it.
            let consumer = try backend.makeConsumer(ConsumerConfiguration(groupID: "eddy-demo", clientID: "eddy-demo"))
            defer { try? consumer.close() }
            let all = (0..<partitions).map { TopicPartition(topic, $0) }
            try consumer.assign(all)
            try consumer.seekToBeginning(all)
            let ends = try consumer.endOffsets(all)
            let total = ends.values.reduce(0) { $0 + Int($1) }
            var next = [TopicPartition: Offset]()
            var perPartition = [Int: Int]()
            var bytes = 0
            var problems = 0
            var read = 0
            let consumeStart = Date()
            while read < total {
                let batch = try consumer.poll(timeoutMilliseconds: 1000)
                if batch.isEmpty { break }
                for record in batch {
                    let expected = next[record.topicPartition] ?? 0
                    if record.offset != expected { problems += 1 }
                    next[record.topicPartition] = record.offset + 1
                    perPartition[record.partition, default: 0] += 1
                    bytes += (record.value?.count ?? 0) + (record.key?.count ?? 0)
                    read += 1
                }
                try consumer.commit(next)
            }
            let consumeSeconds = Date().timeIntervalSince(consumeStart)
            print(String(format: "consumed %d records (%.1f MB of keys and values) in %.2f s (%.0f records/s)",
                         read, Double(bytes) / 1e6, consumeSeconds, Double(read) / consumeSeconds))
            for p in 0..<partitions {
                print("  partition \(p): \(perPartition[p] ?? 0) records, end offset \(ends[TopicPartition(topic, p)] ?? 0)")
            }
            let committed = try backend.admin.committedOffsets(group: "eddy-demo")
            let committedTotal = committed.filter { $0.key.topic == topic }.values.reduce(0) { $0 + Int($1) }
            print("group eddy-demo committed offsets covering \(committedTotal) records")
            if read != records || problems != 0 || committedTotal != records {
                throw EddyError(.invalidState, "check failed: produced \(records), consumed \(read), \(problems) out-of-order offsets")
            }
            print("check passed: every record came back exactly once, in offset order per partition")
        }
    }

    static let userPrefix = Array("{\"user\":".utf8)

    /// Appends the decimal digits of a non-negative number.
    static func appendDecimal(_ number: Int, to bytes: inout [UInt8]) {
        if number >= 10 { appendDecimal(number / 10, to: &bytes) }
        bytes.append(UInt8(ascii: "0") + UInt8(number % 10))
    }
}
