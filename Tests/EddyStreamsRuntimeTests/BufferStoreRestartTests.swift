import EddyCore
import EddyLog
import EddyState
import EddyStreams
import Foundation
import Testing

/// The buffers of stream–stream joins, suppression and foreign-key joins through the runtime,
/// with RocksDB stores on the embedded log and exactly-once: input arrives in three chunks; the
/// application stops after each, its state directory is deleted after the first (so the buffers
/// are restored from their changelogs) and kept after the second. The output must equal one
/// uninterrupted run's over the same input.
@Suite("Buffer stores restored through the runtime", .serialized)
struct BufferStoreRestartTests {
    enum Workload: String, CustomTestStringConvertible, CaseIterable {
        case streamJoin, suppress, foreignKeyJoin
        var testDescription: String { rawValue }
    }

    @Test("the output after stops, restarts and a restore from changelogs equals an uninterrupted run's",
          arguments: Workload.allCases)
    func restartEqualsUninterrupted(_ workload: Workload) throws {
        let fixture = try BufferRuntimeFixture(workload)
        defer { fixture.remove() }
        for chunk in 0..<3 {
            try fixture.produceChunk(chunk)
            if chunk == 1 {
                #expect(FileManager.default.fileExists(atPath: fixture.root + "/state/restarted"))
                try? FileManager.default.removeItem(atPath: fixture.root + "/state")
            }
            let lines = try fixture.runToIdle(applicationID: "restarted", stateDirectory: fixture.root + "/state", output: "out-restarted")
            if chunk == 1 {
                // Every buffer store of the topology was restored from its changelog.
                for store in fixture.bufferStores {
                    #expect(lines.contains { $0.contains("restored store \(store) ") }, "\(store) not restored: \(lines)")
                    #expect((try? fixture.log.admin.describeTopic("restarted-\(store)-changelog")) != nil, "no changelog for \(store)")
                }
            }
        }
        _ = try fixture.runToIdle(applicationID: "uninterrupted", stateDirectory: fixture.root + "/state-reference",
                                  output: "out-uninterrupted")
        let restarted = try fixture.output("out-restarted")
        let reference = try fixture.output("out-uninterrupted")
        #expect(restarted.joined().count > 20, "too little output to compare: \(restarted)")
        switch workload {
        case .streamJoin, .suppress:
            // Each key is processed by one task, in input order, so per output partition each
            // key's sequence must be equal (tasks interleave when windowed keys spread out).
            #expect(BufferRuntimeFixture.perKey(restarted) == BufferRuntimeFixture.perKey(reference), "seed \(fixture.seed)")
        case .foreignKeyJoin:
            // Responses race with right-side updates between sub-topologies, so intermediate
            // results may differ between runs; the final result per order must not.
            let final = BufferRuntimeFixture.lastPerKey(restarted)
            #expect(final == BufferRuntimeFixture.lastPerKey(reference), "seed \(fixture.seed)")
            for (order, value) in fixture.finalOrders {
                let product = fixture.finalProducts[String(value.split(separator: ":")[0])]
                #expect(final[order] == "\(value)=\(product ?? "null")", "order \(order), seed \(fixture.seed)")
            }
        }
    }
}

/// An embedded log in a temporary directory, input for one workload in three seeded chunks,
/// and runs of an application to idle.
final class BufferRuntimeFixture {
    let root: String
    let seed: UInt64
    let workload: BufferStoreRestartTests.Workload
    var generator: SeededGenerator
    let log: EmbeddedLog
    var clock: Int64 = 1_000
    var finalOrders: [String: String] = [:]
    var finalProducts: [String: String] = [:]
    static let partitions = 2

