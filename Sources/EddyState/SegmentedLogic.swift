import EddyCore

/// The layout shared by window and session stores, and their retention.
///
/// Internal key: `segment(8) · escaped key · suffix times (8 each)`, where the segment is
/// `floor(time / segmentInterval)` of the first suffix time (a window's start, a session's end)
/// and every integer is order-preserving (``ByteKeys/appendOrdered(_:to:)``). So one key's
/// entries in one segment are contiguous and sorted by time, and expiring a whole segment is one
/// range deletion (RocksDB `DeleteRange`; a bulk removal in memory), never key by key.
///
/// The changelog key is `key · suffix times`; the segment is recomputed on restore.
///
/// Stream time is the largest first-suffix time written. Entries whose time is below
/// `streamTime - retention + 1` are expired: writes of them are ignored, reads skip them, and
/// segments wholly below it are deleted at the next commit.
final class SegmentedLogic {
    let core: StoreCore
    let retention: Int64
    let segmentInterval: Int64
    let suffixCount: Int
    private(set) var streamTime: Timestamp = .min
    private var committedStreamTime: Timestamp = .min
    private var droppedBelowSegment: Int64 = .min
    private var committedDroppedBelowSegment: Int64 = .min
    private var restoredStreamTime: Timestamp = .min

    init(core: StoreCore, retention: Int64, segmentInterval: Int64, suffixCount: Int) throws {
        guard retention > 0 else {
            throw EddyError(.invalidArgument, "store \(core.name): retention must be positive, got \(retention) ms")
        }
        guard segmentInterval > 0 else {
            throw EddyError(.invalidArgument, "store \(core.name): segment interval must be positive, got \(segmentInterval) ms")
        }
        self.core = core
        self.retention = retention
        self.segmentInterval = segmentInterval
        self.suffixCount = suffixCount
        try reload()
        // unowned: the logic owns the core, so the core never outlives it.
        core.toChangelogKey = { [unowned self] in try self.toChangelogKey($0) }
    }

    /// Reads the committed stream time (after open, restore or clear).
    func reload() throws {
        streamTime = try core.committedMetadata("streamTime") ?? .min
        committedStreamTime = streamTime
        droppedBelowSegment = streamTime == .min ? .min : segment(of: minimumLiveTime)
        committedDroppedBelowSegment = droppedBelowSegment
    }

    func segment(of time: Timestamp) -> Int64 {
        let (quotient, remainder) = time.quotientAndRemainder(dividingBy: segmentInterval)
        return remainder < 0 ? quotient - 1 : quotient
    }

    /// The oldest live time: `streamTime - retention + 1` (``Int64/min`` before any write).
    var minimumLiveTime: Timestamp {
        guard streamTime != .min else { return .min }
        let (value, overflow) = streamTime.subtractingReportingOverflow(retention - 1)
        return overflow ? .min : value
    }

    func internalKey(_ key: [UInt8], _ suffix: [Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + key.count + 2 + 8 * suffix.count)
        ByteKeys.appendOrdered(segment(of: suffix[0]), to: &bytes)
        ByteKeys.appendEscaped(key, to: &bytes)
        for time in suffix { ByteKeys.appendOrdered(time, to: &bytes) }
        return bytes
    }

    func decode(_ internalKey: [UInt8]) throws -> (key: [UInt8], suffix: [Int64]) {
        guard internalKey.count >= 8 + 2 + 8 * suffixCount else {
            throw EddyError(.corrupt, "store \(core.name): internal key of \(internalKey.count) bytes is too short")
        }
        let (key, next) = try ByteKeys.readEscaped(internalKey, at: 8)
        guard internalKey.count == next + 8 * suffixCount else {
            throw EddyError(.corrupt, "store \(core.name): internal key has \(internalKey.count - next) suffix bytes, expected \(8 * suffixCount)")
        }
        return (key, (0..<suffixCount).map { ByteKeys.readOrdered(internalKey, at: next + 8 * $0) })
    }

    func toChangelogKey(_ internalKey: [UInt8]) throws -> [UInt8] {
        let (key, suffix) = try decode(internalKey)
        var bytes = key
        for time in suffix { ByteKeys.appendOrdered(time, to: &bytes) }
        return bytes
    }

    func fromChangelogKey(_ changelogKey: [UInt8]) throws -> (key: [UInt8], suffix: [Int64]) {
        let keyLength = changelogKey.count - 8 * suffixCount
        guard keyLength >= 0 else {
            throw EddyError(.corrupt, "store \(core.name): changelog key of \(changelogKey.count) bytes is too short")
        }
        return (Array(changelogKey[..<keyLength]), (0..<suffixCount).map { ByteKeys.readOrdered(changelogKey, at: keyLength + 8 * $0) })
    }

