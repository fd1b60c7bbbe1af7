import EddyCore

/// Direct access to one partition's storage engine (``PartitionLog``), for benchmarks
/// (`eddy bench log`) and crash-test child processes. Makes no API promise (leading `_`).
///
/// Thread-safe like ``PartitionLog``. The raw loop a benchmark runs:
///
/// ```swift
/// let log = try _PartitionLogDriver(directory: "/tmp/bench/t-0", configuration: TopicConfiguration(fsync: .os))
/// var builder = RecordBatchBuilder()
/// // fill the builder, then per batch:
/// var batch = try builder.build()
/// _ = try log.append(&batch)
/// var offset: Int64 = 0
/// while offset < log.endOffset {
///     let chunk = try log.read(from: offset, maxBytes: 1 << 20)
///     offset = try _PartitionLogDriver.nextOffset(after: chunk) // or decode with RecordBatch.forEachRecord
/// }
/// try log.close()
/// ```
public final class _PartitionLogDriver: @unchecked Sendable {
    // @unchecked: the wrapped PartitionLog is thread-safe.
    let log: PartitionLog

    /// Opens (running recovery) or creates a partition directory. `inMemory` uses a fresh
    /// in-memory file system instead of the disk (the directory name is then only a label).
    public init(directory: String, configuration: TopicConfiguration = TopicConfiguration(),
                topicPartition: TopicPartition = TopicPartition("bench", 0), inMemory: Bool = false) throws {
        log = try PartitionLog(topicPartition: topicPartition, directory: directory, configuration: configuration,
                               environment: inMemory ? .inMemory() : .real)
    }

    /// ``PartitionLog/append(_:)``: assigns offsets (rewriting the base offset) and returns them.
    public func append(_ batch: inout [UInt8]) throws -> (firstOffset: Offset, lastOffset: Offset) {
        let result = try log.append(&batch)
        return (result.firstOffset, result.lastOffset)
    }

    /// ``PartitionLog/appendControl(_:producerID:producerEpoch:timestamp:)``.
    public func appendControl(_ type: ControlRecordType, producerID: Int64, producerEpoch: Int16, timestamp: Timestamp) throws -> Offset {
        try log.appendControl(type, producerID: producerID, producerEpoch: producerEpoch, timestamp: timestamp)
    }

    /// ``PartitionLog/read(from:maxBytes:isolation:)``: whole raw batches, concatenated.
    public func read(from offset: Offset, maxBytes: Int, isolation: IsolationLevel = .readUncommitted) throws -> [UInt8] {
        try log.read(from: offset, maxBytes: maxBytes, isolation: isolation).bytes
    }

    public var startOffset: Offset { log.startOffset }
    public var endOffset: Offset { log.endOffset }
    public var lastStableOffset: Offset { log.lastStableOffset }
    public var sizeBytes: Int64 { log.sizeBytes }

    /// fsyncs now.
    public func flush() throws { try log.flush() }
    /// Flushes, writes indexes and the checkpoint, closes the files.
    public func close() throws { try log.close() }
    /// Removes the files (after ``close()``).
    public func deleteFiles() throws { try log.deleteFiles() }

    /// The offset after the last batch in `bytes` (as returned by ``read(from:maxBytes:isolation:)``),
    /// walking the batch headers only. Throws `.corrupt` if a header does not parse.
    public static func nextOffset(after bytes: [UInt8]) throws -> Offset {
        try bytes.withUnsafeBytes { raw in
            var at = 0
            var next: Offset = -1
            while at + RecordBatch.headerSize <= raw.count {
                let fields = BatchFields(raw, at: at)
                if let problem = fields.saneProblem(maximumSize: raw.count - at) {
                    throw EddyError(.corrupt, "batch at byte \(at): \(problem)")
                }
                next = fields.lastOffset + 1
                at += fields.totalSize
            }
            return next
        }
    }
}
