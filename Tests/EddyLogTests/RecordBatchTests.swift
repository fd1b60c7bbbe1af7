import EddyCore
@testable import EddyLog
import Testing

@Suite struct RecordBatchTests {
    /// Kafka's record encoding written out field by field, independently of the builder.
    static func referenceRecord(_ record: Record, baseTimestamp: Int64, offsetDelta: Int) -> [UInt8] {
        var body: [UInt8] = [0]
        Varint.appendSigned(record.timestamp - baseTimestamp, to: &body)
        Varint.appendSigned(Int64(offsetDelta), to: &body)
        Varint.appendSigned(Int64(record.key?.count ?? -1), to: &body)
        body += record.key ?? []
        Varint.appendSigned(Int64(record.value?.count ?? -1), to: &body)
        body += record.value ?? []
        Varint.appendSigned(Int64(record.headers.count), to: &body)
        for header in record.headers {
            Varint.appendSigned(Int64(header.key.utf8.count), to: &body)
            body += Array(header.key.utf8)
            Varint.appendSigned(Int64(header.value?.count ?? -1), to: &body)
            body += header.value ?? []
        }
        var out: [UInt8] = []
        Varint.appendSigned(Int64(body.count), to: &out)
        return out + body
    }

    @Test("the builder writes records byte for byte as Kafka's encoding, for random keys, values, headers and timestamps")
    func recordsMatchAReferenceEncoding() throws {
        let seed = StorageRandom.seed("recordsMatchAReferenceEncoding")
        var random = StorageRandom(seed: seed)
        for _ in 0..<50 {
            var builder = RecordBatchBuilder()
            var expected: [UInt8] = []
            var base: Int64 = 0
            for i in 0..<Int(1 + random.next() % 300) {
                func bytes(_ maximum: UInt64) -> [UInt8]? {
                    random.next() % 6 == 0 ? nil : (0..<(random.next() % maximum)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                }
                let headers = (0..<Int(random.next() % 3)).map { h in Header(key: "h\(h)é", value: bytes(20)) }
                let record = Record(key: bytes(30), value: bytes(random.next() % 10 == 0 ? 3_000 : 200), headers: headers,
                                    timestamp: Int64(bitPattern: random.next() % 4_000_000_000) - 2_000_000_000)
                if i == 0 { base = record.timestamp }
                builder.append(record)
                expected += Self.referenceRecord(record, baseTimestamp: base, offsetDelta: i)
            }
            let batch = try builder.build()
            #expect(Array(batch[RecordBatch.headerSize...]) == expected, "seed \(seed)")
            #expect(builder.uncompressedSize == batch.count)
        }
    }

    @Test(arguments: CompressionCodec.allCases)
    func batchesRoundTripWithHeadersAndNulls(codec: CompressionCodec) throws {
        var builder = RecordBatchBuilder(compression: codec)
        let records = [
            Record(key: Array("k1".utf8), value: Array("v1".utf8), headers: [Header("h", "x")], timestamp: 1000),
            Record(key: nil, value: Array(repeating: 7, count: 5000), timestamp: 999),
            Record(key: Array("k3".utf8), value: nil, headers: [Header(key: "n", value: nil)], timestamp: 1005),
        ]
        for record in records { builder.append(record) }
        let batch = try builder.build(baseOffset: 40)
        try batch.withUnsafeBytes { bytes in
            #expect(RecordBatch.crcMatches(bytes))
            let header = try RecordBatch.parseHeader(bytes)
            #expect(header.baseOffset == 40)
            #expect(header.lastOffset == 42)
            #expect(header.maxTimestamp == 1005)
            #expect(header.totalSize == batch.count)
            let decoded = try RecordBatch.records(in: bytes, topicPartition: TopicPartition("t", 0))
            #expect(decoded.map(\.offset) == [40, 41, 42])
            #expect(decoded.map(\.key) == records.map(\.key))
            #expect(decoded.map(\.value) == records.map(\.value))
            #expect(decoded.map(\.headers) == records.map(\.headers))
            #expect(decoded.map(\.timestamp) == records.map(\.timestamp))
        }
        if codec != .none { #expect(batch.count < 5000) }
    }

    @Test func settingTheBaseOffsetKeepsTheCRCValid() throws {
        var builder = RecordBatchBuilder()
        builder.append(key: [UInt8]("a".utf8), value: [UInt8]("b".utf8), timestamp: 1)
        var batch = try builder.build()
        RecordBatch.setBaseOffset(123_456, in: &batch)
        let header = try batch.withUnsafeBytes { bytes in
            #expect(RecordBatch.crcMatches(bytes))
            return try RecordBatch.parseHeader(bytes)
        }
        #expect(header.baseOffset == 123_456)
    }

    @Test func everySingleByteFlipInTheCoveredRangeIsDetected() throws {
        var builder = RecordBatchBuilder()
        for i in 0..<10 { builder.append(key: [UInt8(i)], value: [UInt8](repeating: UInt8(i), count: 20), timestamp: Int64(i)) }
        let batch = try builder.build()
        for index in RecordBatch.attributesOffset..<batch.count {
            var damaged = batch
            damaged[index] ^= 0x5A
            damaged.withUnsafeBytes { #expect(!RecordBatch.crcMatches($0)) }
        }
    }

    @Test func decompressionIsBoundedByTheRecordSizeLimit() throws {
        var builder = RecordBatchBuilder(compression: .zstd)
        builder.append(key: nil as [UInt8]?, value: [UInt8](repeating: 0, count: 2_000_000), timestamp: 0)
        let batch = try builder.build()
        #expect(batch.count < 10_000)
        do {
            try batch.withUnsafeBytes { try RecordBatch.forEachRecord(in: $0, maximumBytes: 1_048_576) { _ in } }
            Issue.record("expected recordTooLarge")
        } catch let error as EddyError {
            #expect(error.code == .recordTooLarge)
        }
    }

    @Test func controlBatchesCarryTheirMarkerType() throws {
        let commit = try RecordBatchBuilder.controlBatch(.commit, producerID: 7, producerEpoch: 2, timestamp: 5)
        try commit.withUnsafeBytes { bytes in
            let header = try RecordBatch.parseHeader(bytes)
            #expect(header.isControl && header.isTransactional)
            #expect(header.producerID == 7 && header.producerEpoch == 2)
            #expect(try RecordBatch.controlType(of: bytes) == .commit)
        }
    }
}
