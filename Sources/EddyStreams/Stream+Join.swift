import EddyCore

extension Stream where K: Hashable {
    func streamJoin<V2, VR>(_ other: Stream<K, V2>, kind: JoinKind, windows: JoinWindows, named: String?,
                            joiner: @escaping (K, V?, V2?) throws -> VR) -> Stream<K, VR> {
        let base = named ?? builder.name("KSTREAM-JOIN", nil)
        let left = repartitionedIfNeeded(keySerde: nil, valueSerde: nil, operation: "join", name: base + "-left")
        let right = other.repartitionedIfNeeded(keySerde: nil, valueSerde: nil, operation: "join", name: base + "-right")
        builder.copartitionGroups.append(Array(left.partitioningTopics.union(right.partitioningTopics)).sorted())
        let leftNode = builder.name("KSTREAM-JOINTHIS", named.map { $0 + "-this" })
        let rightNode = builder.name("KSTREAM-JOINOTHER", named.map { $0 + "-other" })
        let merge = builder.name("KSTREAM-MERGE", named.map { $0 + "-merge" })
        let stores = StreamJoinStores.declare(in: builder, base: base, named: named, thisNode: leftNode, otherNode: rightNode,
                                              kind: kind, windows: windows, keySerde: left.keySerde ?? right.keySerde,
                                              leftSerde: left.valueSerde, rightSerde: right.valueSerde)
        let (leftStore, rightStore, outerStore) = (stores.this, stores.other, stores.outer)
        let used = [leftStore, rightStore] + (outerStore.map { [$0] } ?? [])
        builder.addNode(leftNode, kind: .processor, parents: [left.node], stores: used) {
            StreamStreamJoinNode<K, V, V2, VR, V>(name: leftNode, children: $0, leftStore: leftStore, rightStore: rightStore,
                                                  outerStore: outerStore, windows: windows, kind: kind,
                                                  asLeft: { $0 }, asRight: nil, joiner: joiner)
        }
        builder.addNode(rightNode, kind: .processor, parents: [right.node], stores: used) {
            StreamStreamJoinNode<K, V, V2, VR, V2>(name: rightNode, children: $0, leftStore: leftStore, rightStore: rightStore,
                                                   outerStore: outerStore, windows: windows, kind: kind,
                                                   asLeft: nil, asRight: { $0 }, joiner: joiner)
        }
        builder.addNode(merge, kind: .processor, parents: [leftNode, rightNode]) { PassThroughNode<K, VR>(name: merge, children: $0) }
        return Stream<K, VR>(builder: builder, node: merge, keySerde: left.keySerde, valueSerde: nil, repartitionRequired: false,
                             partitioningTopics: left.partitioningTopics.union(right.partitioningTopics))
    }

    /// Windowed inner join with another stream: each pair of records with equal keys whose
    /// timestamps are within `windows` produces `joiner(left, right)`, with the larger of the
    /// two timestamps. Both streams must be co-partitioned (checked at build time); a stream
    /// whose key changed is repartitioned first (which needs the serdes from its source).
    public func join<V2, VR>(_ other: Stream<K, V2>, windows: JoinWindows, named: String? = nil,
                             _ joiner: @escaping @Sendable (V, V2) throws -> VR) -> Stream<K, VR> {
        streamJoin(other, kind: .inner, windows: windows, named: named) { _, l, r in try joiner(l!, r!) }
    }

    /// Windowed left join: like ``join(_:windows:named:_:)``, and a left record that found no
    /// partner produces `joiner(left, nil)` once its window closes (stream time passes its
    /// timestamp + after + grace), never eagerly (Kafka Streams' current semantics).
    public func leftJoin<V2, VR>(_ other: Stream<K, V2>, windows: JoinWindows, named: String? = nil,
                                 _ joiner: @escaping @Sendable (V, V2?) throws -> VR) -> Stream<K, VR> {
        streamJoin(other, kind: .left, windows: windows, named: named) { _, l, r in try joiner(l!, r) }
    }

    /// Windowed outer join: like ``leftJoin(_:windows:named:_:)`` on both sides; an unmatched
    /// right record produces `joiner(nil, right)` when its window closes.
    public func outerJoin<V2, VR>(_ other: Stream<K, V2>, windows: JoinWindows, named: String? = nil,
                                  _ joiner: @escaping @Sendable (V?, V2?) throws -> VR) -> Stream<K, VR> {
        streamJoin(other, kind: .outer, windows: windows, named: named) { _, l, r in try joiner(l, r) }
    }

    func tableJoin<VT, VR>(_ table: Table<K, VT>, isLeft: Bool, named: String?,
                           joiner: @escaping (K, V, VT?) throws -> VR) -> Stream<K, VR> {
        let n = builder.name("KSTREAM-JOIN", named)
        let s = repartitionedIfNeeded(keySerde: nil, valueSerde: nil, operation: "join", name: n + "-left")
        builder.copartitionGroups.append(Array(s.partitioningTopics.union(table.partitioningTopics)).sorted())
        let store = table.storeName
        builder.addNode(n, kind: .processor, parents: [s.node], stores: [store]) {
            StreamTableJoinNode<K, V, K, VT, VR>(name: n, children: $0, store: store, isLeft: isLeft,
                                                 keySelector: { k, _ in k }, joiner: joiner)
        }
        return s.derived(n, keySerde: s.keySerde, valueSerde: nil, keyChanged: false)
    }

    /// Inner join with a table: each stream record with a matching row produces
    /// `joiner(value, row)`. Table updates produce nothing. Co-partitioning is checked at build time.
    public func join<VT, VR>(_ table: Table<K, VT>, named: String? = nil,
                             _ joiner: @escaping @Sendable (V, VT) throws -> VR) -> Stream<K, VR> {
        tableJoin(table, isLeft: false, named: named) { _, v, t in try joiner(v, t!) }
    }

