import ArgumentParser
import EddyBenchmarks
import Foundation

/// `eddy bench NAME`: benchmark programs that print figures (not tests; compare ratios).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark and print its figures.",
        subcommands: [Log.self, State.self, Schema.self, Kafka.self])

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
}
