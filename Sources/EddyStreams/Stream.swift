import EddyCore

/// A record stream (Kafka's `KStream`): every record is an independent event.
///
/// Operators return new streams and add nodes to the builder; nothing runs until the topology
/// is handed to a runtime or a ``TopologyTestDriver``. Closures given to operators run on the
/// task's thread, once per record, and must be `@Sendable` because the topology is shared by
/// all threads. An operator that changes the key (`map`, `flatMap`, `selectKey`) marks the
/// stream so that a later stateful operator or join repartitions it first.
public struct Stream<K, V> {
    let builder: StreamsBuilder
    let node: String
    let keySerde: AnySerde<K>?
    let valueSerde: AnySerde<V>?
    let repartitionRequired: Bool
    /// The topics whose partitioning this stream follows (for co-partitioning checks).
    let partitioningTopics: Set<String>

    func derived<K2, V2>(_ node: String, keySerde: AnySerde<K2>?, valueSerde: AnySerde<V2>?,
                         keyChanged: Bool) -> Stream<K2, V2> {
        Stream<K2, V2>(builder: builder, node: node, keySerde: keySerde, valueSerde: valueSerde,
                       repartitionRequired: repartitionRequired || keyChanged, partitioningTopics: partitioningTopics)
    }

    /// Keeps the records for which `predicate` is true. A stateless record-by-record operation.
    public func filter(named: String? = nil, _ predicate: @escaping @Sendable (K, V) throws -> Bool) -> Stream<K, V> {
        let n = builder.name("KSTREAM-FILTER", named)
        builder.addNode(n, kind: .processor, parents: [node]) { FilterNode<K, V>(name: n, children: $0, keep: true, predicate: predicate) }
        return derived(n, keySerde: keySerde, valueSerde: valueSerde, keyChanged: false)
    }

    /// Drops the records for which `predicate` is true. A stateless record-by-record operation.
    public func filterNot(named: String? = nil, _ predicate: @escaping @Sendable (K, V) throws -> Bool) -> Stream<K, V> {
        let n = builder.name("KSTREAM-FILTER", named)
        builder.addNode(n, kind: .processor, parents: [node]) { FilterNode<K, V>(name: n, children: $0, keep: false, predicate: predicate) }
        return derived(n, keySerde: keySerde, valueSerde: valueSerde, keyChanged: false)
    }

    /// Replaces each record's key and value. A stateless record-by-record operation; marks the
    /// stream for repartitioning.
    public func map<KR, VR>(named: String? = nil, _ transform: @escaping @Sendable (K, V) throws -> (KR, VR)) -> Stream<KR, VR> {
        let n = builder.name("KSTREAM-MAP", named)
        builder.addNode(n, kind: .processor, parents: [node]) { MapNode<K, V, KR, VR>(name: n, children: $0, transform: transform) }
        return derived(n, keySerde: nil, valueSerde: nil, keyChanged: true)
    }

    /// Replaces each record's value, keeping its key. A stateless record-by-record operation.
    public func mapValues<VR>(named: String? = nil, _ transform: @escaping @Sendable (V) throws -> VR) -> Stream<K, VR> {
        let n = builder.name("KSTREAM-MAPVALUES", named)
        builder.addNode(n, kind: .processor, parents: [node]) {
            MapValuesNode<K, V, VR>(name: n, children: $0, transform: { _, v in try transform(v) })
        }
        return derived(n, keySerde: keySerde, valueSerde: nil, keyChanged: false)
    }

    /// Replaces each record's value, computed from key and value. A stateless record-by-record operation.
    public func mapValues<VR>(named: String? = nil, withKey transform: @escaping @Sendable (K, V) throws -> VR) -> Stream<K, VR> {
        let n = builder.name("KSTREAM-MAPVALUES", named)
        builder.addNode(n, kind: .processor, parents: [node]) { MapValuesNode<K, V, VR>(name: n, children: $0, transform: transform) }
        return derived(n, keySerde: keySerde, valueSerde: nil, keyChanged: false)
    }

    /// Replaces each record by zero or more records. A stateless record-by-record operation;
    /// marks the stream for repartitioning.
    public func flatMap<KR, VR>(named: String? = nil, _ transform: @escaping @Sendable (K, V) throws -> [(KR, VR)]) -> Stream<KR, VR> {
        let n = builder.name("KSTREAM-FLATMAP", named)
        builder.addNode(n, kind: .processor, parents: [node]) { FlatMapNode<K, V, KR, VR>(name: n, children: $0, transform: transform) }
        return derived(n, keySerde: nil, valueSerde: nil, keyChanged: true)
    }

