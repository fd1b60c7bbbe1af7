import EddyCore

extension Stream where K: Hashable {
    /// Groups records by their key for an aggregation. If the key changed since the source,
    /// the stream is first repartitioned through an internal topic (which needs serdes: pass
    /// them here, or keep those from the source).
    public func groupByKey<KS: Serde, VS: Serde>(key: KS, value: VS, named: String? = nil) -> GroupedStream<K, V>
        where KS.Value == K, VS.Value == V {
        groupByKey(keySerde: AnySerde(key), valueSerde: AnySerde(value), named: named)
    }

    /// Groups records by their key, with the serdes the stream carries.
    public func groupByKey(named: String? = nil) -> GroupedStream<K, V> {
        groupByKey(keySerde: keySerde, valueSerde: valueSerde, named: named)
    }

    func groupByKey(keySerde: AnySerde<K>?, valueSerde: AnySerde<V>?, named: String?) -> GroupedStream<K, V> {
        let base = named ?? builder.name("KSTREAM-AGGREGATE", nil)
        let s = repartitionedIfNeeded(keySerde: keySerde, valueSerde: valueSerde, operation: "groupByKey", name: base)
        builder.copartitionGroups.append(Array(s.partitioningTopics).sorted())
        return GroupedStream(stream: s, keySerde: keySerde ?? s.keySerde, valueSerde: valueSerde ?? s.valueSerde, baseName: base)
    }
}

extension Stream {
    /// Groups records by a new key computed from each record; always repartitions (the
    /// serdes are those of the new key and of the value).
    public func groupBy<KR: Hashable, KS: Serde, VS: Serde>(key: KS, value: VS, named: String? = nil,
                                                            _ selector: @escaping @Sendable (K, V) throws -> KR) -> GroupedStream<KR, V>
        where KS.Value == KR, VS.Value == V {
        selectKey(selector).groupByKey(key: key, value: value, named: named)
    }

    /// Turns the stream into a table: each record is an update of its key, materialised in
    /// the key-value store `materializedAs` (generated when nil).
    @discardableResult
    public func toTable(named: String? = nil, materializedAs: String? = nil) -> Table<K, V> where K: Hashable {
        let s = repartitionedIfNeeded(keySerde: keySerde, valueSerde: valueSerde, operation: "toTable",
                                      name: named ?? builder.name("KSTREAM-TOTABLE", nil))
        let n = builder.name("KSTREAM-TOTABLE", named)
        let store = materializedAs ?? "\(n)-STATE-STORE"
        builder.addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, s.keySerde, s.valueSerde)) {
            InMemoryTaskKeyValueStore<K, V>(name: store)
        }
        builder.addNode(n, kind: .processor, parents: [s.node], stores: [store]) {
            StreamToTableNode<K, V>(name: n, children: $0, store: store)
        }
        return Table(builder: builder, node: n, store: store, keySerde: s.keySerde, valueSerde: s.valueSerde,
                     partitioningTopics: s.partitioningTopics)
    }
}

/// A stream grouped by key, ready for an aggregation (Kafka's `KGroupedStream`). Each
/// aggregation keeps one value per key in a key-value store named `materializedAs` (generated
/// when nil) and returns a ``Table`` of the running results. Records with a key the
/// aggregation cannot use are skipped and counted.
public struct GroupedStream<K: Hashable, V> {
    let stream: Stream<K, V>
    let keySerde: AnySerde<K>?
    let valueSerde: AnySerde<V>?
    let baseName: String

    var builder: StreamsBuilder { stream.builder }

    func aggregateNode<VR>(_ prefix: String, named: String?, materializedAs: String?, valueSerde: AnySerde<VR>?,
                           step: @escaping AggregateStep<K, V, VR>) -> Table<K, VR> {
        let n = builder.name(prefix, named)
        let store = materializedAs ?? "\(baseName)-STATE-STORE"
        builder.addStore(store, kind: .keyValue, persistent: StorePersistence.keyValue(store, keySerde, valueSerde)) {
            InMemoryTaskKeyValueStore<K, VR>(name: store)
        }
        builder.addNode(n, kind: .processor, parents: [stream.node], stores: [store]) {
            KeyedAggregateNode<K, V, VR>(name: n, children: $0, store: store, step: step)
        }
        return Table(builder: builder, node: n, store: store, keySerde: keySerde, valueSerde: valueSerde,
                     partitioningTopics: stream.partitioningTopics)
    }