    /// Writes (or with `nil` removes) an entry. Returns false, writing nothing, when it is expired.
    @discardableResult
    func write(_ key: [UInt8], _ suffix: [Int64], _ value: [UInt8]?) throws -> Bool {
        try StateLimits.check(key: key, value: value, store: core.name)
        let time = suffix[0]
        if time > streamTime {
            try core.setMetadata("streamTime", time)
            streamTime = time
            try expireSegments()
        }
        guard time >= minimumLiveTime else { return false }
        try core.put(internalKey(key, suffix), value)
        return true
    }

    private func expireSegments() throws {
        let live = segment(of: minimumLiveTime)
        guard live > droppedBelowSegment else { return }
        var from: [UInt8] = [], to: [UInt8] = []
        ByteKeys.appendOrdered(.min, to: &from)
        ByteKeys.appendOrdered(live, to: &to)
        try core.deleteRange(from: from, to: to)
        droppedBelowSegment = live
    }

    func get(_ key: [UInt8], _ suffix: [Int64]) throws -> [UInt8]? {
        guard suffix[0] >= minimumLiveTime else { return nil }
        return try core.get(internalKey(key, suffix))
    }

    /// Visits live entries whose key is in [keyFrom, keyTo] (`nil`: unbounded; equal for one key)
    /// and whose first suffix time is in [timeFrom, timeTo], segment by segment, within a segment
    /// by key then times, until `body` returns false. Empty segments are skipped with one seek
    /// each, so wide time ranges cost nothing extra.
    func visit(keyFrom: [UInt8]?, keyTo: [UInt8]?, timeFrom: Timestamp, timeTo: Timestamp,
               _ body: (_ key: [UInt8], _ suffix: [Int64], _ value: [UInt8]) throws -> Bool) throws {
        let low = max(timeFrom, minimumLiveTime)
        guard low <= timeTo, streamTime != .min else { return }
        if let keyFrom, let keyTo, ByteKeys.compare(keyFrom, keyTo) > 0 { return }
        let singleKey = keyFrom != nil && keyTo != nil && keyFrom! == keyTo!
        let lastSegment = segment(of: min(timeTo, streamTime))
        var current: Int64? = segment(of: low)
        while let seg = current, seg <= lastSegment {
            var lower: [UInt8] = []
            ByteKeys.appendOrdered(seg, to: &lower)
            var upper: [UInt8]? = lower
            if let keyFrom {
                ByteKeys.appendEscaped(keyFrom, to: &lower)
                if singleKey { ByteKeys.appendOrdered(low, to: &lower) }
            }
            if let keyTo {
                ByteKeys.appendEscapedEnd(keyTo, to: &upper!)
            } else {
                upper = ByteKeys.prefixEnd(upper!)
            }
            var stopped = false
            try core.scan(from: lower, to: upper, reverse: false) { internalKey, value in
                let (key, suffix) = try decode(internalKey)
                if suffix[0] > timeTo {
                    return !singleKey  // one key's entries are time-ordered: nothing later matches
                }
                if suffix[0] < low { return true }
                if try !body(key, suffix, value) { stopped = true; return false }
                return true
            }
            if stopped || seg == .max { return }
            // Seek to the next segment that has data.
            var next: [UInt8] = []
            ByteKeys.appendOrdered(seg + 1, to: &next)
            current = nil
            try core.scan(from: next, to: nil, reverse: false) { internalKey, _ in
                current = ByteKeys.readOrdered(internalKey, at: 0)
                return false
            }
        }
    }

    func commit() throws {
        try core.commit()
        committedStreamTime = streamTime
        committedDroppedBelowSegment = droppedBelowSegment
    }

    func abort() {
        core.abort()
        streamTime = committedStreamTime
        droppedBelowSegment = committedDroppedBelowSegment
    }

    // MARK: Restoration

    func restoreChange(_ record: ConsumerRecord) throws -> KeyChange? {
        guard let changelogKey = record.key else { return nil }
        let (key, suffix) = try fromChangelogKey(changelogKey)
        restoredStreamTime = max(restoredStreamTime, suffix[0])
        let (live, overflow) = restoredStreamTime.subtractingReportingOverflow(retention - 1)
        if !overflow && suffix[0] < live { return nil }
        return (internalKey(key, suffix), record.value)
    }

    func restoreMetadata() -> [String: Int64] {
        let time = max(restoredStreamTime, streamTime)
        return time == .min ? [:] : ["streamTime": time]
    }

    /// After a restore: reload the stream time and drop segments the restored data made expired.
    func reloadAfterRestore() throws {
        restoredStreamTime = .min
        try reload()
        droppedBelowSegment = .min  // restored data may lie in segments that are now expired
        try expireSegments()
        try commit()
    }
}
