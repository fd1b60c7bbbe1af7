import EddyCore

/// Fixed-size time windows: tumbling (advance == size) or hopping (advance < size). A record
/// at `t` belongs to every window `[start, start + size)` with `start <= t < start + size`
/// and `start` a multiple of `advance`. A window closes when stream time reaches
/// `end + grace`; records for closed windows are dropped and counted
/// (``TaskMetrics/droppedLateRecords``).
public struct TimeWindows: Hashable, Sendable {
    /// Window length in milliseconds.
    public let size: Int64
    /// Distance between window starts in milliseconds.
    public let advance: Int64
    /// How long after its end a window still accepts out-of-order records.
    public let grace: Int64

    /// Tumbling windows of `size` milliseconds with a grace period (default 0).
    public static func of(size: Int64, grace: Int64 = 0) -> TimeWindows {
        precondition(size > 0, "window size must be positive")
        precondition(grace >= 0, "grace must not be negative")
        return TimeWindows(size: size, advance: size, grace: grace)
    }

    /// Hopping windows: the same size and grace, starting every `advance` milliseconds.
    public func advance(by advance: Int64) -> TimeWindows {
        precondition(advance > 0 && advance <= size, "advance must be in 1...size")
        return TimeWindows(size: size, advance: advance, grace: grace)
    }

    /// Starts of the windows containing `timestamp`, ascending.
    /// Windows start at multiples of `advance` from 0, as in Kafka; `timestamp` must not be negative.
    @inlinable
    public func windowStarts(for timestamp: Timestamp) -> StrideThrough<Int64> {
        let lastStart = timestamp - timestamp % advance
        let lowest = timestamp - size + 1
        let firstStart = lowest <= 0 ? 0 : (lowest + advance - 1) / advance * advance
        return stride(from: firstStart, through: lastStart, by: Int(advance))
    }
}

/// Sliding windows (Kafka's KIP-450): windows of `timeDifference` milliseconds, both ends
/// inclusive, that exist only where records are: each record at `t` defines the window
/// `[t - timeDifference, t]`, and the window `[t + 1, t + 1 + timeDifference]` once a later
/// record falls in it. Each window's aggregate covers the records within it. A window closes
/// when stream time passes `end + grace`.
public struct SlidingWindows: Hashable, Sendable {
    /// The largest distance between two records of one window, in milliseconds.
    public let timeDifference: Int64
    /// How long after its end a window still accepts out-of-order records.
    public let grace: Int64
    /// Sliding windows of `timeDifference` milliseconds with a grace period (default 0).
    public static func of(timeDifference: Int64, grace: Int64 = 0) -> SlidingWindows {
        precondition(timeDifference > 0, "time difference must be positive")
        precondition(grace >= 0, "grace must not be negative")
        return SlidingWindows(timeDifference: timeDifference, grace: grace)
    }
}

/// Session windows: records of one key closer than `inactivityGap` to each other form a
/// session `[first, last]` (inclusive); a record that bridges two sessions merges them. A
/// session closes when stream time passes `end + grace`.
public struct SessionWindows: Hashable, Sendable {
    /// The largest gap between records of one session, in milliseconds.
    public let inactivityGap: Int64
    /// How long after its end a session still accepts out-of-order records.
    public let grace: Int64
    /// Session windows with an inactivity gap and a grace period (default 0).
    public static func of(inactivityGap: Int64, grace: Int64 = 0) -> SessionWindows {
        precondition(inactivityGap > 0, "inactivity gap must be positive")
        precondition(grace >= 0, "grace must not be negative")
        return SessionWindows(inactivityGap: inactivityGap, grace: grace)
    }
}

/// What a windowed aggregation sends downstream.
public enum EmitStrategy: Sendable {
    /// Every update of a window, as it happens.
    case onWindowUpdate
    /// Only the final result of each window, once it closes (stream time reaches end + grace).
    ///
    /// Tumbling and hopping windows read their closed windows back from the window store and
    /// send each final aggregate with the window's last timestamp (`end - 1`), as Kafka's
    /// KIP-825 does (Kafka uses the largest record timestamp of the window); the progress is
    /// committed with the input offsets, so each result is sent exactly once. Sliding and
    /// session windows hold their updates in a suppression buffer instead, as
    /// ``Table/suppress(_:named:)`` does.
    case onWindowClose
}
