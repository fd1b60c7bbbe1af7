import EddyCore

/// Kafka's Fetcher rule for `read_committed`: which fetched batches a reader skips.
///
/// Control batches (commit/abort markers) are never shown. For `read_committed`, the fetch's
/// aborted-transactions list (producer id + first offset) is consumed in offset order: once a
/// batch reaches an aborted transaction's first offset, that producer's transactional batches
/// are skipped until its abort marker. Batches past the last stable offset never arrive (the
/// partition does not return them), so open transactions are invisible too.
struct AbortedTransactionFilter {
    private let isolation: IsolationLevel
    private let aborted: [PartitionLog.AbortedTransaction]
    private var nextAborted = 0
    private var abortedProducers: Set<Int64> = []

    init(isolation: IsolationLevel, aborted: [PartitionLog.AbortedTransaction]) {
        self.isolation = isolation
        self.aborted = isolation == .readCommitted ? aborted.sorted { $0.firstOffset < $1.firstOffset } : []
    }

    /// Whether a reader skips this batch. Call for every batch, in offset order.
    mutating func skips(_ header: RecordBatchHeader, batch: UnsafeRawBufferPointer) throws -> Bool {
        if isolation == .readCommitted && header.producerID >= 0 {
            while nextAborted < aborted.count && aborted[nextAborted].firstOffset <= header.lastOffset {
                abortedProducers.insert(aborted[nextAborted].producerID)
                nextAborted += 1
            }
            if header.isControl {
                if !abortedProducers.isEmpty, try RecordBatch.controlType(of: batch) == .abort {
                    abortedProducers.remove(header.producerID)
                }
                return true
            }
            if header.isTransactional && abortedProducers.contains(header.producerID) { return true }
        }
        return header.isControl
    }
}

/// Reads whole partitions: recovery and the coordinators' reload of internal topics.
enum PartitionScanner {
    /// Bytes read per `PartitionLog.read` call while scanning.
    static let chunkBytes = 1_048_576

    /// Visits every batch from `offset` up to the end (or the last stable offset for
    /// `read_committed`), skipping nothing. The batch bytes are valid only inside `body`.
    static func forEachBatch(in partition: PartitionLog, from offset: Offset, isolation: IsolationLevel,
                             _ body: (RecordBatchHeader, UnsafeRawBufferPointer, [PartitionLog.AbortedTransaction]) throws -> Void) throws {
        var position = max(offset, partition.startOffset)
        while true {
            let fetched = try partition.read(from: position, maxBytes: chunkBytes, isolation: isolation)
            if fetched.bytes.isEmpty { return }
            let before = position
            try fetched.bytes.withUnsafeBytes { all in
                var at = 0
                while at + RecordBatch.headerSize <= all.count {
                    let rest = UnsafeRawBufferPointer(rebasing: all[at...])
                    let header = try RecordBatch.parseHeader(rest, context: "\(partition.topicPartition) at offset \(position)")
                    let size = header.totalSize
                    guard size <= rest.count else { break }
                    let batch = UnsafeRawBufferPointer(rebasing: rest[0..<size])
                    at += size
                    if header.lastOffset < position { continue }
                    try body(header, batch, fetched.abortedTransactions)
                    position = header.lastOffset + 1
                }
            }
            if position == before { return }
        }
    }

    /// Visits every record a reader with `isolation` sees, from the start of the partition.
    static func forEachRecord(in partition: PartitionLog, isolation: IsolationLevel,
                              _ body: (RecordBatchHeader, borrowing RecordView) throws -> Void) throws {
        var position = partition.startOffset
        while true {
            let fetched = try partition.read(from: position, maxBytes: chunkBytes, isolation: isolation)
            if fetched.bytes.isEmpty { return }
            let before = position
            var filter = AbortedTransactionFilter(isolation: isolation, aborted: fetched.abortedTransactions)
            try fetched.bytes.withUnsafeBytes { all in
                var at = 0
                while at + RecordBatch.headerSize <= all.count {
                    let rest = UnsafeRawBufferPointer(rebasing: all[at...])
                    let context = "\(partition.topicPartition) at offset \(position)"
                    let header = try RecordBatch.parseHeader(rest, context: context)
                    let size = header.totalSize
                    guard size <= rest.count else { break }
                    let batch = UnsafeRawBufferPointer(rebasing: rest[0..<size])
                    at += size
                    if header.lastOffset < position { continue }
                    defer { position = header.lastOffset + 1 }
                    if try filter.skips(header, batch: batch) { continue }
                    try RecordBatch.forEachRecord(in: batch, maximumBytes: Limits.maximumRecordBytesCeiling, context: context) { view in
                        if view.offset >= position { try body(header, view) }
                    }
                }
            }
            if position == before { return }
        }
    }
}