    /// Counts records per key. A stateful record-by-record operation.
    @discardableResult
    public func count(named: String? = nil, materializedAs: String? = nil) -> Table<K, Int64> {
        aggregateNode("KSTREAM-AGGREGATE", named: named, materializedAs: materializedAs, valueSerde: AnySerde(Int64Serde())) { _, _, agg in
            (agg ?? 0) + 1
        }
    }

    /// Combines the values of each key with `reducer(aggregate, value)`; the first value of a
    /// key is its first aggregate. A stateful record-by-record operation.
    @discardableResult
    public func reduce(named: String? = nil, materializedAs: String? = nil,
                       _ reducer: @escaping @Sendable (V, V) throws -> V) -> Table<K, V> {
        aggregateNode("KSTREAM-REDUCE", named: named, materializedAs: materializedAs, valueSerde: valueSerde) { _, v, agg in
            try agg.map { try reducer($0, v) } ?? v
        }
    }

    /// Folds the values of each key into an aggregate that starts at `initializer()`. A
    /// stateful record-by-record operation.
    @discardableResult
    public func aggregate<VR>(named: String? = nil, materializedAs: String? = nil, valueSerde: (any Serde<VR>)? = nil,
                              initializer: @escaping @Sendable () throws -> VR,
                              _ aggregator: @escaping @Sendable (K, V, VR) throws -> VR) -> Table<K, VR> {
        aggregateNode("KSTREAM-AGGREGATE", named: named, materializedAs: materializedAs, valueSerde: valueSerde.map { AnySerde($0) }) { k, v, agg in
            try aggregator(k, v, try agg ?? initializer())
        }
    }

    /// Aggregations per key and tumbling or hopping window.
    public func windowed(by windows: TimeWindows) -> TimeWindowedStream<K, V> {
        TimeWindowedStream(grouped: self, kind: .time(windows))
    }

    /// Aggregations per key and sliding window.
    public func windowed(by windows: SlidingWindows) -> TimeWindowedStream<K, V> {
        TimeWindowedStream(grouped: self, kind: .sliding(windows))
    }

    /// Aggregations per key and session.
    public func windowed(by windows: SessionWindows) -> SessionWindowedStream<K, V> {
        SessionWindowedStream(grouped: self, windows: windows)
    }
}

/// A grouped stream windowed by time (tumbling, hopping or sliding windows): aggregations
/// give a table keyed by ``Windowed`` keys, kept in a window store for `retention`
/// milliseconds (at least window size + grace, which is the default). With
/// ``EmitStrategy/onWindowClose`` only each window's final result is sent, once it closes.
public struct TimeWindowedStream<K: Hashable, V> {
    enum Kind {
        case time(TimeWindows)
        case sliding(SlidingWindows)
    }
    let grouped: GroupedStream<K, V>
    let kind: Kind
    var emitStrategy: EmitStrategy = .onWindowUpdate

    init(grouped: GroupedStream<K, V>, kind: Kind) {
        self.grouped = grouped
        self.kind = kind
    }

    /// The same windowed stream, sending updates per `strategy` (Kafka's KIP-825 `emitStrategy`).
    public func emit(_ strategy: EmitStrategy) -> TimeWindowedStream<K, V> {
        var copy = self
        copy.emitStrategy = strategy
        return copy
    }

    var windowSize: Int64 {
        switch kind {
        case .time(let w): return w.size
        case .sliding(let w): return w.timeDifference
        }
    }
    var grace: Int64 {
        switch kind {
        case .time(let w): return w.grace
        case .sliding(let w): return w.grace
        }
    }

