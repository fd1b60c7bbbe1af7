import ArgumentParser
import EddyCore
import EddyLog

/// `eddy topics create|list|describe|delete`.
struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "Create, list, describe and delete topics.",
        subcommands: [Create.self, List.self, Describe.self, Delete.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var log: LogOptions
        @Argument(help: "Topic name: 1-249 characters of a-z A-Z 0-9 . _ -") var name: String
        @Option(help: "Number of partitions.") var partitions: Int = 1
        @Option(help: "Delete segments older than this (ms); -1 keeps them forever.") var retentionMs: Int64 = 7 * 24 * 3_600_000
        @Option(help: "Delete oldest segments while a partition is larger than this (bytes).") var retentionBytes: Int64?
        @Option(help: "delete, compact or compact,delete.") var cleanupPolicy: String = "delete"
        @Option(help: "always, os, or an interval in milliseconds.") var fsync: String = "os"
        @Option(help: "Largest record batch in bytes.") var maxMessageBytes: Int = Limits.defaultMaximumRecordBytes
        @Option(help: "Segment size in bytes.") var segmentBytes: Int = 128 * 1_048_576
        @Option(help: "Compression for producers that do not choose: none, lz4, zstd.") var compression: String = "none"

        func run() throws {
            guard let policy = CleanupPolicy(rawValue: cleanupPolicy) else {
                throw ValidationError("--cleanup-policy must be delete, compact or compact,delete")
            }
            guard let fsyncPolicy = FsyncPolicy(fsync) else {
                throw ValidationError("--fsync must be always, os, or a positive number of milliseconds")
            }
            guard let codec = CompressionCodec(rawValue: compression) else {
                throw ValidationError("--compression must be none, lz4 or zstd")
            }
            let configuration = TopicConfiguration(
                partitions: partitions, retentionMilliseconds: retentionMs < 0 ? nil : retentionMs,
                retentionBytes: retentionBytes, cleanupPolicy: policy, fsync: fsyncPolicy,
                maximumRecordBytes: maxMessageBytes, segmentBytes: segmentBytes, compression: codec)
            try reportingErrors {
                let backend = try log.open()
                defer { try? backend.close() }
                try backend.admin.createTopic(name, configuration: configuration)
                print("created topic \(name) with \(partitions) partition\(partitions == 1 ? "" : "s")")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics, one per line.")
        @OptionGroup var log: LogOptions
        @Flag(name: .customLong("internal"), help: "Include internal topics (names starting with __).") var includeInternal = false
        func run() throws {
            try reportingErrors {
                let backend = try log.open()
                defer { try? backend.close() }
                for name in try backend.admin.listTopics() where includeInternal || !name.hasPrefix("__") { print(name) }
            }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a topic: configuration, then per partition start, end and last stable offsets and size.")
        @OptionGroup var log: LogOptions
        @Argument var name: String
        func run() throws {
            try reportingErrors {
                let backend = try log.open()
                defer { try? backend.close() }
                let d = try backend.admin.describeTopic(name)
                let c = d.configuration
                print("topic \(d.name): partitions=\(c.partitions) cleanup.policy=\(c.cleanupPolicy.rawValue) "
                      + "retention.ms=\(c.retentionMilliseconds.map(String.init) ?? "-1") "
                      + "retention.bytes=\(c.retentionBytes.map(String.init) ?? "-1") fsync=\(c.fsync) "
                      + "max.message.bytes=\(c.maximumRecordBytes) segment.bytes=\(c.segmentBytes) compression=\(c.compression.rawValue)")
                print("partition\tstart\tend\tlast-stable\tbytes")
                for p in d.partitions {
                    print("\(p.partition)\t\(p.startOffset)\t\(p.endOffset)\t\(p.lastStableOffset)\t\(p.sizeBytes)")
                }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and its data.")
        @OptionGroup var log: LogOptions
        @Argument var name: String
        func run() throws {
            try reportingErrors {
                let backend = try log.open()
                defer { try? backend.close() }
                try backend.admin.deleteTopic(name)
                print("deleted topic \(name)")
            }
        }
    }
}