    /// Replaces each record by zero or more records with the same key. A stateless
    /// record-by-record operation.
    public func flatMapValues<VR>(named: String? = nil, _ transform: @escaping @Sendable (V) throws -> [VR]) -> Stream<K, VR> {
        let n = builder.name("KSTREAM-FLATMAPVALUES", named)
        builder.addNode(n, kind: .processor, parents: [node]) {
            FlatMapValuesNode<K, V, VR>(name: n, children: $0, transform: { _, v in try transform(v) })
        }
        return derived(n, keySerde: keySerde, valueSerde: nil, keyChanged: false)
    }

    /// Sets a new key computed from key and value. A stateless record-by-record operation;
    /// marks the stream for repartitioning.
    public func selectKey<KR>(named: String? = nil, _ selector: @escaping @Sendable (K, V) throws -> KR) -> Stream<KR, V> {
        let n = builder.name("KSTREAM-KEY-SELECT", named)
        builder.addNode(n, kind: .processor, parents: [node]) {
            MapNode<K, V, KR, V>(name: n, children: $0, transform: { k, v in (try selector(k, v), v) })
        }
        return derived(n, keySerde: nil, valueSerde: valueSerde, keyChanged: true)
    }

    /// Calls `action` for each record and passes the record on. A stateless record-by-record operation.
    public func peek(named: String? = nil, _ action: @escaping @Sendable (K, V) throws -> Void) -> Stream<K, V> {
        let n = builder.name("KSTREAM-PEEK", named)
        builder.addNode(n, kind: .processor, parents: [node]) { PeekNode<K, V>(name: n, children: $0, action: action) }
        return derived(n, keySerde: keySerde, valueSerde: valueSerde, keyChanged: false)
    }

    /// Calls `action` for each record; a terminal operation. A stateless record-by-record operation.
    public func foreach(named: String? = nil, _ action: @escaping @Sendable (K, V) throws -> Void) {
        let n = builder.name("KSTREAM-FOREACH", named)
        builder.addNode(n, kind: .processor, parents: [node]) { PeekNode<K, V>(name: n, children: $0, action: action) }
    }

    /// The records of this stream and of `other`, interleaved in processing order.
    public func merge(_ other: Stream<K, V>, named: String? = nil) -> Stream<K, V> {
        let n = builder.name("KSTREAM-MERGE", named)
        builder.addNode(n, kind: .processor, parents: [node, other.node]) { PassThroughNode<K, V>(name: n, children: $0) }
        return Stream(builder: builder, node: n, keySerde: keySerde ?? other.keySerde, valueSerde: valueSerde ?? other.valueSerde,
                      repartitionRequired: repartitionRequired || other.repartitionRequired,
                      partitioningTopics: partitioningTopics.union(other.partitioningTopics))
    }

    /// Splits the stream into named branches: each record goes to the first branch whose
    /// predicate holds, else to the default branch if there is one, else nowhere.
    ///
    /// ```swift
    /// let branches = stream.split(named: "size-")
    ///     .branch("big") { _, v in v > 100 }
    ///     .defaultBranch("small")
    /// branches["size-big"]!.to(...)
    /// ```
    public func split(named prefix: String = "") -> BranchedStream<K, V> {
        BranchedStream(parent: self, prefix: prefix)
    }

    /// Writes every record to `topic`, serialised with `key` and `value`. With a
    /// `partitioner`, it chooses the partition of each record (`nil`: murmur2 of the key).
    public func to<KS: Serde, VS: Serde>(_ topic: String, key: KS, value: VS, named: String? = nil,
                                         partitioner: StreamPartitioner<K, V>? = nil) where KS.Value == K, VS.Value == V {
        let n = builder.name("KSTREAM-SINK", named)
        do { try Names.validateTopic(topic) } catch let e as EddyError { builder.errors.append(e.message) } catch {}
        builder.addNode(n, kind: .sink(topic: topic), parents: [node]) { _ in
            SinkNode<KS, VS>(name: n, topic: topic, extractor: nil, partitioner: partitioner, key: key, value: value)
        }
    }

    /// Writes every record to `topic` with the serdes the stream carries from its source (an
    /// error at build time if an operator since then changed the key or value type).
    public func to(_ topic: String, named: String? = nil) {
        guard let keySerde, let valueSerde else {
            builder.errors.append("to('\(topic)') needs key and value serdes: the stream's types changed since its source; pass key:/value:")
            return
        }
        to(topic, key: keySerde, value: valueSerde, named: named)
    }

