import EddyCore

// The foreign-key table–table join (Kafka's KIP-213). The left table is keyed by K and each
// row names a row of the right table (keyed by KO) through `foreignKey`. Two internal topics
// carry the exchange, so the tables need not be co-partitioned:
//
// - `<name>-subscription-registration`, keyed by KO (partitioned like the right table): the
//   left side subscribes its key to the foreign key of its new value (and unsubscribes from
//   the old one). The right side keeps the subscribers per foreign key and answers each
//   subscription, and each right-row update, on
// - `<name>-subscription-response`, keyed by K (partitioned like the left table): the right
//   row's value and a hash of the left value the subscription was made for. The left side
//   drops responses whose hash no longer matches the current left value (stale), so results
//   always reflect the latest left row.

/// What a subscription asks of the right side.
enum SubscriptionInstruction: UInt8 {
    /// Remove the subscription, answer nothing (the left row moved to another foreign key).
    case delete = 0
    /// Remove the subscription and answer with no value (the left row was deleted).
    case deleteAndPropagate = 1
    /// Add or refresh the subscription and answer with the right row.
    case propagate = 2
}

struct Subscription<K> {
    var instruction: SubscriptionInstruction
    var key: K
    var hash: Int64?
}

struct SubscriptionResponse<VO> {
    var hash: Int64?
    var value: VO?
}

/// A hash of a left value's bytes (murmur2 of the bytes, with their length in the high half).
func valueHash(_ bytes: [UInt8]) -> Int64 {
    let h = bytes.withUnsafeBytes { DefaultPartitioner.murmur2($0) }
    return Int64(bytes.count) << 32 | Int64(UInt32(bitPattern: h))
}

/// Bytes: instruction, hash flag, 8-byte hash, then the key.
struct SubscriptionSerde<KS: Serde>: Serde {
    let keySerde: KS
    func serialize(_ s: Subscription<KS.Value>) throws -> [UInt8] {
        var out: [UInt8] = [s.instruction.rawValue, s.hash == nil ? 0 : 1]
        BigEndian.append(UInt64(bitPattern: s.hash ?? 0), to: &out)
        out += try keySerde.serialize(s.key)
        return out
    }
    func deserialize(_ bytes: [UInt8]) throws -> Subscription<KS.Value> {
        guard bytes.count >= 10, let instruction = SubscriptionInstruction(rawValue: bytes[0]) else {
            throw EddyError(.serialization, "not a foreign-key join subscription (\(bytes.count) bytes)")
        }
        let hash = bytes[1] == 0 ? nil : Int64(bitPattern: BigEndian.read64(bytes, at: 2))
        return Subscription(instruction: instruction, key: try keySerde.deserialize(Array(bytes[10...])), hash: hash)
    }
}

/// Bytes: hash flag, 8-byte hash, value flag, then the value.
struct SubscriptionResponseSerde<VS: Serde>: Serde {
    let valueSerde: VS
    func serialize(_ r: SubscriptionResponse<VS.Value>) throws -> [UInt8] {
        var out: [UInt8] = [r.hash == nil ? 0 : 1]
        BigEndian.append(UInt64(bitPattern: r.hash ?? 0), to: &out)
        if let v = r.value {
            out.append(1)
            out += try valueSerde.serialize(v)
        } else {
            out.append(0)
        }
        return out
    }
    func deserialize(_ bytes: [UInt8]) throws -> SubscriptionResponse<VS.Value> {
        guard bytes.count >= 10 else { throw EddyError(.serialization, "not a foreign-key join response (\(bytes.count) bytes)") }
        let hash = bytes[0] == 0 ? nil : Int64(bitPattern: BigEndian.read64(bytes, at: 1))
        let value = bytes[9] == 0 ? nil : try valueSerde.deserialize(Array(bytes[10...]))
        return SubscriptionResponse(hash: hash, value: value)
    }
}

