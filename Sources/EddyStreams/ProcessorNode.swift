import EddyCore

/// The input side of a runtime node: receives one record at a time from its parents.
///
/// The record's timestamp, headers and source position are not passed along but live in the
/// task's ``TaskContext`` (as in Kafka Streams), so a hop between nodes is one virtual call
/// with no allocation. Subclasses override ``process(_:_:)``.
class NodeInput<K, V> {
    func process(_ key: K, _ value: V) throws {
        fatalError("NodeInput.process must be overridden")
    }
}

/// What every runtime node offers to its task, whatever its record types.
protocol RuntimeNode: AnyObject {
    var name: String { get }
    /// Called once, on the task's thread, before the first record. Nodes look up their stores here.
    func initialize(_ context: TaskContext) throws
    /// Called once when the task closes.
    func close()
}

/// The children of a node and the call that passes a record to each of them in order.
///
/// The first child is kept apart from the others: most nodes have exactly one, and calling it
/// through a stored reference needs no generic metadata at run time, whereas iterating an
/// array of `NodeInput<K, V>` in unspecialised generic code looks the array's and iterator's
/// metadata up on every record.
struct Downstream<K, V> {
    var children: [NodeInput<K, V>]
    let first: NodeInput<K, V>?
    let hasMore: Bool
    init(_ children: [AnyObject]) {
        self.children = children.map { child in
            guard let input = child as? NodeInput<K, V> else {
                preconditionFailure("topology wiring: \(type(of: child)) does not accept (\(K.self), \(V.self))")
            }
            return input
        }
        first = self.children.first
        hasMore = self.children.count > 1
    }
    @inline(__always)
    func forward(_ key: K, _ value: V) throws {
        if let first { try first.process(key, value) }
        if hasMore { try forwardToOthers(key, value) }
    }
    func forwardToOthers(_ key: K, _ value: V) throws {
        for child in children.dropFirst() { try child.process(key, value) }
    }
}

/// Base class of nodes with one input type and one output type.
class ProcessorNode<KIn, VIn, KOut, VOut>: NodeInput<KIn, VIn>, RuntimeNode {
    let name: String
    let downstream: Downstream<KOut, VOut>
    /// The owning task's context; set by ``initialize(_:)``. The task owns its nodes and the
    /// context, and outlives both, hence `unowned(unsafe)` (no reference counting per record).
    unowned(unsafe) var context: TaskContext! = nil

    init(name: String, children: [AnyObject]) {
        self.name = name
        self.downstream = Downstream(children)
    }
    func initialize(_ context: TaskContext) throws { self.context = context }
    func close() {}

    @inline(__always)
    final func forward(_ key: KOut, _ value: VOut) throws {
        try downstream.forward(key, value)
    }
    /// Forwards with a different record timestamp, restoring the current one afterwards.
    @inline(__always)
    final func forward(_ key: KOut, _ value: VOut, timestamp: Timestamp) throws {
        let saved = context.timestamp
        context.timestamp = timestamp
        defer { context.timestamp = saved }
        try downstream.forward(key, value)
    }
}

// MARK: - Stateless nodes

final class FilterNode<K, V>: ProcessorNode<K, V, K, V> {
    let predicate: (K, V) throws -> Bool
    let keep: Bool
    init(name: String, children: [AnyObject], keep: Bool, predicate: @escaping (K, V) throws -> Bool) {
        self.predicate = predicate
        self.keep = keep
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ value: V) throws {
        if try predicate(key, value) == keep { try forward(key, value) }
    }
}

final class MapNode<KIn, VIn, KOut, VOut>: ProcessorNode<KIn, VIn, KOut, VOut> {
    let transform: (KIn, VIn) throws -> (KOut, VOut)
    init(name: String, children: [AnyObject], transform: @escaping (KIn, VIn) throws -> (KOut, VOut)) {
        self.transform = transform
        super.init(name: name, children: children)
    }
    override func process(_ key: KIn, _ value: VIn) throws {
        let (k, v) = try transform(key, value)
        try forward(k, v)
    }
}

final class MapValuesNode<K, VIn, VOut>: ProcessorNode<K, VIn, K, VOut> {
    let transform: (K, VIn) throws -> VOut
    init(name: String, children: [AnyObject], transform: @escaping (K, VIn) throws -> VOut) {
        self.transform = transform
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ value: VIn) throws {
        try forward(key, try transform(key, value))
    }
}

