import EddyCore
import EddyState

/// Runs a ``Topology`` in the calling thread over in-memory topics and stores, with a manual
/// wall clock: fast, deterministic tests of user topologies (Kafka's `TopologyTestDriver`).
///
/// It builds one ``StreamTask`` per (sub-topology, partition), the same tasks the stream
/// threads run, and is their ``RecordCollector``. Each record piped in is processed to
/// completion, including through repartition topics, before `pipeInput` returns. Topics have
/// one partition unless told otherwise (`partitions:` or ``StreamsBuilder/declareTopic(_:partitions:)``).
/// Not thread-safe: use it from one thread (a test).
///
/// ```swift
/// let driver = try TopologyTestDriver(topology)
/// let input = driver.createInputTopic("words", key: Serdes.string, value: Serdes.string)
/// let output = driver.createOutputTopic("counts", key: Serdes.string, value: Serdes.int64)
/// try input.pipeInput(key: "a", value: "hello", timestamp: 0)
/// #expect(try output.readKeyValue() == ("hello", 1))
/// ```
public final class TopologyTestDriver {
    /// Limit on records processed per piped record (a guard against topologies that loop
    /// through their own topics without end).
    public static let maximumCascadeLength = 10_000_000

    let topology: Topology
    /// The application id used to name internal topics (`<applicationID>-<name>-repartition`).
    public let applicationID: String
    var logs: [String: [[ConsumerRecord]]] = [:]
    var routes: [TopicPartition: StreamTask] = [:]
    var tasks: [StreamTask] = []
    var globalTask: StreamTask? = nil
    var readPositions: [String: [Int]] = [:]
    var partitionCounts: [String: Int] = [:]
    var roundRobin = 0
    /// The wall clock, in milliseconds.
    public private(set) var wallClockTime: Int64
    let backend: StoreBackend
    var rocksDB: RocksDBEnvironment? = nil
    var stateDirectories: [TaskStateDirectory] = []

    /// Creates the tasks and stores of `topology`. `partitions` gives topic partition counts
    /// (default: those declared to the builder, else 1); `initialWallClockTime` starts the
    /// manual clock; `stores` chooses in-memory stores (default) or RocksDB. Throws if a node
    /// fails to initialise (e.g. a processor asks for a store not connected to it), a state
    /// directory cannot be opened, or co-partitioned topics are given different counts.
    public init(_ topology: Topology, applicationID: String = "test-application",
                partitions: [String: Int] = [:], initialWallClockTime: Int64 = 0,
                stores backend: StoreBackend = .inMemory) throws {
        try Names.validate(applicationID, what: "application id")
        self.backend = backend
        if case .rocksDB = backend { rocksDB = try RocksDBEnvironment() }
        self.topology = topology
        self.applicationID = applicationID
        self.wallClockTime = initialWallClockTime
        for (t, c) in topology.declaredPartitionCounts { partitionCounts[t] = c }
        for (t, c) in partitions { partitionCounts[t] = c }
        let userSources = topology.subtopologies.flatMap(\.sourceTopics).filter { !$0.hasPrefix(Topology.internalPrefix) }
        let defaultInternal = userSources.map { partitionCounts[$0] ?? 1 }.max() ?? 1
        for t in topology.internalTopics.values {
            partitionCounts[Topology.resolve(Topology.internalPrefix + t.name, applicationID: applicationID)] =
                t.partitionCount ?? t.partitionCountLike.map { partitionCounts[$0] ?? 1 } ?? defaultInternal
        }
        for group in topology.copartitionGroups {
            let counts = Set(group.map { partitionCount(Topology.resolve($0, applicationID: applicationID)) })
            if counts.count > 1 {
                throw EddyError(.invalidArgument, "topics \(group.map { Topology.resolve($0, applicationID: applicationID) }.joined(separator: ", ")) must be co-partitioned but have partition counts \(counts.sorted())")
            }
        }
        var globalStores: [String: any TaskStore] = [:]
        if let g = topology.globalSubtopology {
            let task = try StreamTask(topology: topology, subtopology: g, id: TaskID(subtopology: -1, partition: 0),
                                      applicationID: applicationID, collector: self, globalStores: [:],
                                      wallClockTime: wallClockTime, stateDirectory: try stateDirectory(for: "global"),
                                      globalPartitions: { [partitionCounts] in Array(0..<(partitionCounts[$0] ?? 1)) })
            globalStores = task.stores
            for tp in task.inputPartitions { routes[tp] = task }
            globalTask = task
        }
        for sub in topology.subtopologies {
            let count = sub.sourceTopics.map { partitionCount(Topology.resolve($0, applicationID: applicationID)) }.max() ?? 1
            for p in 0..<count {
                let id = TaskID(subtopology: sub.id, partition: p)
                let task = try StreamTask(topology: topology, subtopology: sub, id: id,
                                          applicationID: applicationID, collector: self, globalStores: globalStores,
                                          wallClockTime: wallClockTime, stateDirectory: try stateDirectory(for: id.description))
                for tp in task.inputPartitions { routes[tp] = task }
                tasks.append(task)
            }
        }
        try globalTask?.initialize()
        for task in tasks { try task.initialize() }
    }