    func aggregateNode<VR>(named: String?, materializedAs: String?, retention: Int64?, valueSerde: AnySerde<VR>?,
                           step: @escaping AggregateStep<K, V, VR>) -> Table<Windowed<K>, VR> {
        let builder = grouped.builder
        let n = builder.name("KSTREAM-WINDOWED-AGGREGATE", named)
        let store = materializedAs ?? "\(grouped.baseName)-STATE-STORE"
        let size = windowSize
        let minimum = size + grace + (isSliding ? 1 : 0)
        let kept = max(retention ?? minimum, minimum)
        if let retention, retention < minimum {
            builder.errors.append("window store '\(store)' has retention \(retention) ms, less than window size + grace (\(minimum) ms)")
        }
        let groupKeySerde = grouped.keySerde
        builder.addStore(store, kind: .window,
                         persistent: StorePersistence.window(store, size: size, retention: kept, groupKeySerde, valueSerde)) {
            let windows = InMemoryTaskWindowStore<K, VR>(name: store, windowSize: size, retention: kept)
            windows.keySerde = groupKeySerde
            return windows
        }
        let kind = self.kind
        // Time windows emit final results themselves, from the store (KIP-825); sliding
        // windows go through a suppression buffer.
        let emitFinal = emitStrategy == .onWindowClose && !isSliding
        builder.addNode(n, kind: .processor, parents: [grouped.stream.node], stores: [store]) { children in
            switch kind {
            case .time(let w):
                return TimeWindowAggregateNode<K, V, VR>(name: n, children: children, store: store, windows: w, retention: kept,
                                                         emitFinal: emitFinal, step: step)
            case .sliding(let w):
                return SlidingWindowAggregateNode<K, V, VR>(name: n, children: children, store: store, windows: w, retention: kept, step: step)
            }
        }
        let keySerde: AnySerde<Windowed<K>>? = grouped.keySerde.map { AnySerde(TimeWindowedSerde($0, windowSize: size)) }
        let table = Table<Windowed<K>, VR>(builder: builder, node: n, store: store, keySerde: keySerde, valueSerde: valueSerde,
                                           partitioningTopics: grouped.stream.partitioningTopics,
                                           windowClose: (grace, isSliding ? 1 : 0))
        return emitStrategy == .onWindowClose && isSliding ? table.suppressUntilWindowCloses() : table
    }
    var isSliding: Bool { if case .sliding = kind { return true } else { return false } }

    /// Counts records per key and window. A stateful, windowed operation.
    @discardableResult @inlinable
    public func count(named: String? = nil, materializedAs: String? = nil, retention: Int64? = nil) -> Table<Windowed<K>, Int64> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention, erasing: Int64Serde()) { _, _, agg in
            (agg ?? 0) + 1
        }
    }

    /// Combines the values of each key and window with `reducer`. A stateful, windowed operation.
    @discardableResult
    public func reduce(named: String? = nil, materializedAs: String? = nil, retention: Int64? = nil,
                       _ reducer: @escaping @Sendable (V, V) throws -> V) -> Table<Windowed<K>, V> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention, valueSerde: grouped.valueSerde) { _, v, agg in
            try agg.map { try reducer($0, v) } ?? v
        }
    }

    /// Folds the values of each key and window into an aggregate starting at `initializer()`.
    /// A stateful, windowed operation.
    @discardableResult @inlinable
    public func aggregate<VR>(named: String? = nil, materializedAs: String? = nil, retention: Int64? = nil,
                              valueSerde: (any Serde<VR>)? = nil,
                              initializer: @escaping @Sendable () throws -> VR,
                              _ aggregator: @escaping @Sendable (K, V, VR) throws -> VR) -> Table<Windowed<K>, VR> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention, erasing: valueSerde) { k, v, agg in
            try aggregator(k, v, try agg ?? initializer())
        }
    }
    /// What the inlinable aggregations call: they build `step` in the caller's module, so it
    /// runs specialised for the caller's types (no generic metadata lookups per record in the
    /// glue around the aggregator).
    @usableFromInline
    func aggregateNode<VR>(named: String?, materializedAs: String?, retention: Int64?, erasing valueSerde: (any Serde<VR>)?,
                           step: @escaping AggregateStep<K, V, VR>) -> Table<Windowed<K>, VR> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention,
                      valueSerde: valueSerde.map { AnySerde($0) }, step: step)
    }
}

