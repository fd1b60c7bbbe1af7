import EddyCore

extension PartitionLog {
    /// Key compaction (placeholder while the cleaner is written).
    func compact(now: Timestamp) throws {}
}