/// Left side: turns left-row updates into subscriptions keyed by foreign key.
final class SubscriptionSendNode<K, V, KO: Hashable>: ProcessorNode<K, Change<V>, KO, Subscription<K>> {
    let foreignKey: (V) throws -> KO
    let valueSerde: AnySerde<V>
    init(name: String, children: [AnyObject], foreignKey: @escaping (V) throws -> KO, valueSerde: AnySerde<V>) {
        self.foreignKey = foreignKey
        self.valueSerde = valueSerde
        super.init(name: name, children: children)
    }
    override func process(_ key: K, _ change: Change<V>) throws {
        let oldFK = try change.oldValue.map(foreignKey)
        if let new = change.newValue {
            let newFK = try foreignKey(new)
            if let oldFK, oldFK != newFK { try forward(oldFK, Subscription(instruction: .delete, key: key, hash: nil)) }
            try forward(newFK, Subscription(instruction: .propagate, key: key, hash: valueHash(try valueSerde.serialize(new))))
        } else if let oldFK {
            try forward(oldFK, Subscription(instruction: .deleteAndPropagate, key: key, hash: nil))
        }
    }
}

/// Right side: keeps the subscribers of each foreign key and answers subscriptions.
final class SubscriptionReceiveNode<K: Hashable, KO: Hashable, VO>: ProcessorNode<KO, Subscription<K>, K, SubscriptionResponse<VO>> {
    let subscriptionStoreName: String
    let rightStoreName: String
    var subscriptions: (any SubscriptionStore<K, KO>)! = nil
    var right: (any TaskKeyValueStore<KO, VO>)! = nil
    init(name: String, children: [AnyObject], subscriptions: String, right: String) {
        self.subscriptionStoreName = subscriptions
        self.rightStoreName = right
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        subscriptions = try context.store(subscriptionStoreName, as: (any SubscriptionStore<K, KO>).self, node: name)
        right = try context.store(rightStoreName, as: (any TaskKeyValueStore<KO, VO>).self, node: name)
    }
    override func process(_ fk: KO, _ s: Subscription<K>) throws {
        switch s.instruction {
        case .delete, .deleteAndPropagate:
            try subscriptions.unsubscribe(s.key, from: fk)
        case .propagate:
            try subscriptions.subscribe(s.key, to: fk, hash: s.hash ?? 0)
        }
        switch s.instruction {
        case .delete: return
        case .deleteAndPropagate: try forward(s.key, SubscriptionResponse(hash: nil, value: nil))
        case .propagate: try forward(s.key, SubscriptionResponse(hash: s.hash, value: try right.get(fk)))
        }
    }
}

/// Right side: a right-row update is sent to every left key subscribed to it.
final class RightUpdateNode<K: Hashable, KO: Hashable, VO>: ProcessorNode<KO, Change<VO>, K, SubscriptionResponse<VO>> {
    let subscriptionStoreName: String
    var subscriptions: (any SubscriptionStore<K, KO>)! = nil
    init(name: String, children: [AnyObject], subscriptions: String) {
        self.subscriptionStoreName = subscriptions
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        subscriptions = try context.store(subscriptionStoreName, as: (any SubscriptionStore<K, KO>).self, node: name)
    }
    override func process(_ fk: KO, _ change: Change<VO>) throws {
        // In the order of the left keys' bytes: the same for every store backend.
        for (k, hash) in try subscriptions.subscribers(of: fk) {
            try forward(k, SubscriptionResponse(hash: hash, value: change.newValue))
        }
    }
}

/// Left side: joins responses with the current left row, dropping stale ones.
final class ResponseJoinNode<K: Hashable, V, VO, VR>: ProcessorNode<K, SubscriptionResponse<VO>, K, Change<VR>> {
    let leftStoreName: String
    let resultStoreName: String
    let valueSerde: AnySerde<V>
    let isLeftJoin: Bool
    let joiner: (V, VO?) throws -> VR
    var left: (any TaskKeyValueStore<K, V>)! = nil
    var results: (any TaskKeyValueStore<K, VR>)! = nil
    init(name: String, children: [AnyObject], left: String, results: String, valueSerde: AnySerde<V>, isLeftJoin: Bool,
         joiner: @escaping (V, VO?) throws -> VR) {
        self.leftStoreName = left
        self.resultStoreName = results
        self.valueSerde = valueSerde
        self.isLeftJoin = isLeftJoin
        self.joiner = joiner
        super.init(name: name, children: children)
    }
    override func initialize(_ context: TaskContext) throws {
        try super.initialize(context)
        left = try context.store(leftStoreName, as: (any TaskKeyValueStore<K, V>).self, node: name)
        results = try context.store(resultStoreName, as: (any TaskKeyValueStore<K, VR>).self, node: name)
    }
    override func process(_ key: K, _ response: SubscriptionResponse<VO>) throws {
        let current = try left.get(key)
        let currentHash = try current.map { valueHash(try valueSerde.serialize($0)) }
        guard currentHash == response.hash else { return }  // stale: the left row changed since
        let new: VR?
        if let current {
            new = (response.value != nil || isLeftJoin) ? try joiner(current, response.value) : nil
        } else {
            new = nil
        }
        let old = try results.get(key)
        if new == nil && old == nil { return }
        try results.put(key, new)
        try forward(key, Change(newValue: new, oldValue: old))
    }
}

