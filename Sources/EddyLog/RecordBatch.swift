import EddyCore

/// The fixed header of a Kafka RecordBatch (magic 2). Field order and sizes are Kafka's, so
/// the bytes Eddy stores can be served unchanged over the Kafka protocol.
///
/// ```
/// baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (2)
/// crc uint32 (CRC32C of attributes ... end) | attributes int16 | lastOffsetDelta int32
/// baseTimestamp int64 | maxTimestamp int64 | producerId int64 | producerEpoch int16
/// baseSequence int32 | recordCount int32 | records...
/// ```
public struct RecordBatchHeader: Hashable, Sendable {
    public var baseOffset: Offset
    /// Bytes after the `batchLength` field (the whole batch is `batchLength + 12`).
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Timestamp
    public var maxTimestamp: Timestamp
    public var producerID: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32

    public var totalSize: Int { Int(batchLength) + RecordBatch.lengthFieldEnd }
    public var lastOffset: Offset { baseOffset + Offset(lastOffsetDelta) }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }
    public var timestampType: TimestampType { attributes & 0x08 != 0 ? .logAppendTime : .createTime }
    var compressionCode: Int16 { attributes & 0x07 }
}

/// A control record's kind: the marker a transaction coordinator writes to end a transaction.
public enum ControlRecordType: Int16, Sendable {
    case abort = 0
    case commit = 1
}

/// One record inside a batch, viewed without copying. Valid only inside the closure that
/// receives it (the bytes belong to the batch buffer).
public struct RecordView {
    public var offset: Offset
    public var timestamp: Timestamp
    public var key: UnsafeRawBufferPointer?
    public var value: UnsafeRawBufferPointer?
    /// Raw header section: count varint already read, `headerCount` entries follow.
    public var headerCount: Int
    var headerBytes: UnsafeRawBufferPointer

    /// The headers, decoded (allocates).
    public func headers() throws -> [Header] {
        guard headerCount > 0 else { return [] }
        return try ConsumerRecords.decodeHeaders(headerBytes, count: headerCount, offset: offset)
    }
}

/// Encoding and decoding of Kafka's RecordBatch v2.
public enum RecordBatch {
    /// Bytes of the fixed header.
    public static let headerSize = 61
    /// Offset of the first byte after `batchLength` (baseOffset + batchLength).
    public static let lengthFieldEnd = 12
    /// Offset of the `crc` field and of the first byte it covers.
    static let crcOffset = 17
    static let attributesOffset = 21
    static let recordCountOffset = 57

