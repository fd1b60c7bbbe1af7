import EddyCore
@testable import EddyStreams
import Testing

@Suite("Topology building and description")
struct TopologyTests {
    func buildError(_ body: (StreamsBuilder) -> Void) -> String {
        let builder = StreamsBuilder()
        body(builder)
        do {
            _ = try builder.build()
            return "built"
        } catch let error as EddyError {
            #expect(error.code == .invalidArgument)
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test("joining topics with different partition counts fails at build time naming both topics")
    func copartitioning() {
        let message = buildError { b in
            b.declareTopic("orders", partitions: 4)
            b.declareTopic("payments", partitions: 2)
            let orders = b.stream("orders", key: Serdes.string, value: Serdes.string)
            let payments = b.stream("payments", key: Serdes.string, value: Serdes.string)
            orders.join(payments, windows: .of(timeDifference: 10)) { $0 + $1 }.to("out", key: Serdes.string, value: Serdes.string)
        }
        #expect(message.contains("'orders' (4 partitions)"))
        #expect(message.contains("'payments' (2 partitions)"))
        #expect(message.contains("co-partitioned"))
        // Equal counts build.
        let builder = StreamsBuilder()
        builder.declareTopic("orders", partitions: 4)
        builder.declareTopic("users", partitions: 4)
        builder.stream("orders", key: Serdes.string, value: Serdes.string)
            .join(builder.table("users", key: Serdes.string, value: Serdes.string)) { $0 + $1 }
            .to("out", key: Serdes.string, value: Serdes.string)
        #expect(throws: Never.self) { try builder.build() }
    }

    @Test("a store name used twice fails at build time")
    func duplicateStore() {
        let message = buildError { b in
            let grouped = b.stream("in", key: Serdes.string, value: Serdes.string).groupByKey()
            grouped.count(materializedAs: "counts")
            grouped.reduce(materializedAs: "counts") { $0 + $1 }
        }
        #expect(message.contains("store name 'counts' is used twice"))
    }

    @Test("a sink that feeds its own sub-topology's source fails at build time")
    func sinkLoops() {
        let direct = buildError { b in
            b.stream("a", key: Serdes.string, value: Serdes.string).mapValues { $0 + "!" }.to("a", key: Serdes.string, value: Serdes.string)
        }
        #expect(direct.contains("sink loop"))
        #expect(direct.contains("'a'"))
        let indirect = buildError { b in
            b.stream("a", key: Serdes.string, value: Serdes.string).to("b")
            b.stream("b", key: Serdes.string, value: Serdes.string).to("a")
        }
        #expect(indirect.contains("sink loop"))
        // A chain without a cycle is fine.
        #expect(buildError { b in
            b.stream("a", key: Serdes.string, value: Serdes.string).to("b")
            b.stream("b", key: Serdes.string, value: Serdes.string).to("c")
        } == "built")
    }

    @Test("a repartition needed without serdes fails at build time with advice")
    func missingSerdes() {
        let message = buildError { b in
            b.stream("in", key: Serdes.string, value: Serdes.string)
                .map { k, v in (v, k.count) }
                .groupByKey().count()
        }
        #expect(message.contains("repartition topic"))
        #expect(message.contains("key:/value:"))
    }

    @Test("reading one topic from two sources and invalid names fail at build time")
    func sourcesAndNames() {
        #expect(buildError { b in
            b.stream("in", key: Serdes.string, value: Serdes.string).to("x")
            b.stream("in", key: Serdes.string, value: Serdes.string).to("y")
        }.contains("topic 'in' is a source of both"))
        #expect(buildError { b in
            b.stream("bad topic", key: Serdes.string, value: Serdes.string).to("x")
        }.contains("contains ' '"))
    }

    static func sample() throws -> Topology {
        let builder = StreamsBuilder()
        builder.stream("clicks", key: Serdes.string, value: Serdes.string)
            .selectKey { _, page in page }
            .groupByKey(key: Serdes.string, value: Serdes.string, named: "by-page")
            .count(materializedAs: "page-counts")
            .toStream().to("page-counts-out", key: Serdes.string, value: Serdes.optional(Serdes.int64))
        builder.globalTable("pages", key: Serdes.string, value: Serdes.string, materializedAs: "pages-store")
        return try builder.build()
    }

    @Test("describe prints sub-topologies, sources, processors, stores, sinks and internal topics as text")
    func describeText() throws {
        let text = try Self.sample().describe()
        #expect(text.contains("Sub-topology: 0"))
        #expect(text.contains("Sub-topology: 1"))
        #expect(text.contains("Source: KSTREAM-SOURCE-0000000000 (topics: [clicks])"))
        #expect(text.contains("Sink: by-page-repartition-sink (topic: by-page-repartition)"))
        #expect(text.contains("Source: by-page-repartition-source (topics: [by-page-repartition])"))
        #expect(text.contains("(stores: [page-counts])"))
        #expect(text.contains("Sink: KSTREAM-SINK-"))
        #expect(text.contains("for global store"))
        #expect(text.contains("Internal topics:\n   by-page-repartition"))
        #expect(text.contains("page-counts (key-value)"))
    }

    @Test("describe renders Graphviz DOT and Mermaid with every node, topic and store")
    func describeGraphs() throws {
        let topology = try Self.sample()
        let dot = topology.describe(.dot)
        #expect(dot.hasPrefix("digraph topology {"))
        #expect(dot.contains("subgraph cluster_0"))
        #expect(dot.contains("topic_clicks -> KSTREAM_SOURCE_0000000000"))
        #expect(dot.contains("shape=cylinder"))
        #expect(dot.hasSuffix("}\n"))
        let mermaid = topology.describe(.mermaid)
        #expect(mermaid.hasPrefix("flowchart LR"))
        #expect(mermaid.contains("subgraph S0"))
        #expect(mermaid.contains("store_page_counts[(\"page-counts\")]"))
        #expect(mermaid.contains("-.- store_page_counts"))
    }

    @Test("the topology lists its source and sink topics with internal names resolved")
    func topics() throws {
        let topology = try Self.sample()
        #expect(topology.sourceTopics(applicationID: "app").sorted() == ["app-by-page-repartition", "clicks"])
        #expect(topology.sinkTopics(applicationID: "app").sorted() == ["app-by-page-repartition", "page-counts-out"])
        #expect(topology.storeNames == ["page-counts", "pages-store"])
    }
}
