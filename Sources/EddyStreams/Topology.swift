import EddyCore

/// A processing topology: what the DSL (``StreamsBuilder``) produces and what the runtime and
/// the ``TopologyTestDriver`` consume. A value: it starts no thread and touches no disk, and one
/// topology can be run by many tasks and threads at once (each builds its own nodes and stores).
///
/// Node names follow Kafka Streams (`KSTREAM-FILTER-0000000001`) unless given with `named:`.
/// Internal topics (repartition topics) are named `<applicationID>-<name>` in the log; the
/// topology keeps the short `<name>` (see ``internalTopics``).
public struct Topology: Sendable {
    /// One node of the graph.
    ///
    /// `@unchecked Sendable` because `make` is not marked `@Sendable`: it captures only
    /// `Sendable` values (the user's `@Sendable` closures, serdes, names) and generic
    /// metatypes, whose conformances Eddy never isolates to an actor. Marking it `@Sendable`
    /// would make the compiler demand `SendableMetatype` on every generic parameter of the DSL.
    struct Node: @unchecked Sendable {
        enum Kind: Sendable {
            case source(topics: [String], extractor: TimestampExtractor?)
            case processor
            case sink(topic: String?)
        }
        var name: String
        var kind: Kind
        var parents: [String]
        var children: [String] = []
        var stores: [String]
        /// Nodes of global tables run in the global sub-topology.
        var isGlobal: Bool
        /// Builds the runtime node for one task, given its children's runtime nodes.
        var make: ([AnyObject]) throws -> any RuntimeNode
    }

    /// A store declaration: its name, kind and how each task makes its own instance.
    /// `@unchecked Sendable` for the reason given at ``Node``.
    struct Store: @unchecked Sendable {
        var name: String
        var kind: StoreKind
        var make: () -> any TaskStore
        /// Opens the persistent variant, when the store's serdes are known.
        var persistent: StorePersistence.Factory?
    }

    /// A connected part of the graph: its tasks are (sub-topology, partition).
    public struct Subtopology: Sendable {
        /// Position in ``Topology/subtopologies``.
        public var id: Int
        /// Node indices in topological order (parents first).
        var nodes: [Int]
        /// Topics read (short names for internal topics).
        public var sourceTopics: [String]
        /// Topics written by fixed-topic sinks.
        public var sinkTopics: [String]
        /// Stores used by the sub-topology's nodes.
        public var stores: [String]
    }

    /// An internal topic the runtime must create: name (without the application-id prefix)
    /// and partition count (`nil`: the count of the upstream source topics).
    public struct InternalTopic: Hashable, Sendable {
        /// The name without the application-id prefix.
        public var name: String
        /// The partition count, when fixed by the topology.
        public var partitionCount: Int?
        /// When set, the topic takes the partition count of this (user) topic: the foreign-key
        /// join's subscription and response topics follow the tables they are joined with.
        public var partitionCountLike: String? = nil
        /// True for the foreign-key join's response topic: it leads back to the sub-topology
        /// that subscribed, by design (one response per subscription), so it is not a sink loop.
        public var isResponse: Bool = false
    }

    var nodes: [Node]
    var stores: [String: Store]
    /// The sub-topologies that tasks run, in order of their first source.
    public internal(set) var subtopologies: [Subtopology]
    /// The global sub-topology (global tables), if any: one instance reads all partitions.
    public internal(set) var globalSubtopology: Subtopology?
    /// Repartition topics, by short name.
    public internal(set) var internalTopics: [String: InternalTopic]
    /// Partition counts the builder was told about (``StreamsBuilder/declareTopic(_:partitions:)``).
    public internal(set) var declaredPartitionCounts: [String: Int]
    /// Groups of topics that must have the same partition count (inputs of joins and of
    /// stateful operators), checked again by the runtime against the log's metadata.
    public internal(set) var copartitionGroups: [[String]]

    /// The log name of topology topic `name`: internal topics get `<applicationID>-` in front.
    static func resolve(_ name: String, applicationID: String) -> String {
        name.hasPrefix(internalPrefix) ? applicationID + "-" + name.dropFirst(internalPrefix.count) : name
    }
    /// Marks internal topic names inside the topology until the application id is known.
    static let internalPrefix = "$app-"

    /// Every source topic of the non-global sub-topologies (log names given the application id).
    public func sourceTopics(applicationID: String) -> [String] {
        subtopologies.flatMap(\.sourceTopics).map { Topology.resolve($0, applicationID: applicationID) }
    }
    /// Every topic written by a fixed-topic sink (log names given the application id).
    public func sinkTopics(applicationID: String) -> [String] {
        subtopologies.flatMap(\.sinkTopics).map { Topology.resolve($0, applicationID: applicationID) }
    }
    /// The names of every store.
    public var storeNames: [String] { stores.keys.sorted() }
}

// MARK: - Building the sub-topologies and checking the graph

