import EddyCore
import EddyStreams
import EddyTopologies
import Testing

@Suite("enrich-orders topology")
struct EnrichOrdersTopologyTests {
    @Test("orders get their customer's current row merged in, and pass unchanged when there is none")
    func enriches() throws {
        let driver = try TopologyTestDriver(try TopologyRegistry.named("enrich-orders").topology(), applicationID: "enrich-orders")
        defer { driver.close() }
        let orders = driver.createInputTopic("orders", key: Serdes.string, value: Serdes.string)
        let customers = driver.createInputTopic("customers", key: Serdes.string, value: Serdes.string)
        let enriched = driver.createOutputTopic("enriched-orders", key: Serdes.string, value: Serdes.string)
        try customers.pipeInput(key: "c1", value: #"{"name": "Ann", "id": "c1", "tier": {"level": 2}}"#, timestamp: 1)
        try orders.pipeInput(key: "c1", value: #"{"id":1,"total":12.50}"#, timestamp: 2)
        try orders.pipeInput(key: "c2", value: #"{"id":2,"total":3}"#, timestamp: 3)                  // no row yet
        try customers.pipeInput(key: "c2", value: #"{"name":"Ben"}"#, timestamp: 4)
        try customers.pipeInput(key: "c1", value: #"{"name":"Ann B."}"#, timestamp: 5)                // update
        try orders.pipeInput(key: "c1", value: #"{"id":3}"#, timestamp: 6)
        try orders.pipeInput(key: "c2", value: #"{"id":4,"name":"gift for Ben"}"#, timestamp: 7)     // clash: order wins
        try customers.pipeTombstone(key: "c1", timestamp: 8)                                          // delete
        try orders.pipeInput(key: "c1", value: "{}", timestamp: 9)
        try orders.pipeInput(key: "c3", value: nil, timestamp: 10)                                    // null order: skipped
        let records = try enriched.readRecordsToList()
        #expect(records.map { "\($0.key) \($0.value)" } == [
            #"c1 {"id":1,"total":12.50,"name":"Ann","tier":{"level":2}}"#,
            #"c2 {"id":2,"total":3}"#,
            #"c1 {"id":3,"name":"Ann B."}"#,
            #"c2 {"id":4,"name":"gift for Ben"}"#,
            #"c1 {}"#,
        ])
        #expect(records.map(\.timestamp) == [2, 3, 6, 7, 9])
    }

    @Test("a value that is not a JSON object is a serialization error")
    func refusesNonObjects() throws {
        for bad in ["[1,2]", "12", "{\"id\":", "not json"] {
            let driver = try TopologyTestDriver(try EnrichOrdersTopology.topology())
            defer { driver.close() }
            let orders = driver.createInputTopic("orders", key: Serdes.string, value: Serdes.string)
            #expect(throws: EddyError.self, "\(bad)") { try orders.pipeInput(key: "c1", value: bad, timestamp: 1) }
        }
    }

    @Test("topic names come from the options; unknown options name the known ones")
    func options() throws {
        let registered = try TopologyRegistry.named("enrich-orders")
        let text = try registered.topology(["orders": "sales", "customers": "accounts", "output": "sales-enriched"]).describe(.text)
        for word in ["sales", "accounts", "sales-enriched", "customers"] { #expect(text.contains(word), "\(word) missing from \(text)") }
        let message = eddyErrorMessage { _ = try registered.topology(["input": "x"]) }
        #expect(message?.contains("--orders") == true && message?.contains("--customers") == true, "\(message ?? "accepted")")
    }
}
