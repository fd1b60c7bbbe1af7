import EddyCore
import EddyStreams

/// `join-clicks`: each click paired with the impressions of the same key shown within a time
/// window of it (a windowed stream–stream inner join).
///
/// Inputs, co-partitioned (the same partition count; keys partition alike on both):
/// - `--impressions` (default `impressions`): key = impression id (UTF-8), value = any JSON;
/// - `--clicks` (default `clicks`): key = the impression id clicked (UTF-8), value = any JSON.
///
/// A click at time `c` and an impression at time `i` with equal keys join when
/// `|c - i| <= --window-ms` (default 60000). A record arriving when the stream time of its
/// partition has passed its timestamp + window + grace (`--grace-ms`, default 10000) is too
/// late: dropped and counted. Clicks with no impression (and impressions never clicked) send
/// nothing.
///
/// Output (`--output`, default `clicks-with-impressions`): one record per joined pair, sent as
/// soon as its second record arrives, with key = the impression id, timestamp = the later of
/// the two, value = `{"impression":<impression JSON>,"click":<click JSON>}` (compact JSON).
/// A click within the window of two impressions with its key gives two records.
///
/// Records with a null key or value are skipped; a value that is not JSON is a
/// deserialization error (the worker stops and names the topic, partition and offset).
public enum JoinClicksTopology {
    /// The registry entry.
    public static let registered = RegisteredTopology(
        name: "join-clicks",
        summary: "clicks paired with the impressions of the same id within a time window (stream-stream join)",
        options: [
            .init(name: "impressions", defaultValue: "impressions", help: "topic of impressions: impression id -> JSON"),
            .init(name: "clicks", defaultValue: "clicks", help: "topic of clicks: impression id -> JSON"),
            .init(name: "output", defaultValue: "clicks-with-impressions",
                  help: "topic of impression id -> {\"impression\",\"click\"} (JSON)"),
            .init(name: "window-ms", defaultValue: "60000", help: "largest time between a click and its impression, either way"),
            .init(name: "grace-ms", defaultValue: "10000", help: "how long after the window out-of-order records still join"),
        ],
        inputOption: "clicks",
        make: { options in
            try topology(impressions: options["impressions"]!, clicks: options["clicks"]!, output: options["output"]!,
                         windowMilliseconds: RegisteredTopology.milliseconds("window-ms", in: options, minimum: 0),
                         graceMilliseconds: RegisteredTopology.milliseconds("grace-ms", in: options, minimum: 0))
        })

    /// The output value of a joined pair: `{"impression":…,"click":…}`.
    static func pair(impression: JSONValue, click: JSONValue) -> JSONValue {
        .object([("impression", impression), ("click", click)])
    }

    /// The join topology reading `impressions` and `clicks` and writing `output`. Throws
    /// ``EddyError/Code/invalidArgument`` for a window or grace outside
    /// `0...RegisteredTopology.maximumDurationMilliseconds`.
    public static func topology(impressions: String = "impressions", clicks: String = "clicks",
                                output: String = "clicks-with-impressions",
                                windowMilliseconds: Int64 = 60_000, graceMilliseconds: Int64 = 10_000) throws -> Topology {
        // Checked here too: JoinWindows.of stops the process on a negative duration (a precondition).
        let options = ["window-ms": String(windowMilliseconds), "grace-ms": String(graceMilliseconds)]
        let window = try RegisteredTopology.milliseconds("window-ms", in: options, minimum: 0)
        let grace = try RegisteredTopology.milliseconds("grace-ms", in: options, minimum: 0)
        let builder = StreamsBuilder()
        let impressionStream = builder.stream(impressions, key: Serdes.string, value: JSONValueSerde())
        builder.stream(clicks, key: Serdes.string, value: JSONValueSerde())
            .join(impressionStream, windows: .of(timeDifference: window, grace: grace), named: "click-impression") { click, impression in
                pair(impression: impression, click: click)
            }
            .to(output, key: Serdes.string, value: JSONValueSerde())
        return try builder.build()
    }
}