    func partitionCount(_ topic: String) -> Int { partitionCounts[topic] ?? 1 }

    private func stateDirectory(for task: String) throws -> TaskStateDirectory? {
        guard case .rocksDB(let directory) = backend, let rocksDB else { return nil }
        let opened = try TaskStateDirectory(stateDirectory: directory, application: applicationID, task: task, environment: rocksDB)
        stateDirectories.append(opened)
        return opened
    }

    /// Appends a record to `topic` as a producer would, and processes everything it causes.
    func append(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
        try appendOnly(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp)
        try drain()
    }

    private func appendOnly(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?,
                            headers: [Header], timestamp: Timestamp) throws {
        let count = partitionCount(topic)
        let p: Int
        if let partition {
            guard partition >= 0 && partition < count else {
                throw EddyError(.unknownPartition, "topic '\(topic)' has \(count) partitions; partition \(partition) does not exist")
            }
            p = partition
        } else if let key {
            p = DefaultPartitioner.partition(key: key, count: count)
        } else {
            p = roundRobin % count
            roundRobin &+= 1
        }
        if logs[topic] == nil { logs[topic] = Array(repeating: [], count: count) }
        let offset = Offset(logs[topic]![p].count)
        let record = ConsumerRecord(topic: topic, partition: p, offset: offset, timestamp: timestamp,
                                    key: key, value: value, headers: headers)
        logs[topic]![p].append(record)
        if let task = routes[TopicPartition(topic, p)] { task.addRecords(CollectionOfOne(record), from: TopicPartition(topic, p)) }
    }

    /// Processes buffered records until every task is idle; the global task first.
    func drain() throws {
        var processed = 0
        var progress = true
        while progress {
            progress = false
            if let g = globalTask { processed += try g.processAll() }
            for task in tasks where task.bufferedRecordCount > 0 {
                while try task.process() {
                    processed += 1
                    if processed > TopologyTestDriver.maximumCascadeLength {
                        throw EddyError(.invalidState, "more than \(TopologyTestDriver.maximumCascadeLength) records processed for one input record (TopologyTestDriver.maximumCascadeLength); does the topology loop through its own topics?")
                    }
                    if let g = globalTask, g.bufferedRecordCount > 0 { processed += try g.processAll() }
                }
                progress = true
            }
        }
        // RocksDB stores keep writes in a write buffer until committed; the driver commits
        // after each input record so the state directory is complete whenever it is closed.
        if case .rocksDB = backend {
            for task in tasks + (globalTask.map { [$0] } ?? []) { try task.flush() }
        }
    }

    /// Moves the wall clock forward by `milliseconds` and runs due wall-clock punctuators.
    public func advanceWallClockTime(by milliseconds: Int64) throws {
        precondition(milliseconds >= 0, "the wall clock only moves forward")
        wallClockTime += milliseconds
        for task in tasks {
            try task.advanceWallClock(to: wallClockTime)
            try drain()
        }
    }

    /// A topic to pipe records into, serialising with `key` and `value`.
    public func createInputTopic<KS: Serde, VS: Serde>(_ topic: String, key: KS, value: VS,
                                                       startTimestamp: Timestamp = 0,
                                                       autoAdvance: Int64 = 0) -> TestInputTopic<KS, VS> {
        TestInputTopic(driver: self, topic: topic, keySerde: key, valueSerde: value,
                       currentTime: startTimestamp, autoAdvance: autoAdvance)
    }

    /// A topic to read output records from, deserialising with `key` and `value`. Each
    /// output topic object reads from where the previous read of any object for the same
    /// topic stopped (reads consume, as in Kafka's driver).
    public func createOutputTopic<KS: Serde, VS: Serde>(_ topic: String, key: KS, value: VS) -> TestOutputTopic<KS, VS> {
        TestOutputTopic(driver: self, topic: topic, keySerde: key, valueSerde: value)
    }