/// A grouped stream windowed by sessions: aggregations give a table keyed by ``Windowed``
/// session keys (inclusive ends). When a record merges sessions, the merged-away sessions
/// are deleted downstream (a ``Change`` with a `nil` new value).
public struct SessionWindowedStream<K: Hashable, V> {
    let grouped: GroupedStream<K, V>
    let windows: SessionWindows
    var emitStrategy: EmitStrategy = .onWindowUpdate

    init(grouped: GroupedStream<K, V>, windows: SessionWindows) {
        self.grouped = grouped
        self.windows = windows
    }

    /// The same windowed stream, sending updates per `strategy`.
    public func emit(_ strategy: EmitStrategy) -> SessionWindowedStream<K, V> {
        var copy = self
        copy.emitStrategy = strategy
        return copy
    }

    func aggregateNode<VR>(named: String?, materializedAs: String?, retention: Int64?, valueSerde: AnySerde<VR>?,
                           step: @escaping AggregateStep<K, V, VR>, merge: @escaping (K, VR, VR) throws -> VR) -> Table<Windowed<K>, VR> {
        let builder = grouped.builder
        let n = builder.name("KSTREAM-SESSION-WINDOWED-AGGREGATE", named)
        let store = materializedAs ?? "\(grouped.baseName)-STATE-STORE"
        let windows = self.windows
        let minimum = windows.inactivityGap + windows.grace
        let kept = max(retention ?? minimum, minimum)
        builder.addStore(store, kind: .session,
                         persistent: StorePersistence.session(store, retention: kept, grouped.keySerde, valueSerde)) {
            InMemoryTaskSessionStore<K, VR>(name: store, retention: kept)
        }
        builder.addNode(n, kind: .processor, parents: [grouped.stream.node], stores: [store]) {
            SessionWindowAggregateNode<K, V, VR>(name: n, children: $0, store: store, windows: windows, retention: kept,
                                                 step: step, merge: merge)
        }
        let keySerde: AnySerde<Windowed<K>>? = grouped.keySerde.map { AnySerde(SessionWindowedSerde($0)) }
        let table = Table<Windowed<K>, VR>(builder: builder, node: n, store: store, keySerde: keySerde, valueSerde: valueSerde,
                                           partitioningTopics: grouped.stream.partitioningTopics,
                                           windowClose: (windows.grace, 1))
        return emitStrategy == .onWindowClose ? table.suppressUntilWindowCloses() : table
    }

    /// Counts records per key and session. A stateful, windowed operation.
    @discardableResult
    public func count(named: String? = nil, materializedAs: String? = nil, retention: Int64? = nil) -> Table<Windowed<K>, Int64> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention, valueSerde: AnySerde(Int64Serde()),
                      step: { _, _, agg in (agg ?? 0) + 1 }, merge: { _, a, b in a + b })
    }

    /// Combines the values of each key and session with `reducer` (also used to merge sessions).
    @discardableResult
    public func reduce(named: String? = nil, materializedAs: String? = nil, retention: Int64? = nil,
                       _ reducer: @escaping @Sendable (V, V) throws -> V) -> Table<Windowed<K>, V> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention, valueSerde: grouped.valueSerde,
                      step: { _, v, agg in try agg.map { try reducer($0, v) } ?? v }, merge: { _, a, b in try reducer(a, b) })
    }

    /// Folds the values of each key and session into an aggregate starting at
    /// `initializer()`; `merger` combines the aggregates of sessions a record bridges.
    @discardableResult
    public func aggregate<VR>(named: String? = nil, materializedAs: String? = nil, retention: Int64? = nil,
                              valueSerde: (any Serde<VR>)? = nil,
                              initializer: @escaping @Sendable () throws -> VR,
                              merger: @escaping @Sendable (K, VR, VR) throws -> VR,
                              _ aggregator: @escaping @Sendable (K, V, VR) throws -> VR) -> Table<Windowed<K>, VR> {
        aggregateNode(named: named, materializedAs: materializedAs, retention: retention, valueSerde: valueSerde.map { AnySerde($0) },
                      step: { k, v, agg in try aggregator(k, v, try agg ?? initializer()) }, merge: merger)
    }
}
