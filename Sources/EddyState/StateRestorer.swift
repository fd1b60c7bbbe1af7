import EddyCore

/// Progress of a restoration, reported after every batch.
public struct RestoreProgress: Hashable, Sendable {
    /// The store being restored.
    public var store: String
    public var changelog: TopicPartition
    /// The offset the restore started from and the end offset it runs to.
    public var startOffset: Offset
    public var endOffset: Offset
    /// The next offset to restore.
    public var position: Offset
    /// Records and bytes (keys plus values) applied so far.
    public var records: Int
    public var bytes: Int
    public var elapsedSeconds: Double
    /// Records per second so far.
    public var recordsPerSecond: Double {
        elapsedSeconds > 0 ? Double(records) / elapsedSeconds : 0
    }
    /// Estimated seconds to the end offset at the rate so far (`nil` until there is a rate).
    public var estimatedSecondsRemaining: Double? {
        let done = position - startOffset
        guard done > 0, elapsedSeconds > 0 else { return nil }
        return Double(endOffset - position) * elapsedSeconds / Double(done)
    }
    /// The fraction of offsets done, 0...1.
    public var fractionDone: Double {
        endOffset > startOffset ? Double(position - startOffset) / Double(endOffset - startOffset) : 1
    }
}

/// Replays changelogs into stores: after a crash between the changelog commit and the store
/// commit (from the checkpoint), after a lost or corrupt state directory (from the beginning),
/// or on demand (``rebuild(_:consumer:batchRecords:progress:)``).
///
/// Records go straight into the engine in large batches, each sorted by key with only the last
/// change per key kept (RocksDB: a batch of 10,000 keys or more is written as an SST file and
/// ingested; smaller ones are `WriteBatch`es with the write-ahead log disabled; compactions wait
/// until the end; one flush at the end). The checkpoint is written only after that flush, so a
/// crash during a restore just restarts it: replaying the changelog from the old checkpoint
/// again gives every key its last value, whatever part of the interrupted restore had reached
/// disk. The calling thread polls the consumer and decodes records (and calls `progress`);
/// once a restore spans more than one batch, a second thread applies each full batch while the
/// next one is read, and is stopped before the restore returns or throws.
///
/// ```swift
/// let result = try StateRestorer.restore(store, consumer: consumer) { progress in
///     print("\(progress.records) records, \(Int(progress.recordsPerSecond))/s")
/// }
/// ```
public enum StateRestorer {
    /// Most records applied per engine batch by default.
    public static let defaultBatchRecords = 100_000
    /// Largest allowed `batchRecords`.
    public static let maximumBatchRecords = 1_000_000
    /// A restore gives up with ``EddyError/Code/timeout`` after this many consecutive empty
    /// polls while the position is still short of the end offset.
    public static let maximumEmptyPolls = 100

