extension Topology {
    /// A description's format.
    public enum DescriptionFormat: Sendable {
        /// Kafka Streams' `TopologyDescription` text.
        case text
        /// Graphviz DOT (`dot -Tsvg`).
        case dot
        /// A Mermaid flowchart.
        case mermaid
    }

    private func shortName(_ topic: String) -> String {
        topic.hasPrefix(Topology.internalPrefix) ? String(topic.dropFirst(Topology.internalPrefix.count)) : topic
    }

    private var describedSubtopologies: [(label: String, sub: Subtopology)] {
        var list = subtopologies.map { ("Sub-topology: \($0.id)", $0) }
        if let g = globalSubtopology { list.append(("Sub-topology: \(subtopologies.count) for global store (will not generate tasks)", g)) }
        return list
    }

    /// Describes sub-topologies, their sources, processors, stores and sinks, and the internal
    /// topics, in `format`. Internal topic names are shown without the application-id prefix.
    public func describe(_ format: DescriptionFormat = .text) -> String {
        switch format {
        case .text: return describeText()
        case .dot: return describeDOT()
        case .mermaid: return describeMermaid()
        }
    }

    private func describeText() -> String {
        var out = "Topologies:\n"
        for (label, sub) in describedSubtopologies {
            out += "   \(label)\n"
            for i in sub.nodes {
                let n = nodes[i]
                switch n.kind {
                case .source(let topics, _):
                    out += "    Source: \(n.name) (topics: [\(topics.map(shortName).joined(separator: ", "))])\n"
                case .processor:
                    out += "    Processor: \(n.name) (stores: [\(n.stores.joined(separator: ", "))])\n"
                case .sink(let topic):
                    out += "    Sink: \(n.name) (topic: \(topic.map(shortName) ?? "chosen per record"))\n"
                }
                if !n.children.isEmpty { out += "      --> \(n.children.joined(separator: ", "))\n" }
                if !n.parents.isEmpty { out += "      <-- \(n.parents.joined(separator: ", "))\n" }
            }
            out += "\n"
        }
        if !internalTopics.isEmpty {
            out += "Internal topics:\n"
            for t in internalTopics.values.sorted(by: { $0.name < $1.name }) {
                out += "   \(t.name) (partitions: \(t.partitionCount.map(String.init) ?? "as input"))\n"
            }
        }
        if !stores.isEmpty {
            out += "Stores:\n"
            for s in stores.values.sorted(by: { $0.name < $1.name }) {
                // Stores with a persistent variant are logged by the runtime (internal names
                // are shown without the application id, like internal topics).
                let changelog = s.persistent == nil ? "" : " changelog: <application>-\(s.name)-changelog"
                out += "   \(s.name) (\(s.kind.rawValue))\(changelog)\n"
            }
        }
        return out
    }

    private func id(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    private func describeDOT() -> String {
        var out = "digraph topology {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n"
        var topics: Set<String> = []
        var storesSeen: Set<String> = []
        for (label, sub) in describedSubtopologies {
            out += "  subgraph cluster_\(sub.id < 0 ? "global" : String(sub.id)) {\n    label=\"\(label)\";\n"
            for i in sub.nodes {
                let n = nodes[i]
                let shape: String
                switch n.kind {
                case .source: shape = "invhouse"
                case .processor: shape = "box"
                case .sink: shape = "house"
                }
                out += "    \(id(n.name)) [label=\"\(n.name)\", shape=\(shape)];\n"
            }
            out += "  }\n"
            for i in sub.nodes {
                let n = nodes[i]
                for c in n.children { out += "  \(id(n.name)) -> \(id(c));\n" }
                switch n.kind {
                case .source(let ts, _):
                    for t in ts { topics.insert(t); out += "  \(id("topic_" + t)) -> \(id(n.name));\n" }
                case .sink(let t?):
                    topics.insert(t); out += "  \(id(n.name)) -> \(id("topic_" + t));\n"
                default: break
                }
                for s in n.stores {
                    storesSeen.insert(s)
                    out += "  \(id(n.name)) -> \(id("store_" + s)) [dir=both, style=dashed];\n"
                }
            }
        }
        for t in topics.sorted() { out += "  \(id("topic_" + t)) [label=\"\(shortName(t))\", shape=cds];\n" }
        for s in storesSeen.sorted() { out += "  \(id("store_" + s)) [label=\"\(s)\", shape=cylinder];\n" }
        out += "}\n"
        return out
    }

    private func describeMermaid() -> String {
        var out = "flowchart LR\n"
        var topics: Set<String> = []
        var storesSeen: Set<String> = []
        var edges: [String] = []
        for (label, sub) in describedSubtopologies {
            out += "  subgraph S\(sub.id < 0 ? "global" : String(sub.id))[\"\(label)\"]\n"
            for i in sub.nodes {
                let n = nodes[i]
                switch n.kind {
                case .source: out += "    \(id(n.name))[/\"\(n.name)\"/]\n"
                case .processor: out += "    \(id(n.name))[\"\(n.name)\"]\n"
                case .sink: out += "    \(id(n.name))[\\\"\(n.name)\"\\]\n"
                }
                for c in n.children { edges.append("  \(id(n.name)) --> \(id(c))") }
                switch n.kind {
                case .source(let ts, _):
                    for t in ts { topics.insert(t); edges.append("  \(id("topic_" + t)) --> \(id(n.name))") }
                case .sink(let t?):
                    topics.insert(t); edges.append("  \(id(n.name)) --> \(id("topic_" + t))")
                default: break
                }
                for s in n.stores { storesSeen.insert(s); edges.append("  \(id(n.name)) -.- \(id("store_" + s))") }
            }
            out += "  end\n"
        }
        for t in topics.sorted() { out += "  \(id("topic_" + t))>\"\(shortName(t))\"]\n" }
        for s in storesSeen.sorted() { out += "  \(id("store_" + s))[(\"\(s)\")]\n" }
        out += edges.joined(separator: "\n") + "\n"
        return out
    }
}