    /// Parses and sanity-checks the header at the start of `bytes` (no CRC check).
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer, context: String = "batch") throws -> RecordBatchHeader {
        var reader = ByteReader(bytes, context: context)
        let header = RecordBatchHeader(
            baseOffset: try reader.readInt64(), batchLength: try reader.readInt32(),
            partitionLeaderEpoch: try reader.readInt32(), magic: Int8(bitPattern: try reader.readUInt8()),
            crc: try reader.readUInt32(), attributes: try reader.readInt16(), lastOffsetDelta: try reader.readInt32(),
            baseTimestamp: try reader.readInt64(), maxTimestamp: try reader.readInt64(),
            producerID: try reader.readInt64(), producerEpoch: try reader.readInt16(),
            baseSequence: try reader.readInt32(), recordCount: try reader.readInt32())
        if header.magic != 2 {
            throw EddyError(.corrupt, "\(context): magic byte is \(header.magic), expected 2")
        }
        if Int(header.batchLength) < headerSize - lengthFieldEnd {
            throw EddyError(.corrupt, "\(context): batch length \(header.batchLength) is shorter than a header")
        }
        if header.recordCount < 0 || header.lastOffsetDelta < 0 || header.recordCount > Limits.maximumRecordsPerBatch {
            throw EddyError(.corrupt, "\(context): record count \(header.recordCount) / last offset delta \(header.lastOffsetDelta) out of range")
        }
        return header
    }

    /// Whether the stored CRC matches the bytes of a whole batch.
    public static func crcMatches(_ batch: UnsafeRawBufferPointer) -> Bool {
        guard batch.count >= headerSize else { return false }
        let stored = UInt32(bigEndian: batch.loadUnaligned(fromByteOffset: crcOffset, as: UInt32.self))
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: batch[attributesOffset...])) == stored
    }

    /// Rewrites the base offset of an encoded batch. The base offset is outside the CRC, so the
    /// log assigns offsets without re-checksumming (as Kafka's broker does).
    public static func setBaseOffset(_ offset: Offset, in batch: inout [UInt8], at start: Int = 0) {
        batch.storeBigEndian(offset, at: start)
    }

    /// Visits every record of a whole, CRC-checked batch. Compressed batches are inflated into a
    /// temporary buffer of at most `maximumBytes`.
    public static func forEachRecord(in batch: UnsafeRawBufferPointer, maximumBytes: Int,
                                     context: String = "batch",
                                     _ body: (borrowing RecordView) throws -> Void) throws {
        try visitRecords(in: batch, maximumBytes: maximumBytes, context: context, whileTrue: { view in
            try body(view)
            return true
        })
    }

    /// ``forEachRecord(in:maximumBytes:context:_:)`` that stops when `body` returns false (the
    /// consumer stops decoding once a poll is full). A stopped visit does not check the bytes
    /// after the last record visited.
    static func visitRecords(in batch: UnsafeRawBufferPointer, maximumBytes: Int, context: String,
                             whileTrue body: (borrowing RecordView) throws -> Bool) throws {
        let header = try parseHeader(batch, context: context)
        guard batch.count >= header.totalSize else {
            throw EddyError(.corrupt, "\(context): batch of \(header.totalSize) bytes is cut at \(batch.count)")
        }
        let section = UnsafeRawBufferPointer(rebasing: batch[headerSize..<header.totalSize])
        let codec = try Compression.codec(attributeCode: header.compressionCode)
        if codec == .none {
            try decodeRecords(section, header: header, context: context, body)
        } else {
            let inflated = try Compression.decompress(section, codec: codec, maximumBytes: maximumBytes)
            try inflated.withUnsafeBytes { try decodeRecords($0, header: header, context: context, body) }
        }
    }

    private static func decodeRecords(_ bytes: UnsafeRawBufferPointer, header: RecordBatchHeader, context: String,
                                      _ body: (borrowing RecordView) throws -> Bool) throws {
        var reader = ByteReader(bytes, context: context)
        for _ in 0..<Int(header.recordCount) {
            let length = Int(try reader.readVarint())
            guard length >= 0, length <= reader.remaining else {
                throw EddyError(.corrupt, "\(context): record length \(length) with \(reader.remaining) bytes left")
            }
            let end = reader.position + length
            _ = try reader.readUInt8() // attributes, unused in v2
            let timestampDelta = try reader.readVarlong()
            let offsetDelta = try reader.readVarint()
            guard offsetDelta >= 0, offsetDelta <= header.lastOffsetDelta else {
                throw EddyError(.corrupt, "\(context): offset delta \(offsetDelta) beyond last offset delta \(header.lastOffsetDelta)")
            }
            let keyLength = Int(try reader.readVarint())
            let key: UnsafeRawBufferPointer? = keyLength < 0 ? nil : try reader.readSlice(keyLength)
            let valueLength = Int(try reader.readVarint())
            let value: UnsafeRawBufferPointer? = valueLength < 0 ? nil : try reader.readSlice(valueLength)
            let headerCount = Int(try reader.readVarint())
            guard headerCount >= 0, headerCount <= Limits.maximumHeadersPerRecord else {
                throw EddyError(.corrupt, "\(context): header count \(headerCount) out of range")
            }
            guard reader.position <= end else {
                throw EddyError(.corrupt, "\(context): record fields overrun the record length")
            }
            let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[reader.position..<end])
            reader.position = end
            let view = RecordView(offset: header.baseOffset + Offset(offsetDelta),
                                  timestamp: header.baseTimestamp &+ timestampDelta,
                                  key: key, value: value, headerCount: headerCount, headerBytes: headerBytes)
            if try !body(view) { return }
        }
        if reader.remaining != 0 {
            throw EddyError(.corrupt, "\(context): \(reader.remaining) bytes after the last record")
        }
    }

    /// Decodes a whole batch into consumer records (allocates; convenient outside hot paths).
    public static func records(in batch: UnsafeRawBufferPointer, topicPartition: TopicPartition,
                               maximumBytes: Int = Limits.maximumRecordBytesCeiling) throws -> [ConsumerRecord] {
        let header = try parseHeader(batch)
        var result: [ConsumerRecord] = []
        result.reserveCapacity(Int(header.recordCount))
        try forEachRecord(in: batch, maximumBytes: maximumBytes) { view in
            result.append(ConsumerRecord(
                topic: topicPartition.topic, partition: topicPartition.partition, offset: view.offset,
                timestamp: header.timestampType == .logAppendTime ? header.maxTimestamp : view.timestamp,
                timestampType: header.timestampType,
                key: view.key.map { Array($0) }, value: view.value.map { Array($0) }, headers: try view.headers()))
        }
        return result
    }

    /// The type of a control batch's marker (key: version int16, type int16).
    public static func controlType(of batch: UnsafeRawBufferPointer) throws -> ControlRecordType {
        var type: ControlRecordType?
        try forEachRecord(in: batch, maximumBytes: 1024) { view in
            guard let key = view.key, key.count >= 4 else { throw EddyError(.corrupt, "control record without a key") }
            var reader = ByteReader(key, context: "control record key")
            _ = try reader.readInt16()
            let raw = try reader.readInt16()
            guard let t = ControlRecordType(rawValue: raw) else { throw EddyError(.corrupt, "unknown control record type \(raw)") }
            type = t
        }
        guard let type else { throw EddyError(.corrupt, "control batch has no record") }
        return type
    }
}

