import EddyCore

/// Retention (`cleanup.policy` delete or compact,delete): whole segments only, oldest first,
/// never the active segment.
///
/// - Time: a sealed segment goes when its largest timestamp is older than
///   `now - retention.ms` (Kafka's rule); deletion stops at the first segment that is kept.
/// - Size: while the partition's segments total more than `retention.bytes`, the oldest
///   sealed segment goes. (Kafka deletes only while the rest still reaches `retention.bytes`;
///   Eddy's rule keeps the partition at or under the limit apart from the active segment.)
///
/// The start offset becomes the base offset of the first remaining segment. Files are removed
/// index-first, then the log, and the directory is fsynced; a crash in between leaves index
/// files without a log, which recovery removes.
extension PartitionLog {
    /// Deletes expired segments. Cost: one pass over the segment list plus the unlinks.
    func enforceRetention(now: Timestamp) throws {
        try lock.withWriteLock {
            try requireOpen()
            let configuration = currentConfiguration
            guard configuration.cleanupPolicy.deletes else { return }
            var deleted = false
            try guardingIO {
                if let retention = configuration.retentionMilliseconds {
                    while segments.count > 1, segments[0].largestTimestamp < now - retention {
                        try deleteOldestSegment()
                        deleted = true
                    }
                }
                if let retention = configuration.retentionBytes {
                    var total = segments.reduce(Int64(0)) { $0 + $1.size }
                    while segments.count > 1, total > retention {
                        total -= segments[0].size
                        try deleteOldestSegment()
                        deleted = true
                    }
                }
                if deleted { try environment.fileSystem.syncDirectory(directory) }
            }
        }
    }

    /// Closes and removes the oldest (sealed) segment.
    func deleteOldestSegment() throws {
        let segment = segments.removeFirst()
        try? segment.close()
        let fileSystem = environment.fileSystem
        for path in [segment.indexPath, segment.timeIndexPath, segment.transactionIndexPath, segment.logPath] {
            try fileSystem.removeFile(path)
        }
    }
}
