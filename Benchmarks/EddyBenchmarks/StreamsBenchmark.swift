import EddyCore
import EddyLog
import EddyStreams
import Foundation

/// `eddy bench streams`: issue #5's streams benchmark. A program that prints figures, not a test.
///
/// On the embedded log (real files in a temporary directory), `records` generated records are
/// written once to a 4-partition input topic (key: one of 10,000 user ids as a String; value:
/// an Int64 amount; event time advancing 1 ms per record; built-in binary serdes). Each
/// scenario then runs through a real ``StreamsApplication`` with one stream thread and a
/// 100 ms commit interval, under at-least-once and exactly-once:
///
/// - `stateless`: filter + mapValues to an output topic;
/// - `windowed`: per-key count and sum in 10 s tumbling windows (one aggregate, RocksDB window
///   store), emit-final (`emit(.onWindowClose)`, read back from the window store as windows close), final results to an output topic;
/// - `join`: stream–table join against a 10,000-row table (RocksDB key-value store), read
///   from a co-partitioned table topic by the same tasks.
///
/// Throughput: from the first processed record until the application's committed offsets
/// cover the whole input (so the last commit is included). Latency: after the throughput
/// phase, with the application still running and caught up, a producer appends `latency`
/// more records at a steady rate, stamping each with its append time; a monitor polls the
/// application's committed group offsets every millisecond, and a record's latency is the
/// time from its append until the commit covering its offset is visible. Under exactly-once
/// that commit is the transaction that also makes the record's outputs (and state changes)
/// visible to `read_committed` readers; under at-least-once outputs are flushed before the
/// offsets commit, so the figure is an upper bound on output visibility. For the windowed
/// scenario the figure is the latency of the state update: emit-final outputs wait, by
/// design, for their window to close (10 s of event time).
public enum StreamsBenchmark {
    /// The benchmark's settings.
    public struct Options: Sendable {
        /// Input records written before the runs.
        public var records: Int
        /// Scenarios to run: `stateless`, `windowed`, `join`.
        public var scenarios: [String]
        /// Guarantees to run each scenario under.
        public var guarantees: [ProcessingGuarantee]
        /// Records appended during each latency phase.
        public var latencyRecords: Int
        /// Append rate of the latency phase, records per second.
        public var latencyRate: Int
        /// Scratch directory; a temporary directory when nil.
        public var directory: String?

        public init(records: Int = 10_000_000, scenarios: [String] = StreamsBenchmark.scenarios,
                    guarantees: [ProcessingGuarantee] = [.atLeastOnce, .exactlyOnce],
                    latencyRecords: Int = 100_000, latencyRate: Int = 50_000, directory: String? = nil) {
            self.records = records
            self.scenarios = scenarios
            self.guarantees = guarantees
            self.latencyRecords = latencyRecords
            self.latencyRate = latencyRate
            self.directory = directory
        }
    }

