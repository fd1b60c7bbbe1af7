import EddyCore
import EddyState
@testable import EddyStreams
import Foundation
import Testing

/// `suppress(.untilTimeLimit(...))` (Kafka's `Suppressed.untilTimeLimit`): rate limiting of any
/// table through the test driver, in memory and with RocksDB (also across restarts), its buffer
/// limits, and a seeded comparison with a model of Kafka's semantics.
@Suite("Suppression until a time limit")
struct SuppressTimeLimitTests {
    typealias Output = [String]

    // MARK: Fixtures

    /// `in` (word, anything) -> count per word -> suppress -> `out` (word, count?).
    static func countTopology(_ suppression: Suppression, named: String? = "limit") throws -> Topology {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey().count(materializedAs: "counts")
            .suppress(suppression, named: named).toStream()
            .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }

    /// `prices` table (item, price, with tombstones) -> suppress -> `out`.
    static func tableTopology(_ suppression: Suppression) throws -> Topology {
        let builder = StreamsBuilder()
        builder.table("prices", key: Serdes.string, value: Serdes.int64)
            .suppress(suppression, named: "limit").toStream()
            .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }

    /// `key=value@timestamp` of everything not yet read from `out`.
    static func read(_ driver: TopologyTestDriver) throws -> Output {
        try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.optional(Serdes.int64)).readRecordsToList()
            .map { "\($0.key)=\($0.value.map { "\($0)" } ?? "nil")@\($0.timestamp)" }
    }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "eddy-suppress-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case memory, rocksDB
        var testDescription: String { rawValue }
    }

    /// A driver on `backend` (RocksDB in a fresh directory, removed by `cleanup`).
    static func driver(_ topology: Topology, _ backend: Backend) throws -> (TopologyTestDriver, cleanup: () -> Void) {
        switch backend {
        case .memory:
            let driver = try TopologyTestDriver(topology)
            return (driver, { driver.close() })
        case .rocksDB:
            let directory = temporaryDirectory()
            let driver = try TopologyTestDriver(topology, stores: .rocksDB(directory: directory))
            return (driver, { driver.close(); try? FileManager.default.removeItem(atPath: directory) })
        }
    }

    // MARK: Rate limiting

    @Test("updates of a count within the time limit come out as one, with the latest count, when stream time reaches first + limit",
          arguments: Backend.allCases)
    func rateLimitsCounts(_ backend: Backend) throws {
        let (driver, cleanup) = try Self.driver(try Self.countTopology(.untilTimeLimit(.milliseconds(10))), backend)
        defer { cleanup() }
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: "z", value: "", timestamp: 1)   // z due at 11
        try input.pipeInput(key: "a", value: "", timestamp: 2)   // a due at 12
        try input.pipeInput(key: "z", value: "", timestamp: 5)
        try input.pipeInput(key: "a", value: "", timestamp: 9)
        try input.pipeInput(key: "z", value: "", timestamp: 10)
        #expect(try Self.read(driver).isEmpty)
        // Stream time 11: z is due (emit time from its first update, 1 + 10), a is not.
        try input.pipeInput(key: "m", value: "", timestamp: 11)
        #expect(try Self.read(driver) == ["z=3@10"])
        // Out of order: stream time stays 11; the update joins a's hold.
        try input.pipeInput(key: "a", value: "", timestamp: 3)
        #expect(try Self.read(driver).isEmpty)
        // Stream time 30: a (due 12), m (due 21) and a new z (first update at 30, due 40) in
        // emit-time order, then nothing more until 40.
        try input.pipeInput(key: "z", value: "", timestamp: 30)
        #expect(try Self.read(driver) == ["a=3@3", "m=1@11"])
        try input.pipeInput(key: "b", value: "", timestamp: 39)
        #expect(try Self.read(driver).isEmpty)
        try input.pipeInput(key: "b", value: "", timestamp: 40)
        #expect(try Self.read(driver) == ["z=4@30"])
        if backend == .rocksDB {
            #expect(driver.tasks.first?.stores["limit-store"] is PersistentSuppressionBuffer<String, Int64>)
        } else {
            #expect(driver.tasks.first?.stores["limit-store"] is InMemorySuppressionBuffer<String, Int64>)
        }
    }

    @Test("keys due at the same time come out in the order of their bytes; a zero limit holds nothing back")
    func sameEmitTimeAndZeroLimit() throws {
        let (driver, cleanup) = try Self.driver(try Self.countTopology(.untilTimeLimit(.milliseconds(5))), .memory)
        defer { cleanup() }
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        for key in ["c", "a", "b", "a"] { try input.pipeInput(key: key, value: "", timestamp: 0) }
        try input.pipeInput(key: "d", value: "", timestamp: 5)
        #expect(try Self.read(driver) == ["a=2@0", "b=1@0", "c=1@0"])

        let (zero, cleanupZero) = try Self.driver(try Self.countTopology(.untilTimeLimit(.zero)), .memory)
        defer { cleanupZero() }
        let zeroInput = zero.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try zeroInput.pipeInput(key: "a", value: "", timestamp: 7)
        try zeroInput.pipeInput(key: "a", value: "", timestamp: 7)
        #expect(try Self.read(zero) == ["a=1@7", "a=2@7"])
        // Late: due at once.
        try zeroInput.pipeInput(key: "b", value: "", timestamp: 3)
        #expect(try Self.read(zero) == ["b=1@3"])
    }

    @Test("a windowed table can be rate limited too: each window's updates are held per windowed key", arguments: Backend.allCases)
    func rateLimitsWindowedTables(_ backend: Backend) throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
            .windowed(by: .of(size: 100, grace: 50)).count(materializedAs: "counts")
            .suppress(.untilTimeLimit(.milliseconds(10)), named: "limit").toStream()
            .to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 100), value: Serdes.optional(Serdes.int64))
        let (driver, cleanup) = try Self.driver(try builder.build(), backend)
        defer { cleanup() }
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        let output = driver.createOutputTopic("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 100), value: Serdes.optional(Serdes.int64))
        func read() throws -> [String] { try output.readRecordsToList().map { "\($0.key)=\($0.value.map { "\($0)" } ?? "nil")@\($0.timestamp)" } }
        try input.pipeInput(key: "a", value: "", timestamp: 95)
        try input.pipeInput(key: "a", value: "", timestamp: 98)
        try input.pipeInput(key: "a", value: "", timestamp: 101)   // the next window
        #expect(try read().isEmpty)
        try input.pipeInput(key: "a", value: "", timestamp: 105)   // [0,100) due (95 + 10), long before it closes
        #expect(try read() == ["a@[0,100)=2@98"])
        try input.pipeInput(key: "a", value: "", timestamp: 99)    // out of order, within the grace: held again, due 109
        #expect(try read().isEmpty)
        try input.pipeInput(key: "b", value: "", timestamp: 111)   // [0,100) (109), then a's [100,200) (101 + 10)
        #expect(try read() == ["a@[0,100)=3@99", "a@[100,200)=2@105"])
        try input.pipeInput(key: "b", value: "", timestamp: 121)   // b's first update at 111: due now, with the latest count
        #expect(try read() == ["b@[100,200)=2@121"])
    }

    @Test("what comes out keeps the old value from before the first held update", arguments: Backend.allCases)
    func keepsFirstOldValue(_ backend: Backend) throws {
        // A sum over all rows, fed by the suppressed table: the regrouping subtracts each
        // update's old value, so the sum is right only if the old value is the one downstream
        // saw last, the value from before the first held update.
        let builder = StreamsBuilder()
        builder.table("prices", key: Serdes.string, value: Serdes.int64)
            .suppress(.untilTimeLimit(.milliseconds(10)), named: "limit")
            .groupBy(key: Serdes.string, value: Serdes.int64) { _, price in ("total", price) }
            .reduce(adder: { $0 + $1 }, subtractor: { $0 - $1 })
            .toStream().to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        let (driver, cleanup) = try Self.driver(try builder.build(), backend)
        defer { cleanup() }
        let prices = driver.createInputTopic("prices", key: Serdes.string, value: Serdes.int64)
        try prices.pipeInput(key: "a", value: 5, timestamp: 0)
        try prices.pipeInput(key: "a", value: 7, timestamp: 1)
        try prices.pipeInput(key: "b", value: 100, timestamp: 2)
        try prices.pipeInput(key: "a", value: 9, timestamp: 3)
        try prices.pipeInput(key: "c", value: 1, timestamp: 12)   // a due (10), b due (12)
        #expect(try Self.read(driver).last == "total=109@2")
        try prices.pipeInput(key: "a", value: 4, timestamp: 13)
        try prices.pipeInput(key: "a", value: 6, timestamp: 14)
        try prices.pipeInput(key: "c", value: 1, timestamp: 30)   // a (9 -> 6) and c due
        // 109 - 9 + 6 = 106, + 1 for c; with the latest old value (4) it would be 111.
        #expect(try Self.read(driver).last == "total=107@14")
        let buffered = try #require(driver.tasks.first?.stores["limit-store"] as? any SuppressionBuffer<String, Int64>)
        #expect(try buffered.recordCount() == 0)
    }

    @Test("tombstones are held and sent like updates; a row created and deleted within one hold sends nothing",
          arguments: Backend.allCases)
    func tombstones(_ backend: Backend) throws {
        let (driver, cleanup) = try Self.driver(try Self.tableTopology(.untilTimeLimit(.milliseconds(10))), backend)
        defer { cleanup() }
        let prices = driver.createInputTopic("prices", key: Serdes.string, value: Serdes.int64)
        try prices.pipeInput(key: "a", value: 1, timestamp: 0)
        try prices.pipeInput(key: "x", value: 1, timestamp: 1)
        try prices.pipeTombstone(key: "x", timestamp: 2)       // x never existed downstream
        try prices.pipeInput(key: "t", value: 1, timestamp: 10) // a due
        #expect(try Self.read(driver) == ["a=1@0"])
        try prices.pipeTombstone(key: "a", timestamp: 11)      // due 21
        try prices.pipeInput(key: "t", value: 2, timestamp: 20) // t due (20), with the latest value
        #expect(try Self.read(driver) == ["t=2@20"])
        try prices.pipeInput(key: "t", value: 3, timestamp: 21)
        #expect(try Self.read(driver) == ["a=nil@11"])
        // Deleted and created again within a hold: the new value, old value kept.
        try prices.pipeTombstone(key: "t", timestamp: 22)
        try prices.pipeInput(key: "t", value: 4, timestamp: 23)
        try prices.pipeInput(key: "u", value: 1, timestamp: 40)
        #expect(try Self.read(driver) == ["t=4@23"])
    }

    // MARK: Buffer limits

    @Test("a full buffer that emits early sends the earliest held key at once, by records", arguments: Backend.allCases)
    func emitEarlyByRecords(_ backend: Backend) throws {
        let (driver, cleanup) = try Self.driver(
            try Self.countTopology(.untilTimeLimit(.milliseconds(100), buffer: .maximumRecords(2, .emitEarlyWhenFull))), backend)
        defer { cleanup() }
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: "b", value: "", timestamp: 0)
        try input.pipeInput(key: "a", value: "", timestamp: 1)
        try input.pipeInput(key: "b", value: "", timestamp: 2)   // updates a held key: still 2 keys
        #expect(try Self.read(driver).isEmpty)
        try input.pipeInput(key: "c", value: "", timestamp: 3)   // 3 keys: b (earliest) goes early
        #expect(try Self.read(driver) == ["b=2@2"])
        try input.pipeInput(key: "d", value: "", timestamp: 4)   // then a
        #expect(try Self.read(driver) == ["a=1@1"])
        try input.pipeInput(key: "b", value: "", timestamp: 5)   // b again: c goes
        #expect(try Self.read(driver) == ["c=1@3"])
        try input.pipeInput(key: "x", value: "", timestamp: 200)
        #expect(try Self.read(driver) == ["d=1@4", "b=3@5"])
    }

    @Test("a full buffer that emits early sends the earliest held keys, by bytes", arguments: Backend.allCases)
    func emitEarlyByBytes(_ backend: Backend) throws {
        // One held count of a one-letter key with no old value and no headers takes
        // 8 (emit time) + 1 (key) + 8 (timestamp) + 1 (flags) + 4 + 8 (new value) + 4 (no headers) = 34
        // bytes; with an old value 12 more. Room for two fresh keys, not three.
        let (driver, cleanup) = try Self.driver(
            try Self.countTopology(.untilTimeLimit(.milliseconds(100), buffer: .maximumBytes(75, .emitEarlyWhenFull))), backend)
        defer { cleanup() }
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: "a", value: "", timestamp: 0)
        try input.pipeInput(key: "b", value: "", timestamp: 1)
        let buffered = try #require(driver.tasks.first?.stores["limit-store"] as? any SuppressionBuffer<String, Int64>)
        #expect(try buffered.byteCount() == 68)
        #expect(try Self.read(driver).isEmpty)
        try input.pipeInput(key: "c", value: "", timestamp: 2)    // 102 bytes: a goes
        #expect(try Self.read(driver) == ["a=1@0"])
        #expect(try buffered.byteCount() == 68)
        try input.pipeInput(key: "a", value: "", timestamp: 3)    // a with an old value: 46 bytes, b and c go
        #expect(try Self.read(driver) == ["b=1@1", "c=1@2"])
        #expect(try buffered.byteCount() == 46 && buffered.recordCount() == 1)
    }

    @Test("a full buffer that shuts down fails the task with an error naming the store and the limit", arguments: Backend.allCases)
    func shutDownWhenFull(_ backend: Backend) throws {
        let (driver, cleanup) = try Self.driver(
            try Self.countTopology(.untilTimeLimit(.milliseconds(100), buffer: .maximumRecords(2, .shutDownWhenFull))), backend)
        defer { cleanup() }
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: "a", value: "", timestamp: 0)
        try input.pipeInput(key: "b", value: "", timestamp: 1)
        try input.pipeInput(key: "a", value: "", timestamp: 2)
        let error = try #require(throws: EddyError.self) { try input.pipeInput(key: "c", value: "", timestamp: 3) }
        #expect(error.code == .invalidState)
        #expect(error.message.contains("'limit-store'") && error.message.contains("limit of 2 records") && error.message.contains("holds 3 records"),
                "\(error)")
        #expect(try Self.read(driver).isEmpty)

        // By bytes, and for emit-final (a strict buffer, as Kafka allows).
        let bytes = try Self.countTopology(.untilTimeLimit(.seconds(1), buffer: .maximumBytes(40, .shutDownWhenFull)))
        let (byBytes, cleanupBytes) = try Self.driver(bytes, backend)
        defer { cleanupBytes() }
        let bytesInput = byBytes.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try bytesInput.pipeInput(key: "a", value: "", timestamp: 0)
        let bytesError = try #require(throws: EddyError.self) { try bytesInput.pipeInput(key: "b", value: "", timestamp: 0) }
        #expect(bytesError.message.contains("limit of 40 bytes") && bytesError.message.contains("68 bytes"), "\(bytesError)")

        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey().windowed(by: .of(size: 10, grace: 0)).count()
            .suppress(.untilWindowCloses(.maximumRecords(1, .shutDownWhenFull)), named: "final").toStream()
            .to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        let (windowed, cleanupWindowed) = try Self.driver(try builder.build(), backend)
        defer { cleanupWindowed() }
        let windowedInput = windowed.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try windowedInput.pipeInput(key: "a", value: "", timestamp: 0)
        try windowedInput.pipeInput(key: "a", value: "", timestamp: 5)
        try windowedInput.pipeInput(key: "a", value: "", timestamp: 12)   // closes [0,10): one held again
        let windowedError = try #require(throws: EddyError.self) { try windowedInput.pipeInput(key: "b", value: "", timestamp: 13) }
        #expect(windowedError.message.contains("'final-store'"), "\(windowedError)")
    }

    @Test("the builder refuses an emit-final suppression that emits early, bad limits, and byte limits without serdes")
    func builderErrors() throws {
        func problems(_ build: (StreamsBuilder) -> Void) -> String {
            let builder = StreamsBuilder()
            build(builder)
            do {
                _ = try builder.build()
                return ""
            } catch {
                return "\(error)"
            }
        }
        let windowed = problems { builder in
            builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey().windowed(by: .of(size: 10)).count()
                .suppress(.untilWindowCloses(.maximumRecords(5, .emitEarlyWhenFull))).toStream()
                .to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        }
        #expect(windowed.contains("only buffer limits that shut down when full"), "\(windowed)")
        let notWindowed = problems { builder in
            builder.table("t", key: Serdes.string, value: Serdes.int64).suppress(.untilWindowCloses).toStream()
                .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        }
        #expect(notWindowed.contains("needs a table from a windowed aggregation"), "\(notWindowed)")
        let negative = problems { builder in
            builder.table("t", key: Serdes.string, value: Serdes.int64).suppress(.untilTimeLimit(.milliseconds(-1))).toStream()
                .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        }
        #expect(negative.contains("must not be negative"), "\(negative)")
        let zeroRecords = problems { builder in
            builder.table("t", key: Serdes.string, value: Serdes.int64)
                .suppress(.untilTimeLimit(.seconds(1), buffer: .maximumRecords(0, .emitEarlyWhenFull))).toStream()
                .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        }
        #expect(zeroRecords.contains("maximumRecords is 0"), "\(zeroRecords)")
        let noSerde = problems { builder in
            builder.table("t", key: Serdes.string, value: Serdes.int64).mapValues { "\($0)" }
                .suppress(.untilTimeLimit(.seconds(1), buffer: .maximumBytes(1000, .emitEarlyWhenFull))).toStream()
                .to("out", key: Serdes.string, value: Serdes.optional(Serdes.string))
        }
        #expect(noSerde.contains("needs the table's key and value serdes"), "\(noSerde)")
        // A record limit works without serdes (the buffer stays in memory).
        let recordsNoSerde = problems { builder in
            builder.table("t", key: Serdes.string, value: Serdes.int64).mapValues { "\($0)" }
                .suppress(.untilTimeLimit(.seconds(1), buffer: .maximumRecords(1000, .emitEarlyWhenFull))).toStream()
                .to("out", key: Serdes.string, value: Serdes.optional(Serdes.string))
        }
        #expect(recordsNoSerde == "")
    }

    @Test("the time-limit suppression is described with its buffer store and changelog")
    func describe() throws {
        let text = try Self.countTopology(.untilTimeLimit(.seconds(1)), named: "limit").describe()
        #expect(text.contains("Processor: limit (stores: [limit-store])"), "\(text)")
        #expect(text.contains("limit-store (key-value) changelog: <application>-limit-store-changelog"), "\(text)")
        let generated = try Self.countTopology(.untilTimeLimit(.seconds(1)), named: nil)
        #expect(generated.storeNames.contains { $0.hasPrefix("KTABLE-SUPPRESS-STATE-STORE-") }, "\(generated.storeNames)")
        #expect(generated.describe().contains("Processor: KTABLE-SUPPRESS-"))
    }

    // MARK: Restarts and the model

    /// Kafka's `untilTimeLimit` over a table source, written plainly: the table's rows, each
    /// key's held change and emit time, the node's stream time, and the buffer limits.
    struct Model {
        let limit: Int64
        let limits: SuppressionBufferLimits
        var table: [String: Int64] = [:]
        var held: [String: (emit: Int64, old: Int64?, new: Int64?, time: Int64)] = [:]
        var streamTime = Int64.min
        var output: Output = []

        static func bytes(_ key: String, _ e: (emit: Int64, old: Int64?, new: Int64?, time: Int64)) -> Int {
            8 + key.utf8.count + 8 + 1 + (e.old == nil ? 0 : 12) + (e.new == nil ? 0 : 12) + 4
        }

        mutating func emit(_ key: String) {
            let e = held.removeValue(forKey: key)!
            if e.old == nil && e.new == nil { return }
            output.append("\(key)=\(e.new.map { "\($0)" } ?? "nil")@\(e.time)")
        }

        /// Keys in emit order.
        var order: [String] { held.keys.sorted { (held[$0]!.emit, $0) < (held[$1]!.emit, $1) } }

        mutating func process(_ key: String, _ value: Int64?, _ time: Int64) throws {
            let old = table[key]
            if old == nil && value == nil { return }   // the table source drops it
            table[key] = value
            streamTime = max(streamTime, time)
            if let e = held[key] {
                held[key] = (e.emit, e.old, value, time)
            } else {
                held[key] = (time + limit, old, value, time)
            }
            for key in order where held[key]!.emit <= streamTime { emit(key) }
            while held.count > (limits.maximumRecords ?? .max)
                    || held.reduce(0, { $0 + Self.bytes($1.key, $1.value) }) > (limits.maximumBytes ?? .max) {
                guard limits.whenFull == .emitEarlyWhenFull else { throw EddyError(.invalidState, "full") }
                emit(order[0])
            }
        }
    }

    struct Step { var key: String; var value: Int64?; var time: Int64 }

    static func randomSteps(_ rng: inout SeededGenerator, count: Int) -> [Step] {
        var clock: Int64 = 0
        return (0..<count).map { _ in
            clock += Int64.random(in: 0...3, using: &rng)
            let time = max(0, clock - Int64.random(in: 0...6, using: &rng))
            let value: Int64? = Int.random(in: 0..<6, using: &rng) == 0 ? nil : Int64.random(in: 0...99, using: &rng)
            return Step(key: "k\(Int.random(in: 0..<7, using: &rng))", value: value, time: time)
        }
    }

    /// Pipes `steps` through drivers on `backend`, closing the driver and opening a new one on
    /// the same state before each step in `restarts`.
    static func run(_ steps: [Step], _ suppression: Suppression, backend: StoreBackend, restarts: Set<Int> = []) throws -> Output {
        var output: Output = []
        var driver = try TopologyTestDriver(try tableTopology(suppression), stores: backend)
        defer { driver.close() }
        for (i, step) in steps.enumerated() {
            if restarts.contains(i) {
                output += try read(driver)
                driver.close()
                driver = try TopologyTestDriver(try tableTopology(suppression), stores: backend)
            }
            let prices = driver.createInputTopic("prices", key: Serdes.string, value: Serdes.int64)
            if let value = step.value {
                try prices.pipeInput(key: step.key, value: value, timestamp: step.time)
            } else {
                try prices.pipeTombstone(key: step.key, timestamp: step.time)
            }
        }
        return output + (try read(driver))
    }

    @Test("random tables agree with the model, in memory and with RocksDB across restarts, with and without limits")
    func randomAgainstModel() throws {
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("SuppressTimeLimitTests.randomAgainstModel seed: \(seed) (replay with EDDY_SEED=\(seed))")
        var rng = SeededGenerator(seed: seed)
        for round in 0..<6 {
            let steps = Self.randomSteps(&rng, count: 70)
            let limit = Int64.random(in: 0...15, using: &rng)
            let limits: SuppressionBufferLimits
            switch round % 3 {
            case 0: limits = .unbounded
            case 1: limits = .maximumRecords(Int.random(in: 1...4, using: &rng), .emitEarlyWhenFull)
            default: limits = .maximumBytes(Int.random(in: 40...140, using: &rng), .emitEarlyWhenFull)
            }
            var model = Model(limit: limit, limits: limits)
            for step in steps { try model.process(step.key, step.value, step.time) }
            let suppression = Suppression.untilTimeLimit(.milliseconds(limit), buffer: limits)
            let context = "seed \(seed) round \(round) limit \(limit) \(limits)"
            #expect(try Self.run(steps, suppression, backend: .inMemory) == model.output, "\(context)")
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let restarts = Set((0..<3).map { _ in Int.random(in: 1..<steps.count, using: &rng) })
            let got = try Self.run(steps, suppression, backend: .rocksDB(directory: directory), restarts: restarts)
            #expect(got == model.output, "\(context) restarts \(restarts.sorted())")
        }
    }

    @Test("a persistent buffer holds its keys and stream time across a restart and sends each once")
    func persistsAcrossRestart() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let topology = { try Self.countTopology(.untilTimeLimit(.milliseconds(10))) }
        var driver = try TopologyTestDriver(try topology(), stores: .rocksDB(directory: directory))
        var input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: "a", value: "", timestamp: 0)
        try input.pipeInput(key: "b", value: "", timestamp: 5)
        try input.pipeInput(key: "a", value: "", timestamp: 10)   // a due: sent before the restart
        try input.pipeInput(key: "b", value: "", timestamp: 12)   // held: b (due 15)
        #expect(try Self.read(driver) == ["a=2@10"])
        driver.close()

        driver = try TopologyTestDriver(try topology(), stores: .rocksDB(directory: directory))
        defer { driver.close() }
        let buffered = try #require(driver.tasks.first?.stores["limit-store"] as? PersistentSuppressionBuffer<String, Int64>)
        #expect(try buffered.observedStreamTime() == 12)
        #expect(try buffered.get("b")?.emitTime == 15)
        #expect(try buffered.get("a") == nil)
        input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        // Out of order: the restored stream time (12) decides, so b is not due yet and this
        // new hold of a is due at 13.
        try input.pipeInput(key: "a", value: "", timestamp: 3)
        #expect(try Self.read(driver).isEmpty)
        try input.pipeInput(key: "c", value: "", timestamp: 15)
        #expect(try Self.read(driver) == ["a=3@3", "b=2@12"])
    }

    // MARK: The emit order

    @Test("the emit order takes keys by time and then by the sort, also when emitting early in between")
    func emitOrderAgainstSorting() throws {
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("SuppressTimeLimitTests.emitOrderAgainstSorting seed: \(seed) (replay with EDDY_SEED=\(seed))")
        var rng = SeededGenerator(seed: seed)
        var order = EmitOrder<Int>()
        var model: [(time: Timestamp, slot: Int)] = []
        var next = 0
        let sort: ([Int]) -> [Int] = { $0.sorted() }
        for step in 0..<5_000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<6:
                let time = Timestamp(step / 10 + Int.random(in: -5...20, using: &rng))
                let slot = Int.random(in: 0..<1_000_000, using: &rng) * 10_000 + next
                next += 1
                order.insert(slot, at: time)
                model.append((time, slot))
            case 6..<9:
                let got = order.takeFirst(sort: sort)
                let first = model.indices.min { (model[$0].time, model[$0].slot) < (model[$1].time, model[$1].slot) }
                #expect(got?.time == first.map { model[$0].time } && got?.slot == first.map { model[$0].slot }, "seed \(seed) step \(step)")
                if let first { model.remove(at: first) }
            default:
                let upTo = Timestamp(step / 10 + Int.random(in: -5...5, using: &rng))
                let got = order.takeDue(upTo: upTo, sort: sort)
                let due = model.filter { $0.time <= upTo }.sorted { ($0.time, $0.slot) < ($1.time, $1.slot) }
                #expect(got.map(\.slot) == due.map(\.slot) && got.map(\.time) == due.map(\.time), "seed \(seed) step \(step)")
                model.removeAll { $0.time <= upTo }
            }
            #expect(order.first == model.map(\.time).min(), "seed \(seed) step \(step)")
        }
    }
}