/// Builds one RecordBatch v2. Records are encoded as they are appended; `build` compresses,
/// writes the header and the CRC. Not thread-safe; reuse by calling `reset`.
public struct RecordBatchBuilder {
    public var compression: CompressionCodec
    public var producerID: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var isTransactional: Bool
    public var isControl: Bool
    public private(set) var recordCount = 0
    public private(set) var baseTimestamp: Timestamp = 0
    public private(set) var maxTimestamp: Timestamp = -1
    /// Encoded records, uncompressed: `records[..<used]`. The array is kept at least as long as
    /// `used` (zero-filled beyond it) so that a record is written with plain stores into its
    /// memory, not appended byte by byte.
    private var records: [UInt8] = []
    private var used = 0

    public init(compression: CompressionCodec = .none, producerID: Int64 = -1, producerEpoch: Int16 = -1,
                baseSequence: Int32 = -1, isTransactional: Bool = false, isControl: Bool = false) {
        self.compression = compression
        self.producerID = producerID
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.isTransactional = isTransactional
        self.isControl = isControl
    }

    /// Size of the batch if built now without compression.
    public var uncompressedSize: Int { RecordBatch.headerSize + used }
    public var isEmpty: Bool { recordCount == 0 }

    /// Clears the records, keeping the settings and the allocated capacity.
    public mutating func reset() {
        recordCount = 0
        baseTimestamp = 0
        maxTimestamp = -1
        used = 0
    }

