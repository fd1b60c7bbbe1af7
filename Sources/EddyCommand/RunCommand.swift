import ArgumentParser
import Dispatch
import EddyCore
import EddyLog
import EddyState
import EddyStreams
import EddyTopologies
import Foundation

/// `eddy run NAME`: runs a topology of `Topologies/` as a worker on the embedded log.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a registered topology as a worker on the embedded log.",
        discussion: """
        Topologies: \(TopologyRegistry.all.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")).
        Their options (default): \(TopologyRegistry.optionsSummary).
        Missing output and internal topics are created with the input's partition count. \
        SIGINT or SIGTERM closes the worker gracefully (commit, flush, release locks).
        """)

    @OptionGroup var log: LogOptions
    @Argument(help: "The topology's name.")
    var name: String
    @Option(name: .long, help: "Topic the topology reads (default: the topology's).")
    var input: String?
    @Option(name: .long, help: "Topic the topology writes (default: the topology's).")
    var output: String?
    @Option(name: .customLong("state-dir"), help: "Directory of the tasks' stores (default: DATA-state, beside the data directory).")
    var stateDirectory: String?
    @Option(name: .customLong("app-id"), help: "Application id: consumer group, transactional ids, internal topic prefix (default: NAME).")
    var applicationID: String?
    @Option(name: .customLong("instance-id"), help: "Distinct id of each worker of one application running at the same time; keep it across restarts.")
    var instanceID: String?
    @Option(name: .long, help: "Stream threads.")
    var threads: Int = 1
    @Option(name: .long, help: "exactly-once, at-least-once or at-most-once.")
    var guarantee: String = "exactly-once"
    @Option(name: .customLong("commit-interval-ms"), help: "Commit interval in milliseconds.")
    var commitIntervalMilliseconds: Int = 100
    @Option(name: .customLong("on-thread-failure"), help: "When a stream thread fails: shutdown-client (stop the others, exit with the error) or replace-thread (start a new one).")
    var onThreadFailure: String = "shutdown-client"
    @Option(name: .customLong("max-task-idle-ms"), help: "How long a task with several input partitions waits for one that has no data, in milliseconds, or 'never' to never wait.")
    var maximumTaskIdleMilliseconds: String = "0"
    @Flag(name: .customLong("until-idle"), help: "Stop once all input is processed and committed.")
    var untilIdle = false
    @Argument(parsing: .allUnrecognized, help: "The topology's own options, --name VALUE (see above).")
    var topologyOptions: [String] = []

    static func guarantee(_ text: String) throws -> ProcessingGuarantee {
        guard let value = ProcessingGuarantee(rawValue: text.replacingOccurrences(of: "-", with: "_")) else {
            throw EddyError(.invalidArgument, "unknown guarantee '\(text)'; use exactly-once, at-least-once or at-most-once")
        }
        return value
    }

    static func threadFailureResponse(_ text: String) throws -> ThreadFailureResponse {
        guard let value = ThreadFailureResponse(rawValue: text.replacingOccurrences(of: "-", with: "_")) else {
            throw EddyError(.invalidArgument, "unknown --on-thread-failure '\(text)'; use shutdown-client or replace-thread")
        }
        return value
    }

    static func maximumTaskIdle(_ text: String) throws -> Duration? {
        if text == "never" { return nil }
        guard let milliseconds = Int(text), milliseconds >= 0 else {
            throw EddyError(.invalidArgument, "--max-task-idle-ms must be a number of milliseconds (0 or more) or 'never', got '\(text)'")
        }
        return .milliseconds(milliseconds)
    }

    /// `restoring counts of task 1_0: [#####.....] 52% 120000/230000 records/s 3.1 s left`.
    static func progressLine(task: TaskID, _ progress: RestoreProgress) -> String {
        let width = 20
        let filled = min(width, Int(progress.fractionDone * Double(width)))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let eta = progress.estimatedSecondsRemaining.map { String(format: "%.1f s left", $0) } ?? "-"
        return "eddy: restoring \(progress.store) of task \(task): [\(bar)] \(Int(progress.fractionDone * 100))% \(progress.position - progress.startOffset)/\(progress.endOffset - progress.startOffset) offsets, \(Int(progress.recordsPerSecond)) records/s, \(eta)"
    }

    func run() throws {
        try reportingErrors {
            let registered = try TopologyRegistry.named(name)
            var options = try RegisteredTopology.parseOptions(topologyOptions)
            if let input { options["input"] = input }
            if let output { options["output"] = output }
            let topology = try registered.topology(options)
            let embedded = try log.open()
            defer { try? embedded.close() }
            let stateDirectory = self.stateDirectory ?? log.directory + "-state"
            let application = try StreamsApplication(
                topology: topology, backend: embedded,
                configuration: StreamsConfiguration(
                    applicationID: applicationID ?? name, stateDirectory: stateDirectory, instanceID: instanceID, threads: threads,
                    processingGuarantee: try Self.guarantee(guarantee),
                    commitInterval: .milliseconds(commitIntervalMilliseconds),
                    threadFailureResponse: try Self.threadFailureResponse(onThreadFailure),
                    maximumTaskIdle: try Self.maximumTaskIdle(maximumTaskIdleMilliseconds),
                    restoreProgress: { task, progress in
                        // A tail of transaction markers alone replays no record: nothing to show.
                        if progress.records > 0 { printError(Self.progressLine(task: task, progress)) }
                    },
                    log: { line in printError("eddy: \(line)") }))
            let stop = SignalFlag()
            var sources: [any DispatchSourceSignal] = []
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { stop.set() }
                source.resume()
                sources.append(source)
            }
            defer { for source in sources { source.cancel() } }
            let began = ContinuousClock.now
            try application.start()
            printError("eddy: running \(name) as \(application.configuration.applicationID) with \(threads) thread(s), \(application.configuration.processingGuarantee.rawValue)")
            while !stop.isSet {
                let state = application.state
                if state == .error || state == .notRunning { break }
                if untilIdle, application.waitUntilIdle(timeout: .milliseconds(500)) { break }
                if !untilIdle { Thread.sleep(forTimeInterval: 0.1) }
            }
            application.close()
            let elapsed = ContinuousClock.now - began
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let processed = application.processedRecordCount
            print("processed \(processed) records in \(String(format: "%.2f", seconds)) s (\(Int(Double(processed) / max(seconds, 1e-9))) records/s), skipped \(application.skippedRecordCount)")
            if let failure = application.failure { throw failure }
        }
    }
}

/// Set by a signal handler's dispatch source, read by the main loop.
final class SignalFlag: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
