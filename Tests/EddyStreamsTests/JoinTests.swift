import EddyCore
@testable import EddyStreams
import Testing

/// The three join families over one input sequence, every variant checked record by record
/// against outputs derived by hand (see each test's comments).
@Suite("Joins")
struct JoinTests {
    static func show(_ l: String?, _ r: String?) -> String { "\(l ?? "null")+\(r ?? "null")" }

    /// Stream–stream input: (side, key, value, timestamp). Window ±10 ms, grace 0.
    ///  1. L k a@0    unmatched a (closes when stream time passes 10)
    ///  2. R k x@5    joins a -> a+x @5
    ///  3. L j b@10   unmatched b (closes after 20)
    ///  4. R k y@30   stream time 30 closes b -> left/outer emit b+null @10; y unmatched (closes after 40)
    ///  5. L k c@35   joins y -> c+y @35
    ///  6. R j z@50   no left j in [40, 60]: z unmatched (closes after 60)
    ///  7. L k d@100  stream time 100 closes z -> outer emits null+z @50; d stays pending
    ///  8. R k late@60  60 + 10 + 0 < 100: dropped as late
    static let streamInput: [(left: Bool, key: String, value: String, time: Int64)] = [
        (true, "k", "a", 0), (false, "k", "x", 5), (true, "j", "b", 10), (false, "k", "y", 30),
        (true, "k", "c", 35), (false, "j", "z", 50), (true, "k", "d", 100), (false, "k", "late", 60),
    ]

    func runStreamStream(_ kind: JoinKind) throws -> [String] {
        let builder = StreamsBuilder()
        let left = builder.stream("left", key: Serdes.string, value: Serdes.string)
        let right = builder.stream("right", key: Serdes.string, value: Serdes.string)
        let windows = JoinWindows.of(timeDifference: 10)
        let joined: Stream<String, String>
        switch kind {
        case .inner: joined = left.join(right, windows: windows) { JoinTests.show($0, $1) }
        case .left: joined = left.leftJoin(right, windows: windows) { JoinTests.show($0, $1) }
        case .outer: joined = left.outerJoin(right, windows: windows) { JoinTests.show($0, $1) }
        }
        joined.to("out", key: Serdes.string, value: Serdes.string)
        let driver = try TopologyTestDriver(try builder.build())
        let l = driver.createInputTopic("left", key: Serdes.string, value: Serdes.string)
        let r = driver.createInputTopic("right", key: Serdes.string, value: Serdes.string)
        for e in Self.streamInput {
            try (e.left ? l : r).pipeInput(key: e.key, value: e.value, timestamp: e.time)
        }
        #expect(driver.metrics.droppedLateRecords == 1)
        return try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readRecordsToList()
            .map { "\($0.key):\($0.value)@\($0.timestamp)" }
    }

    @Test("stream-stream inner join emits matches only")
    func streamStreamInner() throws {
        #expect(try runStreamStream(.inner) == ["k:a+x@5", "k:c+y@35"])
    }

    @Test("stream-stream left join emits unmatched left records only when their window closes")
    func streamStreamLeft() throws {
        #expect(try runStreamStream(.left) == ["k:a+x@5", "j:b+null@10", "k:c+y@35"])
    }

    @Test("stream-stream outer join emits unmatched records of both sides at window close")
    func streamStreamOuter() throws {
        #expect(try runStreamStream(.outer) == ["k:a+x@5", "j:b+null@10", "k:c+y@35", "j:null+z@50"])
    }

    @Test("stream-stream join with nothing on one side emits nothing for inner joins")
    func streamStreamEmpty() throws {
        let builder = StreamsBuilder()
        let left = builder.stream("left", key: Serdes.string, value: Serdes.string)
        let right = builder.stream("right", key: Serdes.string, value: Serdes.string)
        left.join(right, windows: .of(timeDifference: 5)) { $0 + $1 }.to("out", key: Serdes.string, value: Serdes.string)
        let driver = try TopologyTestDriver(try builder.build())
        let l = driver.createInputTopic("left", key: Serdes.string, value: Serdes.string)
        for t: Int64 in [0, 100, 200] { try l.pipeInput(key: "k", value: "v", timestamp: t) }
        #expect(try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readRecordsToList().isEmpty)
    }

