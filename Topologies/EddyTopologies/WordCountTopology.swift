import EddyCore
import EddyStreams

/// `wordcount`: lines of text in, a running count per word out.
///
/// Input (`--input`, default `words`): values are UTF-8 lines, keys ignored. Output
/// (`--output`, default `word-counts`): key = the word in lower case (UTF-8), value = its
/// count so far as a JSON number. Words are runs of letters, digits and apostrophes. The
/// count lives in the RocksDB store `counts` (changelog `<app>-counts-changelog`); splitting
/// into words changes the key, so the records go through the repartition topic
/// `<app>-words-repartition` first.
public enum WordCountTopology {
    /// The registry entry.
    public static let registered = RegisteredTopology(
        name: "wordcount",
        summary: "running count per lower-cased word of text lines",
        options: [
            .init(name: "input", defaultValue: "words", help: "topic of text lines"),
            .init(name: "output", defaultValue: "word-counts", help: "topic of word -> count (JSON number)"),
        ],
        inputOption: "input",
        make: { try topology(input: $0["input"]!, output: $0["output"]!) })

    /// The words of `line`, lower-cased, as the topology splits them.
    public static func words(_ line: String) -> [String] {
        line.lowercased().split { !$0.isLetter && !$0.isNumber && $0 != "'" }.map(String.init)
    }

    /// The word-count topology reading `input` and writing `output`.
    public static func topology(input: String = "words", output: String = "word-counts") throws -> Topology {
        let builder = StreamsBuilder()
        builder.stream(input, key: Serdes.optional(Serdes.bytes), value: Serdes.string)
            .flatMapValues { line in words(line) }
            .groupBy(key: Serdes.string, value: Serdes.string, named: "words") { _, word in word }
            .count(materializedAs: "counts")
            .toStream()
            .to(output, key: Serdes.string, value: Serdes.optional(JSONInt64Serde()))
        return try builder.build()
    }
}
