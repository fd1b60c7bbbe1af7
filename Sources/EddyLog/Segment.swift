import EddyCore

/// The fixed fields of a batch header that the storage engine needs, read straight from the
/// bytes (no allocation). See ``RecordBatchHeader`` for the layout.
struct BatchFields {
    var baseOffset: Offset
    /// Whole batch size in bytes (batchLength + 12).
    var totalSize: Int
    var magic: Int8
    var attributes: Int16
    var lastOffsetDelta: Int32
    var maxTimestamp: Int64
    var producerID: Int64
    var recordCount: Int32

    var lastOffset: Offset { baseOffset + Offset(lastOffsetDelta) }
    var isTransactional: Bool { attributes & 0x10 != 0 }
    var isControl: Bool { attributes & 0x20 != 0 }

    /// Reads the fields at `at` (at least ``RecordBatch/headerSize`` bytes must follow).
    @inline(__always)
    init(_ raw: UnsafeRawBufferPointer, at offset: Int) {
        baseOffset = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
        totalSize = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self))) + RecordBatch.lengthFieldEnd
        magic = Int8(bitPattern: raw[offset + 16])
        attributes = Int16(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 21, as: Int16.self))
        lastOffsetDelta = Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 23, as: Int32.self))
        maxTimestamp = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 35, as: Int64.self))
        producerID = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 43, as: Int64.self))
        recordCount = Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 57, as: Int32.self))
    }

    /// Why these fields cannot start a valid batch, or nil. `maximumSize` bounds the batch.
    func saneProblem(maximumSize: Int) -> String? {
        if magic != 2 { return "magic byte \(magic), expected 2" }
        if totalSize < RecordBatch.headerSize || totalSize > maximumSize { return "batch size \(totalSize) out of range" }
        if lastOffsetDelta < 0 || recordCount < 0 || recordCount > Limits.maximumRecordsPerBatch
            || Int64(recordCount) > Int64(lastOffsetDelta) + 1 {
            return "record count \(recordCount) / last offset delta \(lastOffsetDelta) out of range"
        }
        return nil
    }
}

/// A damaged batch in a segment file: where and why. Recovery truncates the active segment
/// there; everywhere else it becomes an ``EddyError`` `.corrupt` naming the file and byte.
struct SegmentCorruption: Error {
    var path: String
    var position: Int64
    var reason: String
    var error: EddyError { EddyError(.corrupt, "\(path) at byte \(position): \(reason)") }
}

/// One segment of a partition's log: the `.log` file of whole record batches starting at
/// `baseOffset`, and its indexes (kept in memory, written to `.index`, `.timeindex` and
/// `.txnindex` when the segment is sealed and on close).
///
/// Invariant ("dense chain"): the batches of a segment cover `baseOffset ..< nextOffset`
/// without gaps — each batch's base offset is the previous batch's last offset + 1. Compaction
/// keeps it by widening the offset range of the batches it rewrites, so every read can check
/// the base offsets (which the batch CRC does not cover). Not thread-safe: the partition's
/// lock guards it.
final class Segment {
    let baseOffset: Offset
    let directory: String
    let fileSystem: any FileSystem
    private(set) var file: any LogFile
    /// Bytes of valid batches in the file.
    var size: Int64
    /// The offset after the last batch.
    var nextOffset: Offset
    /// Largest batch max timestamp in the segment (`Int64.min` when empty).
    var largestTimestamp: Int64 = .min
    var offsetIndex = OffsetIndex()
    var timeIndex = TimeIndex()
    var transactionIndex = TransactionIndex()
    /// Log bytes appended since the last offset index entry.
    var bytesSinceIndexEntry = 0
    /// Wall-clock time of the first append (or of opening): the age for rolling by `segment.ms`.
    var rollingStartMilliseconds: Int64
    /// Whether the in-memory indexes differ from the files.
    var indexesDirty = true
    /// Whether appended bytes may not be fsynced yet.
    var hasUnsyncedData = false

