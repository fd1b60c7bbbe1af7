import EddyCore
import Foundation
@testable import EddyStreams
import Testing

/// Reads windowed-key outputs as comparable triples.
struct WindowedValue<V: Equatable>: Equatable, CustomStringConvertible {
    var key: String
    var start: Int64
    var end: Int64
    var value: V?
    init(_ key: String, _ start: Int64, _ end: Int64, _ value: V?) {
        self.key = key; self.start = start; self.end = end; self.value = value
    }
    var description: String { "\(key)@[\(start),\(end)]=\(value.map { "\($0)" } ?? "nil")" }
}

func readWindowed<S: Serde>(_ driver: TopologyTestDriver, _ topic: String, keySerde: S) throws -> [WindowedValue<Int64>]
    where S.Value == Windowed<String> {
    try driver.createOutputTopic(topic, key: keySerde, value: Serdes.optional(Serdes.int64)).readRecordsToList()
        .map { WindowedValue($0.key.key, $0.key.window.start, $0.key.window.end, $0.value) }
}

@Suite("Aggregations")
struct AggregationTests {
    @Test("count, reduce and aggregate keep a running result per key in named stores")
    func keyedAggregations() throws {
        let builder = StreamsBuilder()
        let grouped = builder.stream("in", key: Serdes.string, value: Serdes.int64).groupByKey()
        grouped.count(materializedAs: "counts").toStream().to("counts", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        grouped.reduce(materializedAs: "maxima") { max($0, $1) }.toStream().to("maxima", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        grouped.aggregate(materializedAs: "lists", initializer: { "" }) { _, v, agg in agg + "\(v);" }
            .toStream().to("lists", key: Serdes.string, value: Serdes.optional(Serdes.string))
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
        let counts = driver.createOutputTopic("counts", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        #expect(counts.isEmpty)
        for (k, v) in [("a", 3), ("b", 1), ("a", 7), ("a", 2)] { try input.pipeInput(key: k, value: Int64(v)) }
        #expect(try counts.readKeyValuesToList().map { "\($0.key)=\($0.value!)" } == ["a=1", "b=1", "a=2", "a=3"])
        let maxima = try driver.createOutputTopic("maxima", key: Serdes.string, value: Serdes.optional(Serdes.int64)).readValuesToList()
        #expect(maxima == [3, 1, 7, 7])
        let lists = try driver.createOutputTopic("lists", key: Serdes.string, value: Serdes.optional(Serdes.string)).readKeyValuesToMap()
        #expect(lists == ["a": "3;7;2;", "b": "1;"])
        let store = try #require(driver.keyValueStore("counts", key: String.self, value: Int64.self))
        #expect(try store.get("a") == 3)
        #expect(try store.get("b") == 1)
        #expect(try store.get("zzz") == nil)
    }

    @Test("groupBy repartitions through an internal topic and splits the topology")
    func groupByRepartitions() throws {
        let builder = StreamsBuilder()
        builder.stream("views", key: Serdes.string, value: Serdes.string)
            .groupBy(key: Serdes.string, value: Serdes.string, named: "by-page") { _, page in page }
            .count(materializedAs: "page-counts")
        let topology = try builder.build()
        #expect(topology.subtopologies.count == 2)
        #expect(topology.internalTopics.keys.sorted() == ["by-page-repartition"])
        #expect(topology.describe().contains("by-page-repartition"))
        let driver = try TopologyTestDriver(topology, applicationID: "app", partitions: ["views": 3])
        let input = driver.createInputTopic("views", key: Serdes.string, value: Serdes.string)
        for (user, page) in [("u1", "home"), ("u2", "home"), ("u3", "cart"), ("u1", "home")] {
            try input.pipeInput(key: user, value: page)
        }
        #expect(driver.topicNames.contains("app-by-page-repartition"))
        var total: [String: Int64] = [:]
        for p in 0..<3 {
            for (k, v) in try driver.keyValueStore("page-counts", key: String.self, value: Int64.self, partition: p)?.all() ?? [] {
                total[k] = v
            }
        }
        #expect(total == ["home": 3, "cart": 1])
    }

    @Test("tumbling windows count in-order and out-of-order records and drop late ones")
    func tumbling() throws {
        let builder = StreamsBuilder()
        let windowed = builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
            .windowed(by: .of(size: 10, grace: 5))
        windowed.count(materializedAs: "w").toStream()
            .to("updates", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        for t: Int64 in [1, 12, 4, 16, 3, 25] { try input.pipeInput(key: "a", value: "x", timestamp: t) }
        let out = try readWindowed(driver, "updates", keySerde: Serdes.timeWindowed(Serdes.string, windowSize: 10))
        #expect(out == [WindowedValue("a", 0, 10, 1), WindowedValue("a", 10, 20, 1), WindowedValue("a", 0, 10, 2),
                        WindowedValue("a", 10, 20, 2), WindowedValue("a", 20, 30, 1)])
        #expect(driver.metrics.droppedLateRecords == 1)
        let store = try #require(driver.windowStore("w", key: String.self, value: Int64.self))
        #expect(try store.fetch("a", windowStart: 20) == 1)
        // Retention is size + grace = 15: at stream time 25, windows starting at or before 10 are gone.
        #expect(try store.fetch("a", windowStart: 10) == nil)
        #expect(try store.all().map(\.key.window.start) == [20])
    }

    @Test("emit-final sends each window's result once, when stream time passes end plus grace")
    func emitFinal() throws {
        for useSuppress in [false, true] {
            let builder = StreamsBuilder()
            let windowed = builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
                .windowed(by: .of(size: 10, grace: 5))
            let table = useSuppress ? windowed.count().suppress(.untilWindowCloses) : windowed.emit(.onWindowClose).count()
            table.toStream().to("final", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
            let driver = try TopologyTestDriver(try builder.build())
            let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
            let ts: [Int64] = [1, 12, 4, 16, 3]
            for t in ts { try input.pipeInput(key: "a", value: "x", timestamp: t) }
            try input.pipeInput(key: "b", value: "x", timestamp: 14)
            #expect(try readWindowed(driver, "final", keySerde: Serdes.timeWindowed(Serdes.string, windowSize: 10)) == [WindowedValue("a", 0, 10, 2)])
            try input.pipeInput(key: "a", value: "x", timestamp: 25)
            #expect(try readWindowed(driver, "final", keySerde: Serdes.timeWindowed(Serdes.string, windowSize: 10)) ==
                    [WindowedValue("a", 10, 20, 2), WindowedValue("b", 10, 20, 1)])
            #expect(driver.metrics.droppedLateRecords == 1)
        }
    }

    @Test("emit-final hopping windows send each window once, by window start then key, with the window's last timestamp, in memory and in RocksDB")
    func emitFinalHopping() throws {
        let keySerde = Serdes.timeWindowed(Serdes.string, windowSize: 10)
        let directory = NSTemporaryDirectory() + "/eddy-emit-final-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // (key, timestamp): out of order within the grace, a late one, keys out of byte order.
        let input: [(String, Int64)] = [("b", 7), ("a", 3), ("a", 12), ("b", 9), ("c", 16), ("a", 14), ("b", 2), ("a", 31), ("c", 33), ("b", 60)]
        var results: [[(WindowedValue<Int64>, Int64)]] = []
        for (emit, backend) in [(true, StoreBackend.inMemory), (true, .rocksDB(directory: directory)), (false, .inMemory)] {
            let builder = StreamsBuilder()
            let windowed = builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
                .windowed(by: TimeWindows.of(size: 10, grace: 3).advance(by: 5))
            // The same results through a suppression buffer, for comparison of the values.
            let table = emit ? windowed.emit(.onWindowClose).count(materializedAs: "w") : windowed.count(materializedAs: "w").suppress(.untilWindowCloses)
            table.toStream().to("final", key: keySerde, value: Serdes.optional(Serdes.int64))
            let driver = try TopologyTestDriver(try builder.build(), stores: backend)
            defer { driver.close() }
            let source = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
            for (key, t) in input { try source.pipeInput(key: key, value: "x", timestamp: t) }
            results.append(try driver.createOutputTopic("final", key: keySerde, value: Serdes.optional(Serdes.int64)).readRecordsToList()
                .map { (WindowedValue($0.key.key, $0.key.window.start, $0.key.window.end, $0.value), $0.timestamp) })
            if emit { #expect(driver.metrics.emittedFinalResults == results.last!.count) }
            #expect(driver.metrics.droppedLateRecords == 1)  // b@2 at stream time 16: [0,10) closed at 13
        }
        let expected = [WindowedValue<Int64>("a", 0, 10, 1), WindowedValue("b", 0, 10, 2),
                        WindowedValue("a", 5, 15, 2), WindowedValue("b", 5, 15, 2),
                        WindowedValue("a", 10, 20, 2), WindowedValue("c", 10, 20, 1),
                        WindowedValue("c", 15, 25, 1), WindowedValue("a", 25, 35, 1), WindowedValue("a", 30, 40, 1),
                        WindowedValue("c", 25, 35, 1), WindowedValue("c", 30, 40, 1)]
        // Emit-final: by window start then key, stamped end - 1.
        let byStart = expected.sorted { ($0.start, $0.key) < ($1.start, $1.key) }
        for result in results.prefix(2) {
            #expect(result.map(\.0) == byStart)
            #expect(result.map(\.1) == byStart.map { $0.end - 1 })
        }
        // The suppression buffer sends the same final values (by close time, then key).
        #expect(results[2].map(\.0) == byStart)
    }

    @Test("hopping windows put a record in every window that contains it")
    func hopping() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
            .windowed(by: TimeWindows.of(size: 10).advance(by: 5)).count().toStream()
            .to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        for t: Int64 in [7, 12, 3] { try input.pipeInput(key: "a", value: "x", timestamp: t) }
        #expect(try readWindowed(driver, "out", keySerde: Serdes.timeWindowed(Serdes.string, windowSize: 10)) ==
                [WindowedValue("a", 0, 10, 1), WindowedValue("a", 5, 15, 1), WindowedValue("a", 5, 15, 2), WindowedValue("a", 10, 20, 1)])
        #expect(driver.metrics.droppedLateRecords == 1)
    }

    @Test("window starts cover every window containing a timestamp")
    func windowStarts() {
        #expect(Array(TimeWindows.of(size: 10).windowStarts(for: 25)) == [20])
        #expect(Array(TimeWindows.of(size: 10).advance(by: 5).windowStarts(for: 7)) == [0, 5])
        #expect(Array(TimeWindows.of(size: 10).advance(by: 3).windowStarts(for: 10)) == [3, 6, 9])
        #expect(Array(TimeWindows.of(size: 10).advance(by: 5).windowStarts(for: 0)) == [0])
    }

    @Test("sliding windows follow KIP-450: a left window per record and right windows where later records fall")
    func sliding() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
            .windowed(by: SlidingWindows.of(timeDifference: 10, grace: 5)).count().toStream()
            .to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        for t: Int64 in [5, 12, 30, 22, 8] { try input.pipeInput(key: "a", value: "x", timestamp: t) }
        let out = try readWindowed(driver, "out", keySerde: Serdes.timeWindowed(Serdes.string, windowSize: 10))
        #expect(out == [WindowedValue("a", 0, 10, 1), WindowedValue("a", 2, 12, 2), WindowedValue("a", 6, 16, 1),
                        WindowedValue("a", 20, 30, 1), WindowedValue("a", 20, 30, 2), WindowedValue("a", 23, 33, 1)])
        #expect(driver.metrics.droppedLateRecords == 1)
    }

    @Test("session windows grow, merge with tombstones for merged sessions, and drop late records")
    func sessions() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
            .windowed(by: SessionWindows.of(inactivityGap: 5, grace: 10)).count(materializedAs: "sessions").toStream()
            .to("out", key: Serdes.sessionWindowed(Serdes.string), value: Serdes.optional(Serdes.int64))
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        for t: Int64 in [1, 4, 20, 12, 16, 2] { try input.pipeInput(key: "a", value: "x", timestamp: t) }
        let out = try readWindowed(driver, "out", keySerde: Serdes.sessionWindowed(Serdes.string))
        #expect(out == [WindowedValue("a", 1, 1, 1), WindowedValue("a", 1, 1, nil), WindowedValue("a", 1, 4, 2),
                        WindowedValue("a", 20, 20, 1), WindowedValue("a", 12, 12, 1), WindowedValue("a", 12, 12, nil),
                        WindowedValue("a", 20, 20, nil), WindowedValue("a", 12, 20, 3)])
        #expect(driver.metrics.droppedLateRecords == 1)
        let store = try #require(driver.sessionStore("sessions", key: String.self, value: Int64.self))
        // Retention is gap + grace = 15: at stream time 20, the session ending at 4 is gone.
        #expect(try store.all().map { "\($0.key.window.start)-\($0.key.window.end)=\($0.value)" } == ["12-20=3"])
    }

    @Test("table groupBy with count subtracts rows that move and rows deleted by tombstones")
    func tableAggregation() throws {
        let builder = StreamsBuilder()
        builder.table("users", key: Serdes.string, value: Serdes.string)
            .groupBy(key: Serdes.string, value: Serdes.string) { user, region in (region, user) }
            .count(materializedAs: "per-region").toStream()
            .to("counts", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        let driver = try TopologyTestDriver(try builder.build())
        let users = driver.createInputTopic("users", key: Serdes.string, value: Serdes.string)
        try users.pipeInput(key: "alice", value: "eu")
        try users.pipeInput(key: "bob", value: "us")
        try users.pipeInput(key: "carol", value: "eu")
        try users.pipeInput(key: "alice", value: "us")
        try users.pipeTombstone(key: "bob")
        try users.pipeTombstone(key: "nobody")
        let out = try driver.createOutputTopic("counts", key: Serdes.string, value: Serdes.optional(Serdes.int64)).readKeyValuesToList()
        #expect(out.map { "\($0.key)=\($0.value!)" } == ["eu=1", "us=1", "eu=2", "eu=1", "us=2", "us=1"])
    }

    @Test("table reduce adds and subtracts; toTable keeps the latest value per key")
    func tableReduceAndToTable() throws {
        let builder = StreamsBuilder()
        builder.table("balances", key: Serdes.string, value: Serdes.int64)
            .groupBy(key: Serdes.string, value: Serdes.int64) { _, v in ("total", v) }
            .reduce(materializedAs: "total", adder: { $0 + $1 }, subtractor: { $0 - $1 })
        builder.stream("latest", key: Serdes.string, value: Serdes.string).toTable(materializedAs: "latest-store")
        let driver = try TopologyTestDriver(try builder.build())
        let balances = driver.createInputTopic("balances", key: Serdes.string, value: Serdes.int64)
        try balances.pipeInput(key: "x", value: 10)
        try balances.pipeInput(key: "y", value: 5)
        try balances.pipeInput(key: "x", value: 3)
        try balances.pipeTombstone(key: "y")
        #expect(try driver.keyValueStore("total", key: String.self, value: Int64.self)?.get("total") == 3)
        let latest = driver.createInputTopic("latest", key: Serdes.string, value: Serdes.string)
        try latest.pipeInput(key: "k", value: "1")
        try latest.pipeInput(key: "k", value: "2")
        #expect(try driver.keyValueStore("latest-store", key: String.self, value: String.self)?.get("k") == "2")
    }
}
