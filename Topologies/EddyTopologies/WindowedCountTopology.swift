import EddyCore
import EddyStreams

/// `windowed-count`: records counted per key in tumbling windows, each window's final count
/// sent once, when the window closes (emit-final).
///
/// Input (`--input`, default `events`): key = any UTF-8 string, value = anything (not read).
/// Records with a null key or a null value are skipped, as Kafka Streams' `count` does.
/// Windows are `[start, start + size)` with `start` a multiple of `--window-size-ms` (default
/// 60000), by record timestamp. A window closes when the stream time of its partition (the
/// largest record timestamp seen there) reaches `end + grace` (`--grace-ms`, default 10000);
/// a record for a window that has already closed is dropped and counted, never sent.
///
/// Output (`--output`, default `windowed-counts`), one record per key and window, sent when
/// the window closes:
/// - key: `{"key":"alice","start":60000,"end":120000}` (compact JSON text);
/// - value: `{"key":"alice","start":60000,"end":120000,"count":3}` (compact JSON text),
///   `start` inclusive and `end` exclusive, in milliseconds since the epoch.
///
/// The counts live in the RocksDB window store `counts` (changelog `<app>-counts-changelog`);
/// the windows waiting to close are held by the suppress node until then.
public enum WindowedCountTopology {
    /// The registry entry.
    public static let registered = RegisteredTopology(
        name: "windowed-count",
        summary: "final count per key and tumbling window, sent when the window closes",
        options: [
            .init(name: "input", defaultValue: "events", help: "topic of keyed records (values are not read)"),
            .init(name: "output", defaultValue: "windowed-counts",
                  help: "topic of {\"key\",\"start\",\"end\"} -> {\"key\",\"start\",\"end\",\"count\"} (JSON)"),
            .init(name: "window-size-ms", defaultValue: "60000", help: "window length in milliseconds (tumbling)"),
            .init(name: "grace-ms", defaultValue: "10000", help: "how long after its end a window accepts late records"),
        ],
        inputOption: "input",
        make: { options in
            try topology(input: options["input"]!, output: options["output"]!,
                         windowSizeMilliseconds: RegisteredTopology.milliseconds("window-size-ms", in: options, minimum: 1),
                         graceMilliseconds: RegisteredTopology.milliseconds("grace-ms", in: options, minimum: 0))
        })

    /// The output key of `key`'s count in `window`: `{"key":…,"start":…,"end":…}`.
    public static func outputKey(_ key: String, _ window: Window) -> String {
        JSONValue.object(members(key, window)).compactText
    }

    /// The output value: `{"key":…,"start":…,"end":…,"count":…}`.
    public static func outputValue(_ key: String, _ window: Window, count: Int64) -> String {
        JSONValue.object(members(key, window) + [("count", .number(String(count)))]).compactText
    }

    static func members(_ key: String, _ window: Window) -> [(String, JSONValue)] {
        [("key", .string(key)), ("start", .number(String(window.start))), ("end", .number(String(window.end)))]
    }

    /// The windowed-count topology reading `input` and writing `output`. Throws
    /// ``EddyError/Code/invalidArgument`` for a window size outside
    /// `1...RegisteredTopology.maximumDurationMilliseconds` or a grace outside `0...` that.
    public static func topology(input: String = "events", output: String = "windowed-counts",
                                windowSizeMilliseconds: Int64 = 60_000, graceMilliseconds: Int64 = 10_000) throws -> Topology {
        // Checked here too: TimeWindows.of stops the process on a bad size (a precondition).
        let options = ["window-size-ms": String(windowSizeMilliseconds), "grace-ms": String(graceMilliseconds)]
        let size = try RegisteredTopology.milliseconds("window-size-ms", in: options, minimum: 1)
        let grace = try RegisteredTopology.milliseconds("grace-ms", in: options, minimum: 0)
        let builder = StreamsBuilder()
        builder.stream(input, key: Serdes.string, value: Serdes.bytes)
            .groupByKey(key: Serdes.string, value: Serdes.bytes)
            .windowed(by: .of(size: size, grace: grace))
            .count(materializedAs: "counts")
            .suppress(.untilWindowCloses, named: "until-window-closes")
            .toStream()
            .filter { _, count in count != nil }
            .map { windowed, count in
                (outputKey(windowed.key, windowed.window), outputValue(windowed.key, windowed.window, count: count!))
            }
            .to(output, key: Serdes.string, value: Serdes.string)
        return try builder.build()
    }
}
