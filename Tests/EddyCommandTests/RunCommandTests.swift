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
        let failure = try cli.run(["run", "wordcount", "--on-thread-failure", "retry"])
        #expect(failure.status != 0 && failure.stderr.contains("replace-thread"))
        let idle = try cli.run(["run", "wordcount", "--max-task-idle-ms", "soon"])
        #expect(idle.status != 0 && idle.stderr.contains("--max-task-idle-ms"))
    }

    @Test("eddy run takes --on-thread-failure and --max-task-idle-ms")
    func runFailureAndIdleOptions() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "words", "--partitions", "2"]).status == 0)
        #expect(try cli.run(["produce", "words"], input: "{\"value\": \"a b a\"}\n").status == 0)
        let result = try cli.run(["run", "wordcount", "--until-idle", "--on-thread-failure", "replace-thread",
                                  "--max-task-idle-ms", "never"])
        #expect(result.status == 0, "\(result.stderr)")
        let counts = try cli.run(["consume", "word-counts", "--from-beginning", "--idle-timeout-ms", "500"])
        #expect(counts.stdout.contains("\"a\"") && counts.stdout.contains("2"), "\(counts.stdout)")
    }

    @Test("SIGTERM closes eddy run gracefully: no open transaction, and the next start restores nothing")
    func gracefulShutdownOnSIGTERM() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "words", "--partitions", "2"]).status == 0)
        var input = ""
        for i in 0..<20_000 { input += "{\"value\": \"w\(i % 97) x\(i % 13) y\"}\n" }
        #expect(try cli.run(["produce", "words"], input: input).status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CommandRunner.executable)
        process.arguments = ["run", "wordcount", "--commit-interval-ms", "1000"]
        var environment = ProcessInfo.processInfo.environment
        environment["EDDY_DATA"] = cli.dataDirectory
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        for topic in ["word-counts", "wordcount-words-repartition", "wordcount-counts-changelog"] {
            let described = try cli.run(["topics", "describe", topic])
            for line in described.lines.dropFirst(2) {
                let fields = line.split(separator: "\t")
                #expect(fields.count >= 4 && fields[2] == fields[3], "open transaction in \(topic): \(line)")
            }
        }
        let next = try cli.run(["run", "wordcount", "--until-idle"])
        #expect(next.status == 0)
        // The checkpoints are complete: at most the final commit markers lie beyond them.
        #expect(!next.stderr.contains("restoring") && !next.stderr.contains("restored store"), "\(next.stderr)")
    }

    @Test("after eddy app reset, a rerun rebuilds the same counts from input; reset is refused while running")
    func resetAndReplay() throws {
        let cli = try CommandRunner()
        defer { cli.cleanUp(); try? FileManager.default.removeItem(atPath: cli.dataDirectory + "-state") }
        #expect(try cli.run(["topics", "create", "words", "--partitions", "2"]).status == 0)
        #expect(try cli.run(["produce", "words"], input: "{\"value\": \"b a b\"}\n{\"value\": \"c b\"}\n").status == 0)
        #expect(try cli.run(["run", "wordcount", "--until-idle"]).status == 0)
        let reset = try cli.run(["app", "reset", "wordcount", "--input-topics", "words", "--to-earliest"])
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdout.contains("2 internal topic(s) deleted"), "\(reset.stdout)")
        #expect(try !cli.run(["topics", "list"]).stdout.contains("wordcount-counts-changelog"))
        #expect(try cli.run(["run", "wordcount", "--until-idle"]).status == 0)
        let consumed = try cli.run(["consume", "word-counts", "--from-beginning", "--isolation", "read_committed",
                                    "--idle-timeout-ms", "300"])
        var sequences: [String: [Int]] = [:]
        for line in consumed.lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            sequences[object["key"] as! String, default: []].append(object["value"] as! Int)
        }
        // The replay starts every count from scratch: each word's counts appear twice over.
        #expect(sequences == ["a": [1, 1], "b": [1, 2, 3, 1, 2, 3], "c": [1, 1]])

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CommandRunner.executable)
        process.arguments = ["run", "wordcount"]
        var environment = ProcessInfo.processInfo.environment
        environment["EDDY_DATA"] = cli.dataDirectory
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        Thread.sleep(forTimeInterval: 1.0)
        // The running worker holds the log directory, so the reset cannot even open it.
        let refused = try cli.run(["app", "reset", "wordcount", "--input-topics", "words"])
        #expect(refused.status != 0)
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