    /// Replays `store`'s changelog from its checkpoint (the beginning when it has none) to the
    /// end offset `consumer` reports, then records the new checkpoint. A checkpoint beyond the
    /// end offset (a recreated changelog topic) empties the store and replays from the beginning.
    ///
    /// `consumer` is assigned the changelog partition (replacing its assignment) and should
    /// read committed data. Throws ``EddyError/Code/invalidArgument`` for an unlogged store or a
    /// store not made by EddyState, ``EddyError/Code/invalidState`` if it has uncommitted changes.
    @discardableResult
    public static func restore(_ store: any StateStore, consumer: any LogConsumer,
                               batchRecords: Int = defaultBatchRecords,
                               progress: ((RestoreProgress) -> Void)? = nil) throws -> RestoreProgress {
        let (restorable, changelog) = try check(store, batchRecords: batchRecords)
        try restorable.core.requireRestorable()
        try consumer.assign([changelog])
        let beginning = try consumer.beginningOffsets([changelog])[changelog] ?? 0
        let end = try consumer.endOffsets([changelog])[changelog] ?? 0
        var start = max(restorable.core.checkpoint ?? beginning, beginning)
        if start > end {
            // The checkpoint is past the changelog's end: the topic was deleted and recreated,
            // so the store's data belongs to another history. Start over from empty.
            try restorable.core.clear()
            try restorable.reloadAfterRestore()
            start = beginning
        }
        let clock = ContinuousClock()
        let began = clock.now
        var report = RestoreProgress(store: store.name, changelog: changelog, startOffset: start, endOffset: end,
                                     position: start, records: 0, bytes: 0, elapsedSeconds: 0)
        guard start < end else { return report }
        try consumer.seek(changelog, to: start)
        var pending: [KeyChange] = []
        pending.reserveCapacity(min(batchRecords, 65_536))
        var emptyPolls = 0
        var position = start
        // Started at the first full batch: a restore that fits in one batch needs no thread.
        var applier: RestoreApplier?
        defer { applier?.stop() }
        // What the batch the applier is working on covers, reported once it is applied.
        var inFlight: (position: Offset, records: Int, bytes: Int)?
        func reportProgress(_ covered: (position: Offset, records: Int, bytes: Int)) {
            report.position = covered.position
            report.records = covered.records
            report.bytes = covered.bytes
            let elapsed = clock.now - began
            report.elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            progress?(report)
        }
        var records = 0, bytes = 0
        // Hands a full batch to the applier; the previous one is then applied, so it is reported.
        func submit() throws {
            if applier == nil { applier = RestoreApplier(core: restorable.core) }
            try applier!.submit(pending)
            pending = applier!.emptyBatch(capacity: min(batchRecords, 65_536))
            if let done = inFlight { reportProgress(done) }
            inFlight = (position, records, bytes)
        }
        while position < end {
            let polled = try consumer.poll(timeoutMilliseconds: 100)
            if polled.isEmpty {
                emptyPolls += 1
                // The tail may be control records (transaction markers) that poll never returns.
                position = max(position, try consumer.position(changelog))
                if position >= end { break }
                if emptyPolls >= maximumEmptyPolls {
                    throw EddyError(.timeout, "restoring store \(store.name) from \(changelog): no records for \(maximumEmptyPolls) polls at offset \(position) before end offset \(end)")
                }
                continue
            }
            emptyPolls = 0
            for record in polled where record.topic == changelog.topic && record.partition == changelog.partition {
                guard record.offset < end else { continue }
                position = record.offset + 1
                records += 1
                bytes += (record.key?.count ?? 0) + (record.value?.count ?? 0)
                if let change = try restorable.restoreChange(record) { pending.append(change) }
                if pending.count >= batchRecords { try submit() }
            }
        }
        position = max(position, min(end, try consumer.position(changelog)))
        if let applier {
            if !pending.isEmpty { try submit() }
            try applier.drain()
            applier.stop()
        } else if !pending.isEmpty {
            try restorable.core.restore(pending)
        }
        pending = []
        reportProgress((position, records, bytes))
        try restorable.core.finishRestore(checkpoint: end, metadata: restorable.restoreMetadata())
        try restorable.reloadAfterRestore()
        report.position = end
        return report
    }

    /// Empties `store` (RocksDB: drops and recreates its column family) and restores it from the
    /// beginning of its changelog.
    @discardableResult
    public static func rebuild(_ store: any StateStore, consumer: any LogConsumer,
                               batchRecords: Int = defaultBatchRecords,
                               progress: ((RestoreProgress) -> Void)? = nil) throws -> RestoreProgress {
        let (restorable, _) = try check(store, batchRecords: batchRecords)
        try restorable.core.clear()
        try restorable.reloadAfterRestore()
        return try restore(store, consumer: consumer, batchRecords: batchRecords, progress: progress)
    }

    private static func check(_ store: any StateStore, batchRecords: Int) throws -> (any RestorableStore, TopicPartition) {
        guard let restorable = store as? any RestorableStore else {
            throw EddyError(.invalidArgument, "store \(store.name) is not an EddyState store and cannot be restored")
        }
        guard let changelog = store.changelog else {
            throw EddyError(.invalidArgument, "store \(store.name) is not logged; there is no changelog to restore from")
        }
        guard (1...maximumBatchRecords).contains(batchRecords) else {
            throw EddyError(.invalidArgument, "batchRecords must be 1...\(maximumBatchRecords), got \(batchRecords)")
        }
        return (restorable, changelog)
    }
}
