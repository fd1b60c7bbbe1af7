import EddyCore

/// One partition's log: the storage engine of the embedded log (Kafka's `Log`).
///
/// `DATA/<topic>-<partition>/` holds segments named by base offset
/// (`00000000000000000000.log`, whole RecordBatch v2 batches), their sparse offset, time and
/// aborted-transaction indexes, and `partition.checkpoint` (recovery point and open
/// transactions). Appends go to the last ("active") segment, which rolls by
/// ``TopicConfiguration/segmentBytes`` and ``TopicConfiguration/segmentMilliseconds``.
///
/// Thread-safe: every method may be called from any thread. Reads share a readers-writer lock;
/// appends, flushes, retention and compaction take it exclusively. Costs: an append is one
/// `pwrite` (plus an `fsync` with ``FsyncPolicy/always``); a read is one binary search over the
/// segments and the offset index, then large `pread`s, with each returned batch's CRC checked.
///
/// Failure: a failed write or fsync takes the partition offline (every later call throws
/// `.io`); reopening it runs recovery, like Kafka's log-directory failure handling.
///
/// ```swift
/// let log = try PartitionLog(topicPartition: TopicPartition("orders", 0), directory: "data/orders-0",
///                            configuration: TopicConfiguration(), environment: .real)
/// var batch = try builder.build()
/// let result = try log.append(&batch)
/// let fetched = try log.read(from: result.firstOffset, maxBytes: 1 << 20, isolation: .readCommitted)
/// ```
final class PartitionLog: @unchecked Sendable {
    // @unchecked: all mutable state below is reached only under `lock` (reads under the read
    // lock touch nothing they mutate; file handles are used with positional I/O only).

    let topicPartition: TopicPartition
    /// The partition's directory.
    let directory: String
    let environment: LogEnvironment
    let lock = StorageReadWriteLock()

    /// The lifecycle: open until `close()`; offline after an I/O failure that may have left the
    /// in-memory state ahead of the files.
    enum State { case open, offline(EddyError), closed }
    var state = State.open
    var currentConfiguration: TopicConfiguration
    /// Sorted by base offset; never empty while open. The last one is the active segment.
    var segments: [Segment] = []
    var nextOffset: Offset = 0
    /// Producer id -> first offset of its open transaction.
    var openTransactions: [Int64: Offset] = [:]
    var lastFlushMilliseconds: Int64 = 0
    /// What the last recovery cut from the active segment, if anything (for logs and tests).
    var recoveredTornTail: String?

    /// Where an append landed: offsets of its first and last record.
    struct AppendResult: Hashable, Sendable { var firstOffset: Offset; var lastOffset: Offset }
    /// A transaction that ended with an abort marker at `lastOffset`.
    struct AbortedTransaction: Hashable, Sendable { var producerID: Int64; var firstOffset: Offset; var lastOffset: Offset }
    /// The result of ``read(from:maxBytes:isolation:)``.
    struct FetchedData: Sendable {
        /// Whole raw batches, concatenated.
        var bytes: [UInt8]
        /// Aborted transactions overlapping the fetched range (read_committed only).
        var abortedTransactions: [AbortedTransaction]
        var startOffset: Offset
        var endOffset: Offset
        var lastStableOffset: Offset
    }

    /// The largest batch the scans accept as sane (the largest configurable batch and a header).
    static let maximumStoredBatchBytes = Limits.maximumRecordBytesCeiling + RecordBatch.headerSize

    /// Opens or creates `directory` (DATA/<topic>-<partition>), running crash recovery: batches
    /// after the recovery point are re-validated, a torn tail of the active segment is cut,
    /// missing or damaged indexes are rebuilt. Throws `.corrupt` naming the file and byte for
    /// damage in a sealed segment, `.invalidArgument` for a bad configuration, `.io` for I/O.
    init(topicPartition: TopicPartition, directory: String, configuration: TopicConfiguration,
         environment: LogEnvironment) throws {
        try configuration.validate()
        self.topicPartition = topicPartition
        self.directory = directory
        self.currentConfiguration = configuration
        self.environment = environment
        try recover()
        lastFlushMilliseconds = environment.clock.nowMilliseconds
    }

    // MARK: Reading state