    /// How the files of a segment are named: the base offset in 20 digits and an extension.
    static func fileName(_ baseOffset: Offset, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    var logPath: String { directory + "/" + Self.fileName(baseOffset, ".log") }
    var indexPath: String { directory + "/" + Self.fileName(baseOffset, ".index") }
    var timeIndexPath: String { directory + "/" + Self.fileName(baseOffset, ".timeindex") }
    var transactionIndexPath: String { directory + "/" + Self.fileName(baseOffset, ".txnindex") }

    /// Opens (or creates) the segment's log file. Indexes start empty.
    init(baseOffset: Offset, directory: String, fileSystem: any FileSystem, create: Bool, now: Int64) throws {
        self.baseOffset = baseOffset
        self.directory = directory
        self.fileSystem = fileSystem
        self.file = try fileSystem.open(directory + "/" + Self.fileName(baseOffset, ".log"), create: create)
        self.size = try file.size()
        self.nextOffset = baseOffset
        self.rollingStartMilliseconds = now
    }

    var isEmpty: Bool { size == 0 }

    // MARK: Appending

    /// Writes one whole batch (its base offset already assigned) at the end of the file and
    /// updates the indexes. One `pwrite`; no fsync.
    func append(_ batch: UnsafeRawBufferPointer, fields: BatchFields, indexIntervalBytes: Int, now: Int64) throws {
        if size == 0 { rollingStartMilliseconds = now }
        do {
            try file.write(batch, at: size)
        } catch {
            // A failed or torn write: cut the file back so the next append starts on a batch boundary.
            try? file.truncate(to: size)
            throw error
        }
        noteBatch(fields: fields, position: size, indexIntervalBytes: indexIntervalBytes)
        size += Int64(batch.count)
        hasUnsyncedData = true
    }

    /// Index bookkeeping for a batch at `position` (appends and recovery scans share it): an
    /// offset index entry and a time index entry once `indexIntervalBytes` have passed.
    func noteBatch(fields: BatchFields, position: Int64, indexIntervalBytes: Int) {
        let relative = UInt32(truncatingIfNeeded: fields.baseOffset - baseOffset)
        if fields.maxTimestamp > largestTimestamp { largestTimestamp = fields.maxTimestamp }
        if bytesSinceIndexEntry >= indexIntervalBytes && position > 0 {
            offsetIndex.append(relativeOffset: relative, position: UInt32(truncatingIfNeeded: position))
            timeIndex.append(timestamp: largestTimestamp, relativeOffset: relative)
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += fields.totalSize
        nextOffset = fields.lastOffset + 1
        lastBatchRelativeOffset = relative
        indexesDirty = true
    }

    /// Relative base offset of the last batch (for the closing time index entry).
    var lastBatchRelativeOffset: UInt32 = 0

    /// Adds the closing time index entry: the segment's largest timestamp, so its age is known
    /// when it is loaded again without a scan.
    func sealTimeIndex() {
        guard size > 0, largestTimestamp != .min else { return }
        let before = timeIndex.count
        timeIndex.append(timestamp: largestTimestamp, relativeOffset: lastBatchRelativeOffset)
        if timeIndex.count != before { indexesDirty = true }
    }

    /// Forgets the indexes (before a rebuilding scan).
    func resetIndexes() {
        offsetIndex = OffsetIndex()
        timeIndex = TimeIndex()
        transactionIndex = TransactionIndex()
        largestTimestamp = .min
        bytesSinceIndexEntry = 0
        nextOffset = baseOffset
        indexesDirty = true
    }

    /// fsyncs the log file if it has unsynced bytes.
    func sync() throws {
        guard hasUnsyncedData else { return }
        try file.sync()
        hasUnsyncedData = false
    }

    /// Writes the three index files (each fsynced) if they changed.
    func writeIndexes() throws {
        sealTimeIndex()
        guard indexesDirty else { return }
        for (path, bytes) in [(indexPath, offsetIndex.encoded()), (timeIndexPath, timeIndex.encoded()),
                              (transactionIndexPath, transactionIndex.encoded())] {
            let file = try fileSystem.open(path, create: true)
            defer { try? file.close() }
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            try file.sync()
        }
        indexesDirty = false
    }

    /// Loads and validates the index files against the segment (`nextOffset` must be known).
    /// Throws `.corrupt` when one is missing or damaged.
    func loadIndexes() throws {
        let limit = nextOffset - baseOffset
        func load(_ path: String) throws -> [UInt8] {
            guard fileSystem.exists(path) else { throw EddyError(.corrupt, "\(path) is missing") }
            let file = try fileSystem.open(path, create: false)
            defer { try? file.close() }
            return try file.readAll()
        }
        let offsets = try OffsetIndex.decode(try load(indexPath), path: indexPath, segmentSize: size, relativeOffsetLimit: max(limit, 1))
        let times = try TimeIndex.decode(try load(timeIndexPath), path: timeIndexPath, relativeOffsetLimit: max(limit, 1))
        let transactions = try TransactionIndex.decode(try load(transactionIndexPath), path: transactionIndexPath,
                                                       markerRange: baseOffset..<max(nextOffset, baseOffset + 1))
        offsetIndex = offsets
        timeIndex = times
        transactionIndex = transactions
        largestTimestamp = times.last?.timestamp ?? .min
        lastBatchRelativeOffset = times.last?.relativeOffset ?? 0
        bytesSinceIndexEntry = Int(size - Int64(offsets.positions.last ?? 0))
        indexesDirty = false
    }

    /// Cuts the segment at byte `position`, the start of the batch with offset `offset`.
    func truncate(toPosition position: Int64, offset: Offset) throws {
        try file.truncate(to: position)
        try file.sync()
        size = position
        nextOffset = offset
        offsetIndex.truncate(toPosition: UInt32(clamping: position))
        timeIndex.truncate(toRelativeOffset: UInt32(clamping: offset - baseOffset))
        transactionIndex.truncate(toOffset: offset)
        indexesDirty = true
    }

    func close() throws { try file.close() }

    /// Removes the segment's files (after ``close()``).
    func deleteFiles() throws {
        for path in [logPath, indexPath, timeIndexPath, transactionIndexPath] { try fileSystem.removeFile(path) }
    }

    /// Replaces the open file handle (after compaction swapped the file).
    func reopen() throws {
        try? file.close()
        file = try fileSystem.open(logPath, create: false)
        size = try file.size()
    }

    // MARK: Reading

    /// The position and header of the first batch whose last offset is >= `offset`, or nil
    /// when the segment ends before it. Cost: an index lookup and one small `pread` (a header
    /// walk over at most about an index interval of bytes).
    func locate(_ offset: Offset) throws -> (position: Int64, fields: BatchFields)? {
        guard offset < nextOffset else { return nil }
        let entry = offsetIndex.lookup(relativeOffset: UInt32(clamping: max(offset - baseOffset, 0)))
        var found: (Int64, BatchFields)?
        try scan(from: Int64(entry.position), expectedOffset: baseOffset + Offset(entry.relativeOffset),
                 maximumBatchSize: PartitionLog.maximumStoredBatchBytes, chunkBytes: 8192,
                 decide: { fields, position in
                     if fields.lastOffset < offset { return .skip }
                     found = (position, fields)
                     return .stop
                 }, visit: { _, _, _ in })
        return found
    }

    /// Checks the batches at the start of `bytes` (read from byte `position`): header sanity,
    /// dense base offsets from `expectedOffset`, CRC. Stops before a batch whose base offset is
    /// >= `limit` or that is not wholly in `bytes`. Returns the bytes of whole good batches, the
    /// offset after them, and whether the limit stopped it. Throws ``SegmentCorruption``.
    func checkBatches(_ bytes: UnsafeRawBufferPointer, position: Int64, expectedOffset: Offset,
                      limit: Offset) throws -> (used: Int, nextOffset: Offset, stopped: Bool) {
        var at = 0
        var expected = expectedOffset
        while bytes.count - at >= RecordBatch.headerSize {
            let fields = BatchFields(bytes, at: at)
            if let problem = fields.saneProblem(maximumSize: PartitionLog.maximumStoredBatchBytes) {
                throw SegmentCorruption(path: file.path, position: position + Int64(at), reason: problem)
            }
            if fields.baseOffset != expected {
                throw SegmentCorruption(path: file.path, position: position + Int64(at),
                                        reason: "batch base offset \(fields.baseOffset), expected \(expected)")
            }
            if fields.baseOffset >= limit { return (at, expected, true) }
            if bytes.count - at < fields.totalSize {
                if position + Int64(at) + Int64(fields.totalSize) > size {
                    throw SegmentCorruption(path: file.path, position: position + Int64(at),
                                            reason: "batch of \(fields.totalSize) bytes runs past the end of the data at byte \(size)")
                }
                return (at, expected, true)
            }
            let batch = UnsafeRawBufferPointer(rebasing: bytes[at..<(at + fields.totalSize)])
            if !RecordBatch.crcMatches(batch) {
                throw SegmentCorruption(path: file.path, position: position + Int64(at),
                                        reason: "batch CRC mismatch (offsets \(fields.baseOffset)...\(fields.lastOffset))")
            }
            at += fields.totalSize
            expected = fields.lastOffset + 1
        }
        if at < bytes.count && position + Int64(bytes.count) >= size {
            throw SegmentCorruption(path: file.path, position: position + Int64(at), reason: "a batch header is cut short by the end of the data")
        }
        return (at, expected, at < bytes.count)
    }

    // MARK: Scanning

    /// What a scan does with a batch whose header it has read.
    enum ScanAction { case skip, visit, stop }

    /// Walks the batches from byte `position`, where the batch with offset `expectedOffset`
    /// starts, to `end` (default: the segment size), reading the file in large chunks.
    ///
    /// For each batch the header is sanity-checked (magic, size within `maximumBatchSize` and the
    /// file, base offset continuing the dense chain) and `decide` chooses: `.skip` it, `.visit`
    /// it (its CRC is checked when `checkCRC`, then `visit` gets the whole batch), or `.stop`.
    /// Returns the position and offset after the last batch walked. Throws ``SegmentCorruption``
    /// at the first bad batch; bytes after it are never looked at.
    @discardableResult
    func scan(from position: Int64, expectedOffset: Offset, end: Int64? = nil, maximumBatchSize: Int,
              checkCRC: Bool = true, chunkBytes: Int = 1 << 20,
              decide: (BatchFields, Int64) throws -> ScanAction,
              visit: (BatchFields, Int64, UnsafeRawBufferPointer) throws -> Void) throws -> (position: Int64, offset: Offset) {
        let limit = end ?? size
        var filePosition = position // where `window` starts
        var expected = expectedOffset
        var window: [UInt8] = []
        var at = 0 // position inside window
        func refill(_ start: Int64, atLeast: Int) throws {
            let count = Int(min(limit - start, Int64(max(chunkBytes, atLeast))))
            window = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                initialized = try file.read(into: UnsafeMutableRawBufferPointer(buffer), at: start)
            }
            filePosition = start
            at = 0
        }
        while filePosition + Int64(at) < limit {
            let here = filePosition + Int64(at)
            if window.count - at < RecordBatch.headerSize {
                try refill(here, atLeast: RecordBatch.headerSize)
                if window.count < RecordBatch.headerSize {
                    throw SegmentCorruption(path: file.path, position: here, reason: "a batch header is cut short by the end of the file")
                }
            }
            let fields = window.withUnsafeBytes { BatchFields($0, at: at) }
            if let problem = fields.saneProblem(maximumSize: maximumBatchSize) {
                throw SegmentCorruption(path: file.path, position: here, reason: problem)
            }
            if fields.baseOffset != expected {
                throw SegmentCorruption(path: file.path, position: here,
                                        reason: "batch base offset \(fields.baseOffset), expected \(expected)")
            }
            if here + Int64(fields.totalSize) > limit {
                throw SegmentCorruption(path: file.path, position: here,
                                        reason: "batch of \(fields.totalSize) bytes runs past the end of the data at byte \(limit)")
            }
            switch try decide(fields, here) {
            case .stop:
                return (here, expected)
            case .skip:
                break
            case .visit:
                if window.count - at < fields.totalSize {
                    try refill(here, atLeast: fields.totalSize)
                    if window.count < fields.totalSize {
                        throw SegmentCorruption(path: file.path, position: here, reason: "the batch is cut short by the end of the file")
                    }
                }
                try window.withUnsafeBytes { raw in
                    let batch = UnsafeRawBufferPointer(rebasing: raw[at..<(at + fields.totalSize)])
                    if checkCRC && !RecordBatch.crcMatches(batch) {
                        throw SegmentCorruption(path: file.path, position: here, reason: "batch CRC mismatch (offsets \(fields.baseOffset)...\(fields.lastOffset))")
                    }
                    try visit(fields, here, batch)
                }
            }
            expected = fields.lastOffset + 1
            // Skipped bytes beyond the window are not read: the next header read refills.
            if window.count - at >= fields.totalSize {
                at += fields.totalSize
            } else {
                filePosition = here + Int64(fields.totalSize)
                window.removeAll(keepingCapacity: true)
                at = 0
            }
        }
        return (filePosition + Int64(at), expected)
    }
}
