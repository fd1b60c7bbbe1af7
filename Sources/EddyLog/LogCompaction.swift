import EddyCore

/// Key compaction (`cleanup.policy` compact or compact,delete), Kafka's log cleaner in one pass.
///
/// What is cleaned: the sealed segments that end at or before the last stable offset (the
/// active segment and anything an open transaction may still abort are left alone).
/// What is kept, record by record:
/// - the latest record of each key among those segments (records of aborted transactions do
///   not count and are removed);
/// - a tombstone (nil value) only while `now - maxTimestamp of its batch` is below
///   `delete.retention.ms` (Eddy measures a tombstone's age from its batch's max timestamp,
///   a simpler rule than Kafka's "since the segment was first cleaned");
/// - control batches (transaction markers) and records without a key (possible only if the
///   topic was not always compacted): always.
///
/// Offsets never change. A batch whose records are all kept is copied byte for byte; a batch
/// that loses some is rewritten with the same base offset, offset range, timestamps, producer
/// fields and compression, holding only the kept records (their bytes are copied unchanged,
/// since they are relative to the unchanged base). A batch that loses all its records
/// disappears and the previous batch's offset range is widened over the gap (or, at the start
/// of a segment, an empty batch covers it), which keeps every segment's batches a dense chain.
///
/// The cleaned segment is written to `<base>.log.cleaned` and fsynced, renamed to
/// `<base>.log.swap` (the commit point; the directory is fsynced), then renamed over
/// `<base>.log`; recovery finishes or discards an interrupted swap. Runs under the partition's
/// write lock (readers and appenders wait).
extension PartitionLog {
    func compact(now: Timestamp) throws {
        try lock.withWriteLock {
            try requireOpen()
            let configuration = currentConfiguration
            guard configuration.cleanupPolicy.compacts else { return }
            let stable = lastStableOffsetLocked
            let cleanable = segments.dropLast().prefix { $0.nextOffset <= stable }
            guard !cleanable.isEmpty else { return }
            var aborted: [Int64: [ClosedRange<Offset>]] = [:]
            for segment in segments {
                for entry in segment.transactionIndex.entries {
                    aborted[entry.producerID, default: []].append(entry.firstOffset...entry.lastOffset)
                }
            }
            do {
                // Pass 1: the latest offset of every key.
                var latest: [[UInt8]: Offset] = [:]
                for segment in cleanable {
                    try forEachRecord(of: segment, aborted: aborted) { record, _ in
                        if let key = record.key, !record.isAborted { latest[key] = record.offset }
                    }
                }
                // Pass 2: rewrite the segments that lose records.
                let deleteRetention = configuration.deleteRetentionMilliseconds
                for segment in cleanable {
                    try guardingIO {
                        try clean(segment, aborted: aborted) { record in
                            if record.isAborted { return false }
                            guard let key = record.key else { return true }
                            if latest[key] != record.offset { return false }
                            if record.isTombstone { return now - record.batchMaxTimestamp < deleteRetention }
                            return true
                        }
                    }
                }
            } catch let corruption as SegmentCorruption {
                throw corruption.error
            }
        }
    }

    /// A record as the cleaner sees it. `key` is copied (it is a dictionary key).
    struct CleanerRecord {
        var offset: Offset
        var key: [UInt8]?
        var isTombstone: Bool
        var isAborted: Bool
        var batchMaxTimestamp: Int64
    }

    /// Calls `body` for every record of every non-control batch of `segment` (CRC-checked),
    /// with the record's raw bytes (length prefix excluded) in the batch's decompressed records.
    private func forEachRecord(of segment: Segment, aborted: [Int64: [ClosedRange<Offset>]],
                               _ body: (CleanerRecord, UnsafeRawBufferPointer) throws -> Void) throws {
        try segment.scan(from: 0, expectedOffset: segment.baseOffset, maximumBatchSize: Self.maximumStoredBatchBytes,
                         decide: { fields, _ in fields.isControl ? .skip : .visit },
                         visit: { fields, position, batch in
                             try Self.forEachRawRecord(batch, fields: fields, context: "\(segment.logPath) at byte \(position)") { offset, key, valueIsNull, raw in
                                 let isAborted = fields.isTransactional
                                     && (aborted[fields.producerID]?.contains { $0.contains(offset) } ?? false)
                                 try body(CleanerRecord(offset: offset, key: key.map { Array($0) }, isTombstone: valueIsNull,
                                                        isAborted: isAborted, batchMaxTimestamp: fields.maxTimestamp), raw)
                             }
                         })
    }

