import Foundation
import Testing

@Suite(.serialized) struct CLITests {
    @Test func topicsCanBeCreatedListedDescribedAndDeleted() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        let created = try eddy.run(["topics", "create", "orders", "--partitions", "3", "--cleanup-policy", "compact"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try eddy.run(["topics", "list"]).lines == ["orders"])
        let described = try eddy.run(["topics", "describe", "orders"])
        #expect(described.status == 0)
        #expect(described.stdout.contains("partitions=3"))
        #expect(described.stdout.contains("cleanup.policy=compact"))
        #expect(described.lines.count == 5) // configuration, column names, 3 partitions
        #expect(try eddy.run(["topics", "delete", "orders"]).status == 0)
        #expect(try eddy.run(["topics", "list"]).lines.isEmpty)
        let missing = try eddy.run(["topics", "describe", "orders"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("orders"))
    }

    @Test(arguments: ["../x", "a/b", "", String(repeating: "t", count: 250)])
    func invalidTopicNamesAreRefusedWithAClearError(name: String) throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        let result = try eddy.run(["topics", "create", name])
        #expect(result.status != 0)
        #expect(result.stderr.contains("topic name"), "\(result.stderr)")
        // Nothing was built from the bad name, inside the data directory or beside it.
        let entries = try FileManager.default.contentsOfDirectory(atPath: eddy.dataDirectory)
        #expect(entries.allSatisfy { $0.hasPrefix("__") || $0.hasPrefix(".") || $0 == "topics.json" }, "\(entries)")
        let parent = URL(fileURLWithPath: eddy.dataDirectory).deletingLastPathComponent().path
        #expect(!FileManager.default.fileExists(atPath: parent + "/x-0"))
    }

    @Test func producedJSONLinesComeBackFromConsume() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        #expect(try eddy.run(["topics", "create", "events", "--partitions", "2"]).status == 0)
        let input = """
            {"key": "alice", "value": {"n": 1, "tags": ["a", "b"]}, "headers": {"source": "web"}, "timestamp": 1000}
            {"value": "plain text", "partition": 1, "timestamp": 2000}
            {"key": "bob", "value": null, "partition": 0, "timestamp": 3000}

            """
        let produced = try eddy.run(["produce", "events"], input: input)
        #expect(produced.status == 0, "\(produced.stderr)")
        #expect(produced.stdout.contains("\"records\":3"))
        let consumed = try eddy.run(["consume", "events", "--from-beginning", "--idle-timeout-ms", "300"])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        let lines = consumed.lines
        #expect(lines.count == 3)
        #expect(lines.contains { $0.contains("\"key\":\"alice\"") && $0.contains("\"value\":{\"n\":1,\"tags\":[\"a\",\"b\"]}")
            && $0.contains("\"headers\":{\"source\":\"web\"}") && $0.contains("\"timestamp\":1000") })
        #expect(lines.contains { $0.contains("\"partition\":1") && $0.contains("\"value\":\"plain text\"") && $0.contains("\"key\":null") })
        #expect(lines.contains { $0.contains("\"key\":\"bob\"") && $0.contains("\"value\":null") })
    }

    @Test func aMalformedLineIsReportedByNumberAndEarlierLinesAreKept() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        #expect(try eddy.run(["topics", "create", "t"]).status == 0)
        let input = """
            {"value": 1}
            {"value": 2}
            {"value": 3
            {"value": 4}

            """
        let produced = try eddy.run(["produce", "t"], input: input)
        #expect(produced.status != 0)
        #expect(produced.stderr.contains("line 3"), "\(produced.stderr)")
        let consumed = try eddy.run(["consume", "t", "--from-beginning", "--idle-timeout-ms", "300"])
        #expect(consumed.lines.count == 2)
        for bad in ["[1,2]", "{\"key\": \"k\"}", "{\"value\": 1, \"timestamp\": \"soon\"}", "{\"value\": 1, \"colour\": 2}"] {
            let result = try eddy.run(["produce", "t"], input: bad + "\n")
            #expect(result.status != 0, "accepted \(bad)")
            #expect(result.stderr.contains("line 1"), "\(result.stderr)")
        }
    }

    @Test func anOversizedRecordIsRefusedWithTheLimitInTheMessage() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        #expect(try eddy.run(["topics", "create", "small", "--max-message-bytes", "1024"]).status == 0)
        let big = String(repeating: "x", count: 4096)
        let result = try eddy.run(["produce", "small"], input: "{\"value\": \"ok\"}\n{\"value\": \"\(big)\"}\n")
        #expect(result.status != 0)
        #expect(result.stderr.contains("1024"), "\(result.stderr)")
        let consumed = try eddy.run(["consume", "small", "--from-beginning", "--idle-timeout-ms", "300"])
        #expect(consumed.lines.count == 1)
    }

    @Test func consumerGroupsResumeFromTheirCommittedOffsets() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        #expect(try eddy.run(["topics", "create", "q"]).status == 0)
        let lines = (0..<10).map { "{\"value\": \($0)}" }.joined(separator: "\n") + "\n"
        #expect(try eddy.run(["produce", "q"], input: lines).status == 0)
        let first = try eddy.run(["consume", "q", "--group", "g", "--from-beginning", "--max", "4"])
        #expect(first.lines.count == 4)
        let second = try eddy.run(["consume", "q", "--group", "g", "--idle-timeout-ms", "300"])
        #expect(second.lines.count == 6, "\(second.stdout)")
        #expect(second.lines.first?.contains("\"offset\":4") == true)
    }
}