    /// Appends a record; its offset will be `baseOffset + recordCount` at build time.
    ///
    /// Inlinable so that it is specialised for the caller's byte types; the work happens in
    /// ``appendRaw(key:value:headers:timestamp:)``.
    @inlinable
    public mutating func append<K: ContiguousBytes, V: ContiguousBytes>(key: K?, value: V?, headers: [Header] = [], timestamp: Timestamp) {
        if let key {
            key.withUnsafeBytes { k in
                if let value {
                    value.withUnsafeBytes { v in appendRaw(key: k, value: v, headers: headers, timestamp: timestamp) }
                } else {
                    appendRaw(key: k, value: nil, headers: headers, timestamp: timestamp)
                }
            }
        } else if let value {
            value.withUnsafeBytes { v in appendRaw(key: nil, value: v, headers: headers, timestamp: timestamp) }
        } else {
            appendRaw(key: nil, value: nil, headers: headers, timestamp: timestamp)
        }
    }

    /// Appends a record given as raw bytes (`nil` for a null key or value).
    ///
    /// Hot path of every producer: the record's size is computed first so its fields are
    /// written straight into the batch buffer (no intermediate copy, no allocation once the
    /// buffer has grown to a batch's size).
    public mutating func appendRaw(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [Header], timestamp: Timestamp) {
        if recordCount == 0 { baseTimestamp = timestamp }
        if timestamp > maxTimestamp { maxTimestamp = timestamp }
        let timestampDelta = timestamp &- baseTimestamp
        let offsetDelta = Int64(recordCount)
        let keyCount = key?.count ?? -1
        let valueCount = value?.count ?? -1
        var bodySize = 1 + Varint.size(signed: timestampDelta) + Varint.size(signed: offsetDelta)
            + Varint.size(signed: Int64(keyCount)) + max(keyCount, 0)
            + Varint.size(signed: Int64(valueCount)) + max(valueCount, 0)
            + Varint.size(signed: Int64(headers.count))
        for header in headers {
            let keyLength = header.key.utf8.count
            bodySize += Varint.size(signed: Int64(keyLength)) + keyLength
            let valueLength = header.value?.count ?? -1
            bodySize += Varint.size(signed: Int64(valueLength)) + max(valueLength, 0)
        }
        let total = Varint.size(signed: Int64(bodySize)) + bodySize
        let needed = used + total
        if records.count < needed {
            // Grow geometrically: growing by one record at a time would copy the whole buffer
            // each time (quadratic).
            records.append(contentsOf: repeatElement(0, count: Swift.max(needed, records.count * 2, 1_024) - records.count))
        }
        let start = used
        records.withUnsafeMutableBytes { out in
            var p = start
            @inline(__always) func varint(_ value: Int64) {
                var v = Varint.zigZag(value)
                while v >= 0x80 {
                    out[p] = UInt8(truncatingIfNeeded: v) | 0x80
                    p += 1
                    v >>= 7
                }
                out[p] = UInt8(truncatingIfNeeded: v)
                p += 1
            }
            @inline(__always) func bytes(_ source: UnsafeRawBufferPointer) {
                guard let base = source.baseAddress, source.count > 0 else { return }
                (out.baseAddress! + p).copyMemory(from: base, byteCount: source.count)
                p += source.count
            }
            varint(Int64(bodySize))
            out[p] = 0 // attributes
            p += 1
            varint(timestampDelta)
            varint(offsetDelta)
            varint(Int64(keyCount))
            if let key { bytes(key) }
            varint(Int64(valueCount))
            if let value { bytes(value) }
            varint(Int64(headers.count))
            for header in headers {
                var name = header.key
                varint(Int64(name.utf8.count))
                name.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
                if let v = header.value {
                    varint(Int64(v.count))
                    v.withUnsafeBytes { bytes($0) }
                } else {
                    varint(-1)
                }
            }
            precondition(p == start + total, "record encoding wrote \(p - start) bytes, expected \(total)")
        }
        used = needed
        recordCount += 1
    }

    /// Appends a record given as a `Record`.
    public mutating func append(_ record: Record) {
        append(key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp)
    }