    /// Stream–table input (the table side is a table or a global table):
    ///  1. S k s1@0   no row: left emits s1+null
    ///  2. T k t1@1   table updates emit nothing
    ///  3. S k s2@2   s2+t1
    ///  4. T k (tombstone)@3
    ///  5. S k s3@4   no row: left emits s3+null
    ///  6. S j s4@5   no row: left emits s4+null
    func runStreamTable(left isLeft: Bool, global: Bool) throws -> [String] {
        let builder = StreamsBuilder()
        let stream = builder.stream("s", key: Serdes.string, value: Serdes.string)
        let joined: Stream<String, String>
        if global {
            let table = builder.globalTable("t", key: Serdes.string, value: Serdes.string)
            joined = isLeft ? stream.leftJoin(table, keySelector: { k, _ in k }) { JoinTests.show($0, $1) }
                : stream.join(table, keySelector: { k, _ in k }) { JoinTests.show($0, $1) }
        } else {
            let table = builder.table("t", key: Serdes.string, value: Serdes.string)
            joined = isLeft ? stream.leftJoin(table) { JoinTests.show($0, $1) } : stream.join(table) { JoinTests.show($0, $1) }
        }
        joined.to("out", key: Serdes.string, value: Serdes.string)
        let driver = try TopologyTestDriver(try builder.build())
        let s = driver.createInputTopic("s", key: Serdes.string, value: Serdes.string)
        let t = driver.createInputTopic("t", key: Serdes.string, value: Serdes.string)
        try s.pipeInput(key: "k", value: "s1", timestamp: 0)
        try t.pipeInput(key: "k", value: "t1", timestamp: 1)
        try s.pipeInput(key: "k", value: "s2", timestamp: 2)
        try t.pipeTombstone(key: "k", timestamp: 3)
        try s.pipeInput(key: "k", value: "s3", timestamp: 4)
        try s.pipeInput(key: "j", value: "s4", timestamp: 5)
        return try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readRecordsToList()
            .map { "\($0.key):\($0.value)@\($0.timestamp)" }
    }

    @Test("stream-table inner and left joins look up the table's current row", arguments: [false, true])
    func streamTable(global: Bool) throws {
        #expect(try runStreamTable(left: false, global: global) == ["k:s2+t1@2"])
        #expect(try runStreamTable(left: true, global: global) == ["k:s1+null@0", "k:s2+t1@2", "k:s3+null@4", "j:s4+null@5"])
    }

    /// Table–table input:
    ///  1. L k l1      2. R k r1      3. R j r2
    ///  4. L k (tombstone)            5. R k (tombstone)      6. L j l2
    func runTableTable(_ kind: JoinKind) throws -> [String] {
        let builder = StreamsBuilder()
        let l = builder.table("l", key: Serdes.string, value: Serdes.string)
        let r = builder.table("r", key: Serdes.string, value: Serdes.string)
        let joined: Table<String, String>
        switch kind {
        case .inner: joined = l.join(r, materializedAs: "joined") { JoinTests.show($0, $1) }
        case .left: joined = l.leftJoin(r, materializedAs: "joined") { JoinTests.show($0, $1) }
        case .outer: joined = l.outerJoin(r, materializedAs: "joined") { JoinTests.show($0, $1) }
        }
        joined.toStream().to("out", key: Serdes.string, value: Serdes.optional(Serdes.string))
        let driver = try TopologyTestDriver(try builder.build())
        let lt = driver.createInputTopic("l", key: Serdes.string, value: Serdes.string)
        let rt = driver.createInputTopic("r", key: Serdes.string, value: Serdes.string)
        try lt.pipeInput(key: "k", value: "l1")
        try rt.pipeInput(key: "k", value: "r1")
        try rt.pipeInput(key: "j", value: "r2")
        try lt.pipeTombstone(key: "k")
        try rt.pipeTombstone(key: "k")
        try lt.pipeInput(key: "j", value: "l2")
        return try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.optional(Serdes.string)).readRecordsToList()
            .map { "\($0.key)=\($0.value ?? "nil")" }
    }

    @Test("table-table inner join keeps rows where both sides have one")
    func tableTableInner() throws {
        #expect(try runTableTable(.inner) == ["k=l1+r1", "k=nil", "j=l2+r2"])
    }

    @Test("table-table left join keeps rows where the left side has one")
    func tableTableLeft() throws {
        #expect(try runTableTable(.left) == ["k=l1+null", "k=l1+r1", "k=nil", "j=l2+r2"])
    }

    @Test("table-table outer join keeps rows where either side has one")
    func tableTableOuter() throws {
        #expect(try runTableTable(.outer) == ["k=l1+null", "k=l1+r1", "j=null+r2", "k=null+r1", "k=nil", "j=l2+r2"])
    }
}

