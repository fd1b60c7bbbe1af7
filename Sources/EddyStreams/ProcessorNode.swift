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
    /// The task's per-record path: the key and value viewed in the consumer's buffer (`nil`:
    /// null), the rest of the record in `context` (topic, partition, offset, timestamp,
    /// headers), as the task set it.
    func processRaw(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, in context: TaskContext) throws
}

extension SourceInput {
    /// For sources without a raw path: the record rebuilt from `context` (copies key and value).
    func processRaw(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, in context: TaskContext) throws {
        try processRaw(ConsumerRecord(topic: context.topic ?? "", partition: context.partition, offset: context.offset,
                                      timestamp: context.timestamp, key: key.map { Array($0) }, value: value.map { Array($0) },
                                      headers: context.headers))
    }
}

/// A collector that takes keys and values as raw bytes, so that sinks serialize into a reused
/// buffer instead of an array per key and value (the stream thread's producer path).
protocol RawRecordCollector: RecordCollector {
    /// ``RecordCollector/send(topic:partition:key:value:headers:timestamp:)`` with the bytes
    /// viewed in the caller's buffer (copied before it returns).
    func send(topic: String, partition: Int?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
              headers: [Header], timestamp: Timestamp) throws
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
        try Self.withBytes(record.key) { key in
            try Self.withBytes(record.value) { value in try processRaw(key: key, value: value, in: context) }
        }
    }

    private static func withBytes(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> Void) throws {
        guard let bytes else { return try body(nil) }
        try bytes.withUnsafeBytes { try body($0) }
    }

    func processRaw(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, in _: TaskContext) throws {
        // Fast path: no nulls (no optional of a generic type is touched).
        if let key, let value {
            try forward(try keySerde.deserialize(from: key), try valueSerde.deserialize(from: value))
            return
        }
        try processWithNulls(key: key, value: value)
    }

    private func processWithNulls(key keyBytes: UnsafeRawBufferPointer?, value valueBytes: UnsafeRawBufferPointer?) throws {
        let key: KS.Value
        if let bytes = keyBytes {
            key = try keySerde.deserialize(from: bytes)
        } else if let nullKey {
            key = nullKey
        } else {
            context.metrics.skippedNullRecords += 1
            return
        }
        let value: VS.Value
        if let bytes = valueBytes {
            value = try valueSerde.deserialize(from: bytes)
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
    /// Whether the serdes can stand for nulls at all, so the common case skips the checks.
    let keyMayBeNull: Bool
    let valueMayBeNull: Bool
    /// The null checks of the serdes (always false when they cannot stand for nulls), as plain
    /// closures: unlike an optional ``Nullability``, calling one needs no generic metadata.
    let keyIsNull: @Sendable (KS.Value) -> Bool
    let valueIsNull: @Sendable (VS.Value) -> Bool
    let hasExtractor: Bool
    let hasPartitioner: Bool
    var resolvedTopic = ""
    /// The context's collector, if it takes raw bytes (set by ``initialize(_:)``).
    var rawCollector: (any RawRecordCollector)?
    /// Reused for every record: the serialized key, then the serialized value. Unchecked
    /// exclusivity: the node runs on its task's thread, and a serde cannot reach the buffer.
    @exclusivity(unchecked) var scratch: [UInt8] = []

    init(name: String, topic: String?, extractor: TopicNameExtractor<KS.Value, VS.Value>?,
         partitioner: StreamPartitioner<KS.Value, VS.Value>?, key: KS, value: VS) {
        self.topic = topic
        self.extractor = extractor
        self.partitioner = partitioner
        self.keySerde = key
        self.valueSerde = value
        let keyNull = Nullability<KS.Value>.of(key)
        let valueNull = Nullability<VS.Value>.of(value)
        self.hasExtractor = extractor != nil
        self.hasPartitioner = partitioner != nil
        self.keyMayBeNull = keyNull != nil
        self.valueMayBeNull = valueNull != nil
        let never: @Sendable (KS.Value) -> Bool = { _ in false }, neverValue: @Sendable (VS.Value) -> Bool = { _ in false }
        self.keyIsNull = keyNull.map { $0.isNull } ?? never
        self.valueIsNull = valueNull.map { $0.isNull } ?? neverValue
        super.init(name: name, children: [])
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        if let topic { resolvedTopic = context.resolveTopic(topic) }
        rawCollector = context.collector as? any RawRecordCollector
    }
    override func process(_ key: KS.Value, _ value: VS.Value) throws {
        scratch.removeAll(keepingCapacity: true)
        let keyIsNull = keyMayBeNull && self.keyIsNull(key)
        let valueIsNull = valueMayBeNull && self.valueIsNull(value)
        if !keyIsNull { try keySerde.serialize(key, appendingTo: &scratch) }
        let keyCount = scratch.count
        if !valueIsNull { try valueSerde.serialize(value, appendingTo: &scratch) }
        if hasExtractor || hasPartitioner {
            // Kept out of line: the optional closures would cost generic metadata lookups per
            // record in unspecialised code, even in a branch not taken.
            try emitInGeneral(key, value, keyCount: keyCount, keyIsNull: keyIsNull, valueIsNull: valueIsNull)
        } else {
            try emit(topic: resolvedTopic, partition: nil, keyCount: keyCount, keyIsNull: keyIsNull, valueIsNull: valueIsNull)
        }
    }

    /// Dynamic topics and custom partitioners: the record's topic and partition, then ``emit``.
    @inline(never)
    private func emitInGeneral(_ key: KS.Value, _ value: VS.Value, keyCount: Int, keyIsNull: Bool, valueIsNull: Bool) throws {
        let target = hasExtractor ? extractor!(key, value, context.recordContext) : resolvedTopic
        var partition: Int? = nil
        if hasPartitioner, let count = context.collector.partitionCount(of: target) {
            partition = partitioner!(target, key, value, count)
        }
        try emit(topic: target, partition: partition, keyCount: keyCount, keyIsNull: keyIsNull, valueIsNull: valueIsNull)
    }

    /// Sends the key (`scratch[..<keyCount]`) and value (the rest) to the collector.
    private func emit(topic: String, partition: Int?, keyCount: Int, keyIsNull: Bool, valueIsNull: Bool) throws {
        let context = self.context!
        try scratch.withUnsafeBytes { raw in
            let key = keyIsNull ? nil : UnsafeRawBufferPointer(rebasing: raw[..<keyCount])
            let value = valueIsNull ? nil : UnsafeRawBufferPointer(rebasing: raw[keyCount...])
            if let rawCollector {
                try rawCollector.send(topic: topic, partition: partition, key: key, value: value,
                                      headers: context.headers, timestamp: context.timestamp)
            } else {
                try context.collector.send(topic: topic, partition: partition, key: key.map { Array($0) },
                                           value: value.map { Array($0) }, headers: context.headers,
                                           timestamp: context.timestamp)
            }
        }
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
    func serialize(_ value: Value, appendingTo buffer: inout [UInt8]) throws { try base.serialize(value, appendingTo: &buffer) }
    func deserialize(from bytes: UnsafeRawBufferPointer) throws -> Value { try base.deserialize(from: bytes) }
}