    /// Parses `--records N`, `--scenario stateless|windowed|join|windowed-suppress|all`,
    /// `--guarantee at_least_once|exactly_once|both`, `--latency-records N`, `--latency-rate N`
    /// and `--directory PATH`.
    public static func options(arguments: [String]) throws -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        func number(_ name: String) throws -> Int {
            guard let text = iterator.next(), let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
                throw EddyError(.invalidArgument, "bench streams: \(name) needs a number")
            }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--records": options.records = try number(argument)
            case "--latency-records": options.latencyRecords = try number(argument)
            case "--latency-rate": options.latencyRate = try number(argument)
            case "--directory": options.directory = iterator.next()
            case "--scenario":
                let name = iterator.next() ?? ""
                options.scenarios = name == "all" ? scenarios : [name]
            case "--guarantee":
                let name = iterator.next() ?? ""
                if name == "both" {
                    options.guarantees = [.atLeastOnce, .exactlyOnce]
                } else if let one = ProcessingGuarantee(rawValue: name) {
                    options.guarantees = [one]
                } else {
                    throw EddyError(.invalidArgument, "bench streams: --guarantee must be at_least_once, exactly_once or both")
                }
            default:
                throw EddyError(.invalidArgument, "bench streams: unknown argument \(argument) (use --records N, --scenario NAME|all, --guarantee NAME|both, --latency-records N, --latency-rate N, --directory PATH)")
            }
        }
        return options
    }

    /// The scenario names, in the order they run.
    public static let scenarios = ["stateless", "windowed", "join"]
    /// Scenarios run only when named: `windowed-suppress` is `windowed` with its final results
    /// held in a suppression buffer (`suppress(.untilWindowCloses)`) instead of read back from
    /// the window store, to compare the two.
    public static let extraScenarios = ["windowed-suppress"]
    static let users = 10_000
    static let partitions = 4
    static let windowMilliseconds: Int64 = 10_000
    static let commitInterval = Duration.milliseconds(100)

    /// One run's figures.
    struct Result {
        var scenario: String
        var guarantee: ProcessingGuarantee
        var recordsPerSecond: Double
        var seconds: Double
        /// Process CPU seconds (all threads) during the throughput phase.
        var cpuSeconds: Double
        var outputs: Int
        /// Records the latency phase appended, and records of every run before (the input
        /// grows by `latencyRecords` per run): what the outputs are counted against.
        var inputs: Int
        /// Records of the throughput phase.
        var throughputInputs: Int
        var p50: Double
        var p99: Double
        var latencySamples: Int
    }

    /// Runs the benchmark and prints its figures.
    public static func run(_ options: Options) throws {
        guard options.records >= 10_000 else { throw EddyError(.invalidArgument, "bench streams: --records must be at least 10000") }
        for s in options.scenarios where !scenarios.contains(s) && !extraScenarios.contains(s) {
            throw EddyError(.invalidArgument, "bench streams: unknown scenario \(s) (use \((scenarios + extraScenarios).joined(separator: ", ")) or all)")
        }
        let root = options.directory ?? NSTemporaryDirectory() + "eddy-bench-streams-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let log = try EmbeddedLog(directory: root + "/log")
        defer { try? log.close() }

        print("eddy bench streams: \(options.records) records in a \(partitions)-partition topic, \(users) user ids (String keys), Int64 values, event time +1 ms per record")
        print("one stream thread, commit interval 100 ms, embedded log in \(root)")
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        // Event time ends a minute before now, so the latency phase's wall-clock stamps follow it.
        let base = nowMilliseconds - Int64(options.records) - 60_000
        let writeStart = ContinuousClock.now
        try writeInput(log, records: options.records, base: base)
        print("wrote the input in \(format(ContinuousClock.now - writeStart)) s")
        print("latency: \(options.latencyRecords) records appended at \(options.latencyRate)/s after the run caught up; each measured from its append to the visible commit of the offset that covers it (the commit that publishes its outputs under exactly-once)")
        print("")

        var results: [Result] = []
        for scenario in options.scenarios {
            for guarantee in options.guarantees {
                let result = try runScenario(scenario, guarantee: guarantee, log: log, root: root, options: options)
                results.append(result)
                print(line(result))
            }
        }
        print("")
        let scenarioWidth = max(12, (results.map(\.scenario.count).max() ?? 0) + 1)
        print(pad("scenario", scenarioWidth) + "guarantee       records/s  per CPU s    p50 ms   p99 ms   EOS/ALOS")
        for r in results {
            var ratio = ""
            if r.guarantee == .exactlyOnce,
               let alos = results.first(where: { $0.scenario == r.scenario && $0.guarantee == .atLeastOnce }) {
                ratio = String(format: "%.0f%%", 100 * r.recordsPerSecond / alos.recordsPerSecond)
            }
            print(pad(r.scenario, scenarioWidth) + pad(r.guarantee.rawValue, 14) + pad(String(Int(r.recordsPerSecond)), 12, left: true)
                  + pad(String(Int(Double(r.throughputInputs) / max(r.cpuSeconds, 1e-9))), 11, left: true)
                  + pad(String(format: "%.1f", r.p50), 9, left: true) + pad(String(format: "%.1f", r.p99), 9, left: true)
                  + pad(ratio, 11, left: true))
        }
        print("targets: stateless >= 1,000,000 records/s, windowed >= 400,000 records/s, EOS >= 85% of ALOS, p99 <= 200 ms")
    }

    static func line(_ r: Result) -> String {
        "\(r.scenario) \(r.guarantee.rawValue): \(Int(r.recordsPerSecond)) records/s (\(format(r.seconds)) s, \(Int(Double(r.throughputInputs) / max(r.cpuSeconds, 1e-9))) records per CPU second of the process, \(r.outputs) outputs for \(r.inputs) inputs); latency p50 \(String(format: "%.1f", r.p50)) ms, p99 \(String(format: "%.1f", r.p99)) ms over \(r.latencySamples) records"
    }

    static func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? fill + s : s + fill
    }

    static func format(_ d: Duration) -> String { format(seconds(d)) }
    static func format(_ s: Double) -> String { String(format: "%.2f", s) }
    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func userKey(_ i: Int) -> [UInt8] { Array("user-\(i)".utf8) }

    static func writeInput(_ log: EmbeddedLog, records: Int, base: Int64) throws {
        try log.admin.createTopic("input", configuration: TopicConfiguration(partitions: partitions))
        try log.admin.createTopic("users", configuration: TopicConfiguration(partitions: partitions, cleanupPolicy: .compact))
        let producer = try log.makeProducer(ProducerConfiguration(clientID: "bench-writer"))
        defer { try? producer.close() }
        let keys = (0..<users).map(userKey)
        // The table rows come before every input record in event time, so they are joined.
        for (i, key) in keys.enumerated() {
            try producer.send(ProducerRecord(topic: "users", key: key, value: Array("region-\(i % 20)".utf8),
                                             timestamp: base - 1_000))
        }
        let int64 = Int64Serde()
        for i in 0..<records {
            try producer.send(ProducerRecord(topic: "input", key: keys[(i &* 7919) % users],
                                             value: try int64.serialize(Int64(i % 1000)), timestamp: base + Int64(i)))
        }
        try producer.flush()
    }

    /// Count and sum of a window, as one 16-byte aggregate.
    struct CountAndSum: Sendable {
        var count: Int64
        var sum: Int64
    }
    /// Two big-endian Int64s, written in place (no intermediate arrays), as a user would
    /// write a serde on a hot path.
    struct CountAndSumSerde: Serde {
        func serialize(_ value: CountAndSum) throws -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16)
            try serialize(value, appendingTo: &bytes)
            return bytes
        }
        func serialize(_ value: CountAndSum, appendingTo buffer: inout [UInt8]) throws {
            buffer.appendBigEndian(value.count)
            buffer.appendBigEndian(value.sum)
        }
        func deserialize(_ bytes: [UInt8]) throws -> CountAndSum {
            try bytes.withUnsafeBytes { try deserialize(from: $0) }
        }
        func deserialize(from bytes: UnsafeRawBufferPointer) throws -> CountAndSum {
            guard bytes.count == 16 else { throw EddyError(.serialization, "CountAndSum needs 16 bytes, got \(bytes.count)") }
            return CountAndSum(count: Int64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: Int64.self)),
                               sum: Int64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self)))
        }
    }

    static func topology(_ scenario: String, output: String) throws -> Topology {
        let b = StreamsBuilder()
        switch scenario {
        case "stateless":
            b.stream("input", key: Serdes.string, value: Serdes.int64)
                .filter { _, v in v % 10 != 0 }
                .mapValues { $0 * 2 }
                .to(output, key: Serdes.string, value: Serdes.int64)
        case "windowed", "windowed-suppress":
            let windowed = b.stream("input", key: Serdes.string, value: Serdes.int64)
                .groupByKey()
                .windowed(by: .of(size: windowMilliseconds))
            let held = scenario == "windowed-suppress"
            let sums = (held ? windowed : windowed.emit(.onWindowClose))
                .aggregate(materializedAs: "sums", valueSerde: CountAndSumSerde(),
                           initializer: { CountAndSum(count: 0, sum: 0) }) { _, v, a in
                    CountAndSum(count: a.count + 1, sum: a.sum + v)
                }
            (held ? sums.suppress(.untilWindowCloses) : sums)
                .toStream()
                .to(output, key: Serdes.timeWindowed(Serdes.string, windowSize: windowMilliseconds),
                    value: Serdes.optional(CountAndSumSerde()))
        default:
            let table = b.table("users", key: Serdes.string, value: Serdes.string, materializedAs: "users")
            b.stream("input", key: Serdes.string, value: Serdes.int64)
                .join(table) { amount, region in "\(region):\(amount)" }
                .to(output, key: Serdes.string, value: Serdes.string)
        }
        return try b.build()
    }

    static func runScenario(_ scenario: String, guarantee: ProcessingGuarantee, log: EmbeddedLog, root: String,
                            options: Options) throws -> Result {
        let short = guarantee == .exactlyOnce ? "eos" : "alos"
        let application = "bench-\(scenario)-\(short)"
        let output = "\(application)-output"
        let stateDirectory = root + "/state-\(application)"
        let inputPartitions = (0..<partitions).map { TopicPartition("input", $0) }
        let consumer = try log.makeConsumer(ConsumerConfiguration(clientID: "bench-ends"))
        defer { try? consumer.close() }
        let ends = try consumer.endOffsets(inputPartitions)
        let total = ends.values.reduce(0) { $0 + Int($1) }

        let app = try StreamsApplication(
            topology: try topology(scenario, output: output), backend: log,
            configuration: StreamsConfiguration(applicationID: application, stateDirectory: stateDirectory,
                                                processingGuarantee: guarantee, commitInterval: commitInterval,
                                                log: { print("  runtime: \($0)") }))
        try app.start()
        defer { app.close() }

        // Throughput: first processed record -> committed offsets cover the whole input.
        var started: ContinuousClock.Instant? = nil
        var finished: ContinuousClock.Instant? = nil
        var cpuStart = 0.0
        let limit = ContinuousClock.now + .seconds(3_600)
        while finished == nil {
            if let failure = app.failure { throw failure }
            guard ContinuousClock.now < limit else { throw EddyError(.timeout, "bench streams: \(application) did not finish in an hour") }
            if started == nil {
                if app.processedRecordCount > 0 {
                    started = .now
                    cpuStart = processCPUSeconds()
                }
                Thread.sleep(forTimeInterval: 0.001)
                continue
            }
            let committed = try log.admin.committedOffsets(group: application)
            if inputPartitions.allSatisfy({ (committed[$0] ?? 0) >= (ends[$0] ?? 0) }) {
                finished = .now
            } else {
                Thread.sleep(forTimeInterval: 0.002)
            }
        }
        let elapsed = seconds(finished! - started!)
        let cpu = processCPUSeconds() - cpuStart

        let latencies = try measureLatency(log: log, application: application, ends: ends, options: options)
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        _ = app.waitUntilIdle(timeout: .seconds(30))
        app.close()
        let outputs = try countRecords(log, topic: output)
        return Result(scenario: scenario, guarantee: guarantee, recordsPerSecond: Double(total) / elapsed,
                      seconds: elapsed, cpuSeconds: cpu, outputs: outputs, inputs: total + options.latencyRecords, throughputInputs: total, p50: percentile(0.5), p99: percentile(0.99),
                      latencySamples: sorted.count)
    }

    /// CPU seconds used by the whole process so far (user + system, every thread): shown beside
    /// wall-clock rates because a shared machine stretches wall-clock time.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Committed output records of `topic` (all partitions), read `read_committed`.
    static func countRecords(_ log: EmbeddedLog, topic: String) throws -> Int {
        guard let description = try? log.admin.describeTopic(topic) else { return 0 }
        let consumer = try log.makeConsumer(ConsumerConfiguration(clientID: "bench-count", isolation: .readCommitted,
                                                                   maximumPollRecords: 10_000))
        defer { try? consumer.close() }
        let tps = (0..<description.partitions.count).map { TopicPartition(topic, $0) }
        try consumer.assign(tps)
        try consumer.seekToBeginning(tps)
        let ends = try consumer.endOffsets(tps)
        var count = 0
        while try tps.contains(where: { try consumer.position($0) < (ends[$0] ?? 0) }) {
            let batch = try consumer.poll(timeoutMilliseconds: 100)
            if batch.isEmpty { break }
            count += batch.count
        }
        return count
    }

    /// Appends `options.latencyRecords` records at `options.latencyRate` per second and returns,
    /// per record, milliseconds from its append to the visible commit of its offset.
    static func measureLatency(log: EmbeddedLog, application: String, ends: [TopicPartition: Offset],
                               options: Options) throws -> [Double] {
        guard options.latencyRecords > 0 else { return [] }
        let producer = try log.makeProducer(ProducerConfiguration(clientID: "bench-latency"))
        defer { try? producer.close() }
        let keys = (0..<users).map(userKey)
        let keyPartitions = keys.map { DefaultPartitioner.partition(key: $0, count: partitions) }
        // appendTimes[p][n]: when the n-th latency record of partition p was appended (ns).
        var appendTimes: [[UInt64]] = Array(repeating: [], count: partitions)
        var covered = Array(repeating: 0, count: partitions)
        var latencies: [Double] = []
        latencies.reserveCapacity(options.latencyRecords)
        let int64 = Int64Serde()
        let perMillisecond = max(1, options.latencyRate / 1000)
        let start = DispatchTime.now().uptimeNanoseconds
        var sent = 0
        var tick = 0
        func observe() throws {
            let committed = try log.admin.committedOffsets(group: application)
            let now = DispatchTime.now().uptimeNanoseconds
            for p in 0..<partitions {
                let tp = TopicPartition("input", p)
                let upTo = Int((committed[tp] ?? 0) - (ends[tp] ?? 0))
                while covered[p] < min(upTo, appendTimes[p].count) {
                    latencies.append(Double(now - appendTimes[p][covered[p]]) / 1e6)
                    covered[p] += 1
                }
            }
        }
        while sent < options.latencyRecords {
            tick += 1
            let n = min(perMillisecond, options.latencyRecords - sent)
            let stamp = Int64(Date().timeIntervalSince1970 * 1000)
            var batchPartitions: [Int] = []
            for j in 0..<n {
                let user = ((sent + j) &* 7919) % users
                try producer.send(ProducerRecord(topic: "input", key: keys[user], value: try int64.serialize(Int64(j)),
                                                 timestamp: stamp))
                batchPartitions.append(keyPartitions[user])
            }
            try producer.flush()
            let appended = DispatchTime.now().uptimeNanoseconds
            for p in batchPartitions { appendTimes[p].append(appended) }
            sent += n
            try observe()
            // Pace: the next tick starts `tick` milliseconds after the start.
            let next = start + UInt64(tick) * 1_000_000
            let now = DispatchTime.now().uptimeNanoseconds
            if next > now { usleep(UInt32((next - now) / 1000)) }
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + 30_000_000_000
        while latencies.count < sent && DispatchTime.now().uptimeNanoseconds < deadline {
            try observe()
            usleep(1000)
        }
        return latencies
    }
}