    /// Next unread record of `topic`, across partitions in partition order.
    func readNext(_ topic: String) -> ConsumerRecord? {
        guard let parts = logs[topic] else { return nil }
        var positions = readPositions[topic] ?? Array(repeating: 0, count: parts.count)
        defer { readPositions[topic] = positions }
        for p in parts.indices where positions[p] < parts[p].count {
            positions[p] += 1
            return parts[p][positions[p] - 1]
        }
        return nil
    }

    func unreadCount(_ topic: String) -> Int {
        guard let parts = logs[topic] else { return 0 }
        let positions = readPositions[topic] ?? Array(repeating: 0, count: parts.count)
        return parts.indices.reduce(0) { $0 + parts[$1].count - positions[$1] }
    }

    /// Every record ever written to `topic` (input, internal or output), by partition then offset.
    public func allRecords(of topic: String) -> [ConsumerRecord] { (logs[topic] ?? []).flatMap { $0 } }

    /// Log names of all topics that have records.
    public var topicNames: [String] { logs.keys.sorted() }

    private func store<S>(_ name: String, partition: Int, as: S.Type) -> S? {
        if let g = globalTask, let s = g.stores[name] as? S { return s }
        for task in tasks where task.id.partition == partition {
            if let s = task.stores[name] as? S { return s }
        }
        return nil
    }

    /// The key-value store `name` of the task for `partition` (`nil` if there is no such
    /// store of these types). Reads and writes go to the live store.
    public func keyValueStore<K: Hashable, V>(_ name: String, key: K.Type = K.self, value: V.Type = V.self,
                                              partition: Int = 0) -> (any TaskKeyValueStore<K, V>)? {
        store(name, partition: partition, as: (any TaskKeyValueStore<K, V>).self)
    }

    /// The window store `name` of the task for `partition`.
    public func windowStore<K: Hashable, V>(_ name: String, key: K.Type = K.self, value: V.Type = V.self,
                                            partition: Int = 0) -> (any TaskWindowStore<K, V>)? {
        store(name, partition: partition, as: (any TaskWindowStore<K, V>).self)
    }

    /// The session store `name` of the task for `partition`.
    public func sessionStore<K: Hashable, V>(_ name: String, key: K.Type = K.self, value: V.Type = V.self,
                                             partition: Int = 0) -> (any TaskSessionStore<K, V>)? {
        store(name, partition: partition, as: (any TaskSessionStore<K, V>).self)
    }

    /// Counters summed over all tasks.
    public var metrics: TaskMetrics {
        var m = TaskMetrics()
        for t in tasks + (globalTask.map { [$0] } ?? []) { m.add(t.context.metrics) }
        return m
    }

    /// Flushes and closes all tasks and their stores (and, with RocksDB, their state
    /// directories). Idempotent.
    public func close() {
        for t in tasks + (globalTask.map { [$0] } ?? []) {
            try? t.flush()
            t.close()
        }
        for d in stateDirectories { d.close() }
        stateDirectories.removeAll()
    }
}

extension TopologyTestDriver: RecordCollector {
    func send(topic: String, partition: Int?, key: [UInt8]?, value: [UInt8]?, headers: [Header], timestamp: Timestamp) throws {
        try appendOnly(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp)
    }
    func partitionCount(of topic: String) -> Int? { partitionCount(topic) }
}

/// A record read from a ``TestOutputTopic``.
public struct TestRecord<Key, Value> {
    /// The deserialised key.
    public var key: Key
    /// The deserialised value.
    public var value: Value
    /// The record's timestamp.
    public var timestamp: Timestamp
    /// The record's headers.
    public var headers: [Header]
    /// The partition it was written to.
    public var partition: Int
}
extension TestRecord: Equatable where Key: Equatable, Value: Equatable {}

/// An input topic of a ``TopologyTestDriver``: pipe typed records in. Each call processes the
/// record to completion. Without a timestamp, a record gets the topic's current time, which
/// then advances by `autoAdvance`.
public final class TestInputTopic<KS: Serde, VS: Serde> {
    let driver: TopologyTestDriver
    /// The topic's name.
    public let topic: String
    let keySerde: KS
    let valueSerde: VS
    /// The timestamp the next record without one gets.
    public var currentTime: Timestamp
    /// How far ``currentTime`` moves after each record.
    public var autoAdvance: Int64

    init(driver: TopologyTestDriver, topic: String, keySerde: KS, valueSerde: VS, currentTime: Timestamp, autoAdvance: Int64) {
        self.driver = driver
        self.topic = topic
        self.keySerde = keySerde
        self.valueSerde = valueSerde
        self.currentTime = currentTime
        self.autoAdvance = autoAdvance
    }

