import EddyCore
import EddyLog
import EddyState
import EddyStreams
import EddyTopologies
import Foundation

/// Shared set-up of the runtime tests: an on-disk embedded log and state directory in a fresh
/// temporary directory, seeded word-count input, and read_committed readers of the output.
final class RuntimeFixture {
    let root: String
    let seed: UInt64
    var generator: SeededGenerator
    var log: EmbeddedLog!
    var lines: [String] = []
    var logDirectory: String { root + "/log" }
    var stateDirectory: String { root + "/state" }
    static let vocabulary = (0..<40).map { "Word\($0)" } + ["Eddy", "stream", "it's", "LOG"]

    init(partitions: Int = 4, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) throws {
        root = NSTemporaryDirectory() + "/eddy-runtime-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        self.seed = seed
        print("RuntimeFixture seed \(seed)")
        generator = SeededGenerator(seed: seed)
        log = try EmbeddedLog(directory: root + "/log")
        try log.admin.createTopic("words", configuration: TopicConfiguration(partitions: partitions))
    }

    deinit {
        try? log.close()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Closes the log, so a child process can open its directory.
    func closeLog() throws {
        try log?.close()
        log = nil
    }

    func reopenLog() throws {
        if log == nil { log = try EmbeddedLog(directory: logDirectory) }
    }

    /// Appends `count` random lines of 1...6 words to `words`.
    func produceLines(_ count: Int) throws {
        let producer = try log.makeProducer(ProducerConfiguration())
        for _ in 0..<count {
            let n = Int.random(in: 1...6, using: &generator)
            let line = (0..<n).map { _ in Self.vocabulary.randomElement(using: &generator)! }.joined(separator: " ")
            lines.append(line)
            try producer.send(ProducerRecord(topic: "words", value: Array(line.utf8)))
        }
        try producer.close()
    }

    /// The word counts of every line produced.
    var referenceCounts: [String: Int64] {
        var counts: [String: Int64] = [:]
        for line in lines { for word in WordCountTopology.words(line) { counts[word, default: 0] += 1 } }
        return counts
    }

    func application(threads: Int = 2, guarantee: ProcessingGuarantee = .exactlyOnce,
                     commitMilliseconds: Int = 50, onError: ErrorHandlerResponse = .fail, instanceID: String? = nil,
                     log: @escaping @Sendable (String) -> Void = { _ in }) throws -> StreamsApplication {
        try StreamsApplication(topology: WordCountTopology.topology(), backend: self.log,
                               configuration: StreamsConfiguration(applicationID: "wc", stateDirectory: stateDirectory,
                                                                   instanceID: instanceID, threads: threads, processingGuarantee: guarantee,
                                                                   commitInterval: .milliseconds(commitMilliseconds),
                                                                   deserializationErrorHandler: onError,
                                                                   processingErrorHandler: onError, log: log))
    }

    /// Appends one record with `value` as is (e.g. bytes that are not UTF-8) to `words`.
    func produceRaw(_ value: [UInt8]) throws {
        let producer = try log.makeProducer(ProducerConfiguration())
        try producer.send(ProducerRecord(topic: "words", value: value))
        try producer.close()
    }

    /// Starts an application, waits until it has processed and committed everything, closes it.
    func runToIdle(threads: Int = 2, guarantee: ProcessingGuarantee = .exactlyOnce) throws {
        let app = try application(threads: threads, guarantee: guarantee)
        try app.runToIdle()
        guard app.state == .notRunning else { throw EddyError(.invalidState, "after close the state is \(app.state)") }
    }

    /// Every committed record of `topic` (every record with read_uncommitted), per partition in offset order.
    func readCommitted(_ topic: String, isolation: IsolationLevel = .readCommitted) throws -> [[ConsumerRecord]] {
        try log.records(of: topic, isolation: isolation)
    }

    /// The output as (word, count) in order per word.
    func outputSequences() throws -> [String: [Int64]] {
        var sequences: [String: [Int64]] = [:]
        for partition in try readCommitted("word-counts") {
            for record in partition {
                let word = String(decoding: record.key ?? [], as: UTF8.self)
                let count = try JSONInt64Serde().deserialize(record.value ?? [])
                sequences[word, default: []].append(count)
            }
        }
        return sequences
    }

    /// The contents of every task's `counts` store on disk (the application must be closed).
    func storeContents(partitions: Int = 4) throws -> [String: [UInt8]] {
        let environment = try RocksDBEnvironment(log: { _ in })
        var contents: [String: [UInt8]] = [:]
        for p in 0..<partitions {
            let directory = try TaskStateDirectory(stateDirectory: stateDirectory, application: "wc", task: "1_\(p)",
                                                   environment: environment)
            defer { directory.close() }
            let store = try directory.keyValueStore(named: "counts")
            for entry in try store.all() { contents[String(decoding: entry.key, as: UTF8.self)] = entry.value }
            store.close()
        }
        return contents
    }
}

/// SplitMix64: a small seeded generator, so failures replay from the printed seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Collects an application's log lines from any thread, for tests that check them.
final class LineLog: @unchecked Sendable {
    // @unchecked: `lines` is touched only under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

extension StreamsApplication {
    /// Starts the application, waits (at most 120 s) until it has processed and committed all
    /// input, and closes it. Throws its failure, or a timeout naming its state.
    func runToIdle() throws {
        try start()
        let idle = waitUntilIdle(timeout: .seconds(120))
        let failure = self.failure
        close()
        if let failure { throw failure }
        guard idle else { throw EddyError(.timeout, "\(configuration.applicationID) did not become idle; state \(state)") }
    }
}

extension EmbeddedLog {
    /// Every committed record of `topic` (every record with read_uncommitted), per partition in
    /// offset order, read up to the end offsets of when it starts.
    func records(of topic: String, isolation: IsolationLevel = .readCommitted) throws -> [[ConsumerRecord]] {
        let partitions = try admin.describeTopic(topic).partitions.count
        let consumer = try makeConsumer(ConsumerConfiguration(isolation: isolation))
        defer { try? consumer.close() }
        let tps = (0..<partitions).map { TopicPartition(topic, $0) }
        try consumer.assign(tps)
        let ends = try consumer.endOffsets(tps)
        var result = Array(repeating: [ConsumerRecord](), count: partitions)
        var emptyPolls = 0
        while try tps.contains(where: { try consumer.position($0) < ends[$0]! }) {
            let records = try consumer.poll(timeoutMilliseconds: 20)
            if records.isEmpty { emptyPolls += 1; if emptyPolls > 200 { break } ; continue }
            for record in records { result[record.partition].append(record) }
        }
        return result
    }
}