    /// Walks the records of a whole batch, giving each one's offset, key, whether its value is
    /// null, and its raw bytes (after the length varint).
    static func forEachRawRecord(_ batch: UnsafeRawBufferPointer, fields: BatchFields, context: String,
                                 _ body: (Offset, UnsafeRawBufferPointer?, Bool, UnsafeRawBufferPointer) throws -> Void) throws {
        let codec = try Compression.codec(attributeCode: fields.attributes & 0x07)
        let section = UnsafeRawBufferPointer(rebasing: batch[RecordBatch.headerSize...])
        func walk(_ bytes: UnsafeRawBufferPointer) throws {
            var reader = ByteReader(bytes, context: context)
            for _ in 0..<Int(fields.recordCount) {
                let length = Int(try reader.readVarint())
                let raw = try reader.readSlice(length)
                var inner = ByteReader(raw, context: context)
                _ = try inner.readUInt8()
                _ = try inner.readVarlong()
                let offsetDelta = try inner.readVarint()
                let keyLength = Int(try inner.readVarint())
                let key: UnsafeRawBufferPointer? = keyLength < 0 ? nil : try inner.readSlice(keyLength)
                let valueLength = Int(try inner.readVarint())
                try body(fields.baseOffset + Offset(offsetDelta), key, valueLength < 0, raw)
            }
            if reader.remaining != 0 { throw EddyError(.corrupt, "\(context): \(reader.remaining) bytes after the last record") }
        }
        if codec == .none {
            try walk(section)
        } else {
            let inflated = try Compression.decompress(section, codec: codec, maximumBytes: Limits.maximumRecordBytesCeiling)
            try inflated.withUnsafeBytes { try walk($0) }
        }
    }

    /// Rewrites `segment` keeping the records `keep` accepts; does nothing if it keeps them all.
    private func clean(_ segment: Segment, aborted: [Int64: [ClosedRange<Offset>]],
                       keep: (CleanerRecord) -> Bool) throws {
        var output: [UInt8] = []
        output.reserveCapacity(Int(segment.size))
        var changed = false
        var expected = segment.baseOffset // next offset the output must cover
        var lastBatchStart: Int?           // where the last written batch starts in `output`
        var droppedMaxTimestamp: Int64 = -1
        try segment.scan(
            from: 0, expectedOffset: segment.baseOffset, maximumBatchSize: Self.maximumStoredBatchBytes,
            decide: { _, _ in .visit },
            visit: { fields, position, batch in
                if fields.isControl {
                    Self.coverGap(upTo: fields.baseOffset, expected: &expected, output: &output, lastBatchStart: &lastBatchStart,
                                  maxTimestamp: droppedMaxTimestamp)
                    lastBatchStart = output.count
                    output.append(contentsOf: batch)
                    expected = fields.lastOffset + 1
                    return
                }
                var kept: [UInt8] = []
                var keptCount = 0
                var all = true
                try Self.forEachRawRecord(batch, fields: fields, context: "\(segment.logPath) at byte \(position)") { offset, key, valueIsNull, raw in
                    let isAborted = fields.isTransactional && (aborted[fields.producerID]?.contains { $0.contains(offset) } ?? false)
                    let record = CleanerRecord(offset: offset, key: key.map { Array($0) }, isTombstone: valueIsNull,
                                               isAborted: isAborted, batchMaxTimestamp: fields.maxTimestamp)
                    if keep(record) {
                        Varint.appendSigned(Int64(raw.count), to: &kept)
                        kept.append(contentsOf: raw)
                        keptCount += 1
                    } else {
                        all = false
                    }
                }
                if all {
                    Self.coverGap(upTo: fields.baseOffset, expected: &expected, output: &output, lastBatchStart: &lastBatchStart,
                                  maxTimestamp: droppedMaxTimestamp)
                    lastBatchStart = output.count
                    output.append(contentsOf: batch)
                    expected = fields.lastOffset + 1
                    return
                }
                changed = true
                if keptCount == 0 {
                    droppedMaxTimestamp = max(droppedMaxTimestamp, fields.maxTimestamp)
                    return
                }
                Self.coverGap(upTo: fields.baseOffset, expected: &expected, output: &output, lastBatchStart: &lastBatchStart,
                              maxTimestamp: droppedMaxTimestamp)
                lastBatchStart = output.count
                try Self.appendRewritten(batch, fields: fields, records: kept, count: keptCount, to: &output)
                expected = fields.lastOffset + 1
            })
        guard changed else { return }
        Self.coverGap(upTo: segment.nextOffset, expected: &expected, output: &output, lastBatchStart: &lastBatchStart,
                      maxTimestamp: droppedMaxTimestamp)
        try swapIn(output, for: segment)
    }

