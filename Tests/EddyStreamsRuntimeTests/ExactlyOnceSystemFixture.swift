import EddyCore
import EddyLog
import EddyState
import EddyStreams
import Foundation
import Testing

/// Sizes of one variant of the exactly-once system test. CI runs the small default; the
/// issue's full size (1,000,000 records, 30 kills) runs with `EDDY_LONG_TESTS=1`
/// (`Scripts/eos-system-test`). `EDDY_EOS_RECORDS` and `EDDY_EOS_KILLS` override either.
struct ExactlyOnceSystemSize: CustomStringConvertible {
    /// Input records over all rounds.
    var records: Int
    /// Workers killed with SIGKILL (each restarted); a last worker then runs to idle.
    var kills: Int
    /// The driver writes the input in this many rounds, spread over the kills.
    var rounds: Int
    /// How long after a worker reached the running state it is killed, drawn uniformly. One
    /// kill in four instead lands up to half as long after the worker started its threads,
    /// while it rebalances and restores its stores.
    var killDelayMilliseconds: ClosedRange<Int>
    /// The workers' commit interval: long against the time a commit takes, so that most kills
    /// land inside an open transaction holding output, changelog records and offsets.
    var commitIntervalMilliseconds: Int

    static var isLong: Bool { ProcessInfo.processInfo.environment["EDDY_LONG_TESTS"] == "1" }

    /// The size for this run: the full size with `EDDY_LONG_TESTS=1`, else CI's.
    static var current: ExactlyOnceSystemSize {
        let environment = ProcessInfo.processInfo.environment
        var size = isLong
            ? ExactlyOnceSystemSize(records: 1_000_000, kills: 30, rounds: 10, killDelayMilliseconds: 200...4_000,
                                    commitIntervalMilliseconds: 500)
            // New input before every kill, and a commit interval longer than any kill delay: a
            // worker that starts fast still has its first transaction open when the kill lands.
            : ExactlyOnceSystemSize(records: 24_000, kills: 10, rounds: 10, killDelayMilliseconds: 50...1_500,
                                    commitIntervalMilliseconds: 2_000)
        if let records = environment["EDDY_EOS_RECORDS"].flatMap(Int.init), records > 0 { size.records = records }
        if let kills = environment["EDDY_EOS_KILLS"].flatMap(Int.init), kills >= 0 { size.kills = kills }
        size.rounds = max(1, min(size.rounds, size.kills + 1))
        return size
    }

    var description: String {
        "\(records) records in \(rounds) rounds, \(kills) kills \(killDelayMilliseconds.lowerBound)-\(killDelayMilliseconds.upperBound) ms after start, commit interval \(commitIntervalMilliseconds) ms"
    }
}

/// The driver of the exactly-once system test (Kafka's `EosTestDriver`): an embedded log on
/// disk in a fresh temporary directory with the input topic `data` (4 partitions), keyed
/// input written in rounds between worker runs, and workers (`EddyTestChild streams-eos`)
/// started, killed with SIGKILL and restarted.
final class ExactlyOnceSystemFixture {
    static let partitions = 4
    /// Keys are the decimal strings of 0..<keys, as in Kafka's test.
    static let keys = 100
    static let values: Range<Int64> = 0..<10_000

    let root: String
    let seed: UInt64
    var generator: SeededGenerator
    /// Records written to `data` so far.
    private(set) var produced = 0
    /// Store name -> sub-topology id, as the worker printed it.
    private(set) var storeLayout: [String: Int] = [:]

    var logDirectory: String { root + "/log" }
    var stateDirectory: String { root + "/state" }
    /// The workers' standard error (runtime log lines: restorations, failures).
    var errorPath: String { root + "/workers.err" }