    /// Writes each record to the topic `extractor` chooses for it.
    public func to<KS: Serde, VS: Serde>(_ extractor: @escaping TopicNameExtractor<K, V>, key: KS, value: VS,
                                         named: String? = nil,
                                         partitioner: StreamPartitioner<K, V>? = nil) where KS.Value == K, VS.Value == V {
        let n = builder.name("KSTREAM-SINK", named)
        builder.addNode(n, kind: .sink(topic: nil), parents: [node]) { _ in
            SinkNode<KS, VS>(name: n, topic: nil, extractor: extractor, partitioner: partitioner, key: key, value: value)
        }
    }

    /// Writes the stream through an internal repartition topic (`<application>-<name>-repartition`)
    /// and reads it back, partitioned by the current key. The topology splits here.
    public func repartition<KS: Serde, VS: Serde>(key: KS, value: VS, partitions: Int? = nil,
                                                  named: String? = nil) -> Stream<K, V> where KS.Value == K, VS.Value == V {
        builder.repartition(self, keySerde: AnySerde(key), valueSerde: AnySerde(value), partitions: partitions,
                            baseName: named, operation: "repartition") ?? self
    }

    /// ``repartition(key:value:partitions:named:)`` with the serdes the stream carries.
    public func repartition(partitions: Int? = nil, named: String? = nil) -> Stream<K, V> {
        builder.repartition(self, keySerde: keySerde, valueSerde: valueSerde, partitions: partitions,
                            baseName: named, operation: "repartition") ?? self
    }

    /// This stream, repartitioned first if its key changed since its source.
    func repartitionedIfNeeded(keySerde: AnySerde<K>?, valueSerde: AnySerde<V>?, operation: String, name: String) -> Stream<K, V> {
        guard repartitionRequired else { return self }
        return builder.repartition(self, keySerde: keySerde ?? self.keySerde, valueSerde: valueSerde ?? self.valueSerde,
                                   partitions: nil, baseName: name, operation: operation) ?? self
    }

    /// Runs a user ``Processor`` on each record: for what the DSL cannot say. `makeProcessor`
    /// is called once per task; `stores` names the stores (declared with
    /// ``StreamsBuilder/addKeyValueStore(_:key:value:)`` and friends) it may use.
    public func process<P: Processor>(named: String? = nil, stores: [String] = [],
                                      _ makeProcessor: @escaping @Sendable () -> P) -> Stream<P.OutKey, P.OutValue>
        where P.InKey == K, P.InValue == V {
        let n = builder.name("KSTREAM-PROCESSOR", named)
        builder.addNode(n, kind: .processor, parents: [node], stores: stores) {
            UserProcessorNode<P>(name: n, children: $0, processor: makeProcessor())
        }
        return derived(n, keySerde: nil, valueSerde: nil, keyChanged: true)
    }
}

/// The branches of a ``Stream/split(named:)`` under construction.
public final class BranchedStream<K, V> {
    let parent: Stream<K, V>
    let prefix: String
    var predicates: [@Sendable (K, V) throws -> Bool] = []
    var names: [String] = []

    init(parent: Stream<K, V>, prefix: String) {
        self.parent = parent
        self.prefix = prefix
    }

    /// Adds a branch named `prefix + name` for the records matching `predicate` (and no earlier branch).
    @discardableResult
    public func branch(_ name: String, _ predicate: @escaping @Sendable (K, V) throws -> Bool) -> BranchedStream<K, V> {
        predicates.append(predicate)
        names.append(prefix + name)
        return self
    }

    /// Ends the split with a default branch `prefix + name` for records no predicate matched.
    public func defaultBranch(_ name: String = "0") -> [String: Stream<K, V>] { finish(defaultName: prefix + name) }

    /// Ends the split without a default branch: unmatched records are dropped.
    public func noDefaultBranch() -> [String: Stream<K, V>] { finish(defaultName: nil) }

    private func finish(defaultName: String?) -> [String: Stream<K, V>] {
        let builder = parent.builder
        let n = builder.name("KSTREAM-BRANCH", prefix.isEmpty ? nil : prefix + "branch")
        let predicates = self.predicates
        let hasDefault = defaultName != nil
        builder.addNode(n, kind: .processor, parents: [parent.node]) {
            BranchNode<K, V>(name: n, children: $0, predicates: predicates, hasDefault: hasDefault)
        }
        var result: [String: Stream<K, V>] = [:]
        for branchName in names + (defaultName.map { [$0] } ?? []) {
            if result[branchName] != nil { builder.errors.append("split branch '\(branchName)' is named twice") }
            let b = builder.name("KSTREAM-BRANCHCHILD", branchName)
            builder.addNode(b, kind: .processor, parents: [n]) { PassThroughNode<K, V>(name: b, children: $0) }
            result[branchName] = parent.derived(b, keySerde: parent.keySerde, valueSerde: parent.valueSerde, keyChanged: false)
        }
        return result
    }
}