    var configuration: TopicConfiguration { lock.withReadLock { currentConfiguration } }
    var startOffset: Offset { lock.withReadLock { startOffsetLocked } }
    /// The offset the next record will get.
    var endOffset: Offset { lock.withReadLock { nextOffset } }
    /// First offset of the oldest open transaction, else ``endOffset``.
    var lastStableOffset: Offset { lock.withReadLock { lastStableOffsetLocked } }
    /// Bytes of the segment files.
    var sizeBytes: Int64 { lock.withReadLock { segments.reduce(0) { $0 + $1.size } } }

    var startOffsetLocked: Offset { segments.first?.baseOffset ?? nextOffset }
    var lastStableOffsetLocked: Offset {
        // An open transaction whose start was deleted by retention cannot hold readers back
        // before the log start.
        max(min(openTransactions.values.min() ?? nextOffset, nextOffset), startOffsetLocked)
    }
    var activeSegment: Segment { segments[segments.count - 1] }

    /// Base offset of the active segment: compaction and retention never touch it (tests use it).
    var activeSegmentBaseOffset: Offset { lock.withReadLock { activeSegment.baseOffset } }
    /// Base offsets of all segments, oldest first (for tests and tools).
    var segmentBaseOffsets: [Offset] { lock.withReadLock { segments.map(\.baseOffset) } }

    /// One segment as tools and tests see it.
    struct SegmentSummary: Hashable {
        var baseOffset: Offset
        var nextOffset: Offset
        var sizeBytes: Int64
        /// Largest batch max timestamp, `Int64.min` when empty.
        var largestTimestamp: Int64
    }
    /// All segments, oldest first; the last one is the active segment.
    var segmentSummaries: [SegmentSummary] {
        lock.withReadLock {
            segments.map { SegmentSummary(baseOffset: $0.baseOffset, nextOffset: $0.nextOffset, sizeBytes: $0.size,
                                          largestTimestamp: $0.largestTimestamp) }
        }
    }

    func requireOpen() throws {
        switch state {
        case .open: return
        case .closed: throw EddyError(.closed, "partition \(topicPartition) is closed")
        case .offline(let cause): throw EddyError(.io, "partition \(topicPartition) is offline after an I/O failure (\(cause.message)); reopen it to recover")
        }
    }

