import EddyCore
@testable import EddyStreams
import Foundation
import Testing

/// Partition time in committed offsets' metadata: Kafka Streams' encoding, what a task
/// commits, and how a task created again resumes its stream time from it.
@Suite("Partition time in commit metadata")
struct PartitionTimeTests {
    @Test("partition times are encoded as Kafka Streams encodes them and decoded back")
    func encoding() {
        // Kafka Streams' StreamTask.encodeTimestamp(20000): Base64 of 0x01 and 20000 as a big-endian long.
        #expect(PartitionTimeMetadata.encode(20_000) == "AQAAAAAAAE4g")
        #expect(PartitionTimeMetadata.decode("AQAAAAAAAE4g") == 20_000)
        for time: Timestamp in [-1, 0, 1, 1_700_000_000_000, .max] {
            #expect(PartitionTimeMetadata.decode(PartitionTimeMetadata.encode(time)) == time)
        }
        // Empty, not Base64, another version, or another size: an unknown time.
        let otherVersion = Data([2, 0, 0, 0, 0, 0, 0, 0, 1]).base64EncodedString()
        let tooShort = Data([1, 0, 0, 0]).base64EncodedString()
        for metadata in ["", "not base64!", otherVersion, tooShort] {
            #expect(PartitionTimeMetadata.decode(metadata) == nil, "\(metadata)")
        }
    }

    @Test("processor metadata rides along as version 2, and malformed version-2 metadata reads as unknown")
    func processorMetadata() {
        let metadata: [String: Int64] = ["emit-final:counts": 40_000, "emit-final:other": -5, "ü": .max]
        let encoded = PartitionTimeMetadata.encode(30_000, processorMetadata: metadata)
        let decoded = PartitionTimeMetadata.decodeAll(encoded)
        #expect(decoded?.time == 30_000 && decoded?.processorMetadata == metadata)
        #expect(PartitionTimeMetadata.decode(encoded) == 30_000)
        #expect(Data(base64Encoded: encoded)?.first == 2)
        // Without processor metadata it stays version 1, what Kafka Streams writes.
        #expect(PartitionTimeMetadata.encode(30_000, processorMetadata: [:]) == PartitionTimeMetadata.encode(30_000))
        let bytes = [UInt8](Data(base64Encoded: encoded)!)
        var countTooLarge = bytes
        countTooLarge[12] += 1
        var keyTooLong = bytes
        keyTooLong[16] = 200
        for broken in [Array(bytes.dropLast()), bytes + [0], countTooLarge, keyTooLong, Array(bytes.prefix(12))] {
            #expect(PartitionTimeMetadata.decodeAll(Data(broken).base64EncodedString()) == nil, "\(broken)")
        }
    }

    @Test("a task created again takes the largest committed value of each processor-metadata key over its partitions")
    func processorMetadataRestored() throws {
        let task = try twoInputTask()
        task.initializeTime(committed: [
            TopicPartition("a", 0): OffsetAndMetadata(4, metadata: PartitionTimeMetadata.encode(30, processorMetadata: ["x": 7, "y": 1])),
            TopicPartition("b", 0): OffsetAndMetadata(2, metadata: PartitionTimeMetadata.encode(10, processorMetadata: ["x": 9])),
        ])
        #expect(task.context.processorMetadata == ["x": 9, "y": 1])
        #expect(task.context.streamTime == 30)
        try task.initialize()
        task.context.processorMetadata["x"] = 12
        task.addRecords(records("a", [40], from: 4), from: TopicPartition("a", 0))
        try task.processAll()
        #expect(PartitionTimeMetadata.decodeAll(task.committableOffsets[TopicPartition("a", 0)]!.metadata)?.processorMetadata == ["x": 12, "y": 1])
        task.close()
    }

    private func twoInputTask() throws -> StreamTask {
        let builder = StreamsBuilder()
        builder.stream("a", key: Serdes.string, value: Serdes.string)
            .merge(builder.stream("b", key: Serdes.string, value: Serdes.string)).to("out")
        let topology = try builder.build()
        return try StreamTask(topology: topology, subtopology: topology.subtopologies[0], id: TaskID(subtopology: 0, partition: 0),
                              applicationID: "app", collector: CollectingCollector(), globalStores: [:], wallClockTime: 0)
    }

    private func records(_ topic: String, _ times: [Int64], from first: Offset = 0) -> [ConsumerRecord] {
        times.enumerated().map { i, t in
            ConsumerRecord(topic: topic, partition: 0, offset: first + Int64(i), timestamp: t, key: Array("k".utf8), value: Array("v".utf8))
        }
    }