extension Table {
    func foreignKeyJoin<KO: Hashable, VO, VR>(_ other: Table<KO, VO>, isLeftJoin: Bool, named: String?, materializedAs: String?,
                                              foreignKey: @escaping (V) throws -> KO,
                                              joiner: @escaping (V, VO?) throws -> VR) -> Table<K, VR> {
        let base = named ?? builder.name("KTABLE-FK-JOIN", nil)
        guard let keySerde, let valueSerde, let otherKeySerde = other.keySerde, let otherValueSerde = other.valueSerde else {
            builder.errors.append("the foreign-key join '\(base)' needs the serdes of both tables' keys and values (tables read from topics have them)")
            return Table<K, VR>(builder: builder, node: node, store: storeName, keySerde: nil, valueSerde: nil, partitioningTopics: partitioningTopics)
        }
        let subscriptionTopic = base + "-subscription-registration"
        let responseTopic = base + "-subscription-response"
        builder.internalTopics[subscriptionTopic] = Topology.InternalTopic(name: subscriptionTopic, partitionCount: nil,
                                                                            partitionCountLike: other.partitioningTopics.sorted().first)
        builder.internalTopics[responseTopic] = Topology.InternalTopic(name: responseTopic, partitionCount: nil,
                                                                        partitionCountLike: partitioningTopics.sorted().first,
                                                                        isResponse: true)
        let subTopic = Topology.internalPrefix + subscriptionTopic
        let respTopic = Topology.internalPrefix + responseTopic
        let subscriptionSerde = AnySerde(SubscriptionSerde(keySerde: keySerde))
        let responseSerde = AnySerde(SubscriptionResponseSerde(valueSerde: otherValueSerde))
        let subscriptionStore = base + "-SUBSCRIPTION-STATE-STORE"
        let resultStore = materializedAs ?? base + "-STATE-STORE"
        // Persistent and changelogged like Kafka's: the subscriptions are state the join cannot
        // rebuild from its inputs once their registrations have been consumed.
        builder.addStore(subscriptionStore, kind: .keyValue,
                         persistent: StorePersistence.subscriptionStore(subscriptionStore, keySerde, otherKeySerde)) {
            InMemorySubscriptionStore<K, KO>(name: subscriptionStore, keySerde: keySerde)
        }
        builder.addStore(resultStore, kind: .keyValue) { InMemoryTaskKeyValueStore<K, VR>(name: resultStore) }
        let (leftStore, rightStore) = (storeName, other.storeName)

        // Left side: subscriptions out.
        let send = builder.name("KTABLE-FK-JOIN-SUBSCRIPTION-SEND", named.map { $0 + "-subscription-send" })
        builder.addNode(send, kind: .processor, parents: [node]) {
            SubscriptionSendNode<K, V, KO>(name: send, children: $0, foreignKey: foreignKey, valueSerde: valueSerde)
        }
        let sendSink = builder.name("KTABLE-SINK", named.map { $0 + "-subscription-sink" })
        builder.addNode(sendSink, kind: .sink(topic: subTopic), parents: [send]) { _ in
            SinkNode(name: sendSink, topic: subTopic, extractor: nil, partitioner: nil, key: otherKeySerde, value: subscriptionSerde)
        }
        // Right side: subscriptions in, responses out.
        let subSource = builder.name("KSTREAM-SOURCE", named.map { $0 + "-subscription-source" })
        builder.addSourceTopic(subTopic, node: subSource)
        builder.addNode(subSource, kind: .source(topics: [subTopic], extractor: nil), parents: []) {
            SourceNode(name: subSource, children: $0, key: otherKeySerde, value: subscriptionSerde)
        }
        let receive = builder.name("KTABLE-FK-JOIN-SUBSCRIPTION-RECEIVE", named.map { $0 + "-subscription-receive" })
        builder.addNode(receive, kind: .processor, parents: [subSource], stores: [subscriptionStore, rightStore]) {
            SubscriptionReceiveNode<K, KO, VO>(name: receive, children: $0, subscriptions: subscriptionStore, right: rightStore)
        }
        let update = builder.name("KTABLE-FK-JOIN-RIGHT-UPDATE", named.map { $0 + "-right-update" })
        builder.addNode(update, kind: .processor, parents: [other.node], stores: [subscriptionStore]) {
            RightUpdateNode<K, KO, VO>(name: update, children: $0, subscriptions: subscriptionStore)
        }
        let respSink = builder.name("KTABLE-SINK", named.map { $0 + "-response-sink" })
        builder.addNode(respSink, kind: .sink(topic: respTopic), parents: [receive, update]) { _ in
            SinkNode(name: respSink, topic: respTopic, extractor: nil, partitioner: nil, key: keySerde, value: responseSerde)
        }
        // Left side: responses in, results out.
        let respSource = builder.name("KSTREAM-SOURCE", named.map { $0 + "-response-source" })
        builder.addSourceTopic(respTopic, node: respSource)
        builder.addNode(respSource, kind: .source(topics: [respTopic], extractor: nil), parents: []) {
            SourceNode(name: respSource, children: $0, key: keySerde, value: responseSerde)
        }
        let join = builder.name("KTABLE-FK-JOIN-RESPONSE", named.map { $0 + "-response-join" })
        builder.addNode(join, kind: .processor, parents: [respSource], stores: [leftStore, resultStore]) {
            ResponseJoinNode<K, V, VO, VR>(name: join, children: $0, left: leftStore, results: resultStore, valueSerde: valueSerde,
                                           isLeftJoin: isLeftJoin, joiner: joiner)
        }
        builder.copartitionGroups.append(Array(other.partitioningTopics.union([subTopic])).sorted())
        builder.copartitionGroups.append(Array(partitioningTopics.union([respTopic])).sorted())
        return Table<K, VR>(builder: builder, node: join, store: resultStore, keySerde: keySerde, valueSerde: nil,
                            partitioningTopics: partitioningTopics)
    }

