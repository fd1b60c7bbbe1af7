import Eddy
import EddyExamples
import Testing

@Suite("Examples")
struct ExamplesTests {
    @Test("word count counts words across lines, case-insensitively")
    func wordCount() throws {
        let driver = try TopologyTestDriver(try WordCount.topology(), applicationID: "wordcount")
        let lines = driver.createInputTopic(WordCount.input, key: Serdes.optional(Serdes.string), value: Serdes.string)
        let counts = driver.createOutputTopic(WordCount.output, key: Serdes.string, value: Serdes.int64)
        try lines.pipeInput(value: "Hello world")
        try lines.pipeInput(value: "hello, Eddy! hello")
        try lines.pipeInput(value: "")
        #expect(try counts.readKeyValuesToMap() == ["hello": 3, "world": 1, "eddy": 1])
        #expect(try driver.keyValueStore(WordCount.store, key: String.self, value: Int64.self)?.get("hello") == 3)
        #expect(driver.topicNames.contains("wordcount-words-repartition"))
    }

    @Test("page views per region joins the region table and sends each window's count when it closes")
    func pageViewsPerRegion() throws {
        let driver = try TopologyTestDriver(try PageViewsPerRegion.topology())
        let views = driver.createInputTopic(PageViewsPerRegion.views, key: Serdes.string, value: Serdes.json(PageViewsPerRegion.PageView.self))
        let regions = driver.createInputTopic(PageViewsPerRegion.regions, key: Serdes.string, value: Serdes.string)
        let output = driver.createOutputTopic(PageViewsPerRegion.output, key: Serdes.string, value: Serdes.int64)
        try regions.pipeInput(key: "alice", value: "eu", timestamp: 0)
        try regions.pipeInput(key: "bob", value: "us", timestamp: 0)
        let view = PageViewsPerRegion.PageView(page: "/")
        try views.pipeInput(key: "alice", value: view, timestamp: 1_000)
        try views.pipeInput(key: "bob", value: view, timestamp: 2_000)
        try views.pipeInput(key: "alice", value: view, timestamp: 30_000)
        try views.pipeInput(key: "carol", value: view, timestamp: 40_000)     // no region: unknown
        try regions.pipeTombstone(key: "bob", timestamp: 50_000)
        try views.pipeInput(key: "bob", value: view, timestamp: 65_000)       // bob left: unknown, next window
        try views.pipeInput(key: "alice", value: view, timestamp: 55_000)     // late but within grace
        #expect(output.isEmpty)                                             // windows close at 70 s
        try views.pipeInput(key: "alice", value: view, timestamp: 71_000)
        #expect(try output.readKeyValuesToMap() == ["eu@0": 3, "us@0": 1, "unknown@0": 1])
        try views.pipeInput(key: "alice", value: view, timestamp: 20_000)     // beyond grace: dropped
        #expect(driver.metrics.droppedLateRecords == 1)
        try views.pipeInput(key: "alice", value: view, timestamp: 200_000)
        #expect(try output.readKeyValuesToMap() == ["unknown@60000": 1, "eu@60000": 1])
    }

    @Test("orders join their payments; unpaid orders are reported only after their window closes")
    func orderPayment() throws {
        typealias O = OrderPaymentJoin
        let driver = try TopologyTestDriver(try O.topology())
        let orders = driver.createInputTopic(O.orders, key: Serdes.string, value: Serdes.json(O.Order.self))
        let payments = driver.createInputTopic(O.payments, key: Serdes.string, value: Serdes.json(O.Payment.self))
        let paid = driver.createOutputTopic(O.paid, key: Serdes.string, value: Serdes.json(O.PaidOrder.self))
        let unpaid = driver.createOutputTopic(O.unpaid, key: Serdes.string, value: Serdes.json(O.Order.self))
        let minute: Int64 = 60_000
        try orders.pipeInput(key: "o1", value: O.Order(customer: "ann", amount: 30), timestamp: 0)
        try orders.pipeInput(key: "o2", value: O.Order(customer: "ben", amount: 12), timestamp: minute)
        try payments.pipeInput(key: "o1", value: O.Payment(amount: 30), timestamp: 2 * minute)
        #expect(try paid.readKeyValuesToList().map(\.value) == [O.PaidOrder(customer: "ann", ordered: 30, paid: 30)])
        #expect(unpaid.isEmpty)
        // o2's window closes at 1 + 5 + 1 = 7 minutes of stream time.
        try payments.pipeInput(key: "o9", value: O.Payment(amount: 1), timestamp: 7 * minute)
        #expect(unpaid.isEmpty)
        try payments.pipeInput(key: "o9", value: O.Payment(amount: 1), timestamp: 7 * minute + 1)
        let late = try unpaid.readRecordsToList()
        #expect(late.map(\.key) == ["o2"])
        #expect(late.map(\.timestamp) == [minute])
        #expect(paid.isEmpty)
    }
}
