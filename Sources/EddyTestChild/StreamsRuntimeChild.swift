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
        do {
            let log = try EmbeddedLog(directory: arguments[0])
            let app = try StreamsApplication(
                topology: WordCountTopology.topology(), backend: log,
                configuration: StreamsConfiguration(applicationID: "wc", stateDirectory: arguments[1], threads: threads,
                                                    processingGuarantee: guarantee,
                                                    commitInterval: .milliseconds(commit),
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
}