    @Test("a task commits each partition's time of the records it processed, not of those only buffered")
    func committedTimes() throws {
        let task = try twoInputTask()
        try task.initialize()
        #expect(task.committableOffsets.isEmpty)
        task.addRecords(records("a", [5, 30, 7]), from: TopicPartition("a", 0))
        task.addRecords(records("b", [10, 40]), from: TopicPartition("b", 0))
        // By head timestamps the first three are a5, b10, a30; a7 stays buffered.
        for _ in 0..<3 { #expect(try task.process()) }
        #expect(task.committableOffsets == [
            TopicPartition("a", 0): OffsetAndMetadata(2, metadata: PartitionTimeMetadata.encode(30)),
            TopicPartition("b", 0): OffsetAndMetadata(1, metadata: PartitionTimeMetadata.encode(10)),
        ])
        // A record older than the partition's time does not lower it.
        try task.processAll()
        #expect(task.committableOffsets[TopicPartition("a", 0)] == OffsetAndMetadata(3, metadata: PartitionTimeMetadata.encode(30)))
        #expect(task.committableOffsets[TopicPartition("b", 0)] == OffsetAndMetadata(2, metadata: PartitionTimeMetadata.encode(40)))
        #expect(task.context.streamTime == 40)
        task.close()
    }

    @Test("a task created again resumes partition times and stream time from the committed metadata")
    func resumedTimes() throws {
        let task = try twoInputTask()
        task.initializeTime(committed: [
            TopicPartition("a", 0): OffsetAndMetadata(3, metadata: PartitionTimeMetadata.encode(30)),
            TopicPartition("b", 0): OffsetAndMetadata(2, metadata: PartitionTimeMetadata.encode(40)),
            TopicPartition("other", 0): OffsetAndMetadata(9, metadata: PartitionTimeMetadata.encode(99)),
        ])
        try task.initialize()
        #expect(task.context.streamTime == 40)
        // A record older than its partition's time leaves the committed time in place.
        task.addRecords(records("a", [20], from: 3), from: TopicPartition("a", 0))
        try task.processAll()
        #expect(task.context.streamTime == 40)
        #expect(task.committableOffsets == [TopicPartition("a", 0): OffsetAndMetadata(4, metadata: PartitionTimeMetadata.encode(30))])
        task.close()

        // No metadata (never committed, or reset): the time stays unknown.
        let fresh = try twoInputTask()
        fresh.initializeTime(committed: [TopicPartition("a", 0): OffsetAndMetadata(3)])
        try fresh.initialize()
        #expect(fresh.context.streamTime == .min)
        fresh.addRecords(records("a", [20], from: 3), from: TopicPartition("a", 0))
        try fresh.processAll()
        #expect(fresh.committableOffsets == [TopicPartition("a", 0): OffsetAndMetadata(4, metadata: PartitionTimeMetadata.encode(20))])
        fresh.close()
    }

    @Test("a windowed aggregation of a resumed task drops a record whose window closed before the restart")
    func windowedAggregationUsesResumedTime() throws {
        let builder = StreamsBuilder()
        builder.stream("a", key: Serdes.string, value: Serdes.string).groupByKey()
            .windowed(by: .of(size: 10, grace: 0)).count(materializedAs: "counts")
            .toStream().mapValues { "\($0 ?? -1)" }.to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.string)
        let topology = try builder.build()
        func run(resumingFrom committed: [TopicPartition: OffsetAndMetadata]) throws -> (sent: Int, dropped: Int) {
            let collector = CollectingCollector()
            let task = try StreamTask(topology: topology, subtopology: topology.subtopologies[0], id: TaskID(subtopology: 0, partition: 0),
                                      applicationID: "app", collector: collector, globalStores: [:], wallClockTime: 0)
            task.initializeTime(committed: committed)
            try task.initialize()
            defer { task.close() }
            task.addRecords(records("a", [5], from: 7), from: TopicPartition("a", 0))
            try task.processAll()
            return (collector.sent.count, task.context.metrics.droppedLateRecords)
        }
        let resumed = try run(resumingFrom: [TopicPartition("a", 0): OffsetAndMetadata(7, metadata: PartitionTimeMetadata.encode(25))])
        #expect(resumed.sent == 0 && resumed.dropped == 1)
        let unknown = try run(resumingFrom: [:])
        #expect(unknown.sent == 1 && unknown.dropped == 0)
    }
}
