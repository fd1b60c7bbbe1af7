import EddyCore
import EddyState
@testable import EddyStreams
import Foundation
import Testing

/// The buffers of stream–stream joins, suppression and foreign-key joins are stores: named like
/// Kafka's, described with their changelogs, persistent in RocksDB, and giving the same results
/// as the in-memory stores, also when the driver is closed and reopened in the middle.
@Suite("Buffer stores of joins, suppression and foreign-key joins")
struct BufferStoreTests {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "eddy-buffers-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `count` inputs through a driver on `backend`, closing it and opening a new one on the
    /// same state before input `restartAt`. Returns everything read from the output.
    static func run(_ topology: () throws -> Topology, backend: StoreBackend, count: Int, restartAt: Int? = nil,
                    pipe: (TopologyTestDriver, Int) throws -> Void,
                    read: (TopologyTestDriver) throws -> [String]) throws -> [String] {
        var output: [String] = []
        var driver = try TopologyTestDriver(try topology(), stores: backend)
        for i in 0..<count {
            if i == restartAt {
                output += try read(driver)
                driver.close()
                driver = try TopologyTestDriver(try topology(), stores: backend)
            }
            try pipe(driver, i)
        }
        output += try read(driver)
        driver.close()
        return output
    }

    // MARK: Stream–stream joins

    static func joinTopology(_ kind: JoinKind, named: String?, windows: JoinWindows = .of(timeDifference: 10)) throws -> Topology {
        let builder = StreamsBuilder()
        let left = builder.stream("left", key: Serdes.string, value: Serdes.string)
        let right = builder.stream("right", key: Serdes.string, value: Serdes.string)
        let joined: EddyStreams.Stream<String, String>
        switch kind {
        case .inner: joined = left.join(right, windows: windows, named: named) { JoinTests.show($0, $1) }
        case .left: joined = left.leftJoin(right, windows: windows, named: named) { JoinTests.show($0, $1) }
        case .outer: joined = left.outerJoin(right, windows: windows, named: named) { JoinTests.show($0, $1) }
        }
        joined.to("out", key: Serdes.string, value: Serdes.string)
        return try builder.build()
    }

