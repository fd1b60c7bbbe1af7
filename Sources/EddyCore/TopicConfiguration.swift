/// What happens to old records of a topic (Kafka's `cleanup.policy`).
public enum CleanupPolicy: String, Hashable, Sendable, CaseIterable {
    /// Whole segments are deleted by time and size retention.
    case delete
    /// Only the latest record per key is kept; tombstones go after `deleteRetention`.
    case compact
    /// Both: compacted, and old segments deleted by retention.
    case compactDelete = "compact,delete"

    public var compacts: Bool { self != .delete }
    public var deletes: Bool { self != .compact }
}

/// When an append is made durable before it is acknowledged.
public enum FsyncPolicy: Hashable, Sendable, CustomStringConvertible {
    /// fsync before every acknowledgement.
    case always
    /// fsync at most this many milliseconds after an append (a background flusher).
    case interval(milliseconds: Int)
    /// Leave it to the operating system's page cache (Kafka's default).
    case os

    /// Parses `always`, `os` or a number of milliseconds.
    public init?(_ text: String) {
        switch text {
        case "always": self = .always
        case "os": self = .os
        default:
            guard let ms = Int(text), ms > 0 else { return nil }
            self = .interval(milliseconds: ms)
        }
    }
    public var description: String {
        switch self {
        case .always: "always"
        case .os: "os"
        case .interval(let ms): "\(ms)"
        }
    }
}

/// Compression of record batches.
public enum CompressionCodec: String, Hashable, Sendable, CaseIterable {
    case none, lz4, zstd
}

/// Limits on what comes from outside. Each is a named constant; the error a user sees when
/// one is exceeded names the limit and the value.
public enum Limits {
    /// Default largest record batch (Kafka's `max.message.bytes`), 1 MiB.
    public static let defaultMaximumRecordBytes = 1_048_576
    /// The largest `maximumRecordBytes` a topic may be configured with, 64 MiB.
    public static let maximumRecordBytesCeiling = 64 * 1_048_576
    /// Default largest fetch response, 50 MiB (Kafka's `fetch.max.bytes`).
    public static let defaultFetchMaximumBytes = 50 * 1_048_576
    /// Largest partition count of one topic.
    public static let maximumPartitions = 10_000
    /// Largest number of records in one batch.
    public static let maximumRecordsPerBatch = 1_000_000
    /// Largest number of headers on one record.
    public static let maximumHeadersPerRecord = 10_000
}

/// The configuration of a topic. Defaults follow Kafka's where they make sense for one machine.
public struct TopicConfiguration: Hashable, Sendable {
    /// Number of partitions (1...``Limits/maximumPartitions``).
    public var partitions: Int
    /// Records older than this are deleted with their segment; `nil` keeps them forever.
    public var retentionMilliseconds: Int64?
    /// Per-partition size above which the oldest segments are deleted; `nil` for no limit.
    public var retentionBytes: Int64?
    public var cleanupPolicy: CleanupPolicy
    /// How long tombstones survive compaction (Kafka's `delete.retention.ms`, default 1 day).
    public var deleteRetentionMilliseconds: Int64
    public var fsync: FsyncPolicy
    /// Largest record batch accepted (Kafka's `max.message.bytes`).
    public var maximumRecordBytes: Int
    /// A segment rolls when it reaches this size (Kafka's `segment.bytes`).
    public var segmentBytes: Int
    /// A segment rolls when its first record is this old (Kafka's `segment.ms`, default 7 days).
    public var segmentMilliseconds: Int64
    /// Bytes between two entries of the sparse offset and time indexes.
    public var indexIntervalBytes: Int
    /// Compression used by producers of the embedded log that do not choose their own.
    public var compression: CompressionCodec
    /// Backend-specific settings passed through unchanged (Kafka topic configs).
    public var extra: [String: String]

