/// The records of one poll, grouped by partition and kept in the bytes the log returned
/// (Kafka's `ConsumerRecords`): ``LogConsumer/pollRecords(timeoutMilliseconds:)``.
///
/// Reading records this way allocates nothing per record: each partition's records share one
/// byte buffer, and a record is an ``Entry`` of offsets into it. Keys, values and headers are
/// read in place with ``PartitionRecords/withKeyAndValue(at:_:)`` and
/// ``PartitionRecords/headers(at:)``, or copied out as a ``ConsumerRecord`` with
/// ``PartitionRecords/record(at:)``. A value type: copies share the buffers.
///
/// ```swift
/// let polled = try consumer.pollRecords(timeoutMilliseconds: 100)
/// for partition in polled.partitions {
///     for i in partition.entries.indices {
///         partition.withKeyAndValue(at: i) { key, value in handle(key, value) }
///     }
/// }
/// ```
public struct ConsumerRecords: Sendable {
    /// Where one record's fields lie in its partition's ``PartitionRecords/bytes``.
    public struct Entry: Hashable, Sendable {
        /// The record's offset in its partition.
        public var offset: Offset
        /// The record's timestamp (the batch's for log-append time).
        public var timestamp: Timestamp
        /// Start of the key in the buffer; `keyLength` is -1 for a null key.
        public var keyStart: Int
        /// Start of the value in the buffer; `valueLength` is -1 for a null value (a tombstone).
        public var valueStart: Int
        /// Start of the headers, encoded as in a Kafka record (varint key length, key, varint
        /// value length, value; `headerCount` times).
        public var headersStart: Int
        /// Bytes of the key, -1 for a null key.
        public var keyLength: Int32
        /// Bytes of the value, -1 for a null value.
        public var valueLength: Int32
        /// Bytes of the encoded headers.
        public var headersLength: Int32
        /// Number of headers.
        public var headerCount: Int32
        /// Whether `timestamp` was set by the producer or by the log.
        public var timestampType: TimestampType

        /// An entry; positions are in the buffer of the ``PartitionRecords`` that will hold it.
        public init(offset: Offset, timestamp: Timestamp, timestampType: TimestampType = .createTime,
                    keyStart: Int, keyLength: Int32, valueStart: Int, valueLength: Int32,
                    headersStart: Int = 0, headersLength: Int32 = 0, headerCount: Int32 = 0) {
            self.offset = offset
            self.timestamp = timestamp
            self.timestampType = timestampType
            self.keyStart = keyStart
            self.keyLength = keyLength
            self.valueStart = valueStart
            self.valueLength = valueLength
            self.headersStart = headersStart
            self.headersLength = headersLength
            self.headerCount = headerCount
        }
    }

    /// Consecutive records of one partition, in offset order, and the buffer they live in.
    public struct PartitionRecords: Sendable {
        /// The partition the records come from.
        public let topicPartition: TopicPartition
        /// The buffer every entry points into.
        public let bytes: [UInt8]
        /// The records. A slice: its indices need not start at 0.
        public private(set) var entries: ArraySlice<Entry>

        /// Records of `topicPartition` whose entries point into `bytes`. Entries must lie within
        /// `bytes` (checked: a bad entry traps, it is the caller's bug, not bad input).
        public init(topicPartition: TopicPartition, bytes: [UInt8], entries: ArraySlice<Entry>) {
            for entry in entries {
                precondition(Self.fits(entry.keyStart, entry.keyLength, in: bytes.count)
                             && Self.fits(entry.valueStart, entry.valueLength, in: bytes.count)
                             && Self.fits(entry.headersStart, entry.headersLength, in: bytes.count)
                             && entry.headerCount >= 0 && (entry.headerCount == 0 || entry.headersLength >= 0),
                             "ConsumerRecords entry at offset \(entry.offset) lies outside its \(bytes.count) bytes")
            }
            self.topicPartition = topicPartition
            self.bytes = bytes
            self.entries = entries
        }

        private init(unchecked topicPartition: TopicPartition, bytes: [UInt8], entries: ArraySlice<Entry>) {
            self.topicPartition = topicPartition
            self.bytes = bytes
            self.entries = entries
        }

        /// The records at `range` (indices of ``entries``), sharing the buffer.
        public func slice(_ range: Range<Int>) -> PartitionRecords {
            PartitionRecords(unchecked: topicPartition, bytes: bytes, entries: entries[range])
        }

        static func fits(_ start: Int, _ length: Int32, in count: Int) -> Bool {
            length < 0 || (start >= 0 && Int(length) <= count - start)
        }

