import EddyCore

/// An update of a table row: the new value (`nil`: deleted) and the old one (`nil`: absent).
public struct Change<Value> {
    public var newValue: Value?
    public var oldValue: Value?
    public init(newValue: Value?, oldValue: Value?) {
        self.newValue = newValue
        self.oldValue = oldValue
    }
}
extension Change: Equatable where Value: Equatable {}
extension Change: Sendable where Value: Sendable {}

/// A changelog stream (Kafka's `KTable`): the latest value per key. Every table is
/// materialised in a key-value store (``storeName``) that joins look up and that the test
/// driver can read. Updates flow downstream as ``Change`` values; a null value is a delete.
public struct Table<K: Hashable, V> {
    let builder: StreamsBuilder
    let node: String
    /// The store holding this table's current contents.
    public let storeName: String
    let keySerde: AnySerde<K>?
    let valueSerde: AnySerde<V>?
    let partitioningTopics: Set<String>

    init(builder: StreamsBuilder, node: String, store: String, keySerde: AnySerde<K>?, valueSerde: AnySerde<V>?,
         partitioningTopics: Set<String>) {
        self.builder = builder
        self.node = node
        self.storeName = store
        self.keySerde = keySerde
        self.valueSerde = valueSerde
        self.partitioningTopics = partitioningTopics
    }

    /// The table's updates as a stream: a delete is a record with a `nil` value.
    public func toStream(named: String? = nil) -> Stream<K, V?> {
        let n = builder.name("KTABLE-TOSTREAM", named)
        builder.addNode(n, kind: .processor, parents: [node]) {
            MapValuesNode<K, Change<V>, V?>(name: n, children: $0, transform: { _, change in change.newValue })
        }
        return Stream(builder: builder, node: n, keySerde: keySerde, valueSerde: nil,
                      repartitionRequired: false, partitioningTopics: partitioningTopics)
    }

    /// Adds a table node that materialises its output in a new store.
    func derivedTable<V2>(_ prefix: String, named: String?, materializedAs: String?, valueSerde: AnySerde<V2>?,
                          transform: @escaping (K, V) throws -> V2?) -> Table<K, V2> {
        let n = builder.name(prefix, named)
        let store = materializedAs ?? "\(n)-STATE-STORE"
        builder.addStore(store, kind: .keyValue) { TypedKeyValueStore<K, V2>(name: store) }
        builder.addNode(n, kind: .processor, parents: [node], stores: [store]) {
            TableTransformNode<K, V, V2>(name: n, children: $0, store: store, transform: transform)
        }
        return Table<K, V2>(builder: builder, node: n, store: store, keySerde: keySerde, valueSerde: valueSerde,
                            partitioningTopics: partitioningTopics)
    }

    /// The rows for which `predicate` holds; rows that stop matching are deleted downstream.
    public func filter(named: String? = nil, materializedAs: String? = nil,
                       _ predicate: @escaping @Sendable (K, V) throws -> Bool) -> Table<K, V> {
        derivedTable("KTABLE-FILTER", named: named, materializedAs: materializedAs, valueSerde: valueSerde) { k, v in
            try predicate(k, v) ? v : nil
        }
    }

    /// The table with each value replaced by `transform(value)`.
    public func mapValues<VR>(named: String? = nil, materializedAs: String? = nil,
                              _ transform: @escaping @Sendable (V) throws -> VR) -> Table<K, VR> {
        derivedTable("KTABLE-MAPVALUES", named: named, materializedAs: materializedAs, valueSerde: nil) { _, v in
            try transform(v)
        }
    }
}

/// A table replicated in full to every task (Kafka's `GlobalKTable`): streams of any
/// partitioning can join it by a key they compute from each record.
public struct GlobalTable<K: Hashable, V> {
    /// The store holding the table, shared read-only by all tasks.
    public let storeName: String
}

/// Reads a table topic into its store and forwards each update as a ``Change``.
final class TableSourceNode<KS: Serde, VS: Serde>: ProcessorNode<Void, Void, KS.Value, Change<VS.Value>>, SourceInput
    where KS.Value: Hashable {
    let keySerde: KS
    let valueSerde: VS
    let storeName: String
    var store: TypedKeyValueStore<KS.Value, VS.Value>! = nil

    init(name: String, children: [AnyObject], key: KS, value: VS, store: String) {
        self.keySerde = key
        self.valueSerde = value
        self.storeName = store
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: TypedKeyValueStore<KS.Value, VS.Value>.self, node: name)
    }
    func processRaw(_ record: ConsumerRecord) throws {
        guard let keyBytes = record.key else {
            context.metrics.skippedNullRecords += 1
            return
        }
        let key = try keySerde.deserialize(keyBytes)
        let value = try record.value.map { try valueSerde.deserialize($0) }
        let old = store.get(key)
        if old == nil && value == nil { return }
        store.put(key, value)
        try forward(key, Change(newValue: value, oldValue: old))
    }
}

/// A derived table: applies `transform` to each update, materialises the result and forwards
/// the change (a `nil` result is a delete).
final class TableTransformNode<K: Hashable, V, V2>: ProcessorNode<K, Change<V>, K, Change<V2>> {
    let storeName: String
    let transform: (K, V) throws -> V2?
    var store: TypedKeyValueStore<K, V2>! = nil
    init(name: String, children: [AnyObject], store: String, transform: @escaping (K, V) throws -> V2?) {
        self.storeName = store
        self.transform = transform
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: TypedKeyValueStore<K, V2>.self, node: name)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let new = try change.newValue.flatMap { try transform(key, $0) }
        let old = store.get(key)
        if new == nil && old == nil { return }
        store.put(key, new)
        try forward(key, Change(newValue: new, oldValue: old))
    }
}
