import EddyCore

/// An update of a table row: the new value (`nil`: deleted) and the old one (`nil`: absent).
public struct Change<Value> {
    /// The row's value after the update; `nil` when it was deleted.
    public var newValue: Value?
    /// The row's value before the update; `nil` when it did not exist.
    public var oldValue: Value?
    /// An update from `oldValue` to `newValue`.
    @inline(__always)
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
    /// For tables of windowed aggregations: the grace and the close offset (1 for windows
    /// with an inclusive end) that ``suppress(_:named:)`` needs.
    let windowClose: (grace: Int64, offset: Int64)?

    init(builder: StreamsBuilder, node: String, store: String, keySerde: AnySerde<K>?, valueSerde: AnySerde<V>?,
         partitioningTopics: Set<String>, windowClose: (grace: Int64, offset: Int64)? = nil) {
        self.windowClose = windowClose
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
        builder.addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, keySerde, valueSerde)) {
            InMemoryTaskKeyValueStore<K, V2>(name: store)
        }
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

extension Table {
    /// Regroups the table by a new key (and value) computed from each row, for an aggregation
    /// with adder and subtractor. Always repartitions: each update sends the old row to be
    /// subtracted from its old group and the new row to be added to its new group.
    public func groupBy<KR: Hashable, VR, KS: Serde, VS: Serde>(key: KS, value: VS, named: String? = nil,
                                                                _ selector: @escaping @Sendable (K, V) throws -> (KR, VR)) -> GroupedTable<KR, VR>
        where KS.Value == KR, VS.Value == VR {
        let n = builder.name("KTABLE-SELECT", named)
        builder.addNode(n, kind: .processor, parents: [node]) {
            TableRegroupNode<K, V, KR, VR>(name: n, children: $0, selector: selector)
        }
        let mapped = Stream<KR, Change<VR>>(builder: builder, node: n, keySerde: AnySerde(key),
                                            valueSerde: AnySerde(ChangeSerde(value)), repartitionRequired: true,
                                            partitioningTopics: partitioningTopics)
        let base = named ?? builder.name("KTABLE-AGGREGATE", nil)
        let s = mapped.repartitionedIfNeeded(keySerde: nil, valueSerde: nil, operation: "groupBy", name: base)
        return GroupedTable(stream: s, keySerde: AnySerde(key), valueSerde: AnySerde(value), baseName: base)
    }
}

/// A table regrouped by ``Table/groupBy(key:value:named:_:)`` (Kafka's `KGroupedTable`):
/// aggregations take an adder for new rows and a subtractor for rows that left the group or
/// changed, and give a ``Table`` of the results in a key-value store.
public struct GroupedTable<K: Hashable, V> {
    let stream: Stream<K, Change<V>>
    let keySerde: AnySerde<K>
    let valueSerde: AnySerde<V>
    let baseName: String
    var builder: StreamsBuilder { stream.builder }

    /// Counts the rows per group.
    @discardableResult
    public func count(named: String? = nil, materializedAs: String? = nil) -> Table<K, Int64> {
        aggregateNode(named: named, materializedAs: materializedAs, resultSerde: AnySerde(Int64Serde()), initializer: { 0 },
                      adder: { _, _, agg in agg + 1 }, subtractor: { _, _, agg in agg - 1 })
    }

    /// Folds rows into an aggregate per group: `adder` for rows joining, `subtractor` for rows leaving.
    @discardableResult
    public func aggregate<VR>(named: String? = nil, materializedAs: String? = nil, valueSerde: (any Serde<VR>)? = nil,
                              initializer: @escaping @Sendable () throws -> VR,
                              adder: @escaping @Sendable (K, V, VR) throws -> VR,
                              subtractor: @escaping @Sendable (K, V, VR) throws -> VR) -> Table<K, VR> {
        aggregateNode(named: named, materializedAs: materializedAs, resultSerde: valueSerde.map { AnySerde($0) },
                      initializer: initializer, adder: adder, subtractor: subtractor)
    }

