import EddyCore
@testable import EddyLog
import Testing

@Suite struct RecordBatchTests {
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
