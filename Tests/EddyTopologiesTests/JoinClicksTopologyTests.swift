import EddyCore
import EddyStreams
import EddyTopologies
import Testing

@Suite("join-clicks topology")
struct JoinClicksTopologyTests {
    @Test("a click joins the impressions of its id within the window, either way, at once")
    func joins() throws {
        let topology = try TopologyRegistry.named("join-clicks").topology(["window-ms": "5000", "grace-ms": "1000"])
        let driver = try TopologyTestDriver(topology, applicationID: "join-clicks")
        defer { driver.close() }
        let impressions = driver.createInputTopic("impressions", key: Serdes.string, value: Serdes.string)
        let clicks = driver.createInputTopic("clicks", key: Serdes.string, value: Serdes.string)
        let joined = driver.createOutputTopic("clicks-with-impressions", key: Serdes.string, value: Serdes.string)
        try impressions.pipeInput(key: "i1", value: #"{"ad":"shoes"}"#, timestamp: 1_000)
        try clicks.pipeInput(key: "i1", value: #"{"x":3}"#, timestamp: 6_000)          // 5 s after: joins
        try clicks.pipeInput(key: "i1", value: #""late click""#, timestamp: 6_001)      // 5.001 s after: no
        try clicks.pipeInput(key: "i2", value: "1", timestamp: 7_000)                   // impression comes after
        try impressions.pipeInput(key: "i2", value: "[2]", timestamp: 9_000)
        try impressions.pipeInput(key: "i2", value: nil, timestamp: 9_500)              // null value: skipped
        try impressions.pipeInput(key: "i2", value: "true", timestamp: 9_600)
        try clicks.pipeInput(key: "i3", value: "{}", timestamp: 9_700)                  // no impression: nothing
        let records = try joined.readRecordsToList()
        #expect(records.map { "\($0.key) \($0.value)" } == [
            #"i1 {"impression":{"ad":"shoes"},"click":{"x":3}}"#,
            #"i2 {"impression":[2],"click":1}"#,
            #"i2 {"impression":true,"click":1}"#,
        ])
        #expect(records.map(\.timestamp) == [6_000, 9_000, 9_600])
        // Stream time 9700: a click at 3000 is past 3000 + 5000 + 1000 and dropped.
        try clicks.pipeInput(key: "i1", value: "{}", timestamp: 3_000)
        #expect(driver.metrics.droppedLateRecords == 1)
        #expect(joined.isEmpty)
    }

    @Test("random impressions and clicks give exactly the pairs a model computes")
    func matchesModel() throws {
        var random = SeededGenerator(seed: testSeed("join-clicks model"))
        for _ in 0..<20 {
            let window = Int64.random(in: 0...20, using: &random) * 100
            let grace = Int64.random(in: 0...20, using: &random) * 100
            let driver = try TopologyTestDriver(try JoinClicksTopology.topology(windowMilliseconds: window, graceMilliseconds: grace))
            defer { driver.close() }
            let impressions = driver.createInputTopic("impressions", key: Serdes.string, value: Serdes.string)
            let clicks = driver.createInputTopic("clicks", key: Serdes.string, value: Serdes.string)
            let joined = driver.createOutputTopic("clicks-with-impressions", key: Serdes.string, value: Serdes.string)
            var streamTime: Int64 = .min
            var seen: [(isClick: Bool, key: String, time: Int64, value: String)] = []
            var expected: [String] = []
            var dropped = 0
            var time: Int64 = 0
            for n in 0..<Int.random(in: 1...200, using: &random) {
                time += Int64.random(in: 0...300, using: &random)
                let t = max(0, time - Int64.random(in: 0...3_000, using: &random) * Int64(Int.random(in: 0...1, using: &random)))
                let key = "i\(Int.random(in: 0..<6, using: &random))"
                let isClick = Bool.random(using: &random)
                let value = "\(n)"
                try (isClick ? clicks : impressions).pipeInput(key: key, value: value, timestamp: t)
                if t + window + grace < streamTime {
                    dropped += 1
                    continue
                }
                streamTime = max(streamTime, t)
                // Partners come out in timestamp order (the join's window store), ties in arrival order.
                let partners = seen.enumerated()
                    .filter { $0.element.isClick != isClick && $0.element.key == key && abs($0.element.time - t) <= window }
                    .sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }
                    .map(\.element)
                for other in partners {
                    let (impression, click) = isClick ? (other.value, value) : (value, other.value)
                    expected.append("\(key) \(max(t, other.time)) {\"impression\":\(impression),\"click\":\(click)}")
                }
                seen.append((isClick, key, t, value))
            }
            #expect(try joined.readRecordsToList().map { "\($0.key) \($0.timestamp) \($0.value)" } == expected,
                    "window \(window) grace \(grace)")
            #expect(driver.metrics.droppedLateRecords == dropped)
        }
    }

    @Test("bad windows and unknown options are refused with the option's name")
    func refusesBadOptions() throws {
        let registered = try TopologyRegistry.named("join-clicks")
        for (name, bad) in [("window-ms", "-1"), ("window-ms", "5s"), ("grace-ms", "-1"), ("grace-ms", "99999999999999")] {
            let message = eddyErrorMessage { _ = try registered.topology([name: bad]) }
            #expect(message?.contains("--\(name)") == true, "\(name) \(bad): \(message ?? "accepted")")
        }
        #expect(eddyErrorMessage { _ = try registered.topology(["window-ms": "0", "grace-ms": "0"]) } == nil)
        let message = eddyErrorMessage { _ = try registered.topology(["windows-ms": "1"]) }
        #expect(message?.contains("--window-ms") == true, "\(message ?? "accepted")")
        let text = try registered.topology(["clicks": "taps", "impressions": "views", "output": "taps-joined"]).describe(.text)
        for word in ["taps", "views", "taps-joined", "click-impression"] { #expect(text.contains(word), "\(word) missing from \(text)") }
    }

    @Test("command-line topology options parse as --name VALUE or --name=VALUE, and mistakes are named")
    func parsesOptions() throws {
        #expect(try RegisteredTopology.parseOptions(["--window-ms", "5", "--grace-ms=0", "--output", "-x"])
                == ["window-ms": "5", "grace-ms": "0", "output": "-x"])
        #expect(try RegisteredTopology.parseOptions([]) == [:])
        #expect(eddyErrorMessage { _ = try RegisteredTopology.parseOptions(["--window-ms"]) }?.contains("--window-ms needs a value") == true)
        #expect(eddyErrorMessage { _ = try RegisteredTopology.parseOptions(["--window-ms", "--grace-ms", "1"]) }?.contains("--window-ms needs a value") == true)
        #expect(eddyErrorMessage { _ = try RegisteredTopology.parseOptions(["stray"]) }?.contains("'stray'") == true)
        #expect(eddyErrorMessage { _ = try RegisteredTopology.parseOptions(["--a", "1", "--a=2"]) }?.contains("twice") == true)
    }
}
