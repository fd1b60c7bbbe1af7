import EddyCore
import EddyLog
import EddyStreams
import EddyTopologies
import Foundation

/// `EddyTestChild streams-wordcount DATA STATE THREADS COMMIT_MS [until-idle|forever [GUARANTEE]]`:
/// runs the `wordcount` topology (application id `wc`, exactly-once unless GUARANTEE names
/// another, e.g. `at_least_once`) on the embedded log in DATA with
/// stores in STATE. Prints `started` once the threads run; with `until-idle`, closes gracefully
/// once all input is processed and committed, prints `idle` and exits 0; otherwise it runs
/// until killed. The parent kills it with SIGKILL at random moments.
enum StreamsRuntimeChild {
    static func run(_ arguments: [String]) -> Never {
        guard arguments.count >= 4, let threads = Int(arguments[2]), let commit = Int(arguments[3]) else {
            FileHandleOutput.error("usage: EddyTestChild streams-wordcount DATA STATE THREADS COMMIT_MS [until-idle|forever [GUARANTEE]]")
            exit(2)
        }
        let untilIdle = arguments.count > 4 && arguments[4] == "until-idle"
        let guarantee = arguments.count > 5 ? ProcessingGuarantee(rawValue: arguments[5]) : .exactlyOnce
        guard let guarantee else {
            FileHandleOutput.error("unknown guarantee \(arguments[5])")
            exit(2)
        }
        runApplication(applicationID: "wc", data: arguments[0], state: arguments[1], threads: threads, guarantee: guarantee,
                       commitMilliseconds: commit, untilIdle: untilIdle) { try WordCountTopology.topology() }
    }
}

/// Runs `topology()` as application `applicationID` on the embedded log in `data`, with stores
/// in `state`. Prints `started` once the threads run; with `untilIdle`, closes gracefully once
/// all input is processed and committed, prints `idle` and exits 0; otherwise runs until
/// killed. Prints `error …` and exits 3 on a failure.
func runApplication(applicationID: String, data: String, state: String, threads: Int, guarantee: ProcessingGuarantee,
                    commitMilliseconds: Int, untilIdle: Bool, topology: () throws -> Topology) -> Never {
    do {
        let log = try EmbeddedLog(directory: data)
        let app = try StreamsApplication(
            topology: try topology(), backend: log,
            configuration: StreamsConfiguration(applicationID: applicationID, stateDirectory: state, threads: threads,
                                                processingGuarantee: guarantee,
                                                commitInterval: .milliseconds(commitMilliseconds),
                                                log: { FileHandleOutput.error("child: \($0)") }))
        try app.start()
        FileHandleOutput.line("started")
        while true {
            if let failure = app.failure {
                FileHandleOutput.line("error \(failure)")
                exit(3)
            }
            if untilIdle, app.waitUntilIdle(timeout: .milliseconds(500)) {
                app.close()
                try log.close()
                FileHandleOutput.line("idle")
                exit(0)
            }
            if !untilIdle { Thread.sleep(forTimeInterval: 0.1) }
        }
    } catch {
        FileHandleOutput.line("error \(error)")
        exit(3)
    }
}