final class FlatMapNode<KIn, VIn, KOut, VOut>: ProcessorNode<KIn, VIn, KOut, VOut> {
    let transform: (KIn, VIn) throws -> [(KOut, VOut)]
    init(name: String, children: [AnyObject], transform: @escaping (KIn, VIn) throws -> [(KOut, VOut)]) {
        self.transform = transform
        super.init(name: name, children: children)
    }
    override func process(_ key: KIn, _ value: VIn) throws {
        for (k, v) in try transform(key, value) { try forward(k, v) }
    }
}

final class FlatMapValuesNode<K, VIn, VOut>: ProcessorNode<K, VIn, K, VOut> {
    let transform: (K, VIn) throws -> [VOut]
    init(name: String, children: [AnyObject], transform: @escaping (K, VIn) throws -> [VOut]) {
        self.transform = transform
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ value: VIn) throws {
        for v in try transform(key, value) { try forward(key, v) }
    }
}

final class PeekNode<K, V>: ProcessorNode<K, V, K, V> {
    let action: (K, V) throws -> Void
    init(name: String, children: [AnyObject], action: @escaping (K, V) throws -> Void) {
        self.action = action
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ value: V) throws {
        try action(key, value)
        try forward(key, value)
    }
}

/// Passes records through unchanged: the target of `merge` and the branch point of `split`.
final class PassThroughNode<K, V>: ProcessorNode<K, V, K, V> {
    override func process(_ key: K, _ value: V) throws { try forward(key, value) }
}

/// `split`: sends each record to the first branch whose predicate holds, else to the default
/// branch (if any), else drops it. Branch children are given in branch order.
final class BranchNode<K, V>: ProcessorNode<K, V, K, V> {
    let predicates: [@Sendable (K, V) throws -> Bool]
    let hasDefault: Bool
    init(name: String, children: [AnyObject], predicates: [@Sendable (K, V) throws -> Bool], hasDefault: Bool) {
        self.predicates = predicates
        self.hasDefault = hasDefault
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ value: V) throws {
        let children = downstream.children
        for i in predicates.indices where try predicates[i](key, value) {
            try children[i].process(key, value)
            return
        }
        if hasDefault { try children[predicates.count].process(key, value) }
    }
}

// MARK: - Sources and sinks

/// A source as the task sees it: raw records in, typed records out.
protocol SourceInput: RuntimeNode {
    func processRaw(_ record: ConsumerRecord) throws
}

/// How a serde stands for a log null, worked out once per node (see ``NullableSerde``).
///
/// `@unchecked Sendable`: the null value comes from a `NullableSerde`, itself `Sendable`, and
/// in practice is `Optional.none`; the closure only captures that serde.
struct Nullability<V>: @unchecked Sendable {
    var nullValue: V
    var isNull: @Sendable (V) -> Bool

    static func of<S: Serde>(_ serde: S) -> Nullability<S.Value>? {
        if let erased = serde as? AnySerde<S.Value> { return erased.nullability }
        guard let nullable = serde as? any NullableSerde else { return nil }
        return open(nullable, as: S.Value.self)
    }
    static func erased(_ serde: any Serde<V>) -> Nullability<V>? {
        guard let nullable = serde as? any NullableSerde else { return nil }
        return open(nullable, as: V.self)
    }
    private static func open<N: NullableSerde, T>(_ serde: N, as: T.Type) -> Nullability<T>? {
        guard let null = serde.nullValue as? T else { return nil }
        if T.self == N.Value.self {
            // The usual case: the same type, so no dynamic cast per record.
            return Nullability<T>(nullValue: null, isNull: { value in
                serde.isNull(unsafeBitCast(value, to: N.Value.self))
            })
        }
        return Nullability<T>(nullValue: null, isNull: { value in
            guard let v = value as? N.Value else { return false }
            return serde.isNull(v)
        })
    }
}

/// Reads raw records of its topics and forwards them typed. Records with a null key or value
/// reach the children only when the serde is nullable; otherwise they are skipped and counted.
final class SourceNode<KS: Serde, VS: Serde>: ProcessorNode<Void, Void, KS.Value, VS.Value>, SourceInput {
    let keySerde: KS
    let valueSerde: VS
    let nullKey: KS.Value?
    let nullValue: VS.Value?
    init(name: String, children: [AnyObject], key: KS, value: VS) {
        self.keySerde = key
        self.valueSerde = value
        self.nullKey = Nullability<KS.Value>.of(key)?.nullValue
        self.nullValue = Nullability<VS.Value>.of(value)?.nullValue
        super.init(name: name, children: children)
    }
    func processRaw(_ record: ConsumerRecord) throws {
        // Fast path: no nulls (no optional of a generic type is touched).
        if let keyBytes = record.key, let valueBytes = record.value {
            try forward(try keySerde.deserialize(keyBytes), try valueSerde.deserialize(valueBytes))
            return
        }
        try processWithNulls(record)
    }

