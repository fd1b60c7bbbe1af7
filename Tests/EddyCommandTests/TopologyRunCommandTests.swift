import Foundation
import Testing

/// `eddy run` and `eddy describe` of `windowed-count`, `enrich-orders` and `join-clicks`
/// through the built executable, on the embedded log, exactly-once, outputs read back with
/// `read_committed` and compared byte for byte.
@Suite("eddy run: registered topologies")
struct TopologyRunCommandTests {
    /// Each committed record of `topic` as `key value` (or `key timestamp value`), exact bytes.
    static func committed(_ cli: CommandRunner, _ topic: String, timestamps: Bool = false) throws -> [String] {
        let consumed = try cli.run(["consume", topic, "--from-beginning", "--isolation", "read_committed",
                                    "--idle-timeout-ms", "300", "--format", "base64"])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        return try consumed.lines.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            func text(_ field: String) -> String {
                guard let encoded = object[field] as? String, let data = Data(base64Encoded: encoded) else { return "null" }
                return String(decoding: data, as: UTF8.self)
            }
            return timestamps ? "\(text("key")) \(object["timestamp"] as! Int) \(text("value"))" : "\(text("key")) \(text("value"))"
        }
    }

    static func produce(_ cli: CommandRunner, _ topic: String, _ lines: [String]) throws {
        let produced = try cli.run(["produce", topic], input: lines.joined(separator: "\n") + "\n")
        #expect(produced.status == 0, "\(produced.stderr)")
    }

    static func run(_ cli: CommandRunner, _ arguments: [String]) throws {
        let result = try cli.run(["run"] + arguments + ["--until-idle", "--guarantee", "exactly-once", "--commit-interval-ms", "50"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("processed"), "\(result.stdout)")
    }

    @Test("windowed-count sends each closed window's count exactly once and drops the late record")
    func windowedCount() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "events", "--partitions", "2"]).status == 0)
        func event(_ key: String, _ time: Int, partition: Int? = nil) -> String {
            "{\"key\":\"\(key)\",\"value\":{\"n\":1},\"timestamp\":\(time)" + (partition.map { ",\"partition\":\($0)" } ?? "") + "}"
        }
        // Timestamps rise on every partition, except a@3000: its partition is at 12500 by then,
        // past [0, 10000)'s close at 12000, so it is dropped.
        try Self.produce(cli, "events", [
            event("a", 1_000), event("a", 2_000), event("b", 3_000), event("c", 4_000), event("b", 9_000), event("a", 9_500),
            event("a", 12_500), event("c", 15_000), event("b", 19_999),
            event("a", 3_000),
            // Move both partitions' stream time past every window above (their own window stays open).
            event("tick", 100_000, partition: 0), event("tick", 100_000, partition: 1),
        ])
        // One stream thread: the suppression buffer lives in memory for now, so a task that moves
        // to another thread in a rebalance would lose the windows it holds (see the README).
        try Self.run(cli, ["windowed-count", "--window-size-ms", "10000", "--grace-ms=2000"])
        func pair(_ key: String, _ start: Int, _ count: Int) -> String {
            let window = "\"key\":\"\(key)\",\"start\":\(start),\"end\":\(start + 10_000)"
            return "{\(window)} {\(window),\"count\":\(count)}"
        }
        #expect(try Self.committed(cli, "windowed-counts").sorted() == [
            pair("a", 0, 3), pair("a", 10_000, 1), pair("b", 0, 2), pair("b", 10_000, 1), pair("c", 0, 1), pair("c", 10_000, 1),
        ])
    }

    @Test("enrich-orders merges each order with its customer's row as of the order, across runs")
    func enrichOrders() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        for topic in ["orders", "customers"] {
            #expect(try cli.run(["topics", "create", topic, "--partitions", "2"]).status == 0)
        }
        // Each step runs the worker to idle, so the table holds exactly the rows produced before.
        try Self.produce(cli, "customers", [
            #"{"key":"c1","value":{"name":"Ann","since":2019}}"#, #"{"key":"c2","value":{"name":"Ben","vip":true}}"#,
        ])
        try Self.run(cli, ["enrich-orders"])
        try Self.produce(cli, "orders", [
            #"{"key":"c1","value":{"id":1,"total":10.50}}"#, #"{"key":"c2","value":{"id":2}}"#,
            #"{"key":"c3","value":{"id":3}}"#, #"{"key":"c1","value":{"id":4,"name":"gift"}}"#,
        ])
        try Self.run(cli, ["enrich-orders", "--threads", "2"])
        try Self.produce(cli, "customers", [#"{"key":"c1","value":{"name":"Ann B."}}"#, #"{"key":"c2","value":null}"#])
        try Self.run(cli, ["enrich-orders"])
        try Self.produce(cli, "orders", [#"{"key":"c1","value":{"id":5}}"#, #"{"key":"c2","value":{"id":6}}"#])
        try Self.run(cli, ["enrich-orders", "--orders", "orders", "--output", "enriched-orders"])
        let records = try Self.committed(cli, "enriched-orders")
        var perKey: [String: [String]] = [:]
        for record in records {
            let parts = record.split(separator: " ", maxSplits: 1).map(String.init)
            perKey[parts[0], default: []].append(parts[1])
        }
        #expect(perKey == [
            "c1": [#"{"id":1,"total":10.50,"name":"Ann","since":2019}"#, #"{"id":4,"name":"gift","since":2019}"#,
                   #"{"id":5,"name":"Ann B."}"#],
            "c2": [#"{"id":2,"name":"Ben","vip":true}"#, #"{"id":6}"#],
            "c3": [#"{"id":3}"#],
        ])
        #expect(records.count == 6)
    }

    @Test("join-clicks pairs every click with each impression within the window, exactly once")
    func joinClicks() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        for topic in ["impressions", "clicks"] {
            #expect(try cli.run(["topics", "create", topic, "--partitions", "2"]).status == 0)
        }
        func record(_ key: String, _ value: String, _ time: Int) -> String { "{\"key\":\"\(key)\",\"value\":\(value),\"timestamp\":\(time)}" }
        try Self.produce(cli, "impressions", [
            record("i1", #"{"ad":"shoes"}"#, 1_000), record("i2", #"{"ad":"hats"}"#, 2_000), record("i3", #"{"ad":"none"}"#, 2_500),
            record("i5", #"{"n":1}"#, 1_000), record("i5", #"{"n":2}"#, 4_000),
        ])
        try Self.produce(cli, "clicks", [
            record("i1", #"{"c":1}"#, 3_000), record("i1", #"{"c":2}"#, 7_000), record("i2", #"{"c":3}"#, 2_500),
            record("i2", #"{"c":4}"#, 6_900), record("i4", #"{"c":5}"#, 3_000), record("i5", #"{"c":6}"#, 5_000),
        ])
        // One stream thread, as for windowed-count: the join buffers live in memory for now.
        // A grace far beyond the data's time span: nothing is late, whatever order the two topics are read in.
        try Self.run(cli, ["join-clicks", "--window-ms", "5000", "--grace-ms", "100000"])
        #expect(try Self.committed(cli, "clicks-with-impressions", timestamps: true).sorted() == [
            #"i1 3000 {"impression":{"ad":"shoes"},"click":{"c":1}}"#,
            #"i2 2500 {"impression":{"ad":"hats"},"click":{"c":3}}"#,
            #"i2 6900 {"impression":{"ad":"hats"},"click":{"c":4}}"#,
            #"i5 5000 {"impression":{"n":1},"click":{"c":6}}"#,
            #"i5 5000 {"impression":{"n":2},"click":{"c":6}}"#,
        ])
    }

    @Test("windowed-count sends a window that was still open when the previous run stopped")
    func windowedCountAcrossRuns() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "events", "--partitions", "1"]).status == 0)
        let options = ["windowed-count", "--window-size-ms", "10000", "--grace-ms", "2000"]
        try Self.produce(cli, "events", [#"{"key":"a","value":1,"timestamp":1000}"#])
        try Self.run(cli, options)
        try Self.produce(cli, "events", [#"{"key":"b","value":1,"timestamp":20000}"#])
        try Self.run(cli, options)
        // The suppression buffer is a changelogged store: a's window, still open when the
        // first run stopped, is sent by the second.
        let counts = try Self.committed(cli, "windowed-counts")
        #expect(counts == [
            #"{"key":"a","start":0,"end":10000} {"key":"a","start":0,"end":10000,"count":1}"#,
        ])
    }

    @Test("windowed-count drops a record that a restart finds already late, and sends each window once")
    func windowedCountLateAfterRestart() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "events", "--partitions", "1"]).status == 0)
        let options = ["windowed-count", "--window-size-ms", "10000", "--grace-ms", "0"]
        try Self.produce(cli, "events", [#"{"key":"a","value":1,"timestamp":1000}"#, #"{"key":"b","value":1,"timestamp":20000}"#])
        try Self.run(cli, options)
        // Stream time is 20000: a record at 2000 is 8 s past its window's close.
        try Self.produce(cli, "events", [#"{"key":"a","value":1,"timestamp":2000}"#, #"{"key":"c","value":1,"timestamp":40000}"#])
        try Self.run(cli, options)
        let windowA = #"{"key":"a","start":0,"end":10000} {"key":"a","start":0,"end":10000,"count":1}"#
        let counts = try Self.committed(cli, "windowed-counts")
        #expect(counts.first == windowA)
        // The task's stream time (20000) comes back from the committed offsets' metadata, so
        // the late record is dropped rather than counted in window [0, 10000) a second time.
        #expect(counts.filter { $0.hasPrefix(#"{"key":"a""#) } == [windowA])
    }

    @Test("join-clicks joins a click with an impression read by the previous run")
    func joinClicksAcrossRuns() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        for topic in ["impressions", "clicks"] {
            #expect(try cli.run(["topics", "create", topic, "--partitions", "1"]).status == 0)
        }
        try Self.produce(cli, "impressions", [#"{"key":"i1","value":{"ad":1},"timestamp":1000}"#])
        try Self.run(cli, ["join-clicks"])
        try Self.produce(cli, "clicks", [#"{"key":"i1","value":{"c":1},"timestamp":2000}"#])
        try Self.run(cli, ["join-clicks"])
        // The join buffers are changelogged stores: the impression read by the first run is
        // still there for the click.
        let pairs = try Self.committed(cli, "clicks-with-impressions")
        #expect(pairs == [#"i1 {"impression":{"ad":1},"click":{"c":1}}"#])
    }

    @Test("bad topology options, unknown options and missing input topics fail with clear errors")
    func errors() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        let cases: [([String], [String])] = [
            (["run", "windowed-count", "--window-size-ms", "0"], ["--window-size-ms", "'0'"]),
            (["run", "windowed-count", "--window-size-ms", "ten"], ["--window-size-ms", "'ten'"]),
            (["run", "windowed-count", "--window-size", "5"], ["no option --window-size", "--window-size-ms", "--grace-ms"]),
            (["run", "enrich-orders", "--input", "x"], ["no option --input", "--orders", "--customers"]),
            (["run", "join-clicks", "--grace-ms"], ["--grace-ms needs a value"]),
            (["run", "join-clicks", "--grace-ms", "-1"], ["--grace-ms"]),
            (["run", "join-clicks", "stray"], ["'stray'"]),
            (["describe", "windowed-count", "--grace-ms", "x"], ["--grace-ms", "'x'"]),
            (["run", "enrich-orders", "--until-idle"], ["does not exist", "create it first"]),
        ]
        for (arguments, phrases) in cases {
            let result = try cli.run(arguments)
            #expect(result.status != 0, "\(arguments) succeeded")
            for phrase in phrases { #expect(result.stderr.contains(phrase), "\(arguments): \(result.stderr)") }
        }
        #expect(try cli.run(["topics", "create", "orders", "--partitions", "2"]).status == 0)
        let missing = try cli.run(["run", "enrich-orders", "--until-idle"])
        #expect(missing.status != 0 && missing.stderr.contains("'customers'"), "\(missing.stderr)")
        let help = try cli.run(["run", "--help"])
        // The help lists every topology's options (wrapped to the terminal's width).
        for phrase in ["windowed-count: --input (events)", "--window-size-ms", "--customers", "--impressions", "--window-ms"] {
            #expect(help.stdout.contains(phrase), "\(phrase) missing from \(help.stdout)")
        }
    }

    @Test("eddy describe prints each registered topology with its options' topics")
    func describe() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp() }
        let expectations: [([String], [String])] = [
            (["windowed-count"], ["events", "windowed-counts", "counts"]),
            (["windowed-count", "--input", "clicks", "--window-size-ms", "5000"], ["clicks", "windowed-counts"]),
            (["enrich-orders"], ["orders", "customers", "enriched-orders"]),
            (["join-clicks"], ["impressions", "clicks", "clicks-with-impressions"]),
        ]
        for (arguments, words) in expectations {
            let text = try cli.run(["describe"] + arguments)
            #expect(text.status == 0, "\(arguments): \(text.stderr)")
            for word in words { #expect(text.stdout.contains(word), "\(arguments): \(word) missing from \(text.stdout)") }
        }
        for name in ["windowed-count", "enrich-orders", "join-clicks"] {
            #expect(try cli.run(["describe", name, "--format", "dot"]).stdout.contains("digraph"))
            #expect(try cli.run(["describe", name, "--format", "mermaid"]).stdout.contains("flowchart"))
        }
    }
}