    /// Foreign-key inner join: each row of this table joins the row of `other` whose key
    /// `foreignKey(value)` gives; the result (keyed like this table) is updated when either row
    /// changes and deleted when either is missing. The tables need not be co-partitioned: the
    /// join exchanges subscriptions and responses through two internal topics
    /// (`<name>-subscription-registration`, `<name>-subscription-response`).
    @discardableResult
    public func join<KO: Hashable, VO, VR>(_ other: Table<KO, VO>, foreignKey: @escaping @Sendable (V) throws -> KO,
                                           named: String? = nil, materializedAs: String? = nil,
                                           _ joiner: @escaping @Sendable (V, VO) throws -> VR) -> Table<K, VR> {
        foreignKeyJoin(other, isLeftJoin: false, named: named, materializedAs: materializedAs, foreignKey: foreignKey) { v, o in
            try joiner(v, o!)
        }
    }

    /// Foreign-key left join: like ``join(_:foreignKey:named:materializedAs:_:)``, and a row
    /// whose foreign key has no match joins with `nil`.
    @discardableResult
    public func leftJoin<KO: Hashable, VO, VR>(_ other: Table<KO, VO>, foreignKey: @escaping @Sendable (V) throws -> KO,
                                               named: String? = nil, materializedAs: String? = nil,
                                               _ joiner: @escaping @Sendable (V, VO?) throws -> VR) -> Table<K, VR> {
        foreignKeyJoin(other, isLeftJoin: true, named: named, materializedAs: materializedAs, foreignKey: foreignKey, joiner: joiner)
    }
}