extension JoinKind: CustomTestStringConvertible {
    public var testDescription: String { "\(self)" }
}

/// Foreign-key join: orders (key: order id, value: "product:quantity") join products
/// (key: product id, value: name).
@Suite("Foreign-key joins")
struct ForeignKeyJoinTests {
    func run(left: Bool, partitions: [String: Int] = [:]) throws -> [String] {
        let builder = StreamsBuilder()
        let orders = builder.table("orders", key: Serdes.string, value: Serdes.string)
        let products = builder.table("products", key: Serdes.string, value: Serdes.string)
        let foreignKey: @Sendable (String) -> String = { String($0.split(separator: ":")[0]) }
        let joined = left
            ? orders.leftJoin(products, foreignKey: foreignKey, named: "fk") { o, p in "\(o)=\(p ?? "null")" }
            : orders.join(products, foreignKey: foreignKey, named: "fk") { o, p in "\(o)=\(p)" }
        joined.toStream().to("out", key: Serdes.string, value: Serdes.optional(Serdes.string))
        let topology = try builder.build()
        #expect(topology.internalTopics.keys.sorted() == ["fk-subscription-registration", "fk-subscription-response"])
        let driver = try TopologyTestDriver(topology, partitions: partitions)
        let o = driver.createInputTopic("orders", key: Serdes.string, value: Serdes.string)
        let p = driver.createInputTopic("products", key: Serdes.string, value: Serdes.string)
        try o.pipeInput(key: "o1", value: "p1:2")     // no product yet: left join emits o1=null
        try p.pipeInput(key: "p1", value: "pen")      // o1 joins pen
        try o.pipeInput(key: "o2", value: "p1:5")     // o2 joins pen
        try p.pipeInput(key: "p1", value: "Pen")      // both results updated
        try o.pipeInput(key: "o1", value: "p2:1")     // o1 moves to p2 (absent)
        try p.pipeInput(key: "p2", value: "paper")    // o1 joins paper
        try o.pipeTombstone(key: "o2")                // o2 deleted: result deleted
        try p.pipeTombstone(key: "p2")                // o1's product deleted
        try p.pipeInput(key: "p1", value: "PEN")      // nobody subscribes to p1 any more
        return try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.optional(Serdes.string)).readRecordsToList()
            .map { "\($0.key):\($0.value ?? "nil")" }
    }

    @Test("foreign-key inner join follows updates and deletes on both sides")
    func inner() throws {
        #expect(try run(left: false) == ["o1:p1:2=pen", "o2:p1:5=pen", "o1:p1:2=Pen", "o2:p1:5=Pen", "o1:nil",
                                         "o1:p2:1=paper", "o2:nil", "o1:nil"])
    }

    @Test("foreign-key left join keeps left rows without a match")
    func left() throws {
        #expect(try run(left: true) == ["o1:p1:2=null", "o1:p1:2=pen", "o2:p1:5=pen", "o1:p1:2=Pen", "o2:p1:5=Pen",
                                        "o1:p2:1=null", "o1:p2:1=paper", "o2:nil", "o1:p2:1=null"])
    }

    @Test("foreign-key join works across tables with different partition counts")
    func differentPartitions() throws {
        let results = try run(left: false, partitions: ["orders": 3, "products": 2])
        #expect(Set(results) == Set(["o1:p1:2=pen", "o2:p1:5=pen", "o1:p1:2=Pen", "o2:p1:5=Pen", "o1:nil",
                                     "o1:p2:1=paper", "o2:nil", "o1:nil"]))
        #expect(results.count == 8)
    }
}