    private func processWithNulls(_ record: ConsumerRecord) throws {
        let key: KS.Value
        if let bytes = record.key {
            key = try keySerde.deserialize(bytes)
        } else if let nullKey {
            key = nullKey
        } else {
            context.metrics.skippedNullRecords += 1
            return
        }
        let value: VS.Value
        if let bytes = record.value {
            value = try valueSerde.deserialize(bytes)
        } else if let nullValue {
            value = nullValue
        } else {
            context.metrics.skippedNullRecords += 1
            return
        }
        try forward(key, value)
    }
}

/// Chooses the topic of each record for a dynamic sink (Kafka's `TopicNameExtractor`).
public typealias TopicNameExtractor<K, V> = @Sendable (_ key: K, _ value: V, _ context: RecordContext) -> String

/// Chooses the partition of each record written by a sink (Kafka's `StreamPartitioner`):
/// return `nil` for the default (murmur2 of the serialized key).
public typealias StreamPartitioner<K, V> = @Sendable (_ topic: String, _ key: K, _ value: V, _ partitionCount: Int) -> Int?

/// Serializes records and hands them to the task's ``RecordCollector``.
final class SinkNode<KS: Serde, VS: Serde>: ProcessorNode<KS.Value, VS.Value, Void, Void> {
    let topic: String?
    let extractor: TopicNameExtractor<KS.Value, VS.Value>?
    let partitioner: StreamPartitioner<KS.Value, VS.Value>?
    let keySerde: KS
    let valueSerde: VS
    let keyNull: Nullability<KS.Value>?
    let valueNull: Nullability<VS.Value>?
    /// Whether the serdes can stand for nulls at all, so the common case skips the checks.
    let keyMayBeNull: Bool
    let valueMayBeNull: Bool
    let hasExtractor: Bool
    let hasPartitioner: Bool
    var resolvedTopic = ""

    init(name: String, topic: String?, extractor: TopicNameExtractor<KS.Value, VS.Value>?,
         partitioner: StreamPartitioner<KS.Value, VS.Value>?, key: KS, value: VS) {
        self.topic = topic
        self.extractor = extractor
        self.partitioner = partitioner
        self.keySerde = key
        self.valueSerde = value
        self.keyNull = Nullability<KS.Value>.of(key)
        self.valueNull = Nullability<VS.Value>.of(value)
        self.hasExtractor = extractor != nil
        self.hasPartitioner = partitioner != nil
        self.keyMayBeNull = keyNull != nil
        self.valueMayBeNull = valueNull != nil
        super.init(name: name, children: [])
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        if let topic { resolvedTopic = context.resolveTopic(topic) }
    }
    override func process(_ key: KS.Value, _ value: VS.Value) throws {
        if !(hasExtractor || hasPartitioner || keyMayBeNull || valueMayBeNull) {
            // The common case, kept free of optional generic values (each would cost a
            // metadata lookup per record in unspecialised code).
            try context.collector.send(topic: resolvedTopic, partition: nil, key: try keySerde.serialize(key),
                                       value: try valueSerde.serialize(value), headers: context.headers,
                                       timestamp: context.timestamp)
            return
        }
        let target: String
        if hasExtractor {
            target = extractor!(key, value, context.recordContext)
        } else {
            target = resolvedTopic
        }
        let keyBytes: [UInt8]? = keyMayBeNull && keyNull!.isNull(key) ? nil : try keySerde.serialize(key)
        let valueBytes: [UInt8]? = valueMayBeNull && valueNull!.isNull(value) ? nil : try valueSerde.serialize(value)
        var partition: Int? = nil
        if hasPartitioner, let count = context.collector.partitionCount(of: target) {
            partition = partitioner!(target, key, value, count)
        }
        try context.collector.send(topic: target, partition: partition, key: keyBytes, value: valueBytes,
                                   headers: context.headers, timestamp: context.timestamp)
    }
}

/// A type-erased serde, used where the DSL carries a serde from upstream without its type.
struct AnySerde<Value>: Serde {
    let base: any Serde<Value>
    let nullability: Nullability<Value>?
    init(_ base: any Serde<Value>) {
        if let already = base as? AnySerde<Value> {
            self = already
        } else {
            self.base = base
            self.nullability = Nullability<Value>.erased(base)
        }
    }
    func serialize(_ value: Value) throws -> [UInt8] { try base.serialize(value) }
    func deserialize(_ bytes: [UInt8]) throws -> Value { try base.deserialize(bytes) }
}

