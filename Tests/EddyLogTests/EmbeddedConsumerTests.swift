import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// `pollRecords` (records kept in the fetched bytes, the rest of a batch pending for the next
/// poll) against `poll` and against what was sent; and the producer's raw-bytes `send`.
@Suite struct EmbeddedConsumerTests {
    /// What a test compares of a record.
    struct Seen: Hashable, CustomStringConvertible {
        var partition: Int
        var offset: Offset
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [Header]
        var timestamp: Timestamp
        var description: String { "p\(partition)#\(offset) key=\(key?.count ?? -1)B value=\(value?.count ?? -1)B h=\(headers.count) ts=\(timestamp)" }
        init(_ record: ConsumerRecord) {
            partition = record.partition
            offset = record.offset
            key = record.key
            value = record.value
            headers = record.headers
            timestamp = record.timestamp
        }
    }

    static func randomBytes(_ random: inout StorageRandom, maximum: Int) -> [UInt8]? {
        if random.next() % 7 == 0 { return nil }
        return (0..<Int(random.next() % UInt64(maximum + 1))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// Drains every partition with `pollRecords`, converting each polled entry, with up to 10
    /// `seek`s a few records back now and then (which must drop the pending records).
    static func drain(_ consumer: any LogConsumer, _ partitions: [TopicPartition], total: Int,
                      random: inout StorageRandom, seeks: Bool) throws -> [Seen] {
        var seen: [Seen] = []
        var byPartition: [Int: [Seen]] = [:]
        var idle = 0
        var seeksLeft = seeks ? 10 : 0
        while byPartition.values.reduce(0, { $0 + $1.count }) < total && idle < 20 {
            let polled = try consumer.pollRecords(timeoutMilliseconds: 50)
            if polled.partitions.isEmpty { idle += 1 } else { idle = 0 }
            for part in polled.partitions {
                for i in part.entries.indices {
                    let record = try part.record(at: i)
                    #expect(record.topicPartition == part.topicPartition)
                    let entry = part.entries[i]
                    part.withKeyAndValue(at: i) { key, value in
                        #expect(key.map { Array($0) } == record.key)
                        #expect(value.map { Array($0) } == record.value)
                    }
                    #expect(entry.offset == record.offset && entry.timestamp == record.timestamp)
                    byPartition[record.partition, default: []].append(Seen(record))
                }
            }
            if seeksLeft > 0, random.next() % 5 == 0, let tp = partitions.randomElement(using: &random) {
                seeksLeft -= 1
                let kept = byPartition[tp.partition, default: []]
                let back = Int(random.next() % UInt64(min(kept.count, 50) + 1))
                let cut = kept.count - back
                byPartition[tp.partition] = Array(kept[..<cut])
                // Offsets are dense here (no transactions, no compaction).
                try consumer.seek(tp, to: Offset(cut))
            }
        }
        for p in byPartition.keys.sorted() { seen += byPartition[p]! }
        return seen
    }

    @Test("pollRecords returns what poll returns and what was sent, whatever the poll limit, compression and seeks",
          arguments: [CompressionCodec.none, .lz4, .zstd])
    func pollRecordsMatchesPoll(codec: CompressionCodec) throws {
        let seed = StorageRandom.seed("pollRecordsMatchesPoll(\(codec))")
        var random = StorageRandom(seed: seed)
        let fixture = try BackendFixture(.embeddedOnDisk)
        let topic = try fixture.createTopic(partitions: 3)
        let producer = try fixture.backend.makeProducer(ProducerConfiguration(batchBytes: 2_048, compression: codec))
        var sent: [Int: [Seen]] = [:]
        let count = storageRounds(600, long: 20_000)
        for i in 0..<count {
            let partition = Int(random.next() % 3)
            var headers: [Header] = []
            for h in 0..<Int(random.next() % 3) {
                headers.append(Header(key: "h\(h)", value: random.next() % 4 == 0 ? nil : Self.randomBytes(&random, maximum: 5) ?? []))
            }
            let record = ProducerRecord(topic: topic, partition: partition, key: Self.randomBytes(&random, maximum: 12),
                                        value: Self.randomBytes(&random, maximum: 40), headers: headers,
                                        timestamp: 1_000 + Int64(i))
            // Half the records through the raw-bytes send: the same bytes must land.
            if random.next() % 2 == 0 {
                try producer.send(record)
            } else {
                try Self.withBytes(record.key) { key in
                    try Self.withBytes(record.value) { value in
                        try producer.send(topic: topic, partition: partition, key: key, value: value,
                                          headers: headers, timestamp: record.timestamp)
                    }
                }
            }
            let offset = Offset(sent[partition, default: []].count)
            sent[partition, default: []].append(Seen(ConsumerRecord(
                topic: topic, partition: partition, offset: offset, timestamp: record.timestamp!, key: record.key,
                value: record.value, headers: headers)))
            if random.next() % 50 == 0 { try producer.flush() }
        }
        try producer.flush()
        let expected = (0..<3).flatMap { sent[$0] ?? [] }
        let partitions = (0..<3).map { TopicPartition(topic, $0) }

        let limit = 1 + Int(random.next() % 40)
        let plain = try fixture.backend.makeConsumer(ConsumerConfiguration(maximumPollRecords: limit))
        try plain.assign(partitions)
        try plain.seekToBeginning(partitions)
        let polled = try pollRecords(plain, count: count).map(Seen.init)
        #expect((0..<3).flatMap { p in polled.filter { $0.partition == p } } == expected, "seed \(seed)")

        let batched = try fixture.backend.makeConsumer(ConsumerConfiguration(maximumPollRecords: limit))
        try batched.assign(partitions)
        try batched.seekToBeginning(partitions)
        let drained = try Self.drain(batched, partitions, total: count, random: &random, seeks: true)
        #expect(drained == expected, "seed \(seed), limit \(limit)")
        for tp in partitions { #expect(try batched.position(tp) == Offset(sent[tp.partition]?.count ?? 0), "seed \(seed)") }
    }

    @Test("a poll limit below a batch's record count hands the batch out over several polls without reading it again")
    func pendingRecordsServeLaterPolls() throws {
        let fixture = try BackendFixture(.embeddedInMemory)
        let topic = try fixture.createTopic()
        let producer = try fixture.backend.makeProducer(ProducerConfiguration(lingerMilliseconds: 1_000))
        for i in 0..<100 { try producer.send(ProducerRecord(topic: topic, partition: 0, key: nil, value: [UInt8(i)], timestamp: Int64(i))) }
        try producer.flush()
        let tp = TopicPartition(topic, 0)
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(maximumPollRecords: 30))
        try consumer.assign([tp])
        try consumer.seekToBeginning([tp])
        var sizes: [Int] = []
        var values: [UInt8] = []
        for _ in 0..<4 {
            let polled = try consumer.pollRecords(timeoutMilliseconds: 100)
            sizes.append(polled.count)
            for part in polled.partitions {
                for i in part.entries.indices { values.append(try part.record(at: i).value![0]) }
            }
        }
        #expect(sizes == [30, 30, 30, 10])
        #expect(values == (0..<100).map { UInt8($0) })
        #expect(try consumer.position(tp) == 100)
        // A seek back drops the pending records and reads again from there.
        try consumer.seek(tp, to: 95)
        let again = try consumer.poll(timeoutMilliseconds: 100)
        #expect(again.map(\.offset) == [95, 96, 97, 98, 99])
    }

    @Test("read_committed pollRecords skips aborted transactions and control batches like poll")
    func pollRecordsReadCommitted() throws {
        let fixture = try BackendFixture(.embeddedInMemory)
        let topic = try fixture.createTopic()
        let tp = TopicPartition(topic, 0)
        let producer = try fixture.backend.makeTransactionalProducer(ProducerConfiguration(), transactionalID: "tx-\(topic)")
        try producer.initTransactions()
        for round in 0..<6 {
            try producer.beginTransaction()
            for i in 0..<5 {
                let value = Array("r\(round)-\(i)".utf8)
                if i % 2 == 0 {
                    try producer.send(ProducerRecord(topic: topic, partition: 0, key: nil, value: value, timestamp: 1))
                } else {
                    try value.withUnsafeBytes { try producer.send(topic: topic, partition: 0, key: nil, value: $0, headers: [], timestamp: 1) }
                }
            }
            if round % 3 == 1 { try producer.abortTransaction() } else { try producer.commitTransaction() }
        }
        let consumer = try fixture.backend.makeConsumer(ConsumerConfiguration(isolation: .readCommitted, maximumPollRecords: 3))
        try consumer.assign([tp])
        try consumer.seekToBeginning([tp])
        var values: [String] = []
        for _ in 0..<20 {
            let polled = try consumer.pollRecords(timeoutMilliseconds: 20)
            for part in polled.partitions {
                for i in part.entries.indices { values.append(String(decoding: try part.record(at: i).value!, as: UTF8.self)) }
            }
        }
        let expected = [0, 2, 3, 5].flatMap { round in (0..<5).map { "r\(round)-\($0)" } }
        #expect(values == expected)
    }

    static func withBytes(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> Void) throws {
        guard let bytes else { return try body(nil) }
        try bytes.withUnsafeBytes { try body($0) }
    }
}