    static func readJoined(_ driver: TopologyTestDriver) throws -> [String] {
        try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.string).readRecordsToList()
            .map { "\($0.key):\($0.value)@\($0.timestamp)" }
    }

    static func runJoin(_ kind: JoinKind, _ input: [(left: Bool, key: String, value: String, time: Int64)],
                        windows: JoinWindows = .of(timeDifference: 10), backend: StoreBackend, restartAt: Int? = nil) throws -> [String] {
        try run({ try joinTopology(kind, named: nil, windows: windows) }, backend: backend, count: input.count, restartAt: restartAt,
                pipe: { driver, i in
                    let e = input[i]
                    try driver.createInputTopic(e.left ? "left" : "right", key: Serdes.string, value: Serdes.string)
                        .pipeInput(key: e.key, value: e.value, timestamp: e.time)
                }, read: readJoined)
    }

    @Test("stream-stream join stores are named like Kafka's and described with their changelogs")
    func joinStoreNames() throws {
        #expect(try Self.joinTopology(.inner, named: "j").storeNames == ["j-other-join-store", "j-this-join-store"])
        #expect(try Self.joinTopology(.left, named: "j").storeNames == ["j-left-shared-join-store", "j-other-join-store", "j-this-join-store"])
        let outer = try Self.joinTopology(.outer, named: "j")
        #expect(outer.storeNames == ["j-other-join-store", "j-outer-shared-join-store", "j-this-join-store"])
        let text = outer.describe()
        for store in outer.storeNames {
            #expect(text.contains("changelog: <application>-\(store)-changelog"), "\(text)")
        }
        #expect(text.contains("j-this-join-store (window)"))
        #expect(text.contains("j-outer-shared-join-store (key-value)"))
        // Unnamed: from the processor names, and KSTREAM-OUTERSHARED with the join's number.
        let generated = try Self.joinTopology(.outer, named: nil).storeNames
        // (the two sources are nodes 0 and 1; the join takes number 2).
        #expect(generated == ["KSTREAM-JOINOTHER-0000000004-store", "KSTREAM-JOINTHIS-0000000003-store",
                              "KSTREAM-OUTERSHARED-0000000002-store"], "\(generated)")
    }

    @Test("stream-stream joins give the same results with RocksDB as in memory, and across a restart", arguments: [JoinKind.inner, .left, .outer])
    func joinRocksDB(_ kind: JoinKind) throws {
        let expected = try Self.runJoin(kind, JoinTests.streamInput, backend: .inMemory)
        for restartAt in [nil, 1, 3, 5, 7] {
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let got = try Self.runJoin(kind, JoinTests.streamInput, backend: .rocksDB(directory: directory), restartAt: restartAt)
            #expect(got == expected, "restart before input \(restartAt.map(String.init) ?? "none")")
        }
    }

    @Test("the RocksDB join stores are persistent stores in the driver")
    func joinStoresArePersistent() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let driver = try TopologyTestDriver(try Self.joinTopology(.outer, named: "j"), stores: .rocksDB(directory: directory))
        defer { driver.close() }
        let task = try #require(driver.tasks.first)
        #expect(task.stores["j-this-join-store"] is PersistentJoinSideStore<String, String>)
        #expect(task.stores["j-other-join-store"] is PersistentJoinSideStore<String, String>)
        #expect(task.stores["j-outer-shared-join-store"] is PersistentOuterJoinStore<String, String, String>)
        let memory = try TopologyTestDriver(try Self.joinTopology(.outer, named: "j"))
        defer { memory.close() }
        #expect(memory.tasks.first?.stores["j-this-join-store"] is InMemoryJoinSideStore<String, String>)
    }

    @Test("random stream-stream joins agree between RocksDB and memory, with a restart at a random point")
    func randomJoins() throws {
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("BufferStoreTests.randomJoins seed: \(seed) (replay with EDDY_SEED=\(seed))")
        var rng = SeededGenerator(seed: seed)
        for round in 0..<4 {
            var input: [(left: Bool, key: String, value: String, time: Int64)] = []
            var clock: Int64 = 0
            for i in 0..<60 {
                clock += Int64.random(in: 0...4, using: &rng)
                let time = max(0, clock - Int64.random(in: 0...12, using: &rng))   // some out of order, a few late
                input.append((Bool.random(using: &rng), "k\(Int.random(in: 0..<4, using: &rng))", "v\(i)", time))
            }
            let windows = JoinWindows.of(timeDifference: Int64.random(in: 0...6, using: &rng), grace: Int64.random(in: 0...4, using: &rng))
                .after(Int64.random(in: 0...8, using: &rng))
            let restartAt = Int.random(in: 1..<input.count, using: &rng)
            for kind in [JoinKind.inner, .left, .outer] {
                let expected = try Self.runJoin(kind, input, windows: windows, backend: .inMemory)
                let directory = Self.temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let got = try Self.runJoin(kind, input, windows: windows, backend: .rocksDB(directory: directory), restartAt: restartAt)
                #expect(got == expected, "seed \(seed) round \(round) \(kind) restart at \(restartAt)")
            }
        }
    }

    // MARK: Suppression

    static func suppressTopology(named: String?) throws -> Topology {
        let builder = StreamsBuilder()
        builder.stream("in", key: Serdes.string, value: Serdes.int64).groupByKey()
            .windowed(by: .of(size: 10, grace: 5)).count(materializedAs: "counts")
            .suppress(.untilWindowCloses, named: named).toStream()
            .to("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }

    static func readSuppressed(_ driver: TopologyTestDriver) throws -> [String] {
        try driver.createOutputTopic("out", key: Serdes.timeWindowed(Serdes.string, windowSize: 10), value: Serdes.optional(Serdes.int64))
            .readRecordsToList().map { r in "\(r.key)=\(r.value.map { "\($0)" } ?? "nil")@\(r.timestamp)" }
    }

    @Test("the suppression buffer is named like Kafka's and described with its changelog")
    func suppressStoreNames() throws {
        let named = try Self.suppressTopology(named: "final")
        #expect(named.storeNames == ["counts", "final-store"])
        #expect(named.describe().contains("final-store (key-value) changelog: <application>-final-store-changelog"))
        let generated = try Self.suppressTopology(named: nil).storeNames
        #expect(generated.contains { $0.hasPrefix("KTABLE-SUPPRESS-STATE-STORE-") && $0.count == "KTABLE-SUPPRESS-STATE-STORE-".count + 10 },
                "\(generated)")
    }

    @Test("suppression gives the same final results with RocksDB as in memory, and across restarts")
    func suppressRocksDB() throws {
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("BufferStoreTests.suppressRocksDB seed: \(seed) (replay with EDDY_SEED=\(seed))")
        var rng = SeededGenerator(seed: seed)
        var input: [(key: String, time: Int64)] = []
        var clock: Int64 = 0
        for _ in 0..<80 {
            clock += Int64.random(in: 0...3, using: &rng)
            // Out of order within the grace only: the windowed aggregation's own stream time is
            // not a store, so a late record right after a restart would not be dropped.
            input.append(("k\(Int.random(in: 0..<5, using: &rng))", max(0, clock - Int64.random(in: 0...4, using: &rng))))
        }
        let pipe: (TopologyTestDriver, Int) throws -> Void = { driver, i in
            try driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
                .pipeInput(key: input[i].key, value: 1, timestamp: input[i].time)
        }
        let expected = try Self.run({ try Self.suppressTopology(named: "final") }, backend: .inMemory, count: input.count,
                                    pipe: pipe, read: Self.readSuppressed)
        #expect(!expected.isEmpty)
        for restartAt in [nil, 20, 41, 79] {
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let got = try Self.run({ try Self.suppressTopology(named: "final") }, backend: .rocksDB(directory: directory),
                                   count: input.count, restartAt: restartAt, pipe: pipe, read: Self.readSuppressed)
            #expect(got == expected, "seed \(seed), restart before input \(restartAt.map(String.init) ?? "none")")
        }
    }

    @Test("a persistent suppression buffer holds open windows across a restart and emits them once")
    func suppressBufferSurvivesRestart() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var driver = try TopologyTestDriver(try Self.suppressTopology(named: "final"), stores: .rocksDB(directory: directory))
        var input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
        try input.pipeInput(key: "a", value: 1, timestamp: 1)
        try input.pipeInput(key: "a", value: 1, timestamp: 2)
        try input.pipeInput(key: "b", value: 1, timestamp: 12)
        #expect(try Self.readSuppressed(driver).isEmpty)
        let task = try #require(driver.tasks.first)
        #expect(task.stores["final-store"] is PersistentSuppressionBuffer<Windowed<String>, Int64>)
        driver.close()
        driver = try TopologyTestDriver(try Self.suppressTopology(named: "final"), stores: .rocksDB(directory: directory))
        defer { driver.close() }
        input = driver.createInputTopic("in", key: Serdes.string, value: Serdes.int64)
        try input.pipeInput(key: "c", value: 1, timestamp: 15)   // closes [0, 10) (10 + grace 5 <= 15)
        #expect(try Self.readSuppressed(driver) == ["a@[0,10)=2@2"])
        try input.pipeInput(key: "c", value: 1, timestamp: 40)   // closes [10, 20)
        #expect(try Self.readSuppressed(driver) == ["b@[10,20)=1@12", "c@[10,20)=1@15"])
    }

    // MARK: Foreign-key joins

    static func foreignKeyTopology() throws -> Topology {
        let builder = StreamsBuilder()
        let orders = builder.table("orders", key: Serdes.string, value: Serdes.string)
        let products = builder.table("products", key: Serdes.string, value: Serdes.string)
        orders.leftJoin(products, foreignKey: { String($0.split(separator: ":")[0]) }, named: "fk") { o, p in "\(o)=\(p ?? "null")" }
            .toStream().to("out", key: Serdes.string, value: Serdes.optional(Serdes.string))
        return try builder.build()
    }

    @Test("the foreign-key join's subscription store is logged and survives a restart with RocksDB")
    func foreignKeyRocksDB() throws {
        #expect(try Self.foreignKeyTopology().describe().contains("fk-SUBSCRIPTION-STATE-STORE (key-value) changelog: <application>-fk-SUBSCRIPTION-STATE-STORE-changelog"))
        let steps: [(orders: Bool, key: String, value: String?)] = [
            (true, "o1", "p1:2"), (false, "p1", "pen"), (true, "o2", "p1:5"), (true, "o3", "p2:1"), (false, "p1", "Pen"),
            (true, "o1", "p2:1"), (false, "p2", "paper"), (true, "o2", "p2:7"), (false, "p2", nil), (false, "p1", "PEN"),
            (true, "o4", "p1:9"), (false, "p2", "card"),
        ]
        let pipe: (TopologyTestDriver, Int) throws -> Void = { driver, i in
            let topic = driver.createInputTopic(steps[i].orders ? "orders" : "products", key: Serdes.string, value: Serdes.string)
            if let value = steps[i].value { try topic.pipeInput(key: steps[i].key, value: value) } else { try topic.pipeTombstone(key: steps[i].key) }
        }
        let read: (TopologyTestDriver) throws -> [String] = { driver in
            try driver.createOutputTopic("out", key: Serdes.string, value: Serdes.optional(Serdes.string)).readRecordsToList()
                .map { "\($0.key):\($0.value ?? "nil")" }
        }
        // No order is deleted: the join's result store has no value serde and stays in memory,
        // so a delete after a restart would find no old result to delete.
        let expected = try Self.run(Self.foreignKeyTopology, backend: .inMemory, count: steps.count, pipe: pipe, read: read)
        #expect(expected.last == "o3:p2:1=card")
        for restartAt in [nil, 2, 5, 9] {
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let got = try Self.run(Self.foreignKeyTopology, backend: .rocksDB(directory: directory), count: steps.count,
                                   restartAt: restartAt, pipe: pipe, read: read)
            #expect(got == expected, "restart before step \(restartAt.map(String.init) ?? "none")")
        }
    }

    @Test("subscribers come out in the order of their keys' bytes in memory and in RocksDB")
    func subscriptionOrder() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = try RocksDBEnvironment(log: { _ in })
        let state = try TaskStateDirectory(stateDirectory: directory, application: "app", task: "0_0", environment: environment)
        defer { state.close() }
        let persistent = PersistentSubscriptionStore(try state.keyValueStore(named: "subs"), keySerde: AnySerde(Serdes.string),
                                                     foreignKeySerde: AnySerde(Serdes.string))
        let memory = InMemorySubscriptionStore<String, String>(name: "subs", keySerde: AnySerde(Serdes.string))
        for store in [persistent, memory] as [any SubscriptionStore<String, String>] {
            try store.subscribe("b", to: "p", hash: 2)
            try store.subscribe("a", to: "p", hash: 1)
            try store.subscribe("ab", to: "p", hash: 3)
            try store.subscribe("z", to: "pp", hash: 4)      // a longer foreign key with the same prefix
            try store.subscribe("a", to: "p", hash: 5)       // refresh
            try store.unsubscribe("b", from: "p")
            let found = try store.subscribers(of: "p").map { "\($0.key)=\($0.hash)" }
            #expect(found == ["a=5", "ab=3"])
            #expect(try store.subscribers(of: "pp").map(\.key) == ["z"])
            #expect(try store.subscribers(of: "q").isEmpty)
        }
        persistent.close()
    }
}
