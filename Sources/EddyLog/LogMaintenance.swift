import EddyCore
import Foundation

/// The background thread of an ``EmbeddedLog``: every `maintenanceIntervalMilliseconds` it
/// flushes partitions whose fsync interval is due and expires group members that stopped
/// polling; every `retentionCheckIntervalMilliseconds` it applies retention, and every
/// `compactionIntervalMilliseconds` it compacts, on all partitions.
///
/// One thread per log, started when the log opens and stopped (joined) by ``stop()`` when it
/// closes. It holds the log's parts (topic table, coordinators, clock), never the log, so a
/// log dropped without `close` is freed on the dropping thread, whose `close` joins this one.
/// A failure on one partition does not stop the others; the latest is kept in ``lastError``.
final class LogMaintenance: @unchecked Sendable {
    // @unchecked: `stopping`, `finished` and `error` are reached only under `lock`.
    private let lock = ClientLock()
    private var stopping = false
    private var finished = false
    private var error: EddyError?
    private var threadID: pthread_t?

    private let table: TopicTable
    private let groups: GroupCoordinator
    private let transactions: TransactionCoordinator
    private let clock: any LogClock

    init(table: TopicTable, groups: GroupCoordinator, transactions: TransactionCoordinator, clock: any LogClock,
         configuration: EmbeddedLog.Configuration) {
        self.table = table
        self.groups = groups
        self.transactions = transactions
        self.clock = clock
        let interval = configuration.maintenanceIntervalMilliseconds
        let retentionEvery = Int64(configuration.retentionCheckIntervalMilliseconds)
        let compactionEvery = Int64(configuration.compactionIntervalMilliseconds)
        let thread = Thread { [self] in
            self.lock.withLock { self.threadID = pthread_self() }
            var lastRetention = ClientLock.monotonicMilliseconds()
            var lastCompaction = lastRetention
            while true {
                let stop = self.lock.withLock { () -> Bool in
                    if !self.stopping { self.lock.wait(milliseconds: interval) }
                    return self.stopping
                }
                if stop { break }
                let now = ClientLock.monotonicMilliseconds()
                let retention = now - lastRetention >= retentionEvery
                let compaction = now - lastCompaction >= compactionEvery
                if retention { lastRetention = now }
                if compaction { lastCompaction = now }
                self.runOnce(retention: retention, compaction: compaction)
            }
            self.lock.withLock {
                self.finished = true
                self.lock.broadcast()
            }
        }
        thread.name = "eddy-log-maintenance"
        thread.start()
    }

    /// One round over every partition.
    func runOnce(retention: Bool, compaction: Bool) {
        groups.expireMembers()
        transactions.abortExpired()
        let now = clock.nowMilliseconds
        for handle in table.all() {
            for partition in handle.partitions {
                do {
                    try partition.flushIfDue(now: now)
                    if retention && handle.configuration.cleanupPolicy.deletes { try partition.enforceRetention(now: now) }
                    if compaction && handle.configuration.cleanupPolicy.compacts { try partition.compact(now: now) }
                } catch {
                    let failure = (error as? EddyError) ?? EddyError(.io, "\(error)")
                    lock.withLock { self.error = failure }
                }
            }
        }
    }

    /// The most recent failure of a maintenance step, if any.
    var lastError: EddyError? { lock.withLock { error } }

    /// Stops the thread and waits for it to finish its current round. Called on the thread
    /// itself (a coordinator's brief reference to a dropped log was its last one), it only
    /// asks it to stop: waiting for itself would never end.
    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
            if let threadID, pthread_equal(threadID, pthread_self()) != 0 { return }
            while !finished { lock.wait(milliseconds: 1_000) }
        }
    }
}
