import EddyCore

/// Builds a ``Topology`` with the typed DSL: sources give ``Stream``s, ``Table``s and
/// ``GlobalTable``s, whose operators add nodes; ``build()`` checks the graph and returns the
/// topology. Building starts no thread and touches no disk.
///
/// Mistakes that the DSL cannot refuse on the spot (a store name used twice, a missing serde)
/// are collected and reported together by ``build()``.
///
/// ```swift
/// let builder = StreamsBuilder()
/// builder.stream("orders", key: Serdes.string, value: Serdes.json(Order.self))
///     .filter { _, order in order.amount > 100 }
///     .to("big-orders", key: Serdes.string, value: Serdes.json(Order.self))
/// let topology = try builder.build()
/// ```
public final class StreamsBuilder {
    var nodes: [Topology.Node] = []
    var stores: [String: Topology.Store] = [:]
    var internalTopics: [String: Topology.InternalTopic] = [:]
    var declared: [String: Int] = [:]
    var copartitionGroups: [[String]] = []
    var errors: [String] = []
    var counter = 0
    var sourceTopics: [String: String] = [:]

    /// Limit on the number of nodes in one topology.
    public static let maximumNodeCount = 100_000

    public init() {}

    /// Tells the builder a topic's partition count, so co-partitioning is checked at build time
    /// (the runtime checks again against the log).
    public func declareTopic(_ name: String, partitions: Int) {
        guard partitions > 0 else {
            errors.append("topic '\(name)' is declared with \(partitions) partitions; it needs at least 1")
            return
        }
        declared[name] = partitions
    }

    /// A fresh node name `PREFIX-0000000007`, or `given` when not nil.
    func name(_ prefix: String, _ given: String?) -> String {
        defer { counter += 1 }
        if let given { return given }
        let digits = String(counter)
        return prefix + "-" + String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }

    @discardableResult
    func addNode(_ name: String, kind: Topology.Node.Kind, parents: [String], stores: [String] = [],
                 isGlobal: Bool = false, make: @escaping ([AnyObject]) throws -> any RuntimeNode) -> String {
        if nodes.count >= StreamsBuilder.maximumNodeCount {
            errors.append("the topology has more than \(StreamsBuilder.maximumNodeCount) nodes (StreamsBuilder.maximumNodeCount)")
        }
        nodes.append(Topology.Node(name: name, kind: kind, parents: parents, stores: stores, isGlobal: isGlobal, make: make))
        return name
    }

    func addStore(_ name: String, kind: StoreKind, persistent: StorePersistence.Factory? = nil,
                  make: @escaping () -> any TaskStore) {
        do {
            try Names.validate(name, what: "store name")
        } catch let error as EddyError {
            errors.append(error.message)
            return
        } catch {}
        if stores[name] != nil {
            errors.append("the store name '\(name)' is used twice; store names must be unique in a topology")
            return
        }
        stores[name] = Topology.Store(name: name, kind: kind, make: make, persistent: persistent)
    }

    func addSourceTopic(_ topic: String, node: String) {
        if let other = sourceTopics[topic] {
            errors.append("topic '\(topic)' is a source of both '\(other)' and '\(node)'; read it once and reuse the stream")
        }
        sourceTopics[topic] = node
    }

    /// A stream of the records of `topics`: a record stream where each record is an
    /// independent event. Records are deserialised with `key` and `value`; a null key or value
    /// is passed on only if its serde is nullable (e.g. `Serdes.optional(Serdes.string)`),
    /// otherwise the record is skipped and counted. `timestampExtractor` defaults to the
    /// record's own timestamp.
    @discardableResult
    public func stream<KS: Serde, VS: Serde>(_ topics: [String], key: KS, value: VS,
                                             timestampExtractor: TimestampExtractor? = nil,
                                             named: String? = nil) -> Stream<KS.Value, VS.Value> {
        let nodeName = name("KSTREAM-SOURCE", named)
        for t in topics {
            do { try Names.validateTopic(t) } catch let e as EddyError { errors.append(e.message) } catch {}
            addSourceTopic(t, node: nodeName)
        }
        if topics.isEmpty { errors.append("stream source '\(nodeName)' has no topics") }
        addNode(nodeName, kind: .source(topics: topics, extractor: timestampExtractor), parents: []) { children in
            SourceNode(name: nodeName, children: children, key: key, value: value)
        }
        return Stream(builder: self, node: nodeName, keySerde: AnySerde(key), valueSerde: AnySerde(value),
                      repartitionRequired: false, partitioningTopics: Set(topics))
    }

