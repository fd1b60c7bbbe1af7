import ArgumentParser
import EddyBenchmarks
import EddyStreams
import Foundation

/// `eddy bench NAME`: benchmark programs that print figures (not tests; compare ratios).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark and print its figures.",
        subcommands: [Log.self, State.self, Schema.self, Streams.self, Kafka.self])

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Embedded log: append/read throughput per record size and fsync policy vs raw disk bandwidth.")
        @Option(help: "Scratch directory (on the disk to measure).") var directory: String = "."
        @Option(help: "100-byte records per case (1 KiB cases use a tenth).") var records: Int = 2_000_000
        @Option(help: "Records per fsync=always case.") var syncedRecords: Int = 20_000
        func run() throws {
            try LogBenchmark.run(.init(directory: directory, smallRecords: records, syncedRecords: syncedRecords))
        }
    }

    struct State: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "State stores: Eddy's RocksDB key-value store vs the raw RocksDB C API, and changelog restoration.",
            discussion: "Options are passed through: --records N (default 1,000,000), --rounds N, --directory DIR.")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() throws { try StateBenchmark.run(arguments: arguments) }
    }

    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Avro encode/decode (generic and typed) vs Foundation JSON on the same values.",
            discussion: "Options are passed through: --records N (default 1,000,000), --profile typed|typed-encode|generic.")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
        func run() throws { try SchemaBenchmark.run(arguments: arguments) }
    }

    struct Streams: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Streams engine end to end on the embedded log: stateless, windowed and join topologies, at-least-once and exactly-once.",
            discussion: "One stream thread, 100 ms commits, a 4-partition input of generated records; prints records/s, the exactly-once/at-least-once ratio and append-to-commit latency p50/p99.")
        @Option(help: "Input records (written once, read by every run).") var records: Int = 10_000_000
        @Option(help: "stateless, windowed, join, windowed-suppress or all.") var scenario: String = "all"
        @Option(help: "at-least-once, exactly-once or both.") var guarantee: String = "both"
        @Option(help: "Records appended during each latency phase.") var latencyRecords: Int = 100_000
        @Option(help: "Append rate of the latency phase, records/s.") var latencyRate: Int = 50_000
        @Option(help: "Scratch directory (default: a temporary directory).") var directory: String?
        func run() throws {
            let guarantees: [ProcessingGuarantee]
            switch guarantee {
            case "both": guarantees = [.atLeastOnce, .exactlyOnce]
            default:
                guard let one = ProcessingGuarantee(rawValue: guarantee) else {
                    throw ValidationError("--guarantee must be at_least_once, exactly_once or both")
                }
                guarantees = [one]
            }
            try StreamsBenchmark.run(.init(records: records,
                                           scenarios: scenario == "all" ? StreamsBenchmark.scenarios : [scenario],
                                           guarantees: guarantees, latencyRecords: latencyRecords,
                                           latencyRate: latencyRate, directory: directory))
        }
    }
}
