import ArgumentParser
import EddyBenchmarks
import Foundation

/// `eddy bench NAME`: benchmark programs that print figures (not tests; compare ratios).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark and print its figures.",
        subcommands: [Log.self, Kafka.self])

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
}