    /// A stream of the records of `topic`. See ``stream(_:key:value:timestampExtractor:named:)-([String],_,_,_,_)``.
    @discardableResult
    public func stream<KS: Serde, VS: Serde>(_ topic: String, key: KS, value: VS,
                                             timestampExtractor: TimestampExtractor? = nil,
                                             named: String? = nil) -> Stream<KS.Value, VS.Value> {
        stream([topic], key: key, value: value, timestampExtractor: timestampExtractor, named: named)
    }

    /// A table of the latest value per key of `topic` (a changelog stream: a record is an
    /// update of its key, a null value a delete). Materialised in the key-value store
    /// `materializedAs` (generated when nil), which is queryable through the test driver.
    /// Records with a null key are skipped and counted.
    @discardableResult
    public func table<KS: Serde, VS: Serde>(_ topic: String, key: KS, value: VS,
                                            materializedAs storeName: String? = nil,
                                            timestampExtractor: TimestampExtractor? = nil,
                                            named: String? = nil) -> Table<KS.Value, VS.Value> where KS.Value: Hashable {
        let nodeName = name("KTABLE-SOURCE", named)
        let store = storeName ?? "\(topic)-STATE-STORE-\(nodeName.suffix(10))"
        do { try Names.validateTopic(topic) } catch let e as EddyError { errors.append(e.message) } catch {}
        addSourceTopic(topic, node: nodeName)
        addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, AnySerde(key), AnySerde(value))) {
            InMemoryTaskKeyValueStore<KS.Value, VS.Value>(name: store)
        }
        addNode(nodeName, kind: .source(topics: [topic], extractor: timestampExtractor), parents: [], stores: [store]) { children in
            TableSourceNode(name: nodeName, children: children, key: key, value: value, store: store)
        }
        return Table(builder: self, node: nodeName, store: store, keySerde: AnySerde(key), valueSerde: AnySerde(value),
                     partitioningTopics: [topic])
    }

    /// A global table: every task sees all partitions of `topic`, so it can be joined with
    /// streams of any partitioning. Read by the global sub-topology into the key-value store
    /// `materializedAs` (generated when nil).
    ///
    /// Under ``StreamsApplication``, each worker runs a global thread that reads every
    /// partition of `topic` into an in-memory store shared by all its stream threads: at
    /// ``StreamsApplication/start()`` up to the topic's end before any stream thread starts,
    /// then continuously. The store is rebuilt from the topic at each start (the topic is its
    /// changelog, as in Kafka Streams), so it needs no changelog of its own.
    @discardableResult
    public func globalTable<KS: Serde, VS: Serde>(_ topic: String, key: KS, value: VS,
                                                  materializedAs storeName: String? = nil,
                                                  named: String? = nil) -> GlobalTable<KS.Value, VS.Value> where KS.Value: Hashable {
        let nodeName = name("KTABLE-SOURCE", named)
        let store = storeName ?? "\(topic)-STATE-STORE-\(nodeName.suffix(10))"
        do { try Names.validateTopic(topic) } catch let e as EddyError { errors.append(e.message) } catch {}
        addSourceTopic(topic, node: nodeName)
        // In memory and shared: the stream threads' tasks read it while the global thread
        // writes (the test driver's RocksDB mode uses the persistent variant).
        addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, AnySerde(key), AnySerde(value))) {
            SharedTaskKeyValueStore<KS.Value, VS.Value>(name: store)
        }
        addNode(nodeName, kind: .source(topics: [topic], extractor: nil), parents: [], stores: [store], isGlobal: true) { children in
            TableSourceNode(name: nodeName, children: children, key: key, value: value, store: store)
        }
        return GlobalTable(storeName: store)
    }

    /// Declares a key-value store for processors added with ``Stream/process(named:stores:_:)``.
    /// With serdes, the store can live in RocksDB (``StoreBackend/rocksDB(directory:)``).
    public func addKeyValueStore<K: Hashable, V>(_ name: String, key: K.Type, value: V.Type,
                                                 keySerde: (any Serde<K>)? = nil, valueSerde: (any Serde<V>)? = nil) {
        addStore(name, kind: .keyValue, persistent: StorePersistence.keyValue(name, keySerde.map { AnySerde($0) }, valueSerde.map { AnySerde($0) })) {
            InMemoryTaskKeyValueStore<K, V>(name: name)
        }
    }

    /// Declares a window store for processors added with ``Stream/process(named:stores:_:)``.
    public func addWindowStore<K: Hashable, V>(_ name: String, key: K.Type, value: V.Type,
                                               windowSize: Int64, retention: Int64,
                                               keySerde: (any Serde<K>)? = nil, valueSerde: (any Serde<V>)? = nil) {
        addStore(name, kind: .window, persistent: StorePersistence.window(name, size: windowSize, retention: retention,
                                                                          keySerde.map { AnySerde($0) }, valueSerde.map { AnySerde($0) })) { InMemoryTaskWindowStore<K, V>(name: name, windowSize: windowSize, retention: retention) }
    }

    /// Checks the graph and returns the topology. Throws ``EddyError/Code/invalidArgument``
    /// naming every problem found: store names used twice, missing serdes for a repartition,
    /// a sink loop, topics that must be co-partitioned but have different partition counts.
    public func build() throws -> Topology {
        if !errors.isEmpty {
            throw EddyError(.invalidArgument, "invalid topology: " + errors.joined(separator: "; "))
        }
        return try Topology.assemble(nodes: nodes, stores: stores, internalTopics: internalTopics,
                                     declared: declared, copartitionGroups: copartitionGroups)
    }

    /// Inserts a repartition topic: a sink writing the stream by key and a source reading it
    /// back, returning the source's name. `nil` when serdes are missing (the error is recorded).
    func repartition<K, V>(_ stream: Stream<K, V>, keySerde: AnySerde<K>?, valueSerde: AnySerde<V>?,
                           partitions: Int?, baseName: String?, operation: String) -> Stream<K, V>? {
        guard let keySerde, let valueSerde else {
            errors.append("\(operation) after a key change needs a repartition topic, so it needs key and value serdes; pass them as key:/value: arguments")
            return nil
        }
        let sinkName = name("KSTREAM-SINK", baseName.map { $0 + "-repartition-sink" })
        let sourceName = name("KSTREAM-SOURCE", baseName.map { $0 + "-repartition-source" })
        let short = (baseName ?? sinkName.replacingOccurrences(of: "KSTREAM-SINK", with: "KSTREAM-REPARTITION")) + "-repartition"
        let topic = Topology.internalPrefix + short
        internalTopics[short] = Topology.InternalTopic(name: short, partitionCount: partitions)
        addNode(sinkName, kind: .sink(topic: topic), parents: [stream.node]) { _ in
            SinkNode<AnySerde<K>, AnySerde<V>>(name: sinkName, topic: topic, extractor: nil, partitioner: nil,
                                               key: keySerde, value: valueSerde)
        }
        addSourceTopic(topic, node: sourceName)
        addNode(sourceName, kind: .source(topics: [topic], extractor: nil), parents: []) { children in
            SourceNode(name: sourceName, children: children, key: keySerde, value: valueSerde)
        }
        return Stream(builder: self, node: sourceName, keySerde: keySerde, valueSerde: valueSerde,
                      repartitionRequired: false, partitioningTopics: [topic])
    }
}
