import EddyCore
import EddyLog
import EddyStreams
import Foundation

/// The worker of the exactly-once system test (Kafka's `EosTestClient`), run as
/// `EddyTestChild streams-eos DATA STATE APP THREADS COMMIT_MS until-idle|forever GUARANTEE PREFIX`.
///
/// Reads `data` (key: a decimal key as a UTF-8 string, value: an `Int64`) on the embedded log in
/// DATA and writes, with application id APP, stores in STATE and topic names prefixed by PREFIX
/// (`-` for none):
/// - `echo`: every input record unchanged (same key, so the same partition);
/// - `sum`, `min`: the running sum and minimum per key (stores `sum`, `min`);
/// - after re-keying `K` to `rK` through the repartition topic `APP-moved-repartition`: `max`
///   and `count`, the running maximum and count per key (stores `max`, `count`);
/// - after re-keying `K` to its key group `g<K/10>` (a many-to-one re-keying, so each
///   repartition partition interleaves records from several upstream tasks): `group-count`,
///   the running count per group (store `group-count`).
///
/// Every store is a RocksDB store logged to its changelog. Prints `stores NAME:SUBTOPOLOGY …`
/// (so a verifier can open the task directories `STATE/APP/<subtopology>_<partition>`), then
/// `started` once the threads are started, and `running` each time the application reaches
/// the running state (its tasks restored and processing). With `until-idle` it closes
/// gracefully once all input is processed and committed, prints `idle processed N` (the
/// records its threads processed) and exits 0; with
/// `forever` it runs until it is killed (the test sends SIGKILL), printing every 20 ms
/// `progress PROCESSED COMMITTED`: the records its threads processed so far and the sum of
/// the group's committed offsets over all source partitions (so the test can tell that a kill
/// threw away processed but uncommitted work). A failure prints `error …` and exits 3.
enum ExactlyOnceSystemChild {
    static let usage = "usage: EddyTestChild streams-eos DATA STATE APP THREADS COMMIT_MS until-idle|forever GUARANTEE PREFIX"

    /// The system test's topology, writing to `prefix`-prefixed output topics.
    static func topology(prefix: String) throws -> Topology {
        let builder = StreamsBuilder()
        let data = builder.stream("data", key: Serdes.string, value: Serdes.int64)
        data.to(prefix + "echo", key: Serdes.string, value: Serdes.int64)

        let byKey = data.groupByKey(key: Serdes.string, value: Serdes.int64)
        byKey.reduce(named: "sum", materializedAs: "sum") { $0 + $1 }
            .toStream().to(prefix + "sum", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        byKey.reduce(named: "min", materializedAs: "min") { Swift.min($0, $1) }
            .toStream().to(prefix + "min", key: Serdes.string, value: Serdes.optional(Serdes.int64))

        let moved = data.selectKey { key, _ in "r" + key }
            .repartition(key: Serdes.string, value: Serdes.int64, named: "moved")
            .groupByKey(key: Serdes.string, value: Serdes.int64)
        moved.aggregate(named: "max", materializedAs: "max", valueSerde: Serdes.int64,
                        initializer: { Int64.min }) { _, value, aggregate in Swift.max(value, aggregate) }
            .toStream().to(prefix + "max", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        moved.count(named: "count", materializedAs: "count")
            .toStream().to(prefix + "count", key: Serdes.string, value: Serdes.optional(Serdes.int64))

        data.groupBy(key: Serdes.string, value: Serdes.int64, named: "group") { key, _ in "g\((Int(key) ?? 0) / 10)" }
            .count(named: "group-count", materializedAs: "group-count")
            .toStream().to(prefix + "group-count", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }

    static func run(_ arguments: [String]) -> Never {
        guard arguments.count == 8, let threads = Int(arguments[3]), let commit = Int(arguments[4]),
              ["until-idle", "forever"].contains(arguments[5]) else {
            FileHandleOutput.error(usage)
            exit(2)
        }
        guard let guarantee = ProcessingGuarantee(rawValue: arguments[6]) else {
            FileHandleOutput.error("unknown guarantee \(arguments[6]); \(usage)")
            exit(2)
        }
        let untilIdle = arguments[5] == "until-idle"
        let prefix = arguments[7] == "-" ? "" : arguments[7]
        do {
            let topology = try topology(prefix: prefix)
            let layout = topology.subtopologies.flatMap { sub in sub.stores.sorted().map { "\($0):\(sub.id)" } }
            FileHandleOutput.line("stores " + layout.joined(separator: " "))
            let log = try EmbeddedLog(directory: arguments[0])
            let app = try StreamsApplication(
                topology: topology, backend: log,
                configuration: StreamsConfiguration(applicationID: arguments[2], stateDirectory: arguments[1],
                                                    threads: threads, processingGuarantee: guarantee,
                                                    commitInterval: .milliseconds(commit),
                                                    log: { FileHandleOutput.error("child: \($0)") }))
            app.addStateListener { _, new in
                if new == .running { FileHandleOutput.line("running") }
            }
            func progress() throws {
                let committed = try log.admin.committedOffsets(group: arguments[2]).values.reduce(0, +)
                FileHandleOutput.line("progress \(app.processedRecordCount) \(committed)")
            }
            if !untilIdle { try progress() }
            try app.start()
            FileHandleOutput.line("started")
            while true {
                if let failure = app.failure {
                    FileHandleOutput.line("error \(failure)")
                    exit(3)
                }
                if untilIdle {
                    if app.waitUntilIdle(timeout: .milliseconds(500)) {
                        let processed = app.processedRecordCount
                        guard app.close() else {
                            FileHandleOutput.line("error the worker did not close in time")
                            exit(3)
                        }
                        try log.close()
                        FileHandleOutput.line("idle processed \(processed)")
                        exit(0)
                    }
                } else {
                    Thread.sleep(forTimeInterval: 0.02)
                    try progress()
                }
            }
        } catch {
            FileHandleOutput.line("error \(error)")
            exit(3)
        }
    }
}