    private func stamp(_ t: Timestamp?) -> Timestamp {
        if let t { return t }
        defer { currentTime += autoAdvance }
        return currentTime
    }

    /// Pipes one record. A `nil` key or value is a null in the log (a `nil` value is a tombstone).
    public func pipeInput(key: KS.Value?, value: VS.Value?, timestamp: Timestamp? = nil,
                          headers: [Header] = [], partition: Int? = nil) throws {
        try driver.append(topic: topic, partition: partition, key: try key.map { try keySerde.serialize($0) },
                          value: try value.map { try valueSerde.serialize($0) }, headers: headers, timestamp: stamp(timestamp))
    }

    /// Pipes one record without a key.
    public func pipeInput(value: VS.Value, timestamp: Timestamp? = nil, headers: [Header] = []) throws {
        try driver.append(topic: topic, partition: nil, key: nil, value: try valueSerde.serialize(value),
                          headers: headers, timestamp: stamp(timestamp))
    }

    /// Pipes a tombstone (null value) for `key`.
    public func pipeTombstone(key: KS.Value, timestamp: Timestamp? = nil) throws {
        try pipeInput(key: key, value: nil, timestamp: timestamp)
    }

    /// Pipes key-value pairs in order, each with the current time (advancing by `autoAdvance`).
    public func pipeKeyValues(_ pairs: [(KS.Value, VS.Value)]) throws {
        for (k, v) in pairs { try pipeInput(key: k, value: v) }
    }
}

/// An output topic of a ``TopologyTestDriver``: read typed records out, in the order they were
/// written (per partition). Reading consumes.
public final class TestOutputTopic<KS: Serde, VS: Serde> {
    let driver: TopologyTestDriver
    /// The topic's name.
    public let topic: String
    let keySerde: KS
    let valueSerde: VS
    let nullKey: KS.Value?
    let nullValue: VS.Value?

    init(driver: TopologyTestDriver, topic: String, keySerde: KS, valueSerde: VS) {
        self.driver = driver
        self.topic = topic
        self.keySerde = keySerde
        self.valueSerde = valueSerde
        self.nullKey = Nullability<KS.Value>.of(keySerde)?.nullValue
        self.nullValue = Nullability<VS.Value>.of(valueSerde)?.nullValue
    }

    /// Records not yet read.
    public var queueSize: Int { driver.unreadCount(topic) }
    /// True when every record has been read.
    public var isEmpty: Bool { queueSize == 0 }

    /// The next record, or `nil`. Throws ``EddyError/Code/serialization`` for a null key or
    /// value that the serde cannot stand for (use `Serdes.optional`).
    public func readRecord() throws -> TestRecord<KS.Value, VS.Value>? {
        guard let r = driver.readNext(topic) else { return nil }
        let key: KS.Value
        if let b = r.key { key = try keySerde.deserialize(b) } else if let nullKey { key = nullKey } else {
            throw EddyError(.serialization, "record at \(topic)-\(r.partition)@\(r.offset) has a null key; read it with a Serdes.optional key serde")
        }
        let value: VS.Value
        if let b = r.value { value = try valueSerde.deserialize(b) } else if let nullValue { value = nullValue } else {
            throw EddyError(.serialization, "record at \(topic)-\(r.partition)@\(r.offset) has a null value (a tombstone); read it with a Serdes.optional value serde")
        }
        return TestRecord(key: key, value: value, timestamp: r.timestamp, headers: r.headers, partition: r.partition)
    }

    /// The next key and value, or `nil`.
    public func readKeyValue() throws -> (key: KS.Value, value: VS.Value)? {
        try readRecord().map { ($0.key, $0.value) }
    }

    /// All unread records.
    public func readRecordsToList() throws -> [TestRecord<KS.Value, VS.Value>] {
        var out: [TestRecord<KS.Value, VS.Value>] = []
        while let r = try readRecord() { out.append(r) }
        return out
    }

    /// All unread keys and values.
    public func readKeyValuesToList() throws -> [(key: KS.Value, value: VS.Value)] {
        try readRecordsToList().map { ($0.key, $0.value) }
    }

    /// All unread values.
    public func readValuesToList() throws -> [VS.Value] { try readRecordsToList().map(\.value) }
}

extension TestOutputTopic where KS.Value: Hashable {
    /// All unread records folded into the latest value per key (a table's final state).
    public func readKeyValuesToMap() throws -> [KS.Value: VS.Value] {
        var map: [KS.Value: VS.Value] = [:]
        for r in try readRecordsToList() { map[r.key] = r.value }
        return map
    }
}
