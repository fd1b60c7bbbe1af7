import EddyCore
import Testing

@Suite struct ConsumerRecordsTests {
    static let records = [
        ConsumerRecord(topic: "t", partition: 0, offset: 4, timestamp: 10, key: [1, 2], value: [3],
                       headers: [Header("a", "x"), Header(key: "n", value: nil)]),
        ConsumerRecord(topic: "t", partition: 0, offset: 5, timestamp: 11, timestampType: .logAppendTime, key: nil, value: []),
        ConsumerRecord(topic: "t", partition: 1, offset: 0, timestamp: 12, key: [], value: nil),
        ConsumerRecord(topic: "u", partition: 1, offset: 7, timestamp: 13, key: [9], value: [8, 7]),
    ]

    @Test("copied records come back unchanged, one run per partition, keys and values viewed in place")
    func copyRoundTrip() throws {
        let polled = ConsumerRecords(copying: Self.records)
        #expect(polled.partitions.map(\.topicPartition) == [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("u", 1)])
        #expect(polled.count == 4)
        #expect(try polled.records() == Self.records)
        let first = polled.partitions[0]
        first.withKeyAndValue(at: first.entries.startIndex) { key, value in
            #expect(key.map { Array($0) } == [1, 2])
            #expect(value.map { Array($0) } == [3])
        }
        #expect(try first.headers(at: first.entries.startIndex) == [Header("a", "x"), Header(key: "n", value: nil)])
        #expect(ConsumerRecords(copying: []).isEmpty)
    }

    @Test("a slice shares the buffer and keeps the entries' indices")
    func slices() throws {
        let part = ConsumerRecords(copying: Array(Self.records[0..<2])).partitions[0]
        let tail = part.slice(1..<2)
        #expect(tail.count == 1)
        #expect(tail.entries.startIndex == 1)
        #expect(try tail.record(at: 1) == Self.records[1])
    }

    @Test("malformed header bytes throw corrupt")
    func badHeaders() {
        let bytes: [UInt8] = [0x7f]  // a key length of -64
        #expect(throws: EddyError.self) {
            try bytes.withUnsafeBytes { _ = try ConsumerRecords.decodeHeaders($0, count: 1, offset: 0) }
        }
    }
}
