import EddyCore

/// One partition's log. Thread-safe: every method may be called from any thread.
///
/// FIRST VERSION: keeps batches in memory only (the on-disk engine replaces it).
final class PartitionLog: @unchecked Sendable {
    // @unchecked: all mutable state is reached only under `lock`.
    let topicPartition: TopicPartition
    let directory: String
    let environment: LogEnvironment
    private let lock = StorageMutex()
    private var currentConfiguration: TopicConfiguration
    private var batches: [(header: RecordBatchHeader, bytes: [UInt8])] = []
    private var start: Offset = 0
    private var end: Offset = 0
    private var openTransactions: [Int64: Offset] = [:]
    private var aborted: [AbortedTransaction] = []

    /// Where an append landed.
    struct AppendResult: Hashable, Sendable { var firstOffset: Offset; var lastOffset: Offset }
    /// A transaction that ended with an abort marker.
    struct AbortedTransaction: Hashable, Sendable { var producerID: Int64; var firstOffset: Offset; var lastOffset: Offset }
    /// The result of ``read(from:maxBytes:isolation:)``.
    struct FetchedData: Sendable {
        var bytes: [UInt8]
        var abortedTransactions: [AbortedTransaction]
        var startOffset: Offset
        var endOffset: Offset
        var lastStableOffset: Offset
    }

    init(topicPartition: TopicPartition, directory: String, configuration: TopicConfiguration,
         environment: LogEnvironment) throws {
        self.topicPartition = topicPartition
        self.directory = directory
        self.currentConfiguration = configuration
        self.environment = environment
    }

    var configuration: TopicConfiguration { lock.withLock { currentConfiguration } }
    var startOffset: Offset { lock.withLock { start } }
    var endOffset: Offset { lock.withLock { end } }
    var lastStableOffset: Offset { lock.withLock { openTransactions.values.min() ?? end } }
    var sizeBytes: Int64 { lock.withLock { Int64(batches.reduce(0) { $0 + $1.bytes.count }) } }

    func append(_ batch: inout [UInt8]) throws -> AppendResult {
        try lock.withLock {
            let header = try batch.withUnsafeBytes { try RecordBatch.parseHeader($0) }
            guard header.totalSize == batch.count else { throw EddyError(.corrupt, "batch length mismatch") }
            guard batch.count <= currentConfiguration.maximumRecordBytes else {
                throw EddyError(.recordTooLarge, "batch of \(batch.count) bytes exceeds max.message.bytes \(currentConfiguration.maximumRecordBytes)")
            }
            guard batch.withUnsafeBytes({ RecordBatch.crcMatches($0) }) else { throw EddyError(.corrupt, "batch CRC mismatch") }
            RecordBatch.setBaseOffset(end, in: &batch)
            var stored = header
            stored.baseOffset = end
            if header.isTransactional && header.producerID >= 0 && openTransactions[header.producerID] == nil {
                openTransactions[header.producerID] = end
            }
            batches.append((stored, batch))
            let result = AppendResult(firstOffset: end, lastOffset: stored.lastOffset)
            end = stored.lastOffset + 1
            return result
        }
    }

    func appendControl(_ type: ControlRecordType, producerID: Int64, producerEpoch: Int16,
                       timestamp: Timestamp) throws -> Offset {
        var batch = try RecordBatchBuilder.controlBatch(type, producerID: producerID, producerEpoch: producerEpoch,
                                                        timestamp: timestamp)
        let result = try append(&batch)
        lock.withLock {
            if let first = openTransactions.removeValue(forKey: producerID), type == .abort {
                aborted.append(AbortedTransaction(producerID: producerID, firstOffset: first, lastOffset: result.firstOffset))
            }
        }
        return result.firstOffset
    }

    func read(from offset: Offset, maxBytes: Int, isolation: IsolationLevel) throws -> FetchedData {
        try lock.withLock {
            guard offset >= start && offset <= end else {
                throw EddyError(.offsetOutOfRange, "offset \(offset) outside \(start)...\(end) of \(topicPartition)")
            }
            let lso = openTransactions.values.min() ?? end
            let limit = isolation == .readCommitted ? lso : end
            var bytes: [UInt8] = []
            var first: Offset?
            var last: Offset = offset
            for batch in batches where batch.header.lastOffset >= offset {
                if batch.header.baseOffset >= limit { break }
                if !bytes.isEmpty && bytes.count + batch.bytes.count > maxBytes { break }
                bytes.append(contentsOf: batch.bytes)
                if first == nil { first = batch.header.baseOffset }
                last = batch.header.lastOffset
            }
            var abortedHere: [AbortedTransaction] = []
            if isolation == .readCommitted, let first {
                abortedHere = aborted.filter { $0.lastOffset >= first && $0.firstOffset <= last }
            }
            return FetchedData(bytes: bytes, abortedTransactions: abortedHere, startOffset: start, endOffset: end,
                               lastStableOffset: lso)
        }
    }

    func offset(forTimestamp timestamp: Timestamp) throws -> Offset? {
        try lock.withLock {
            for batch in batches where batch.header.maxTimestamp >= timestamp {
                var found: Offset?
                try batch.bytes.withUnsafeBytes { raw in
                    try RecordBatch.forEachRecord(in: raw, maximumBytes: Limits.maximumRecordBytesCeiling) { view in
                        if found == nil && view.timestamp >= timestamp { found = view.offset }
                    }
                }
                if let found { return found }
            }
            return nil
        }
    }

    func flush() throws {}
    func flushIfDue(now: Timestamp) throws {}
    func enforceRetention(now: Timestamp) throws {}
    func compact(now: Timestamp) throws {}
    func updateConfiguration(_ configuration: TopicConfiguration) throws {
        try configuration.validate()
        lock.withLock { currentConfiguration = configuration }
    }
    func close() throws {}
    func deleteFiles() throws {}
}