extension Topology {
    /// Checks the graph and splits it. Throws ``EddyError/Code/invalidArgument`` for a store
    /// used by nodes of different sub-topologies that cannot be merged, a sink loop, or
    /// mismatched co-partitioning.
    static func assemble(nodes input: [Node], stores: [String: Store], internalTopics: [String: InternalTopic],
                         declared: [String: Int], copartitionGroups: [[String]]) throws -> Topology {
        var nodes = input
        var index: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            if index[n.name] != nil {
                throw EddyError(.invalidArgument, "invalid topology: the node name '\(n.name)' is used twice")
            }
            index[n.name] = i
        }
        for i in nodes.indices {
            for p in nodes[i].parents {
                guard let pi = index[p] else {
                    throw EddyError(.invalidArgument, "invalid topology: node '\(nodes[i].name)' has an unknown parent '\(p)'")
                }
                nodes[pi].children.append(nodes[i].name)
            }
            for s in nodes[i].stores where stores[s] == nil {
                throw EddyError(.invalidArgument, "invalid topology: node '\(nodes[i].name)' uses store '\(s)', which is not declared")
            }
        }
        // Union-find over parent edges and shared stores.
        var parent = Array(nodes.indices)
        func find(_ x: Int) -> Int {
            var x = x
            while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }
            return x
        }
        func union(_ a: Int, _ b: Int) { let ra = find(a), rb = find(b); if ra != rb { parent[max(ra, rb)] = min(ra, rb) } }
        var storeOwner: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for p in n.parents { union(i, index[p]!) }
            for s in n.stores {
                if let o = storeOwner[s] { union(i, o) } else { storeOwner[s] = i }
            }
        }
        var groups: [Int: [Int]] = [:]
        var groupOrder: [Int] = []
        for i in nodes.indices {
            let r = find(i)
            if groups[r] == nil { groupOrder.append(r) }
            groups[r, default: []].append(i)
        }
        var subs: [Subtopology] = []
        var global: Subtopology? = nil
        for r in groupOrder {
            let members = groups[r]!
            var sources: [String] = [], sinks: [String] = [], storeNames: [String] = []
            for i in members {
                switch nodes[i].kind {
                case .source(let topics, _): sources += topics
                case .sink(let topic?): sinks.append(topic)
                default: break
                }
                for s in nodes[i].stores where !storeNames.contains(s) { storeNames.append(s) }
            }
            let isGlobal = members.contains { nodes[$0].isGlobal }
            let sub = Subtopology(id: isGlobal ? -1 : subs.count, nodes: members, sourceTopics: sources,
                                  sinkTopics: sinks, stores: storeNames)
            if isGlobal {
                if var g = global {
                    g.nodes += sub.nodes; g.sourceTopics += sub.sourceTopics; g.stores += sub.stores
                    global = g
                } else {
                    global = sub
                }
            } else {
                subs.append(sub)
            }
        }
        // A topic read by more than one sub-topology would be processed twice per partition.
        var readBy: [String: Int] = [:]
        for s in subs {
            for t in s.sourceTopics {
                if let other = readBy[t], other != s.id {
                    throw EddyError(.invalidArgument, "invalid topology: topic '\(t)' is read by sources of sub-topologies \(other) and \(s.id); read it once and branch the stream instead")
                }
                readBy[t] = s.id
            }
        }
        // Sink loops: following topics from sinks to the sub-topologies that read them must
        // never come back to where it started.
        var edges: [Int: Set<Int>] = [:]
        var viaTopic: [String: String] = [:]
        let responseTopics = Set(internalTopics.values.filter(\.isResponse).map { internalPrefix + $0.name })
        for s in subs {
            for t in s.sinkTopics where !responseTopics.contains(t) {
                if let reader = readBy[t] {
                    edges[s.id, default: []].insert(reader)
                    viaTopic["\(s.id)->\(reader)"] = t
                }
            }
        }
        var stateOf: [Int: Int] = [:]  // 1 visiting, 2 done
        func visit(_ v: Int, path: [Int]) throws {
            stateOf[v] = 1
            for w in (edges[v] ?? []).sorted() {
                if stateOf[w] == 1 {
                    let cycle = path + [v, w]
                    let start = cycle.firstIndex(of: w)!
                    var topics: [String] = []
                    for k in start..<(cycle.count - 1) { topics.append(viaTopic["\(cycle[k])->\(cycle[k + 1])"] ?? "?") }
                    let shown = topics.map { $0.hasPrefix(internalPrefix) ? String($0.dropFirst(internalPrefix.count)) : $0 }
                    throw EddyError(.invalidArgument, "invalid topology: sink loop: records written to topic(s) \(shown.map { "'\($0)'" }.joined(separator: ", ")) are read back by the sub-topology that wrote them")
                }
                if stateOf[w] == nil { try visit(w, path: path + [v]) }
            }
            stateOf[v] = 2
        }
        for s in subs where stateOf[s.id] == nil { try visit(s.id, path: []) }

        // Co-partitioning: known partition counts in a group must agree.
        var counts = declared
        // Repartition topics with a fixed count are known too.
        for t in internalTopics.values { if let c = t.partitionCount { counts[internalPrefix + t.name] = c } }
        for group in copartitionGroups {
            let known = group.compactMap { t in counts[t].map { (t, $0) } }
            if Set(known.map(\.1)).count > 1 {
                let list = known.map { "'\($0.0.hasPrefix(internalPrefix) ? String($0.0.dropFirst(internalPrefix.count)) : $0.0)' (\($0.1) partitions)" }
                throw EddyError(.invalidArgument, "invalid topology: topics \(list.joined(separator: ", ")) must be co-partitioned (have the same number of partitions) because they are joined or aggregated together; repartition one of them")
            }
        }
        return Topology(nodes: nodes, stores: stores, subtopologies: subs, globalSubtopology: global,
                        internalTopics: internalTopics, declaredPartitionCounts: declared,
                        copartitionGroups: copartitionGroups)
    }
}
