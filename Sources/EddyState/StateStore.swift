import EddyCore

/// Limits on what applications put into stores. Exceeding one throws
/// ``EddyError/Code/recordTooLarge`` and writes nothing.
public enum StateLimits {
    /// Largest key, in bytes.
    public static let maximumKeyBytes = 1 << 20
    /// Largest value, in bytes (the largest record a topic may be configured to take).
    public static let maximumValueBytes = Limits.maximumRecordBytesCeiling

    /// Throws ``EddyError/Code/recordTooLarge``, naming `store`, when `key` or `value` exceeds
    /// its limit. Stores check every write; layers that buffer writes above a store check
    /// when they take the write, so the record that caused it fails.
    public static func check(key: [UInt8], value: [UInt8]?, store: String) throws {
        try check(keyBytes: key.count, valueBytes: value?.count, store: store)
    }
    /// ``check(key:value:store:)`` by sizes (`valueBytes` nil: a delete).
    public static func check(keyBytes: Int, valueBytes: Int?, store: String) throws {
        if keyBytes > maximumKeyBytes {
            throw EddyError(.recordTooLarge, "store \(store): key of \(keyBytes) bytes exceeds StateLimits.maximumKeyBytes (\(maximumKeyBytes))")
        }
        if let valueBytes, valueBytes > maximumValueBytes {
            throw EddyError(.recordTooLarge, "store \(store): value of \(valueBytes) bytes exceeds StateLimits.maximumValueBytes (\(maximumValueBytes))")
        }
    }
}

/// What every state store offers: a name, an optional changelog, and the commit protocol.
///
/// Writes go to an uncommitted write buffer that the store's reads see. A commit is:
///
/// 1. ``prepareCommit(producer:timestamp:)``: a logged store sends the latest value of every
///    changed key (a tombstone for a delete) to its changelog partition;
/// 2. the caller flushes the producer, or commits its transaction (the runtime decides which);
/// 3. ``commit()``: the buffer and the changelog offset the store is now complete up to (its
///    ``checkpoint``) are applied in one atomic step (one RocksDB `WriteBatch`).
///
/// A crash between 2 and 3 loses nothing: at start-up ``StateRestorer`` replays the changelog
/// from the checkpoint. ``abort()`` drops the buffer. An unlogged store only needs ``commit()``.
///
/// Stores are confined to one thread (the task's), like the producer they log through.
public protocol StateStore: AnyObject {
    /// The store's name (`[a-zA-Z0-9._-]`, also part of its changelog topic's name).
    var name: String { get }
    /// The changelog partition, or `nil` for an unlogged store.
    var changelog: TopicPartition? { get }
    /// The changelog offset the committed data is complete up to (the next offset to replay),
    /// or `nil` when nothing was ever committed or restored.
    var checkpoint: Offset? { get }
    /// True when the write buffer holds changes not yet committed.
    var hasUncommittedChanges: Bool { get }
    /// Sends the buffered changes to the changelog through `producer` (no-op when unlogged).
    /// Afterwards, until ``commit()`` or ``abort()``, writes throw ``EddyError/Code/invalidState``.
    /// - Parameter timestamp: the changelog records' timestamp; `nil` lets the producer stamp them.
    func prepareCommit(producer: any LogProducer, timestamp: Timestamp?) throws
    /// Applies the write buffer and the new checkpoint atomically. Throws
    /// ``EddyError/Code/invalidState`` if a logged store's changes were not sent with
    /// ``prepareCommit(producer:timestamp:)`` or are not acknowledged yet, and the changelog's
    /// error if a record failed; the buffer is then kept, and the caller should abort.
    func commit() throws
    /// Drops the write buffer.
    func abort()
    /// Drops uncommitted changes and releases the store. Later calls throw ``EddyError/Code/closed``.
    func close()
}

extension StateStore {
    /// Steps 1–3 of the commit protocol for a non-transactional producer: sends the changelog,
    /// flushes `producer`, commits.
    public func commit(flushing producer: any LogProducer) throws {
        try prepareCommit(producer: producer, timestamp: nil)
        try producer.flush()
        try commit()
    }
}

/// Names of state-related topics.
public enum ChangelogTopic {
    /// `<application>-<store>-changelog`, the compacted topic a logged store writes to.
    public static func name(application: String, store: String) -> String {
        "\(application)-\(store)-changelog"
    }
}

/// A key and its value.
public struct KeyValue: Hashable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// Stores that ``StateRestorer`` can fill from a changelog. Every store of this module conforms.
protocol RestorableStore: StateStore {
    var core: StoreCore { get }
    /// Turns a changelog record into a change of internal keys; `nil` skips it (e.g. a window
    /// already past retention when restored).
    func restoreChange(_ record: ConsumerRecord) throws -> KeyChange?
    /// Metadata to record when a restore finishes (e.g. the stream time seen).
    func restoreMetadata() -> [String: Int64]
    /// Called after a restore or a clear, to reload cached committed state.
    func reloadAfterRestore() throws
}
