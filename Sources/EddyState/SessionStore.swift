import EddyCore

/// A session's time span, both ends inclusive (`start <= end`).
public struct SessionWindow: Hashable, Sendable {
    public var start: Timestamp
    public var end: Timestamp
    public init(start: Timestamp, end: Timestamp) {
        self.start = start
        self.end = end
    }
}

/// A value stored for a key's session.
public struct SessionEntry: Hashable, Sendable {
    public var key: [UInt8]
    public var window: SessionWindow
    public var value: [UInt8]
    public init(key: [UInt8], window: SessionWindow, value: [UInt8]) {
        self.key = key
        self.window = window
        self.value = value
    }
}

/// A store of sessions per key (Kafka Streams' `SessionStore`). Reads see uncommitted writes.
///
/// Retention works as in ``WindowStore`` on session *ends*: the stream time is the largest session
/// end written; sessions ending before `streamTime - retention + 1` are expired, and whole time
/// segments of them are dropped in bulk at the next commit.
///
/// ```swift
/// let overlapping = try sessions.findSessions(key, earliestSessionEnd: t - gap, latestSessionStart: t + gap)
/// ```
public protocol SessionStore: StateStore {
    var retentionMilliseconds: Int64 { get }
    var segmentIntervalMilliseconds: Int64 { get }
    /// The largest session end written so far (uncommitted writes included), `nil` before any.
    var observedStreamTime: Timestamp? { get }
    /// Stores `value` for the session of `key`. Ignored when the session is expired. Throws
    /// ``EddyError/Code/invalidArgument`` when `session.start > session.end`.
    func put(_ key: [UInt8], session: SessionWindow, value: [UInt8]) throws
    /// Removes the session of `key`.
    func remove(_ key: [UInt8], session: SessionWindow) throws
    /// The value of exactly this session of `key`, or `nil`.
    func fetchSession(_ key: [UInt8], session: SessionWindow) throws -> [UInt8]?
    /// Sessions of `key` with `end >= earliestSessionEnd` and `start <= latestSessionStart`
    /// (those overlapping [earliestSessionEnd, latestSessionStart]), ordered by end, then start;
    /// at most `limit`.
    func findSessions(_ key: [UInt8], earliestSessionEnd: Timestamp, latestSessionStart: Timestamp,
                      limit: Int) throws -> [SessionEntry]
    /// Every live session, ordered by time segment, key, end, start; at most `limit`.
    func all(limit: Int) throws -> [SessionEntry]
}

extension SessionStore {
    /// Sessions of `key` overlapping [earliestSessionEnd, latestSessionStart].
    public func findSessions(_ key: [UInt8], earliestSessionEnd: Timestamp,
                             latestSessionStart: Timestamp) throws -> [SessionEntry] {
        try findSessions(key, earliestSessionEnd: earliestSessionEnd, latestSessionStart: latestSessionStart, limit: .max)
    }
    /// Every live session of `key`, ordered by end, then start.
    public func fetch(_ key: [UInt8]) throws -> [SessionEntry] {
        try findSessions(key, earliestSessionEnd: .min, latestSessionStart: .max, limit: .max)
    }
    /// Every live session.
    public func all() throws -> [SessionEntry] { try all(limit: .max) }
}

/// The session logic shared by ``RocksDBSessionStore`` and ``InMemorySessionStore``.
/// Suffix times: (end, start), so segments and order follow session ends.
final class SessionLogic {
    let segments: SegmentedLogic
    var core: StoreCore { segments.core }

    init(core: StoreCore, retention: Int64, segmentInterval: Int64) throws {
        segments = try SegmentedLogic(core: core, retention: retention, segmentInterval: segmentInterval, suffixCount: 2)
    }

    var observedStreamTime: Timestamp? { segments.streamTime == .min ? nil : segments.streamTime }

    private func check(_ session: SessionWindow) throws {
        guard session.start <= session.end else {
            throw EddyError(.invalidArgument, "store \(core.name): session start \(session.start) is after its end \(session.end)")
        }
    }

    func put(_ key: [UInt8], session: SessionWindow, value: [UInt8]?) throws {
        try check(session)
        try segments.write(key, [session.end, session.start], value)
    }

    func fetchSession(_ key: [UInt8], session: SessionWindow) throws -> [UInt8]? {
        try check(session)
        return try segments.get(key, [session.end, session.start])
    }

    func findSessions(_ key: [UInt8], earliestSessionEnd: Timestamp, latestSessionStart: Timestamp,
                      limit: Int) throws -> [SessionEntry] {
        var result: [SessionEntry] = []
        guard limit > 0 else { return result }
        try segments.visit(keyFrom: key, keyTo: key, timeFrom: earliestSessionEnd, timeTo: .max) { key, suffix, value in
            if suffix[1] <= latestSessionStart {
                result.append(SessionEntry(key: key, window: SessionWindow(start: suffix[1], end: suffix[0]), value: value))
            }
            return result.count < limit
        }
        return result
    }

    func all(limit: Int) throws -> [SessionEntry] {
        var result: [SessionEntry] = []
        guard limit > 0 else { return result }
        try segments.visit(keyFrom: nil, keyTo: nil, timeFrom: .min, timeTo: .max) { key, suffix, value in
            result.append(SessionEntry(key: key, window: SessionWindow(start: suffix[1], end: suffix[0]), value: value))
            return result.count < limit
        }
        return result
    }
}
