import EddyCore
@testable import EddyStreams
import Testing

/// Collects what a task sends, as the stream threads' producer would.
final class CollectingCollector: RecordCollector {
    var sent: [(topic: String, key: [UInt8]?, value: [UInt8]?, timestamp: Timestamp)] = []
    func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
        sent.append((topic, key, value, timestamp))
    }
    func partitionCount(of topic: String) -> Int? { 1 }
}

@Suite("Stream tasks")
struct StreamTaskTests {
    @Test("a task processes the buffered records of its input partitions in timestamp order")
    func timestampOrder() throws {
        let builder = StreamsBuilder()
        let a = builder.stream("a", key: Serdes.string, value: Serdes.string)
        let b = builder.stream("b", key: Serdes.string, value: Serdes.string)
        a.merge(b).to("out")
        let topology = try builder.build()
        let collector = CollectingCollector()
        let task = try StreamTask(topology: topology, subtopology: topology.subtopologies[0], id: TaskID(subtopology: 0, partition: 0),
                                  applicationID: "app", collector: collector, globalStores: [:], wallClockTime: 0)
        try task.initialize()
        func records(_ topic: String, _ times: [Int64]) -> [ConsumerRecord] {
            times.enumerated().map { i, t in
                ConsumerRecord(topic: topic, partition: 0, offset: Int64(i), timestamp: t, key: Array("k".utf8), value: Array("\(topic)\(t)".utf8))
            }
        }
        task.addRecords(records("a", [1, 5, 9]), from: TopicPartition("a", 0))
        #expect(try task.process(requireAllPartitions: true) == false)  // waits for data on b
        task.addRecords(records("b", [2, 3, 10]), from: TopicPartition("b", 0))
        #expect(task.bufferedRecordCount == 6)
        #expect(try task.processAll() == 6)
        #expect(collector.sent.map { String(decoding: $0.value!, as: UTF8.self) } == ["a1", "b2", "b3", "a5", "a9", "b10"])
        #expect(task.consumedOffsets == [TopicPartition("a", 0): 3, TopicPartition("b", 0): 3])
        #expect(task.context.streamTime == 10)
        task.close()
        #expect(throws: EddyError.self) { try task.process() }
    }
}

/// A user processor: keeps a running total per key in a store, forwards totals, and emits a
/// summary from a stream-time punctuator every 10 ms and a wall-clock punctuator every 1000 ms.
final class TotalProcessor: Processor {
    var context: ProcessorContext<String, Int64>!
    var store: (any TaskKeyValueStore<String, Int64>)!
    func initialize(_ context: ProcessorContext<String, Int64>) throws {
        self.context = context
        store = try context.keyValueStore("totals")
        context.schedule(every: 10, .streamTime) { [unowned self] time in
            let sum = try self.store.all().reduce(Int64(0)) { $0 + $1.value }
            try self.context.forward(StreamRecord(key: "stream-time@\(time)", value: sum, timestamp: time))
        }
        context.schedule(every: 1000, .wallClockTime) { [unowned self] time in
            try self.context.forward(StreamRecord(key: "wall-clock@\(time)", value: Int64(try self.store.all().count), timestamp: time))
        }
    }
    func process(_ record: StreamRecord<String, Int64>) throws {
        let total = (try store.get(record.key) ?? 0) + record.value
        try store.put(record.key, total)
        try context.forward(StreamRecord(key: record.key, value: total, timestamp: record.timestamp,
                                         headers: record.headers + [Header("source", context.recordContext.topic ?? "?")]))
    }
}

@Suite("Processor API")
struct ProcessorAPITests {
    @Test("a user processor uses its store, forwards with headers, and runs stream-time and wall-clock punctuators")
    func userProcessor() throws {
        let builder = StreamsBuilder()
        builder.addKeyValueStore("totals", key: String.self, value: Int64.self)
        builder.stream("in", key: Serdes.string, value: Serdes.int64)
            .process(stores: ["totals"]) { TotalProcessor() }
            .to("out", key: Serdes.string, value: Serdes.int64)
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
        let output = driver.createOutputTopic("out", key: Serdes.string, value: Serdes.int64)
        try input.pipeInput(key: "a", value: 1, timestamp: 3)   // first record: stream-time punctuator fires at 3
        try input.pipeInput(key: "b", value: 2, timestamp: 8)   // next due at 13: nothing
        try input.pipeInput(key: "a", value: 4, timestamp: 15)  // fires at 15
        try input.pipeInput(key: "a", value: 1, timestamp: 9)   // out of order: stream time stays 15
        let records = try output.readRecordsToList()
        #expect(records.map { "\($0.key)=\($0.value)" } == ["a=1", "stream-time@3=1", "b=2", "a=5", "stream-time@15=7", "a=6"])
        #expect(records[0].headers == [Header("source", "in")])
        #expect(records[1].timestamp == 3)
        try driver.advanceWallClockTime(by: 999)
        #expect(output.isEmpty)
        try driver.advanceWallClockTime(by: 1)
        #expect(try output.readKeyValuesToList().map { "\($0.key)=\($0.value)" } == ["wall-clock@1000=2"])
        #expect(try driver.keyValueStore("totals", key: String.self, value: Int64.self)?.get("a") == 6)
    }