    public init(partitions: Int = 1,
                retentionMilliseconds: Int64? = 7 * 24 * 3_600_000,
                retentionBytes: Int64? = nil,
                cleanupPolicy: CleanupPolicy = .delete,
                deleteRetentionMilliseconds: Int64 = 24 * 3_600_000,
                fsync: FsyncPolicy = .os,
                maximumRecordBytes: Int = Limits.defaultMaximumRecordBytes,
                segmentBytes: Int = 128 * 1_048_576,
                segmentMilliseconds: Int64 = 7 * 24 * 3_600_000,
                indexIntervalBytes: Int = 4096,
                compression: CompressionCodec = .none,
                extra: [String: String] = [:]) {
        self.partitions = partitions
        self.retentionMilliseconds = retentionMilliseconds
        self.retentionBytes = retentionBytes
        self.cleanupPolicy = cleanupPolicy
        self.deleteRetentionMilliseconds = deleteRetentionMilliseconds
        self.fsync = fsync
        self.maximumRecordBytes = maximumRecordBytes
        self.segmentBytes = segmentBytes
        self.segmentMilliseconds = segmentMilliseconds
        self.indexIntervalBytes = indexIntervalBytes
        self.compression = compression
        self.extra = extra
    }

    /// A compacted topic with no time retention, as changelogs and internal topics use.
    public static func compacted(partitions: Int) -> TopicConfiguration {
        TopicConfiguration(partitions: partitions, retentionMilliseconds: nil, cleanupPolicy: .compact)
    }

    /// Throws ``EddyError/Code/invalidArgument`` naming the first value out of range.
    public func validate() throws {
        func fail(_ what: String) throws -> Never { throw EddyError(.invalidArgument, what) }
        if partitions < 1 || partitions > Limits.maximumPartitions {
            try fail("partitions must be 1...\(Limits.maximumPartitions), got \(partitions)")
        }
        if let r = retentionMilliseconds, r < 0 { try fail("retention.ms must be >= 0, got \(r)") }
        if let r = retentionBytes, r < 0 { try fail("retention.bytes must be >= 0, got \(r)") }
        if deleteRetentionMilliseconds < 0 { try fail("delete.retention.ms must be >= 0") }
        if case .interval(let ms) = fsync, ms <= 0 { try fail("fsync interval must be > 0 ms, got \(ms)") }
        if maximumRecordBytes < 64 || maximumRecordBytes > Limits.maximumRecordBytesCeiling {
            try fail("max.message.bytes must be 64...\(Limits.maximumRecordBytesCeiling), got \(maximumRecordBytes)")
        }
        if segmentBytes < 1024 { try fail("segment.bytes must be >= 1024, got \(segmentBytes)") }
        if segmentMilliseconds < 1 { try fail("segment.ms must be >= 1, got \(segmentMilliseconds)") }
        if indexIntervalBytes < 1 { try fail("index.interval.bytes must be >= 1") }
    }
}

/// What a backend knows about one partition.
public struct PartitionDescription: Hashable, Sendable {
    public var partition: Int
    /// First offset still in the log (after retention).
    public var startOffset: Offset
    /// Offset the next record will get (Kafka's log end offset / high watermark).
    public var endOffset: Offset
    /// First offset of the oldest open transaction, or `endOffset` when none is open.
    public var lastStableOffset: Offset
    /// Bytes on disk (or in memory).
    public var sizeBytes: Int64
    public init(partition: Int, startOffset: Offset, endOffset: Offset, lastStableOffset: Offset, sizeBytes: Int64) {
        self.partition = partition
        self.startOffset = startOffset
        self.endOffset = endOffset
        self.lastStableOffset = lastStableOffset
        self.sizeBytes = sizeBytes
    }
}

/// A topic, its configuration and its partitions.
public struct TopicDescription: Hashable, Sendable {
    public var name: String
    public var configuration: TopicConfiguration
    public var partitions: [PartitionDescription]
    public init(name: String, configuration: TopicConfiguration, partitions: [PartitionDescription]) {
        self.name = name
        self.configuration = configuration
        self.partitions = partitions
    }
}
