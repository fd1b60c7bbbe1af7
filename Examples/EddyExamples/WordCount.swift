import Eddy

/// Word count: lines of text in, a running count per word out.
///
/// Input `lines` (no key, UTF-8 text); output `word-counts` (key: the word in lower case,
/// value: its count so far, 8 bytes big-endian). The count is kept in the store `word-counts`.
/// Splitting into words changes the key, so the topology repartitions by word before counting.
public enum WordCount {
    public static let input = "lines"
    public static let output = "word-counts"
    public static let store = "word-counts"

    /// The word-count topology.
    public static func topology(input: String = input, output: String = output) throws -> Topology {
        let builder = StreamsBuilder()
        builder.stream(input, key: Serdes.optional(Serdes.string), value: Serdes.string)
            .flatMapValues { line in
                line.lowercased().split { !$0.isLetter && !$0.isNumber && $0 != "'" }.map(String.init)
            }
            .groupBy(key: Serdes.string, value: Serdes.string, named: "words") { _, word in word }
            .count(materializedAs: store)
            .toStream()
            .to(output, key: Serdes.string, value: Serdes.optional(Serdes.int64))
        return try builder.build()
    }
}