    /// The encoded batch with `baseOffset`. Throws only if compression fails.
    public func build(baseOffset: Offset = 0, timestampType: TimestampType = .createTime) throws -> [UInt8] {
        let encoded = records[..<used]
        let body: [UInt8] = compression == .none
            ? Array(encoded)
            : try encoded.withUnsafeBytes { try Compression.compress($0, codec: compression) }
        var out = [UInt8]()
        out.reserveCapacity(RecordBatch.headerSize + body.count)
        out.appendBigEndian(baseOffset)
        out.appendBigEndian(Int32(RecordBatch.headerSize - RecordBatch.lengthFieldEnd + body.count))
        out.appendBigEndian(Int32(-1)) // partition leader epoch
        out.append(2) // magic
        out.appendBigEndian(UInt32(0)) // crc, filled below
        var attributes = Compression.attributeCode(compression)
        if timestampType == .logAppendTime { attributes |= 0x08 }
        if isTransactional { attributes |= 0x10 }
        if isControl { attributes |= 0x20 }
        out.appendBigEndian(attributes)
        out.appendBigEndian(Int32(max(recordCount - 1, 0)))
        out.appendBigEndian(baseTimestamp)
        out.appendBigEndian(maxTimestamp < 0 && recordCount == 0 ? baseTimestamp : maxTimestamp)
        out.appendBigEndian(producerID)
        out.appendBigEndian(producerEpoch)
        out.appendBigEndian(baseSequence)
        out.appendBigEndian(Int32(recordCount))
        out.append(contentsOf: body)
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatch.attributesOffset...])) }
        out.storeBigEndian(crc, at: RecordBatch.crcOffset)
        return out
    }

    /// A control batch (commit or abort marker) for a transactional producer.
    public static func controlBatch(_ type: ControlRecordType, producerID: Int64, producerEpoch: Int16,
                                    coordinatorEpoch: Int32 = 0, timestamp: Timestamp) throws -> [UInt8] {
        var builder = RecordBatchBuilder(producerID: producerID, producerEpoch: producerEpoch,
                                         isTransactional: true, isControl: true)
        var key = [UInt8]()
        key.appendBigEndian(Int16(0))
        key.appendBigEndian(type.rawValue)
        var value = [UInt8]()
        value.appendBigEndian(Int16(0))
        value.appendBigEndian(coordinatorEpoch)
        builder.append(key: key, value: value, timestamp: timestamp)
        return try builder.build()
    }
}

extension Array where Element == UInt8 {
    /// Appends raw bytes with one memcpy (`append(contentsOf:)` with an `UnsafeRawBufferPointer`
    /// copies byte by byte, several times slower).
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        append(contentsOf: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count))
    }
}

extension RecordBatch {
    /// Decodes the records of one whole, CRC-checked batch straight into ``ConsumerRecords``
    /// entries (the consumer's per-record path: no allocation, no record objects).
    ///
    /// `batch` lies at `batchStart` in the buffer the entries will point into. Records of an
    /// uncompressed batch are pointed at in place; a compressed batch is inflated (at most
    /// `maximumBytes`) and appended to `extra`, whose bytes will follow the buffer's
    /// `extraBase` bytes. Records with offsets below `from` are skipped. Throws `.corrupt` for
    /// malformed records, with `context()` naming the batch.
    static func appendEntries(of batch: UnsafeRawBufferPointer, header: RecordBatchHeader, batchStart: Int, from: Offset,
                              maximumBytes: Int, into entries: inout [ConsumerRecords.Entry], extra: inout [UInt8],
                              extraBase: Int, context: () -> String) throws {
        guard batch.count >= header.totalSize else {
            throw EddyError(.corrupt, "\(context()): batch of \(header.totalSize) bytes is cut at \(batch.count)")
        }
        let section = UnsafeRawBufferPointer(rebasing: batch[headerSize..<header.totalSize])
        let codec = try Compression.codec(attributeCode: header.compressionCode)
        if codec == .none {
            try appendEntries(section: section, base: batchStart + headerSize, header: header, from: from,
                              into: &entries, context: context)
        } else {
            let inflated = try Compression.decompress(section, codec: codec, maximumBytes: maximumBytes)
            let base = extraBase + extra.count
            extra.append(contentsOf: inflated)
            try inflated.withUnsafeBytes {
                try appendEntries(section: $0, base: base, header: header, from: from, into: &entries, context: context)
            }
        }
    }