    /// Runs `body`; an I/O error takes the partition offline.
    func guardingIO<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EddyError where error.code == .io {
            state = .offline(error)
            throw error
        }
    }

    // MARK: Appending

    /// Appends one encoded RecordBatch v2 (from ``RecordBatchBuilder/build(baseOffset:timestampType:)``).
    /// Assigns offsets by rewriting the base offset in `batch`; validates magic, CRC, record
    /// count and size: a batch larger than ``TopicConfiguration/maximumRecordBytes`` throws
    /// `.recordTooLarge` and nothing is written. On a compacted topic every record needs a key
    /// (`.invalidArgument` otherwise). A transactional batch opens a transaction for its producer
    /// at its first offset unless one is open. Durable per the fsync policy on return: fsynced
    /// for `always`, written with `pwrite` otherwise.
    func append(_ batch: inout [UInt8]) throws -> AppendResult {
        try lock.withWriteLock {
            try requireOpen()
            var fields = try validateAppended(batch)
            return try appendLocked(&batch, fields: &fields)
        }
    }

    /// Writes a commit/abort control batch for `producerID`, ending its open transaction; an
    /// abort is recorded in the aborted-transactions index. Returns the marker's offset.
    func appendControl(_ type: ControlRecordType, producerID: Int64, producerEpoch: Int16,
                       timestamp: Timestamp) throws -> Offset {
        var batch = try RecordBatchBuilder.controlBatch(type, producerID: producerID, producerEpoch: producerEpoch,
                                                        timestamp: timestamp)
        return try lock.withWriteLock {
            try requireOpen()
            var fields = batch.withUnsafeBytes { BatchFields($0, at: 0) }
            return try appendLocked(&batch, fields: &fields).firstOffset
        }
    }

    /// Checks a batch handed to ``append(_:)``.
    func validateAppended(_ batch: [UInt8]) throws -> BatchFields {
        let maximum = currentConfiguration.maximumRecordBytes
        if batch.count > maximum {
            throw EddyError(.recordTooLarge, "a batch of \(batch.count) bytes exceeds max.message.bytes \(maximum) of \(topicPartition)")
        }
        guard batch.count >= RecordBatch.headerSize else {
            throw EddyError(.corrupt, "appended batch of \(batch.count) bytes is shorter than a batch header")
        }
        return try batch.withUnsafeBytes { raw in
            let fields = BatchFields(raw, at: 0)
            if let problem = fields.saneProblem(maximumSize: batch.count) {
                throw EddyError(.corrupt, "appended batch for \(topicPartition): \(problem)")
            }
            if fields.totalSize != batch.count {
                throw EddyError(.corrupt, "appended batch for \(topicPartition): length field says \(fields.totalSize) bytes, got \(batch.count)")
            }
            if fields.recordCount == 0 || Int64(fields.recordCount) != Int64(fields.lastOffsetDelta) + 1 {
                throw EddyError(.corrupt, "appended batch for \(topicPartition): \(fields.recordCount) records but last offset delta \(fields.lastOffsetDelta)")
            }
            if !RecordBatch.crcMatches(raw) {
                throw EddyError(.corrupt, "appended batch for \(topicPartition): CRC mismatch")
            }
            if currentConfiguration.cleanupPolicy.compacts && !fields.isControl {
                try RecordBatch.forEachRecord(in: raw, maximumBytes: maximum) { record in
                    if record.key == nil {
                        throw EddyError(.invalidArgument, "a record without a key cannot be appended to compacted \(topicPartition) (cleanup.policy \(currentConfiguration.cleanupPolicy.rawValue))")
                    }
                }
            }
            return fields
        }
    }

    /// Appends a validated batch: roll if due, assign offsets, write, update transactions, fsync per policy.
    func appendLocked(_ batch: inout [UInt8], fields: inout BatchFields) throws -> AppendResult {
        try guardingIO {
            let now = environment.clock.nowMilliseconds
            let configuration = currentConfiguration
            let active = activeSegment
            if active.size > 0 {
                let full = active.size + Int64(batch.count) > Int64(configuration.segmentBytes)
                let old = now - active.rollingStartMilliseconds >= configuration.segmentMilliseconds
                // Relative offsets and positions are 32-bit in the indexes.
                let overflow = nextOffset + Int64(fields.lastOffsetDelta) - active.baseOffset >= Int64(Int32.max)
                    || active.size + Int64(batch.count) >= Int64(Int32.max)
                if full || old || overflow { try roll(now: now) }
            }
            let base = nextOffset
            RecordBatch.setBaseOffset(base, in: &batch)
            fields.baseOffset = base
            let segment = activeSegment
            try batch.withUnsafeBytes { try segment.append($0, fields: fields, indexIntervalBytes: configuration.indexIntervalBytes, now: now) }
            nextOffset = fields.lastOffset + 1
            if fields.isTransactional && fields.producerID >= 0 {
                try batch.withUnsafeBytes { try applyTransaction(fields: fields, batch: $0, segment: segment) }
            }
            if case .always = configuration.fsync {
                try segment.sync()
                lastFlushMilliseconds = now
            }
            return AppendResult(firstOffset: base, lastOffset: fields.lastOffset)
        }
    }

    /// Updates the open transactions for a transactional batch at its final offset; an abort
    /// marker adds an entry to `segment`'s aborted-transactions index.
    func applyTransaction(fields: BatchFields, batch: UnsafeRawBufferPointer, segment: Segment) throws {
        guard fields.isTransactional, fields.producerID >= 0 else { return }
        if fields.isControl {
            let type = try RecordBatch.controlType(of: batch)
            if let first = openTransactions.removeValue(forKey: fields.producerID), type == .abort {
                segment.transactionIndex.append(AbortedTransaction(producerID: fields.producerID, firstOffset: first,
                                                                   lastOffset: fields.baseOffset))
                segment.indexesDirty = true
            }
        } else if openTransactions[fields.producerID] == nil {
            openTransactions[fields.producerID] = fields.baseOffset
        }
    }

    /// Seals the active segment (fsync, indexes written) and starts a new one at the end offset;
    /// the checkpoint then records the new segment's base as the recovery point.
    func roll(now: Int64) throws {
        let sealed = activeSegment
        try sealed.sync()
        try sealed.writeIndexes()
        let segment = try Segment(baseOffset: nextOffset, directory: directory, fileSystem: environment.fileSystem,
                                  create: true, now: now)
        segments.append(segment)
        try environment.fileSystem.syncDirectory(directory)
        try writeCheckpoint()
    }

    /// Writes `partition.checkpoint` with the end offset as recovery point. Callers make sure
    /// everything before it is fsynced.
    func writeCheckpoint() throws {
        let checkpoint = PartitionCheckpoint(recoveryPoint: nextOffset, recoveryPosition: activeSegment.size,
                                             openTransactions: openTransactions)
        try environment.fileSystem.writeAtomically(checkpoint.encoded(), to: directory + "/" + MetadataFile.checkpointName)
    }

    // MARK: Reading

    /// Index of the segment that holds `offset` (the last one whose base is <= it).
    func segmentIndex(for offset: Offset) -> Int {
        var low = 0, high = segments.count
        while low < high {
            let middle = (low + high) / 2
            if segments[middle].baseOffset <= offset { low = middle + 1 } else { high = middle }
        }
        return max(low - 1, 0)
    }

    /// Whole batches from the one containing `offset`, up to `maxBytes` (but always at least one
    /// batch when one is available, like Kafka), never a batch whose base offset is >= the limit
    /// (``endOffset`` for read_uncommitted, ``lastStableOffset`` for read_committed). Batches
    /// removed by compaction are skipped. Every returned batch has passed its CRC check; a
    /// damaged one throws `.corrupt` naming the file and byte. Throws `.offsetOutOfRange` if
    /// `offset` < ``startOffset`` or > ``endOffset``.
    func read(from offset: Offset, maxBytes: Int, isolation: IsolationLevel) throws -> FetchedData {
        try lock.withReadLock {
            try requireOpen()
            let start = startOffsetLocked
            let stable = lastStableOffsetLocked
            guard offset >= start && offset <= nextOffset else {
                throw EddyError(.offsetOutOfRange, "offset \(offset) is outside \(start)...\(nextOffset) of \(topicPartition)")
            }
            let limit = isolation == .readCommitted ? stable : nextOffset
            var bytes: [UInt8] = []
            var firstFetched: Offset?
            var lastFetched: Offset = offset
            var firstSegment = segmentIndex(for: offset)
            if offset < limit {
                do {
                    // Find the first batch to return (index, then a short header walk).
                    var index = firstSegment
                    var first: (position: Int64, fields: BatchFields)?
                    while index < segments.count, segments[index].baseOffset < limit {
                        if let found = try segments[index].locate(offset) { first = found; break }
                        index += 1
                    }
                    if let first, first.fields.baseOffset < limit {
                        firstSegment = index
                        var remaining = -first.position
                        for segment in segments[index...] { remaining += segment.size }
                        let capacity = max(Int(min(Int64(max(maxBytes, 0)), remaining)), first.fields.totalSize)
                        // One pread per segment straight into the result, then a walk over the
                        // headers that checks each batch (sanity, dense offsets, CRC) and cuts
                        // the result at the last whole batch within the budget and the limit.
                        bytes = try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                            count = 0
                            var position = first.position
                            var expected = first.fields.baseOffset
                            while index < segments.count {
                                let segment = segments[index]
                                let want = Int(min(Int64(capacity - count), segment.size - position))
                                guard want >= RecordBatch.headerSize else { break }
                                let target = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[count..<(count + want)])
                                let got = try segment.file.read(into: target, at: position)
                                let (used, next, stop) = try segment.checkBatches(
                                    UnsafeRawBufferPointer(rebasing: target[0..<got]), position: position,
                                    expectedOffset: expected, limit: limit)
                                if used > 0 {
                                    if firstFetched == nil { firstFetched = first.fields.baseOffset }
                                    lastFetched = next - 1
                                }
                                count += used
                                expected = next
                                if stop || expected < segment.nextOffset { break }
                                index += 1
                                position = 0
                                if index < segments.count { expected = segments[index].baseOffset }
                            }
                        }
                    }
                } catch let corruption as SegmentCorruption {
                    throw corruption.error
                }
            }
            var aborted: [AbortedTransaction] = []
            if isolation == .readCommitted, let firstFetched {
                for segment in segments[firstSegment...] {
                    for entry in segment.transactionIndex.entries
                    where entry.lastOffset >= firstFetched && entry.firstOffset <= lastFetched {
                        aborted.append(entry)
                    }
                }
            }
            return FetchedData(bytes: bytes, abortedTransactions: aborted, startOffset: start, endOffset: nextOffset,
                               lastStableOffset: stable)
        }
    }

    /// First offset whose record timestamp is >= `timestamp`, nil if none. Uses the segments'
    /// largest timestamps and time indexes, then decodes the records of at most a few batches.
    func offset(forTimestamp timestamp: Timestamp) throws -> Offset? {
        try lock.withReadLock {
            try requireOpen()
            let start = startOffsetLocked
            for segment in segments where segment.size > 0 && segment.largestTimestamp >= timestamp {
                let relative = segment.timeIndex.searchStart(forTimestamp: timestamp)
                let entry = segment.offsetIndex.lookup(relativeOffset: relative)
                var found: Offset?
                do {
                    try segment.scan(
                        from: Int64(entry.position), expectedOffset: segment.baseOffset + Offset(entry.relativeOffset),
                        maximumBatchSize: Self.maximumStoredBatchBytes, chunkBytes: 256 << 10,
                        decide: { fields, _ in
                            if found != nil { return .stop }
                            return fields.maxTimestamp >= timestamp && fields.lastOffset >= start ? .visit : .skip
                        },
                        visit: { fields, position, batch in
                            let logAppendTime = fields.attributes & 0x08 != 0
                            try RecordBatch.forEachRecord(in: batch, maximumBytes: Limits.maximumRecordBytesCeiling,
                                                          context: "\(segment.logPath) at byte \(position)") { record in
                                let recordTimestamp = logAppendTime ? fields.maxTimestamp : record.timestamp
                                if found == nil && recordTimestamp >= timestamp && record.offset >= start { found = record.offset }
                            }
                        })
                } catch let corruption as SegmentCorruption {
                    throw corruption.error
                }
                if let found { return found }
            }
            return nil
        }
    }

    // MARK: Durability and lifecycle

    /// fsyncs the active segment now.
    func flush() throws {
        try lock.withWriteLock {
            try requireOpen()
            try guardingIO {
                try activeSegment.sync()
                lastFlushMilliseconds = environment.clock.nowMilliseconds
            }
        }
    }

    /// For ``FsyncPolicy/interval(milliseconds:)``: fsyncs when the interval has passed since the
    /// last flush and there is unsynced data. A no-op for the other policies. Called by the
    /// owner's background flusher.
    func flushIfDue(now: Timestamp) throws {
        try lock.withWriteLock {
            try requireOpen()
            guard case .interval(let milliseconds) = currentConfiguration.fsync,
                  now - lastFlushMilliseconds >= Int64(milliseconds) else { return }
            try guardingIO {
                try activeSegment.sync()
                lastFlushMilliseconds = now
            }
        }
    }

    /// Replaces the configuration (validated first). Segment settings apply from the next roll.
    func updateConfiguration(_ configuration: TopicConfiguration) throws {
        try configuration.validate()
        try lock.withWriteLock {
            try requireOpen()
            currentConfiguration = configuration
        }
    }

    /// fsyncs everything, writes the active segment's indexes and the checkpoint (so the next
    /// open skips recovery), and closes the files. Idempotent.
    func close() throws {
        try lock.withWriteLock {
            switch state {
            case .closed: return
            case .offline:
                state = .closed
                for segment in segments { try? segment.close() }
                return
            case .open: break
            }
            state = .closed
            defer { for segment in segments { try? segment.close() } }
            try activeSegment.sync()
            for segment in segments { try segment.writeIndexes() }
            try writeCheckpoint()
        }
    }

    /// Removes the partition's directory and files (after ``close()``, for topic deletion).
    func deleteFiles() throws {
        try lock.withWriteLock {
            if case .open = state {
                throw EddyError(.invalidState, "partition \(topicPartition) must be closed before its files are deleted")
            }
            try environment.fileSystem.removeDirectoryAndFiles(directory)
            let parent = directoryName(of: directory)
            if environment.fileSystem.exists(parent) { try environment.fileSystem.syncDirectory(parent) }
        }
    }
}
