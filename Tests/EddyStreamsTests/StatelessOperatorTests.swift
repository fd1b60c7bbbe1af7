import EddyCore
@testable import EddyStreams
import Testing

@Suite("Stateless operators")
struct StatelessOperatorTests {
    @Test("filter, filterNot, mapValues and peek pass the right records on with their timestamps")
    func filterMapValuesPeek() throws {
        let builder = StreamsBuilder()
        let seen = Counter()
        let input = builder.stream("in", key: Serdes.string, value: Serdes.int64)
        input.filter { _, v in v % 2 == 0 }.mapValues { $0 * 10 }.peek { _, _ in seen.increment() }
            .to("even", key: Serdes.string, value: Serdes.int64)
        input.filterNot { _, v in v % 2 == 0 }.to("odd")
        let driver = try TopologyTestDriver(try builder.build())
        let inTopic = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
        let even = driver.createOutputTopic("even", key: Serdes.string, value: Serdes.int64)
        let odd = driver.createOutputTopic("odd", key: Serdes.string, value: Serdes.int64)
        #expect(try even.readRecordsToList().isEmpty)  // empty input: nothing out
        for i in Int64(1)...6 { try inTopic.pipeInput(key: "k\(i)", value: i, timestamp: 100 - i) }
        let evens = try even.readRecordsToList()
        #expect(evens.map(\.value) == [20, 40, 60])
        #expect(evens.map(\.key) == ["k2", "k4", "k6"])
        #expect(evens.map(\.timestamp) == [98, 96, 94])
        #expect(try odd.readValuesToList() == [1, 3, 5])
        #expect(seen.value == 3)
        #expect(even.isEmpty)
    }

    @Test("map, flatMap, flatMapValues and selectKey reshape records")
    func mapAndFlatMap() throws {
        let builder = StreamsBuilder()
        let lines = builder.stream("lines", key: Serdes.optional(Serdes.string), value: Serdes.string)
        lines.flatMapValues { line in line.split(separator: " ").map(String.init) }
            .selectKey { _, word in word.uppercased() }
            .to("words", key: Serdes.string, value: Serdes.string)
        lines.flatMap { _, line in line.split(separator: " ").map { (String($0), $0.count) } }
            .map { k, v in (k + "!", Int64(v)) }
            .to("lengths", key: Serdes.string, value: Serdes.int64)
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("lines", key: Serdes.optional(Serdes.string), value: Serdes.string)
        try input.pipeInput(value: "a bb ccc")
        try input.pipeInput(value: "")
        let words = driver.createOutputTopic("words", key: Serdes.string, value: Serdes.string)
        let pairs = try words.readKeyValuesToList()
        #expect(pairs.map(\.key) == ["A", "BB", "CCC"])
        #expect(pairs.map(\.value) == ["a", "bb", "ccc"])
        let lengths = try driver.createOutputTopic("lengths", key: Serdes.string, value: Serdes.int64).readKeyValuesToList()
        #expect(lengths.map(\.key) == ["a!", "bb!", "ccc!"])
        #expect(lengths.map(\.value) == [1, 2, 3])
    }

