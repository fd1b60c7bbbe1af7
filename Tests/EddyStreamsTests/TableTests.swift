import EddyCore
@testable import EddyStreams
import Testing

@Suite("Tables")
struct TableTests {
    @Test("a table keeps the latest value per key, deletes on tombstones, and forwards changes")
    func sourceTable() throws {
        let builder = StreamsBuilder()
        builder.table("prices", key: Serdes.string, value: Serdes.int64, materializedAs: "prices")
            .toStream().to("changes", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        let driver = try TopologyTestDriver(try builder.build())
        let prices = driver.createInputTopic("prices", key: Serdes.string, value: Serdes.int64)
        let changes = driver.createOutputTopic("changes", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        #expect(changes.isEmpty)
        try prices.pipeInput(key: "apple", value: 3)
        try prices.pipeInput(key: "pear", value: 5)
        try prices.pipeInput(key: "apple", value: 4)
        try prices.pipeTombstone(key: "pear")
        try prices.pipeTombstone(key: "never-there")   // deleting an absent key forwards nothing
        #expect(try changes.readKeyValuesToList().map { "\($0.key)=\($0.value.map(String.init) ?? "nil")" }
                == ["apple=3", "pear=5", "apple=4", "pear=nil"])
        let store = try #require(driver.keyValueStore("prices", key: String.self, value: Int64.self))
        #expect(try store.all().map { "\($0.key)=\($0.value)" } == ["apple=4"])
        #expect(try changes.readKeyValuesToMap().isEmpty)
    }

    @Test("table filter and mapValues materialise their results and turn filtered-out rows into deletes")
    func filterAndMapValues() throws {
        let builder = StreamsBuilder()
        builder.table("prices", key: Serdes.string, value: Serdes.int64)
            .filter(materializedAs: "expensive") { _, price in price >= 10 }
            .mapValues(materializedAs: "labels") { price in "€\(price)" }
            .toStream().to("labels", key: Serdes.string, value: Serdes.optional(Serdes.string))
        let driver = try TopologyTestDriver(try builder.build())
        let prices = driver.createInputTopic("prices", key: Serdes.string, value: Serdes.int64)
        try prices.pipeInput(key: "a", value: 5)    // filtered out, never present: nothing
        try prices.pipeInput(key: "b", value: 12)   // b=€12
        try prices.pipeInput(key: "b", value: 8)    // drops below: delete b
        try prices.pipeInput(key: "a", value: 20)   // a=€20
        try prices.pipeTombstone(key: "a")          // delete a
        try prices.pipeTombstone(key: "b")          // b already gone: nothing
        let out = try driver.createOutputTopic("labels", key: Serdes.string, value: Serdes.optional(Serdes.string)).readKeyValuesToList()
        #expect(out.map { "\($0.key)=\($0.value ?? "nil")" } == ["b=€12", "b=nil", "a=€20", "a=nil"])
        #expect(try driver.keyValueStore("labels", key: String.self, value: String.self)?.all().isEmpty == true)
    }

    @Test("a global table sees every partition of its topic")
    func globalTableAllPartitions() throws {
        let builder = StreamsBuilder()
        let regions = builder.globalTable("regions", key: Serdes.string, value: Serdes.string, materializedAs: "regions")
        builder.stream("events", key: Serdes.string, value: Serdes.string)
            .leftJoin(regions, keySelector: { _, user in user }) { _, region in region ?? "unknown" }
            .to("out", key: Serdes.string, value: Serdes.string)
        let driver = try TopologyTestDriver(try builder.build(), partitions: ["regions": 3, "events": 2])
        let r = driver.createInputTopic("regions", key: Serdes.string, value: Serdes.string)
        for (i, user) in ["u1", "u2", "u3", "u4"].enumerated() { try r.pipeInput(key: user, value: "r\(i)") }
        let e = driver.createInputTopic("events", key: Serdes.string, value: Serdes.string)
        for user in ["u1", "u2", "u3", "u4", "u5"] { try e.pipeInput(key: "event-\(user)", value: user) }
        let out = try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readKeyValuesToMap()
        #expect(out == ["event-u1": "r0", "event-u2": "r1", "event-u3": "r2", "event-u4": "r3", "event-u5": "unknown"])
    }
}