    /// The records section of a batch: positions in entries are `base` + position in `section`.
    private static func appendEntries(section: UnsafeRawBufferPointer, base: Int, header: RecordBatchHeader, from: Offset,
                                      into entries: inout [ConsumerRecords.Entry], context: () -> String) throws {
        let count = section.count
        var i = 0
        func corrupt(_ what: String) -> EddyError { EddyError(.corrupt, "\(context()): \(what)") }
        // A zig-zag varint (Kafka's varlong) at `i`; `bits32` requires it to fit Int32.
        @inline(__always) func varint(_ bits32: Bool) throws -> Int64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < count else { throw corrupt("needed 1 byte at position \(i), 0 left") }
                let byte = section[i]
                i += 1
                if shift == 63 && byte > 1 { throw corrupt("varint overflows 64 bits at position \(i - 1)") }
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
                if shift > 63 { throw corrupt("varint longer than 10 bytes at position \(i)") }
            }
            let value = Varint.unZigZag(result)
            if bits32 && Int64(Int32(truncatingIfNeeded: value)) != value {
                throw corrupt("varint \(value) does not fit 32 bits at position \(i)")
            }
            return value
        }
        let appendTime = header.timestampType == .logAppendTime
        let timestampType = header.timestampType
        for _ in 0..<Int(header.recordCount) {
            let length = Int(try varint(true))
            guard length >= 0, length <= count - i else {
                throw corrupt("record length \(length) with \(count - i) bytes left")
            }
            let end = i + length
            guard i < count else { throw corrupt("needed 1 byte at position \(i), 0 left") }
            i += 1 // attributes, unused in v2
            let timestampDelta = try varint(false)
            let offsetDelta = try varint(true)
            guard offsetDelta >= 0, offsetDelta <= Int64(header.lastOffsetDelta) else {
                throw corrupt("offset delta \(offsetDelta) beyond last offset delta \(header.lastOffsetDelta)")
            }
            let keyLength = try varint(true)
            let keyStart = i
            if keyLength > 0 {
                guard keyLength <= Int64(count - i) else { throw corrupt("needed \(keyLength) bytes at position \(i), \(count - i) left") }
                i += Int(keyLength)
            }
            let valueLength = try varint(true)
            let valueStart = i
            if valueLength > 0 {
                guard valueLength <= Int64(count - i) else { throw corrupt("needed \(valueLength) bytes at position \(i), \(count - i) left") }
                i += Int(valueLength)
            }
            let headerCount = try varint(true)
            guard headerCount >= 0, headerCount <= Int64(Limits.maximumHeadersPerRecord) else {
                throw corrupt("header count \(headerCount) out of range")
            }
            guard i <= end else { throw corrupt("record fields overrun the record length") }
            let offset = header.baseOffset + offsetDelta
            if offset >= from {
                entries.append(ConsumerRecords.Entry(
                    offset: offset, timestamp: appendTime ? header.maxTimestamp : header.baseTimestamp &+ timestampDelta,
                    timestampType: timestampType,
                    keyStart: base + keyStart, keyLength: Int32(truncatingIfNeeded: max(keyLength, -1)),
                    valueStart: base + valueStart, valueLength: Int32(truncatingIfNeeded: max(valueLength, -1)),
                    headersStart: base + i, headersLength: Int32(truncatingIfNeeded: end - i),
                    headerCount: Int32(truncatingIfNeeded: headerCount)))
            }
            i = end
        }
        if i != count { throw corrupt("\(count - i) bytes after the last record") }
    }
}
