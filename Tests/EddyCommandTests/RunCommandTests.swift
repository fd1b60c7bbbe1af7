import Foundation
import Testing

/// `eddy run` and `eddy describe` through the built executable.
@Suite("eddy run")
struct RunCommandTests {
    @Test("eddy run wordcount --until-idle counts words exactly once, and a second run adds only new input")
    func runWordCount() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "words", "--partitions", "3"]).status == 0)
        let lines = "{\"value\": \"The cat and the dog\"}\n{\"value\": \"a CAT\"}\n"
        #expect(try cli.run(["produce", "words"], input: lines).status == 0)
        let first = try cli.run(["run", "wordcount", "--threads", "2", "--until-idle", "--commit-interval-ms", "20"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("processed"))
        #expect(try cli.run(["produce", "words"], input: "{\"value\": \"dog\"}\n").status == 0)
        let second = try cli.run(["run", "wordcount", "--until-idle", "--guarantee", "exactly-once"])
        #expect(second.status == 0, "\(second.stderr)")
        let consumed = try cli.run(["consume", "word-counts", "--from-beginning", "--isolation", "read_committed",
                                    "--idle-timeout-ms", "300"])
        var last: [String: Int] = [:]
        var all: [String] = []
        for line in consumed.lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = object["key"] as! String
            let value = object["value"] as! Int
            last[key] = value
            all.append("\(key)=\(value)")
        }
        #expect(last == ["the": 2, "cat": 2, "and": 1, "dog": 2, "a": 1])
        #expect(all.count == 8, "\(all)")
    }

    @Test("eddy run refuses an unknown topology, guarantee or missing input topic")
    func runErrors() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        let unknown = try cli.run(["run", "nope", "--until-idle"])
        #expect(unknown.status != 0 && unknown.stderr.contains("wordcount"))
        let missing = try cli.run(["run", "wordcount", "--until-idle"])
        #expect(missing.status != 0 && missing.stderr.contains("words"))
        let guarantee = try cli.run(["run", "wordcount", "--guarantee", "twice"])
        #expect(guarantee.status != 0 && guarantee.stderr.contains("exactly-once"))
    }

    @Test("eddy describe prints the topology as text, DOT and Mermaid")
    func describe() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp() }
        let text = try cli.run(["describe", "wordcount"])
        #expect(text.status == 0 && text.stdout.contains("Sub-topology: 1") && text.stdout.contains("counts"))
        #expect(try cli.run(["describe", "wordcount", "--format", "dot"]).stdout.contains("digraph"))
        #expect(try cli.run(["describe", "wordcount", "--format", "mermaid"]).stdout.contains("flowchart"))
        #expect(try cli.run(["describe", "wordcount", "--format", "svg"]).status != 0)
    }
}