    func aggregateNode<VR>(named: String?, materializedAs: String?, resultSerde: AnySerde<VR>?, initializer: @escaping () throws -> VR,
                           adder: @escaping (K, V, VR) throws -> VR,
                           subtractor: @escaping (K, V, VR) throws -> VR) -> Table<K, VR> {
        let n = builder.name("KTABLE-AGGREGATE", named)
        let store = materializedAs ?? "\(baseName)-STATE-STORE"
        builder.addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, keySerde, resultSerde)) {
            InMemoryTaskKeyValueStore<K, VR>(name: store)
        }
        builder.addNode(n, kind: .processor, parents: [stream.node], stores: [store]) {
            TableAggregateNode<K, V, VR>(name: n, children: $0, store: store, initializer: initializer,
                                         adder: adder, subtractor: subtractor)
        }
        return Table(builder: builder, node: n, store: store, keySerde: keySerde, valueSerde: resultSerde,
                     partitioningTopics: stream.partitioningTopics)
    }

    /// Combines rows per group: `adder(aggregate, new)` and `subtractor(aggregate, old)`.
    @discardableResult
    public func reduce(named: String? = nil, materializedAs: String? = nil,
                       adder: @escaping @Sendable (V, V) throws -> V,
                       subtractor: @escaping @Sendable (V, V) throws -> V) -> Table<K, V> {
        let n = builder.name("KTABLE-REDUCE", named)
        let store = materializedAs ?? "\(baseName)-STATE-STORE"
        builder.addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, keySerde, valueSerde)) {
            InMemoryTaskKeyValueStore<K, V>(name: store)
        }
        builder.addNode(n, kind: .processor, parents: [stream.node], stores: [store]) {
            TableReduceNode<K, V>(name: n, children: $0, store: store, adder: adder, subtractor: subtractor)
        }
        return Table(builder: builder, node: n, store: store, keySerde: keySerde, valueSerde: valueSerde,
                     partitioningTopics: stream.partitioningTopics)
    }
}

/// Serde for table updates sent through a repartition topic: a flags byte (bit 0: new value
/// present, bit 1: old value present), the new value's length (4 bytes, big-endian) and bytes,
/// then the old value's bytes.
struct ChangeSerde<Inner: Serde>: Serde {
    let inner: Inner
    init(_ inner: Inner) { self.inner = inner }
    func serialize(_ change: Change<Inner.Value>) throws -> [UInt8] {
        let new = try change.newValue.map { try inner.serialize($0) }
        let old = try change.oldValue.map { try inner.serialize($0) }
        var out: [UInt8] = [(new != nil ? 1 : 0) | (old != nil ? 2 : 0)]
        let n = UInt32(new?.count ?? 0)
        out += [UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        out += new ?? []
        out += old ?? []
        return out
    }
    func deserialize(_ bytes: [UInt8]) throws -> Change<Inner.Value> {
        guard bytes.count >= 5 else { throw EddyError(.serialization, "a table change needs at least 5 bytes, got \(bytes.count)") }
        let n = Int(UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4]))
        guard 5 + n <= bytes.count else { throw EddyError(.serialization, "a table change's new value overruns its \(bytes.count) bytes") }
        let new = bytes[0] & 1 != 0 ? try inner.deserialize(Array(bytes[5..<(5 + n)])) : nil
        let old = bytes[0] & 2 != 0 ? try inner.deserialize(Array(bytes[(5 + n)...])) : nil
        return Change(newValue: new, oldValue: old)
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
    var store: (any TaskKeyValueStore<KS.Value, VS.Value>)! = nil

    init(name: String, children: [AnyObject], key: KS, value: VS, store: String) {
        self.keySerde = key
        self.valueSerde = value
        self.storeName = store
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<KS.Value, VS.Value>).self, node: name)
    }
    func processRaw(_ record: ConsumerRecord) throws {
        guard let keyBytes = record.key else {
            context.metrics.skippedNullRecords += 1
            return
        }
        let key = try keySerde.deserialize(keyBytes)
        let value = try record.value.map { try valueSerde.deserialize($0) }
        let old = try store.get(key)
        if old == nil && value == nil { return }
        try store.put(key, value)
        try forward(key, Change(newValue: value, oldValue: old))
    }
}

/// A derived table: applies `transform` to each update, materialises the result and forwards
/// the change (a `nil` result is a delete).
final class TableTransformNode<K: Hashable, V, V2>: ProcessorNode<K, Change<V>, K, Change<V2>> {
    let storeName: String
    let transform: (K, V) throws -> V2?
    var store: (any TaskKeyValueStore<K, V2>)! = nil
    init(name: String, children: [AnyObject], store: String, transform: @escaping (K, V) throws -> V2?) {
        self.storeName = store
        self.transform = transform
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        store = try context.store(storeName, as: (any TaskKeyValueStore<K, V2>).self, node: name)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let new = try change.newValue.flatMap { try transform(key, $0) }
        let old = try store.get(key)
        if new == nil && old == nil { return }
        try store.put(key, new)
        try forward(key, Change(newValue: new, oldValue: old))
    }
}