        /// The records of `records` (all of `topicPartition`), copied into one buffer.
        public init<S: Sequence<ConsumerRecord>>(topicPartition: TopicPartition, copying records: S) {
            var bytes: [UInt8] = []
            var entries: [Entry] = []
            for record in records {
                var entry = Entry(offset: record.offset, timestamp: record.timestamp, timestampType: record.timestampType,
                                  keyStart: bytes.count, keyLength: -1, valueStart: bytes.count, valueLength: -1)
                if let key = record.key {
                    entry.keyStart = bytes.count
                    entry.keyLength = Int32(key.count)
                    bytes.append(contentsOf: key)
                }
                if let value = record.value {
                    entry.valueStart = bytes.count
                    entry.valueLength = Int32(value.count)
                    bytes.append(contentsOf: value)
                }
                entry.headersStart = bytes.count
                for header in record.headers {
                    Varint.appendSigned(Int64(header.key.utf8.count), to: &bytes)
                    bytes.append(contentsOf: header.key.utf8)
                    if let value = header.value {
                        Varint.appendSigned(Int64(value.count), to: &bytes)
                        bytes.append(contentsOf: value)
                    } else {
                        Varint.appendSigned(-1, to: &bytes)
                    }
                }
                entry.headersLength = Int32(bytes.count - entry.headersStart)
                entry.headerCount = Int32(record.headers.count)
                entries.append(entry)
            }
            self.init(unchecked: topicPartition, bytes: bytes, entries: entries[...])
        }

        /// Number of records.
        public var count: Int { entries.count }
        /// Whether there are no records.
        public var isEmpty: Bool { entries.isEmpty }

        /// Calls `body` with the key and value of entry `i` (`nil` for null), viewed in place:
        /// the pointers are valid only inside `body`.
        @inlinable
        public func withKeyAndValue<R>(at i: Int,
                                       _ body: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
            let entry = entries[i]
            return try bytes.withUnsafeBytes { raw in
                try body(Self.slice(raw, entry.keyStart, entry.keyLength), Self.slice(raw, entry.valueStart, entry.valueLength))
            }
        }

        @inlinable
        static func slice(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int32) -> UnsafeRawBufferPointer? {
            guard length >= 0 else { return nil }
            return UnsafeRawBufferPointer(start: raw.baseAddress.map { $0 + start }, count: Int(length))
        }

        /// The headers of entry `i`, decoded (allocates; none for a record without headers).
        /// Throws ``EddyError/Code/corrupt`` for malformed header bytes.
        public func headers(at i: Int) throws -> [Header] {
            let entry = entries[i]
            guard entry.headerCount > 0 else { return [] }
            return try bytes.withUnsafeBytes { raw in
                let section = UnsafeRawBufferPointer(rebasing: raw[entry.headersStart..<(entry.headersStart + Int(entry.headersLength))])
                return try ConsumerRecords.decodeHeaders(section, count: Int(entry.headerCount), offset: entry.offset)
            }
        }

        /// Entry `i` as a ``ConsumerRecord`` (copies key, value and headers).
        public func record(at i: Int) throws -> ConsumerRecord {
            let entry = entries[i]
            let (key, value) = withKeyAndValue(at: i) { k, v in (k.map { Array($0) }, v.map { Array($0) }) }
            return ConsumerRecord(topic: topicPartition.topic, partition: topicPartition.partition, offset: entry.offset,
                                  timestamp: entry.timestamp, timestampType: entry.timestampType,
                                  key: key, value: value, headers: try headers(at: i))
        }
    }

    /// The polled records per partition, in the order the consumer read them.
    public var partitions: [PartitionRecords]

    /// Records of the given partitions (none by default).
    public init(partitions: [PartitionRecords] = []) {
        self.partitions = partitions
    }

    /// `records` (e.g. from ``LogConsumer/poll(timeoutMilliseconds:)``), copied, one
    /// ``PartitionRecords`` per run of consecutive records of the same partition.
    public init(copying records: [ConsumerRecord]) {
        var partitions: [PartitionRecords] = []
        var start = 0
        while start < records.count {
            let tp = records[start].topicPartition
            var end = start + 1
            while end < records.count && records[end].partition == tp.partition && records[end].topic == tp.topic { end += 1 }
            partitions.append(PartitionRecords(topicPartition: tp, copying: records[start..<end]))
            start = end
        }
        self.partitions = partitions
    }

    /// Number of records.
    public var count: Int { partitions.reduce(0) { $0 + $1.count } }
    /// Whether there are no records.
    public var isEmpty: Bool { partitions.allSatisfy(\.isEmpty) }

    /// Every record as a ``ConsumerRecord`` (copies; what `poll` returns).
    public func records() throws -> [ConsumerRecord] {
        var result: [ConsumerRecord] = []
        result.reserveCapacity(count)
        for partition in partitions {
            for i in partition.entries.indices { result.append(try partition.record(at: i)) }
        }
        return result
    }

    /// Kafka's record headers: `count` times (varint key length, UTF-8 key, varint value
    /// length or -1 for null, value). Throws ``EddyError/Code/corrupt`` on malformed bytes.
    public static func decodeHeaders(_ bytes: UnsafeRawBufferPointer, count: Int, offset: Offset) throws -> [Header] {
        var reader = ByteReader(bytes, context: "record headers at offset \(offset)")
        var result: [Header] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            let keyLength = Int(try reader.readVarint())
            guard keyLength >= 0 else { throw EddyError(.corrupt, "negative header key length at offset \(offset)") }
            let keyBytes = try reader.readSlice(keyLength)
            guard let key = String(validating: keyBytes, as: UTF8.self) else {
                throw EddyError(.corrupt, "header key is not UTF-8 at offset \(offset)")
            }
            let valueLength = Int(try reader.readVarint())
            let value: [UInt8]? = valueLength < 0 ? nil : try reader.readBytes(valueLength)
            result.append(Header(key: key, value: value))
        }
        return result
    }
}