    /// `EDDY_SEED` when set (to replay a failure), else a fresh seed; printed either way.
    static func seed(for test: String) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("\(test): seed \(seed) (replay with EDDY_SEED=\(seed))")
        return seed
    }

    /// Where runs keep their log and state: `EDDY_EOS_DIRECTORY` when set; else, for CI-sized
    /// runs, `/dev/shm` when it is there (a worker's start-up opens a dozen RocksDB databases
    /// and some sixty partitions, about 1,800 fsyncs that cost seconds per restart on a busy
    /// disk; SIGKILL ends a process, not the machine, so the page cache keeps what a kill must
    /// keep and the test means the same on tmpfs); else the temporary directory (on disk).
    static var baseDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let directory = environment["EDDY_EOS_DIRECTORY"], !directory.isEmpty { return directory }
        if !ExactlyOnceSystemSize.isLong, FileManager.default.isWritableFile(atPath: "/dev/shm") { return "/dev/shm" }
        return NSTemporaryDirectory()
    }

    init(test: String) throws {
        root = Self.baseDirectory + "/eddy-eos-system-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        seed = Self.seed(for: test)
        generator = SeededGenerator(seed: seed)
        let log = try EmbeddedLog(directory: logDirectory)
        try log.admin.createTopic("data", configuration: TopicConfiguration(partitions: Self.partitions))
        try log.close()
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Appends `count` records (key: one of 100 keys, value: 0..<10,000) to `data`, partitioned
    /// by murmur2 of the key. The log is closed again afterwards, so a worker can open it.
    func produce(_ count: Int) throws {
        guard count > 0 else { return }
        let log = try EmbeddedLog(directory: logDirectory)
        let producer = try log.makeProducer(ProducerConfiguration(clientID: "eos-driver"))
        for _ in 0..<count {
            let key = Int.random(in: 0..<Self.keys, using: &generator)
            let value = Int64.random(in: Self.values, using: &generator)
            try producer.send(ProducerRecord(topic: "data", key: Array(String(key).utf8), value: try Serdes.int64.serialize(value)))
        }
        try producer.close()
        try log.close()
        produced += count
    }

    /// Starts a worker of application `application`, writing to `prefix`-prefixed topics.
    func startWorker(application: String, threads: Int, guarantee: ProcessingGuarantee, commitMilliseconds: Int,
                     untilIdle: Bool, prefix: String = "") throws -> WorkerProcess {
        try WorkerProcess(arguments: ["streams-eos", logDirectory, stateDirectory, application, String(threads),
                                      String(commitMilliseconds), untilIdle ? "until-idle" : "forever",
                                      guarantee.rawValue, prefix.isEmpty ? "-" : prefix],
                          errorPath: errorPath)
    }

    /// Reads the `stores …` line a worker prints first.
    private func noteLayout(_ worker: WorkerProcess) {
        guard storeLayout.isEmpty, let line = worker.waitForLine(startingWith: "stores ") else { return }
        for item in line.dropFirst("stores ".count).split(separator: " ") {
            let parts = item.split(separator: ":")
            if parts.count == 2, let id = Int(parts[1]) { storeLayout[String(parts[0])] = id }
        }
    }

    /// Records processed by every worker of the kill loop (the killed ones as of their last
    /// `progress` report, which errs low, and the last one in full). A clean pass processes each
    /// input record three times (from `data` and from both repartition topics); what is beyond
    /// that was processed by a worker killed before it committed, inside an open transaction,
    /// and processed again after the restart.
    private(set) var processedByAllWorkers = 0

    /// The records a clean pass over the input processes (`data` and both repartition topics).
    var recordsOfOnePass: Int { 3 * produced }

    /// From a killed worker's `progress PROCESSED COMMITTED` lines: the records it had
    /// processed at its last report before the kill.
    static func lastProgress(_ output: String) -> Int {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("progress ") }) else { return 0 }
        let fields = line.split(separator: " ")
        return fields.count == 3 ? Int(fields[1]) ?? 0 : 0
    }

    /// Runs the kill loop of one variant: writes the input in rounds, starts a worker, kills it
    /// with SIGKILL a random delay after it started, restarts it, `size.kills` times; then a
    /// last worker runs until all input is processed and committed and closes gracefully.
    /// Returns how many kills hit a running worker.
    func runWithKills(_ size: ExactlyOnceSystemSize, application: String, threads: Int,
                      guarantee: ProcessingGuarantee) throws -> Int {
        var random = SeededGenerator(seed: seed ^ 0x5EED)
        let perRound = size.records / size.rounds
        try produce(perRound)
        var roundsWritten = 1
        var killed = 0
        for kill in 0..<size.kills {
            let worker = try startWorker(application: application, threads: threads, guarantee: guarantee,
                                         commitMilliseconds: size.commitIntervalMilliseconds, untilIdle: false)
            noteLayout(worker)
            let duringStart = Int.random(in: 0..<4, using: &random) == 0
            let delay = duringStart ? Int.random(in: 0...size.killDelayMilliseconds.upperBound / 2, using: &random)
                                    : Int.random(in: size.killDelayMilliseconds, using: &random)
            guard worker.waitForLine(startingWith: duringStart ? "started" : "running") != nil else {
                worker.kill()
                let output = worker.wait()
                throw EddyError(.invalidState, "seed \(seed) kill \(kill): the worker did not start: \(output) \(errorTail())")
            }
            // Every other kill that is not during start-up waits until the worker has processed
            // new input and lands within 300 ms, well inside the commit interval: an open
            // transaction with processed records is thrown away, however fast the worker started.
            if !duringStart && kill % 2 == 1 && worker.waitForProcessing() {
                usleep(UInt32(Int.random(in: 0...300, using: &random) * 1_000))
            } else {
                usleep(UInt32(delay * 1_000))
            }
            worker.kill()
            let output = worker.wait()
            if worker.wasKilled { killed += 1 }
            processedByAllWorkers += Self.lastProgress(output)
            #expect(worker.wasKilled && !output.contains("error"),
                    "seed \(seed) kill \(kill): the worker stopped on its own: \(output) \(errorTail())")
            while roundsWritten < size.rounds && (kill + 1) * size.rounds >= roundsWritten * size.kills {
                try produce(roundsWritten == size.rounds - 1 ? size.records - produced : perRound)
                roundsWritten += 1
            }
        }
        while roundsWritten < size.rounds {
            try produce(roundsWritten == size.rounds - 1 ? size.records - produced : perRound)
            roundsWritten += 1
        }
        processedByAllWorkers += try runToIdle(application: application, threads: threads, guarantee: guarantee,
                                               commitMilliseconds: size.commitIntervalMilliseconds)
        return killed
    }

    /// Runs a worker until it has processed and committed all input; throws if it fails.
    /// Returns the records it processed.
    @discardableResult
    func runToIdle(application: String, threads: Int, guarantee: ProcessingGuarantee, commitMilliseconds: Int,
                   prefix: String = "") throws -> Int {
        let worker = try startWorker(application: application, threads: threads, guarantee: guarantee,
                                     commitMilliseconds: commitMilliseconds, untilIdle: true, prefix: prefix)
        noteLayout(worker)
        let output = worker.wait()
        guard output.contains("idle") else {
            throw EddyError(.invalidState, "seed \(seed): the last worker of \(application) did not finish: \(output) \(errorTail())")
        }
        let line = output.split(separator: "\n").first { $0.hasPrefix("idle processed ") }
        return line.flatMap { Int($0.dropFirst("idle processed ".count)) } ?? 0
    }

    /// The last lines the workers wrote to standard error.
    func errorTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// How many times a worker restored a store from its changelog (from the runtime's log lines).
    var restorations: Int {
        let text = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains("restored store") }.count
    }

    /// The final contents of the application's stores, read from the task directories on disk
    /// (every worker must have stopped): store name -> numeric key -> value.
    func storeContents(application: String) throws -> [String: [Int: Int64]] {
        guard !storeLayout.isEmpty else { throw EddyError(.invalidState, "no worker printed its store layout") }
        let environment = try RocksDBEnvironment(log: { _ in })
        var contents: [String: [Int: Int64]] = [:]
        for partition in 0..<Self.partitions {
            for subtopology in Set(storeLayout.values).sorted() {
                let directory = try TaskStateDirectory(stateDirectory: stateDirectory, application: application,
                                                       task: "\(subtopology)_\(partition)", environment: environment)
                defer { directory.close() }
                for (name, id) in storeLayout.sorted(by: { $0.key < $1.key }) where id == subtopology {
                    let store = try directory.keyValueStore(named: name)
                    defer { store.close() }
                    for entry in try store.all() {
                        let key = try ExactlyOnceSystemLog.decodeKey(entry.key)
                        if contents[name, default: [:]].updateValue(try Serdes.int64.deserialize(entry.value), forKey: key) != nil {
                            throw EddyError(.invalidState, "store \(name): key \(key) is in two tasks")
                        }
                    }
                }
            }
        }
        return contents
    }
}
