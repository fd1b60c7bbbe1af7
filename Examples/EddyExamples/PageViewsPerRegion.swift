import Eddy

/// Page views per region: a stream of page views (key: user id) enriched with each user's
/// region from a table (a stream–table join), then counted per region in one-minute tumbling
/// windows, each window's final count sent once it closes.
///
/// Inputs: `page-views` (key: user id, value: `PageView` JSON) and `user-regions` (key: user
/// id, value: region name; a tombstone removes the user). Output `views-per-region` (key:
/// `region@windowStart`, value: the final count, 8 bytes big-endian). Views of users with no
/// region count under `unknown`.
public enum PageViewsPerRegion {
    public struct PageView: Codable, Hashable, Sendable {
        public var page: String
        public init(page: String) { self.page = page }
    }

    public static let views = "page-views"
    public static let regions = "user-regions"
    public static let output = "views-per-region"
    public static let windowSize: Int64 = 60_000
    public static let grace: Int64 = 10_000

    /// The topology.
    public static func topology() throws -> Topology {
        let builder = StreamsBuilder()
        let regions = builder.table(regions, key: Serdes.string, value: Serdes.string, materializedAs: "user-regions")
        builder.stream(views, key: Serdes.string, value: Serdes.json(PageView.self))
            .leftJoin(regions) { _, region in region ?? "unknown" }
            .selectKey { _, region in region }
            .groupByKey(key: Serdes.string, value: Serdes.string, named: "by-region")
            .windowed(by: .of(size: windowSize, grace: grace))
            .emit(.onWindowClose)
            .count(materializedAs: "views-per-region")
            .toStream()
            .map { windowed, count in ("\(windowed.key)@\(windowed.window.start)", count ?? 0) }
            .to(output, key: Serdes.string, value: Serdes.int64)
        return try builder.build()
    }
}