    init(_ workload: BufferStoreRestartTests.Workload) throws {
        self.workload = workload
        root = NSTemporaryDirectory() + "/eddy-buffers-runtime-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("BufferStoreRestartTests \(workload) seed \(seed) (replay with EDDY_SEED=\(seed))")
        generator = SeededGenerator(seed: seed)
        log = try EmbeddedLog(directory: root + "/log")
        for topic in ["events", "orders", "products", "out-restarted", "out-uninterrupted"] {
            try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: Self.partitions))
        }
    }

    func remove() {
        try? log.close()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The buffer stores of the workload's topology (all persistent: the serdes are known).
    var bufferStores: [String] {
        switch workload {
        case .streamJoin: return ["j-other-join-store", "j-outer-shared-join-store", "j-this-join-store"]
        case .suppress: return ["final-store"]
        case .foreignKeyJoin: return ["fk-SUBSCRIPTION-STATE-STORE"]
        }
    }

    func topology(output: String) throws -> Topology {
        let builder = StreamsBuilder()
        switch workload {
        case .streamJoin:
            let events = builder.stream("events", key: Serdes.string, value: Serdes.string)
            let left = events.filter { _, v in v.hasPrefix("L") }
            let right = events.filter { _, v in v.hasPrefix("R") }
            left.outerJoin(right, windows: JoinWindows.of(timeDifference: 20, grace: 10).after(30), named: "j") { l, r in
                "\(l ?? "-")+\(r ?? "-")"
            }.to(output, key: Serdes.string, value: Serdes.string)
        case .suppress:
            builder.stream("events", key: Serdes.string, value: Serdes.string).groupByKey()
                .windowed(by: .of(size: 50, grace: 20)).count(materializedAs: "counts")
                .suppress(.untilWindowCloses, named: "final").toStream()
                .mapValues { count in count.map { "\($0)" } ?? "nil" }
                .to(output, key: Serdes.timeWindowed(Serdes.string, windowSize: 50), value: Serdes.string)
        case .foreignKeyJoin:
            let orders = builder.table("orders", key: Serdes.string, value: Serdes.string)
            let products = builder.table("products", key: Serdes.string, value: Serdes.string)
            orders.leftJoin(products, foreignKey: { String($0.split(separator: ":")[0]) }, named: "fk") { o, p in "\(o)=\(p ?? "null")" }
                .toStream().to(output, key: Serdes.string, value: Serdes.optional(Serdes.string))
        }
        return try builder.build()
    }

    /// Appends one chunk of seeded input for the workload.
    func produceChunk(_ chunk: Int) throws {
        let producer = try log.makeProducer(ProducerConfiguration())
        defer { try? producer.close() }
        func send(_ topic: String, _ key: String, _ value: String?, _ time: Int64) throws {
            try producer.send(ProducerRecord(topic: topic, key: Array(key.utf8), value: value.map { Array($0.utf8) }, timestamp: time))
        }
        switch workload {
        case .streamJoin, .suppress:
            for i in 0..<300 {
                clock += Int64.random(in: 0...4, using: &generator)
                // Joins: out of order by up to 40 ms, so some records join late and a few are
                // dropped as late. Suppression: within the grace (20 ms) only, because the
                // windowed aggregation's own stream time is not kept in a store.
                let time = clock - Int64.random(in: 0...(workload == .suppress ? 15 : 40), using: &generator)
                let side = workload == .suppress || Bool.random(using: &generator) ? "L" : "R"
                try send("events", "k\(Int.random(in: 0..<12, using: &generator))", "\(side)\(chunk)-\(i)", time)
            }
        case .foreignKeyJoin:
            for i in 0..<120 {
                clock += 1
                if Int.random(in: 0..<3, using: &generator) == 0 {
                    let key = "p\(Int.random(in: 0..<6, using: &generator))"
                    let value: String? = Int.random(in: 0..<8, using: &generator) == 0 ? nil : "name\(chunk)-\(i)"
                    finalProducts[key] = value
                    try send("products", key, value, clock)
                } else {
                    let key = "o\(Int.random(in: 0..<25, using: &generator))"
                    // No order is deleted: the join's result store has no value serde, so it
                    // stays in memory, and a delete after a restart would find no old result.
                    let value = "p\(Int.random(in: 0..<6, using: &generator)):\(i)"
                    finalOrders[key] = value
                    try send("orders", key, value, clock)
                }
            }
        }
        try producer.flush()
    }

    /// Runs an exactly-once application with RocksDB stores until it has processed and
    /// committed all input, then closes it. Returns its log lines.
    func runToIdle(applicationID: String, stateDirectory: String, output: String) throws -> [String] {
        let lines = LogLines()
        let app = try StreamsApplication(topology: try topology(output: output), backend: log,
                                         configuration: StreamsConfiguration(applicationID: applicationID, stateDirectory: stateDirectory,
                                                                             threads: 1, processingGuarantee: .exactlyOnce,
                                                                             commitInterval: .milliseconds(50),
                                                                             log: { lines.append($0) }))
        try app.runToIdle()
        return lines.all
    }

    /// The committed records of `topic` per partition, as `key=value@timestamp`.
    func output(_ topic: String) throws -> [[String]] {
        try log.records(of: topic).map { records in
            try records.map { r in
                let key: String
                if workload == .suppress {
                    key = try Serdes.timeWindowed(Serdes.string, windowSize: 50).deserialize(r.key ?? []).description
                } else {
                    key = String(decoding: r.key ?? [], as: UTF8.self)
                }
                let value = r.value.map { String(decoding: $0, as: UTF8.self) } ?? "nil"
                return "\(key)=\(value)@\(r.timestamp)"
            }
        }
    }

    /// Per partition, each record key's lines in order (the key is what precedes `@` or `=`).
    static func perKey(_ output: [[String]]) -> [[String: [String]]] {
        output.map { lines in Dictionary(grouping: lines) { String($0.prefix { $0 != "@" && $0 != "=" }) } }
    }

    /// The last value of each key in `output`'s records (`key=value@time`, keys without `=`).
    static func lastPerKey(_ output: [[String]]) -> [String: String] {
        var last: [String: String] = [:]
        for line in output.joined() {
            let key = String(line.prefix { $0 != "=" })
            let rest = line.dropFirst(key.count + 1)
            last[key] = String(rest[..<rest.lastIndex(of: "@")!])
        }
        return last
    }
}

/// Log lines of an application (called from its stream threads).
final class LogLines: @unchecked Sendable {
    // @unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
