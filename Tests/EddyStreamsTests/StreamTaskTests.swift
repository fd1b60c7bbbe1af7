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
