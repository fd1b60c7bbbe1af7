import EddyCore
import EddyLog
import EddyStreams
import Foundation

/// `EddyTestChild suppress-time-limit DATA STATE COMMIT_MS until-idle|forever`: runs the table
/// `prices` (String -> Int64) through `suppress(.untilTimeLimit(25 ms))` (store `limit-store`)
/// into `out`, as application `limited`, exactly-once, on the embedded log in DATA with stores
/// in STATE. Prints `started` once the threads run; with `until-idle`, closes gracefully once
/// all input is processed and committed, prints `idle` and exits 0; otherwise runs until killed. The test (SuppressTimeLimitRuntimeTests) kills it with SIGKILL.
enum SuppressTimeLimitChild {
    /// The limit, shared with the test's model.
    static let limitMilliseconds: Int64 = 25

    static func topology() throws -> Topology {
        let builder = StreamsBuilder()
        builder.table("prices", key: Serdes.string, value: Serdes.int64)
            .suppress(.untilTimeLimit(.milliseconds(limitMilliseconds)), named: "limit").toStream()
            .to("out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }

    static func run(_ arguments: [String]) -> Never {
        guard arguments.count == 4, let commit = Int(arguments[2]) else {
            FileHandleOutput.error("usage: EddyTestChild suppress-time-limit DATA STATE COMMIT_MS until-idle|forever")
            exit(2)
        }
        let untilIdle = arguments[3] == "until-idle"
        runApplication(applicationID: "limited", data: arguments[0], state: arguments[1], threads: 1, guarantee: .exactlyOnce,
                       commitMilliseconds: commit, untilIdle: untilIdle, topology: topology)
    }
}
