import EddyCore
import EddyStreams
import EddyTopologies
import Testing

@Suite("windowed-count topology")
struct WindowedCountTopologyTests {
    static func key(_ k: String, _ start: Int64, _ end: Int64) -> String {
        "{\"key\":\"\(k)\",\"start\":\(start),\"end\":\(end)}"
    }
    static func value(_ k: String, _ start: Int64, _ end: Int64, _ count: Int) -> String {
        "{\"key\":\"\(k)\",\"start\":\(start),\"end\":\(end),\"count\":\(count)}"
    }

    @Test("each window's final count is sent once, after end + grace, and later records are dropped")
    func emitsFinalCounts() throws {
        let topology = try TopologyRegistry.named("windowed-count").topology(["window-size-ms": "10000", "grace-ms": "2000"])
        let driver = try TopologyTestDriver(topology, applicationID: "windowed-count")
        defer { driver.close() }
        let events = driver.createInputTopic("events", key: Serdes.string, value: Serdes.string)
        let counts = driver.createOutputTopic("windowed-counts", key: Serdes.string, value: Serdes.string)
        try events.pipeInput(key: "a", value: "{}", timestamp: 1_000)
        try events.pipeInput(key: "a", value: "x", timestamp: 2_000)
        try events.pipeInput(key: "b", value: "1", timestamp: 3_000)
        try events.pipeInput(key: "b", value: nil, timestamp: 3_500)          // tombstone: not counted
        try events.pipeInput(key: "c", value: "{}", timestamp: 11_000)
        try events.pipeInput(key: "a", value: "{}", timestamp: 9_999)         // late, within grace
        #expect(counts.isEmpty)
        try events.pipeInput(key: "c", value: "{}", timestamp: 11_999)
        #expect(counts.isEmpty)                                               // [0, 10000) closes at 12000
        try events.pipeInput(key: "c", value: "{}", timestamp: 12_000)
        let first = try counts.readRecordsToList()
        #expect(first.map(\.key) == [Self.key("a", 0, 10_000), Self.key("b", 0, 10_000)])
        #expect(first.map(\.value) == [Self.value("a", 0, 10_000, 3), Self.value("b", 0, 10_000, 1)])
        try events.pipeInput(key: "a", value: "{}", timestamp: 4_000)         // beyond grace: dropped
        #expect(driver.metrics.droppedLateRecords == 1)
        try events.pipeInput(key: "d", value: "{}", timestamp: 40_000)
        #expect(try counts.readKeyValuesToList().map { "\($0.key) \($0.value)" }
                == ["\(Self.key("c", 10_000, 20_000)) \(Self.value("c", 10_000, 20_000, 3))"])
        #expect(counts.isEmpty)
    }

    @Test("keys with quotes and non-ASCII letters come out as valid JSON strings")
    func escapesKeys() throws {
        let topology = try WindowedCountTopology.topology(windowSizeMilliseconds: 1_000, graceMilliseconds: 0)
        let driver = try TopologyTestDriver(topology)
        defer { driver.close() }
        let events = driver.createInputTopic("events", key: Serdes.string, value: Serdes.string)
        let counts = driver.createOutputTopic("windowed-counts", key: Serdes.string, value: Serdes.string)
        try events.pipeInput(key: "say \"hé\"\n", value: "1", timestamp: 5)
        try events.pipeInput(key: "z", value: "1", timestamp: 1_000)
        #expect(try counts.readValuesToList() == ["{\"key\":\"say \\\"hé\\\"\\n\",\"start\":0,\"end\":1000,\"count\":1}"])
    }

    @Test("random records give exactly the final counts a model computes, in close order")
    func matchesModel() throws {
        var random = SeededGenerator(seed: testSeed("windowed-count model"))
        for _ in 0..<20 {
            let size = Int64.random(in: 1...50, using: &random) * 100
            let grace = Int64.random(in: 0...30, using: &random) * 100
            let driver = try TopologyTestDriver(try WindowedCountTopology.topology(windowSizeMilliseconds: size, graceMilliseconds: grace))
            defer { driver.close() }
            let events = driver.createInputTopic("events", key: Serdes.string, value: Serdes.string)
            let counts = driver.createOutputTopic("windowed-counts", key: Serdes.string, value: Serdes.string)
            // The model: stream time, the open windows, the expected output.
            var streamTime: Int64 = .min
            var open: [(key: String, start: Int64, count: Int)] = []
            var expected: [String] = []
            var dropped = 0
            func closeWindows() {
                let closing = open.enumerated().filter { $0.element.start + size + grace <= streamTime }
                // Sent by close time, then by key bytes (the suppression buffer's order, as in
                // Kafka); the keys are ASCII, so String order is byte order.
                for w in closing.map(\.element).sorted(by: { ($0.start, $0.key) < ($1.start, $1.key) }) {
                    expected.append(Self.value(w.key, w.start, w.start + size, w.count))
                }
                open.removeAll { $0.start + size + grace <= streamTime }
            }
            var time: Int64 = 0
            for _ in 0..<Int.random(in: 1...300, using: &random) {
                time += Int64.random(in: 0...400, using: &random)
                let t = max(0, time - Int64.random(in: 0...(size + grace + 500), using: &random) * Int64(Int.random(in: 0...1, using: &random)))
                let key = "k\(Int.random(in: 0..<5, using: &random))"
                try events.pipeInput(key: key, value: "{}", timestamp: t)
                streamTime = max(streamTime, t)
                let start = t - t % size
                if start + size + grace <= streamTime {
                    dropped += 1
                } else if let i = open.firstIndex(where: { $0.key == key && $0.start == start }) {
                    open[i].count += 1
                } else {
                    open.append((key, start, 1))
                }
                closeWindows()
            }
            #expect(try counts.readValuesToList() == expected, "size \(size) grace \(grace)")
            #expect(driver.metrics.droppedLateRecords == dropped)
        }
    }

    @Test("bad window sizes, graces and unknown options are refused with the option's name")
    func refusesBadOptions() throws {
        let registered = try TopologyRegistry.named("windowed-count")
        for bad in ["0", "-5", "abc", "", "1.5", "31536000001"] {
            let message = eddyErrorMessage { _ = try registered.topology(["window-size-ms": bad]) }
            #expect(message?.contains("--window-size-ms") == true && message?.contains("'\(bad)'") == true, "\(bad): \(message ?? "accepted")")
        }
        #expect(eddyErrorMessage { _ = try registered.topology(["grace-ms": "-1"]) }?.contains("--grace-ms") == true)
        #expect(eddyErrorMessage { _ = try registered.topology(["grace-ms": "0", "window-size-ms": "1"]) } == nil)
        #expect(eddyErrorMessage { _ = try WindowedCountTopology.topology(windowSizeMilliseconds: 0) }?.contains("--window-size-ms") == true)
        let unknown = eddyErrorMessage { _ = try registered.topology(["window-size": "10"]) }
        #expect(unknown?.contains("--window-size") == true && unknown?.contains("--window-size-ms") == true, "\(unknown ?? "accepted")")
    }

    @Test("the topology describes its store, suppression and topics")
    func describes() throws {
        let text = try TopologyRegistry.named("windowed-count").topology(["input": "clicks", "output": "per-minute"]).describe(.text)
        for word in ["clicks", "per-minute", "counts", "until-window-closes"] {
            #expect(text.contains(word), "\(word) missing from \(text)")
        }
    }
}
