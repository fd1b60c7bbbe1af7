import EddyCore
import EddyLog
import EddyState
import EddyStreams
import Foundation
import Testing

/// `suppress(.untilTimeLimit(...))` under the runtime: an exactly-once application on the
/// embedded log, stopped between three chunks of input with its state directory deleted, so the
/// held updates and the node's stream time come back from the buffer's changelog; and a worker
/// process (`EddyTestChild suppress-time-limit`, the same topology) killed with SIGKILL at
/// random moments. Every update must come out exactly once, as a model of Kafka's semantics
/// says, per key in order.
@Suite("Suppression until a time limit through the runtime", .serialized)
struct SuppressTimeLimitRuntimeTests {
    static let partitions = 2
    static let limit: Int64 = 25

    static func topology() throws -> Topology {
        let builder = StreamsBuilder()
        builder.table("prices", key: Serdes.string, value: Serdes.int64)
            .suppress(.untilTimeLimit(.milliseconds(limit)), named: "limit").toStream()
            .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }

    /// Kafka's `untilTimeLimit` over one partition of a table source, written plainly.
    struct Model {
        var table: [String: Int64] = [:]
        var held: [String: (emit: Int64, old: Int64?, new: Int64?, time: Int64)] = [:]
        var streamTime = Int64.min
        var output: [String: [String]] = [:]

        mutating func process(_ key: String, _ value: Int64?, _ time: Int64) {
            let old = table[key]
            if old == nil && value == nil { return }
            table[key] = value
            streamTime = max(streamTime, time)
            if let e = held[key] {
                held[key] = (e.emit, e.old, value, time)
            } else {
                held[key] = (time + SuppressTimeLimitRuntimeTests.limit, old, value, time)
            }
            for (key, e) in held where e.emit <= streamTime {
                held[key] = nil
                if e.old == nil && e.new == nil { continue }
                output[key, default: []].append("\(e.new.map { "\($0)" } ?? "nil")@\(e.time)")
            }
        }
    }