    @Test("split sends each record to the first matching named branch, else to the default branch")
    func splitBranches() throws {
        let builder = StreamsBuilder()
        let branches = builder.stream("in", key: Serdes.string, value: Serdes.int)
            .split(named: "size-")
            .branch("big") { _, v in v >= 100 }
            .branch("medium") { _, v in v >= 10 }
            .defaultBranch("small")
        #expect(Set(branches.keys) == ["size-big", "size-medium", "size-small"])
        branches["size-big"]!.to("big")
        branches["size-medium"]!.to("medium")
        branches["size-small"]!.to("small")
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int)
        for v in [5, 500, 50, 100, 9, 10] { try input.pipeInput(key: "k", value: v) }
        #expect(try driver.createOutputTopic("big", key: Serdes.string, value: Serdes.int).readValuesToList() == [500, 100])
        #expect(try driver.createOutputTopic("medium", key: Serdes.string, value: Serdes.int).readValuesToList() == [50, 10])
        #expect(try driver.createOutputTopic("small", key: Serdes.string, value: Serdes.int).readValuesToList() == [5, 9])
    }

    @Test("split without a default branch drops unmatched records")
    func splitWithoutDefault() throws {
        let builder = StreamsBuilder()
        let branches = builder.stream("in", key: Serdes.string, value: Serdes.int)
            .split().branch("neg") { _, v in v < 0 }.noDefaultBranch()
        branches["neg"]!.to("neg")
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int)
        for v in [1, -1, 2, -2] { try input.pipeInput(key: "k", value: v) }
        #expect(try driver.createOutputTopic("neg", key: Serdes.string, value: Serdes.int).readValuesToList() == [-1, -2])
        #expect(driver.metrics.processedRecords == 4)
    }

    @Test("merge interleaves two streams in processing order and foreach sees every record")
    func mergeAndForeach() throws {
        let builder = StreamsBuilder()
        let a = builder.stream("a", key: Serdes.string, value: Serdes.string)
        let b = builder.stream("b", key: Serdes.string, value: Serdes.string)
        let seen = Counter()
        let merged = a.merge(b)
        merged.to("out")
        merged.foreach { _, _ in seen.increment() }
        let driver = try TopologyTestDriver(try builder.build())
        let ta = driver.createInputTopic("a", key: Serdes.string, value: Serdes.string)
        let tb = driver.createInputTopic("b", key: Serdes.string, value: Serdes.string)
        try ta.pipeInput(key: "x", value: "a1", timestamp: 1)
        try tb.pipeInput(key: "x", value: "b1", timestamp: 2)
        try ta.pipeInput(key: "x", value: "a2", timestamp: 3)
        #expect(try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readValuesToList() == ["a1", "b1", "a2"])
        #expect(seen.value == 3)
    }

    @Test("to with a topic name extractor routes each record to the topic it names")
    func dynamicTopics() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string)
            .to({ key, _, context in "out-\(key)-from-\(context.topic ?? "?")" }, key: Serdes.string, value: Serdes.string)
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: "x", value: "1")
        try input.pipeInput(key: "y", value: "2")
        try input.pipeInput(key: "x", value: "3")
        #expect(try driver.createOutputTopic("out-x-from-in", key: Serdes.string, value: Serdes.string).readValuesToList() == ["1", "3"])
        #expect(try driver.createOutputTopic("out-y-from-in", key: Serdes.string, value: Serdes.string).readValuesToList() == ["2"])
    }

    @Test("headers travel from input to output")
    func headersTravel() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).mapValues { $0 + "!" }.to("out", key: Serdes.string, value: Serdes.string)
        let driver = try TopologyTestDriver(try builder.build())
        try driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
            .pipeInput(key: "k", value: "v", timestamp: 7, headers: [Header("trace", "abc")])
        let record = try #require(try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readRecord())
        #expect(record.headers == [Header("trace", "abc")])
        #expect(record.value == "v!")
        #expect(record.timestamp == 7)
    }

    @Test("records with a null key are skipped and counted unless the key serde is nullable")
    func nullKeysSkipped() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string).to("out")
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        try input.pipeInput(key: nil, value: "lost")
        try input.pipeInput(key: "k", value: "kept")
        #expect(try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readValuesToList() == ["kept"])
        #expect(driver.metrics.skippedNullRecords == 1)
    }

    @Test("a custom timestamp extractor sets event time, and negative timestamps are dropped")
    func timestampExtractor() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.int64, timestampExtractor: { record, _ in
            Int64(try! Int64Serde().deserialize(record.value!))
        }).to("out")
        let driver = try TopologyTestDriver(try builder.build())
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
        try input.pipeInput(key: "k", value: 1234, timestamp: 1)
        try input.pipeInput(key: "k", value: -5, timestamp: 2)
        let out = try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.int64).readRecordsToList()
        #expect(out.map(\.timestamp) == [1234])
        #expect(driver.metrics.droppedInvalidTimestampRecords == 1)
    }
}

/// A counter shared with `@Sendable` closures in tests (the driver runs on the test's thread).
final class Counter: @unchecked Sendable {
    private(set) var value = 0
    func increment() { value += 1 }
}

@Suite("Repartitioning and partitioners")
struct RepartitionTests {
    @Test("repartition writes through an internal topic with the requested partition count")
    func explicitRepartition() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.string)
            .selectKey { _, v in v }
            .repartition(key: Serdes.string, value: Serdes.string, partitions: 3, named: "by-value")
            .to("out", key: Serdes.string, value: Serdes.string)
        let topology = try builder.build()
        #expect(topology.subtopologies.count == 2)
        #expect(topology.internalTopics["by-value-repartition"]?.partitionCount == 3)
        let driver = try TopologyTestDriver(topology, applicationID: "app")
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.string)
        for v in ["x", "y", "z", "x"] { try input.pipeInput(key: "k", value: v) }
        let repartitioned = driver.allRecords(of: "app-by-value-repartition")
        #expect(repartitioned.count == 4)
        #expect(Set(repartitioned.map(\.partition)).isSubset(of: [0, 1, 2]))
        // Equal keys land on the same partition (murmur2, like Kafka).
        let xs = repartitioned.filter { $0.key == Array("x".utf8) }.map(\.partition)
        #expect(xs.count == 2 && xs[0] == xs[1])
        #expect(xs[0] == DefaultPartitioner.partition(key: Array("x".utf8), count: 3))
        #expect(try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readValuesToList().sorted() == ["x", "x", "y", "z"])
    }

    @Test("a stream partitioner chooses the output partition of each record")
    func partitioner() throws {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.int)
            .to("out", key: Serdes.string, value: Serdes.int, partitioner: { _, _, v, count in v % count })
        let driver = try TopologyTestDriver(try builder.build(), partitions: ["out": 4])
        let input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int)
        for v in 0..<8 { try input.pipeInput(key: "k", value: v) }
        #expect(driver.allRecords(of: "out").map(\.partition) == [0, 0, 1, 1, 2, 2, 3, 3])
        let records = try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.int).readRecordsToList()
        #expect(records.map(\.partition) == [0, 0, 1, 1, 2, 2, 3, 3])
    }
}