    /// Makes the output cover offsets `expected ..< offset`: widens the last written batch, or
    /// at the start writes an empty batch over the gap.
    private static func coverGap(upTo offset: Offset, expected: inout Offset, output: inout [UInt8],
                                 lastBatchStart: inout Int?, maxTimestamp: Int64) {
        guard offset > expected else { return }
        if let start = lastBatchStart {
            let base = output.withUnsafeBytes { Int64(bigEndian: $0.loadUnaligned(fromByteOffset: start, as: Int64.self)) }
            output.storeBigEndian(Int32(offset - 1 - base), at: start + 23)
            let end = output.count
            let crc = output.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + RecordBatch.attributesOffset)..<end])) }
            output.storeBigEndian(crc, at: start + RecordBatch.crcOffset)
        } else {
            lastBatchStart = output.count
            output.append(contentsOf: emptyBatch(baseOffset: expected, lastOffset: offset - 1, maxTimestamp: maxTimestamp))
        }
        expected = offset
    }

    /// A batch with no records covering `baseOffset...lastOffset` (what remains of batches
    /// whose records were all removed at the start of a segment).
    static func emptyBatch(baseOffset: Offset, lastOffset: Offset, maxTimestamp: Int64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(RecordBatch.headerSize)
        out.appendBigEndian(baseOffset)
        out.appendBigEndian(Int32(RecordBatch.headerSize - RecordBatch.lengthFieldEnd))
        out.appendBigEndian(Int32(-1))
        out.append(2)
        out.appendBigEndian(UInt32(0))
        out.appendBigEndian(Int16(0))
        out.appendBigEndian(Int32(lastOffset - baseOffset))
        out.appendBigEndian(maxTimestamp)
        out.appendBigEndian(maxTimestamp)
        out.appendBigEndian(Int64(-1))
        out.appendBigEndian(Int16(-1))
        out.appendBigEndian(Int32(-1))
        out.appendBigEndian(Int32(0))
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatch.attributesOffset...])) }
        out.storeBigEndian(crc, at: RecordBatch.crcOffset)
        return out
    }

    /// Appends `batch` rewritten to hold only `records` (raw, length-prefixed), compressed
    /// with the batch's codec; every other header field is kept.
    private static func appendRewritten(_ batch: UnsafeRawBufferPointer, fields: BatchFields, records: [UInt8],
                                        count: Int, to output: inout [UInt8]) throws {
        let codec = try Compression.codec(attributeCode: fields.attributes & 0x07)
        let body = try records.withUnsafeBytes { try Compression.compress($0, codec: codec) }
        let start = output.count
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: batch[0..<RecordBatch.headerSize]))
        output.storeBigEndian(Int32(RecordBatch.headerSize - RecordBatch.lengthFieldEnd + body.count), at: start + 8)
        output.storeBigEndian(Int32(count), at: start + RecordBatch.recordCountOffset)
        output.append(contentsOf: body)
        let end = output.count
        let crc = output.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + RecordBatch.attributesOffset)..<end])) }
        output.storeBigEndian(crc, at: start + RecordBatch.crcOffset)
    }

    /// Replaces the segment's file with `bytes` atomically and rebuilds its offset and time
    /// indexes (the aborted-transactions index is unchanged: markers stay).
    private func swapIn(_ bytes: [UInt8], for segment: Segment) throws {
        let fileSystem = environment.fileSystem
        let cleaned = segment.logPath + ".cleaned"
        let swap = segment.logPath + ".swap"
        let file = try fileSystem.open(cleaned, create: true)
        do {
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            try file.sync()
            try file.close()
        } catch {
            try? file.close()
            try? fileSystem.removeFile(cleaned)
            throw error
        }
        try fileSystem.rename(cleaned, to: swap)
        try fileSystem.syncDirectory(directory)
        try fileSystem.removeFile(segment.indexPath)
        try fileSystem.removeFile(segment.timeIndexPath)
        try fileSystem.rename(swap, to: segment.logPath)
        try fileSystem.syncDirectory(directory)
        try segment.reopen()
        let transactions = segment.transactionIndex
        let next = segment.nextOffset
        segment.resetIndexes()
        let interval = currentConfiguration.indexIntervalBytes
        try segment.scan(from: 0, expectedOffset: segment.baseOffset, maximumBatchSize: Self.maximumStoredBatchBytes,
                         checkCRC: false, decide: { _, _ in .visit },
                         visit: { fields, position, _ in segment.noteBatch(fields: fields, position: position, indexIntervalBytes: interval) })
        if segment.nextOffset != next {
            throw EddyError(.corrupt, "compaction of \(segment.logPath) changed its end offset from \(next) to \(segment.nextOffset)")
        }
        segment.transactionIndex = transactions
        segment.indexesDirty = true
        try segment.writeIndexes()
    }
}