    @Test("a processor asking for a store it is not connected to fails when the driver starts")
    func unconnectedStore() throws {
        let builder = StreamsBuilder()
        builder.addKeyValueStore("totals", key: String.self, value: Int64.self)
        builder.stream("in", key: Serdes.string, value: Serdes.int64)
            .process { TotalProcessor() }
            .to("out", key: Serdes.string, value: Serdes.int64)
        // The store is declared but connected to no node: the builder accepts it, the task refuses.
        #expect(throws: EddyError.self) { try TopologyTestDriver(try builder.build()) }
    }
}

/// Collects what a task sends through the raw-bytes path of the stream threads.
final class RawCollectingCollector: RawRecordCollector {
    var sent: [(topic: String, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp)] = []
    var arraySends = 0
    func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
        arraySends += 1
        sent.append((topic, key, value, headers, timestamp))
    }
    func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
              headers: [Header], timestamp: Timestamp) throws {
        sent.append((topic, key.map { Array($0) }, value.map { Array($0) }, headers, timestamp))
    }
    func partitionCount(of topic: String) -> Int? { 1 }
}

@Suite("Stream tasks fed by consumer runs")
struct StreamTaskConsumerRunTests {
    static func run(_ topic: String, offsets: Range<Int64>, timestamp: (Int64) -> Int64,
                    headers: [Header] = []) -> ConsumerRecords.PartitionRecords {
        ConsumerRecords.PartitionRecords(topicPartition: TopicPartition(topic, 0), copying: offsets.map { o in
            ConsumerRecord(topic: topic, partition: 0, offset: o, timestamp: timestamp(o), key: Array("k\(o)".utf8),
                           value: try! Int64Serde().serialize(o), headers: headers)
        })
    }

    @Test("runs of records are processed in order across runs, with their headers, through the raw collector")
    func runsInOrder() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.int64)
            .filter { _, v in v % 3 != 0 }
            .mapValues { $0 * 10 }
            .to("out", key: Serdes.string, value: Serdes.int64)
        let topology = try builder.build()
        let collector = RawCollectingCollector()
        let task = try StreamTask(topology: topology, subtopology: topology.subtopologies[0], id: TaskID(subtopology: 0, partition: 0),
                                  applicationID: "app", collector: collector, globalStores: [:], wallClockTime: 0)
        try task.initialize()
        let header = Header("h", "v")
        // Runs of 1 to 70 records, some sliced as the consumer slices what it keeps pending.
        var next: Int64 = 0
        for size: Int64 in [1, 70, 3, 40, 2] {
            let whole = Self.run("in", offsets: next..<(next + size + 2), timestamp: { $0 * 2 }, headers: next % 2 == 0 ? [header] : [])
            let start = whole.entries.startIndex + 1
            task.addRecords(whole.slice(start..<(start + Int(size))))
            next += size + 2
            // Leave some buffered between additions.
            _ = try task.process()
        }
        try task.processAll()
        #expect(collector.arraySends == 0)
        let sentOffsets = collector.sent.map { try! Int64Serde().deserialize($0.value!) / 10 }
        var expected: [Int64] = []
        var expectedHeaders: [[Header]] = []
        next = 0
        for size: Int64 in [1, 70, 3, 40, 2] {
            let kept = ((next + 1)..<(next + 1 + size)).filter { $0 % 3 != 0 }
            expected += kept
            expectedHeaders += kept.map { _ in next % 2 == 0 ? [header] : [] }
            next += size + 2
        }
        #expect(sentOffsets == expected)
        #expect(collector.sent.map(\.timestamp) == expected.map { $0 * 2 })
        #expect(collector.sent.map { String(decoding: $0.key!, as: UTF8.self) } == expected.map { "k\($0)" })
        #expect(collector.sent.map(\.headers) == expectedHeaders)
        #expect(task.consumedOffsets == [TopicPartition("in", 0): next - 1])
    }

    @Test("an extractor's timestamps order the records, and records it stamps negative are dropped and counted")
    func extractedTimestamps() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.int64, timestampExtractor: { record, _ in
            let v = (try? Int64Serde().deserialize(record.value ?? [])) ?? 0
            return v % 4 == 1 ? -1 : 1_000 - v
        }).to("out", key: Serdes.string, value: Serdes.int64)
        let topology = try builder.build()
        let collector = RawCollectingCollector()
        let task = try StreamTask(topology: topology, subtopology: topology.subtopologies[0], id: TaskID(subtopology: 0, partition: 0),
                                  applicationID: "app", collector: collector, globalStores: [:], wallClockTime: 0)
        try task.initialize()
        task.addRecords(Self.run("in", offsets: 0..<10, timestamp: { $0 }))
        #expect(task.bufferedRecordCount == 7)
        #expect(task.context.metrics.droppedInvalidTimestampRecords == 3)
        try task.processAll()
        #expect(collector.sent.map(\.timestamp) == [0, 2, 3, 4, 6, 7, 8].map { 1_000 - $0 })
    }
}