    @Test("each held update comes out exactly once across a stop and a restore from the changelog")
    func exactlyOnceAcrossRestart() throws {
        let root = NSTemporaryDirectory() + "/eddy-suppress-runtime-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("SuppressTimeLimitRuntimeTests seed \(seed) (replay with EDDY_SEED=\(seed))")
        var generator = SeededGenerator(seed: seed)
        let log = try EmbeddedLog(directory: root + "/log")
        defer { try? log.close() }
        for topic in ["prices", "out"] {
            try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: Self.partitions))
        }
        var clock: Int64 = 1_000
        func produceChunk() throws { try Self.produce(log, 250, clock: &clock, &generator) }
        func runToIdle() throws -> [String] {
            let lines = LogLines()
            let app = try StreamsApplication(topology: try Self.topology(), backend: log,
                                             configuration: StreamsConfiguration(applicationID: "limited", stateDirectory: root + "/state",
                                                                                 threads: 1, processingGuarantee: .exactlyOnce,
                                                                                 commitInterval: .milliseconds(50),
                                                                                 log: { lines.append($0) }))
            try app.runToIdle()
            return lines.all
        }

        try produceChunk()
        _ = try runToIdle()
        let firstRun = try Self.read(log, "out").values.reduce(0) { $0 + $1.count }
        #expect(firstRun > 20, "too little output after the first run: \(firstRun)")
        // Two more chunks, each run restoring the buffer from its changelog alone: the second
        // emits what the first left held, the third would see it again if that were lost.
        for _ in 1...2 {
            try FileManager.default.removeItem(atPath: root + "/state")
            try produceChunk()
            let lines = try runToIdle()
            #expect(lines.contains { $0.contains("restored store limit-store ") }, "the buffer was not restored: \(lines)")
        }
        #expect((try? log.admin.describeTopic("limited-limit-store-changelog")) != nil)

        let (got, expected) = try Self.outputAndModel(log)
        #expect(got == expected, "seed \(seed)")
        #expect(got.values.reduce(0) { $0 + $1.count } > firstRun)
    }

    /// The committed output per key (`value@timestamp`), and what the model says it must be,
    /// fed each input partition in offset order (one task per partition).
    static func outputAndModel(_ log: EmbeddedLog) throws -> (got: [String: [String]], expected: [String: [String]]) {
        var expected: [String: [String]] = [:]
        for (_, records) in try read(log, "prices", raw: true) {
            var model = Model()
            for r in records { model.process(r.key, r.value, r.timestamp) }
            for (key, lines) in model.output { expected[key, default: []] += lines }
        }
        var got: [String: [String]] = [:]
        for (_, records) in try read(log, "out") {
            for r in records { got[r.key, default: []].append("\(r.value.map { "\($0)" } ?? "nil")@\(r.timestamp)") }
        }
        return (got, expected)
    }

    /// Appends `count` seeded updates (12 keys, one in 8 a tombstone, timestamps from `clock`
    /// on, up to 10 ms out of order) to `prices`.
    static func produce(_ log: EmbeddedLog, _ count: Int, clock: inout Int64, _ generator: inout SeededGenerator) throws {
        let producer = try log.makeProducer(ProducerConfiguration())
        defer { try? producer.close() }
        for _ in 0..<count {
            clock += Int64.random(in: 0...3, using: &generator)
            let time = clock - Int64.random(in: 0...10, using: &generator)
            let key = "k\(Int.random(in: 0..<12, using: &generator))"
            let value: Int64? = Int.random(in: 0..<8, using: &generator) == 0 ? nil : Int64.random(in: 0...999, using: &generator)
            try producer.send(ProducerRecord(topic: "prices", key: Array(key.utf8), value: value.map { try Serdes.int64.serialize($0) },
                                             timestamp: time))
        }
        try producer.flush()
    }

    @Test("each held update comes out exactly once when the worker is killed at random moments")
    func exactlyOnceAcrossKills() throws {
        let root = NSTemporaryDirectory() + "/eddy-suppress-kill-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("SuppressTimeLimitRuntimeTests.exactlyOnceAcrossKills seed \(seed) (replay with EDDY_SEED=\(seed))")
        var generator = SeededGenerator(seed: seed)
        var clock: Int64 = 1_000
        let logDirectory = root + "/log"
        // The parent holds the log only while no worker runs (a worker locks its directory).
        func withLog<T>(_ body: (EmbeddedLog) throws -> T) throws -> T {
            let log = try EmbeddedLog(directory: logDirectory)
            defer { try? log.close() }
            return try body(log)
        }
        try withLog { log in
            for topic in ["prices", "out"] {
                try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: Self.partitions))
            }
        }
        var committedAfterKills: [Int] = []
        for _ in 0..<3 {
            try withLog { try Self.produce($0, 1_500, clock: &clock, &generator) }
            let worker = try WorkerProcess(arguments: ["suppress-time-limit", logDirectory, root + "/state", "20", "forever"],
                                           errorPath: root + "/worker.err")
            guard worker.waitForLine(startingWith: "started") != nil else {
                worker.kill()
                Issue.record("the worker did not start: \(worker.wait())")
                return
            }
            usleep(UInt32.random(in: 50_000...600_000, using: &generator))
            worker.kill()
            let output = worker.wait()
            #expect(!output.contains("error "), "\(output)")
            committedAfterKills.append(try withLog { try Self.read($0, "out").values.reduce(0) { $0 + $1.count } })
        }
        try withLog { try Self.produce($0, 1_500, clock: &clock, &generator) }
        let last = try WorkerProcess(arguments: ["suppress-time-limit", logDirectory, root + "/state", "20", "until-idle"],
                                     errorPath: root + "/worker.err")
        let idle = last.waitForLine(startingWith: "idle", timeout: 120)
        if idle == nil { last.kill() }
        let output = last.wait()
        #expect(idle != nil, "the last worker did not finish: \(output)")
        let (got, expected) = try withLog { try Self.outputAndModel($0) }
        let total = got.values.reduce(0) { $0 + $1.count }
        print("SuppressTimeLimitRuntimeTests.exactlyOnceAcrossKills: committed outputs after each kill \(committedAfterKills), in the end \(total)")
        #expect(got == expected, "seed \(seed); committed outputs after each kill \(committedAfterKills)")
        #expect(total > 100)
    }

    /// The committed records of `topic` per partition, in offset order (`raw`: every record).
    static func read(_ log: EmbeddedLog, _ topic: String, raw: Bool = false) throws
        -> [Int: [(key: String, value: Int64?, timestamp: Timestamp)]] {
        var result: [Int: [(key: String, value: Int64?, timestamp: Timestamp)]] = [:]
        for (partition, records) in try log.records(of: topic, isolation: raw ? .readUncommitted : .readCommitted).enumerated()
        where !records.isEmpty {
            result[partition] = try records.map { r in
                (String(decoding: r.key ?? [], as: UTF8.self), try r.value.map { try Serdes.int64.deserialize($0) }, r.timestamp)
            }
        }
        return result
    }
}