    /// Left join with a table: every stream record produces `joiner(value, row or nil)`.
    public func leftJoin<VT, VR>(_ table: Table<K, VT>, named: String? = nil,
                                 _ joiner: @escaping @Sendable (V, VT?) throws -> VR) -> Stream<K, VR> {
        tableJoin(table, isLeft: true, named: named) { _, v, t in try joiner(v, t) }
    }
}

extension Stream {
    func globalJoin<KG: Hashable, VG, VR>(_ table: GlobalTable<KG, VG>, isLeft: Bool, named: String?,
                                          keySelector: @escaping (K, V) throws -> KG?,
                                          joiner: @escaping (K, V, VG?) throws -> VR) -> Stream<K, VR> {
        let n = builder.name("KSTREAM-GLOBALTABLE-JOIN", named)
        let store = table.storeName
        builder.addNode(n, kind: .processor, parents: [node]) {
            StreamTableJoinNode<K, V, KG, VG, VR>(name: n, children: $0, store: store, isLeft: isLeft,
                                                  keySelector: keySelector, joiner: joiner)
        }
        return derived(n, keySerde: keySerde, valueSerde: nil, keyChanged: false)
    }

    /// Inner join with a global table by the key `keySelector` computes from each record (no
    /// co-partitioning needed). Records without a matching row produce nothing.
    public func join<KG: Hashable, VG, VR>(_ table: GlobalTable<KG, VG>, named: String? = nil,
                                           keySelector: @escaping @Sendable (K, V) throws -> KG,
                                           _ joiner: @escaping @Sendable (V, VG) throws -> VR) -> Stream<K, VR> {
        globalJoin(table, isLeft: false, named: named, keySelector: keySelector) { _, v, g in try joiner(v, g!) }
    }

    /// Left join with a global table: every record produces `joiner(value, row or nil)`.
    public func leftJoin<KG: Hashable, VG, VR>(_ table: GlobalTable<KG, VG>, named: String? = nil,
                                               keySelector: @escaping @Sendable (K, V) throws -> KG,
                                               _ joiner: @escaping @Sendable (V, VG?) throws -> VR) -> Stream<K, VR> {
        globalJoin(table, isLeft: true, named: named, keySelector: keySelector) { _, v, g in try joiner(v, g) }
    }
}

extension Table {
    func tableJoin<V2, VR>(_ other: Table<K, V2>, kind: JoinKind, named: String?, materializedAs: String?,
                           joiner: @escaping (V?, V2?) throws -> VR) -> Table<K, VR> {
        let base = named ?? builder.name("KTABLE-JOIN", nil)
        builder.copartitionGroups.append(Array(partitioningTopics.union(other.partitioningTopics)).sorted())
        let result = materializedAs ?? base + "-STATE-STORE"
        builder.addStore(result, kind: .keyValue) { InMemoryTaskKeyValueStore<K, VR>(name: result) }  // VR's serde is unknown
        let (l, r) = (storeName, other.storeName)
        let leftNode = builder.name("KTABLE-JOINTHIS", named.map { $0 + "-this" })
        let rightNode = builder.name("KTABLE-JOINOTHER", named.map { $0 + "-other" })
        let merge = builder.name("KTABLE-MERGE", named.map { $0 + "-merge" })
        builder.addNode(leftNode, kind: .processor, parents: [node], stores: [l, r, result]) {
            TableTableJoinNode<K, V, V2, VR, V>(name: leftNode, children: $0, left: l, right: r, result: result, kind: kind, joiner: joiner)
        }
        builder.addNode(rightNode, kind: .processor, parents: [other.node], stores: [l, r, result]) {
            TableTableJoinNode<K, V, V2, VR, V2>(name: rightNode, children: $0, left: l, right: r, result: result, kind: kind, joiner: joiner)
        }
        builder.addNode(merge, kind: .processor, parents: [leftNode, rightNode]) { PassThroughNode<K, Change<VR>>(name: merge, children: $0) }
        return Table<K, VR>(builder: builder, node: merge, store: result, keySerde: keySerde, valueSerde: nil,
                            partitioningTopics: partitioningTopics.union(other.partitioningTopics))
    }

    /// Inner join with another table on equal keys: the result has a row where both do; an
    /// update on either side updates (or deletes) the result row. Materialised in
    /// `materializedAs` (generated when nil). Co-partitioning is checked at build time.
    @discardableResult
    public func join<V2, VR>(_ other: Table<K, V2>, named: String? = nil, materializedAs: String? = nil,
                             _ joiner: @escaping @Sendable (V, V2) throws -> VR) -> Table<K, VR> {
        tableJoin(other, kind: .inner, named: named, materializedAs: materializedAs) { l, r in try joiner(l!, r!) }
    }

    /// Left join with another table: the result has a row wherever this table does.
    @discardableResult
    public func leftJoin<V2, VR>(_ other: Table<K, V2>, named: String? = nil, materializedAs: String? = nil,
                                 _ joiner: @escaping @Sendable (V, V2?) throws -> VR) -> Table<K, VR> {
        tableJoin(other, kind: .left, named: named, materializedAs: materializedAs) { l, r in try joiner(l!, r) }
    }

    /// Outer join with another table: the result has a row wherever either table does.
    @discardableResult
    public func outerJoin<V2, VR>(_ other: Table<K, V2>, named: String? = nil, materializedAs: String? = nil,
                                  _ joiner: @escaping @Sendable (V?, V2?) throws -> VR) -> Table<K, VR> {
        tableJoin(other, kind: .outer, named: named, materializedAs: materializedAs) { l, r in try joiner(l, r) }
    }
}
