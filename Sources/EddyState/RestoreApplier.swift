import EddyCore
import Foundation

/// Applies restore batches to a store on a second thread, so that the thread running
/// ``StateRestorer/restore(_:consumer:batchRecords:progress:)`` polls and decodes the next batch
/// while this one is sorted and written (double buffering: one batch being filled, at most one
/// being applied). Internal to the restorer.
///
/// Threading: the applier thread is the only one that touches the store's ``StoreCore`` (and so
/// its engine and RocksDB handle) from the first ``submit(_:)`` until ``drain()`` or ``stop()``
/// returns; meanwhile the restoring thread touches only the consumer and the store's
/// `restoreChange` (a pure key translation plus, for window and session stores, the restored
/// stream time, which the engine never reads). So the store stays confined to one thread at a
/// time, handed over under `condition`, whose lock also orders the memory accesses.
final class RestoreApplier: @unchecked Sendable {
    // @unchecked Sendable: the mutable fields below are read and written only under `condition`;
    // `core` is used by the applier thread alone while the restoring thread waits or works on
    // other data (see above), and by nobody after `stop()` returns.
    private let core: StoreCore
    private let condition = NSCondition()
    private var queued: [KeyChange]?
    private var busy = false
    private var stopping = false
    private var exited = false
    private var failure: (any Error)?
    private var spare: [KeyChange] = []

    /// Starts the applier thread (`eddy-restore`) for `core`.
    init(core: StoreCore) {
        self.core = core
        let thread = Thread { [self] in run() }
        thread.name = "eddy-restore"
        thread.start()
    }

    /// Waits until the previous batch is applied, then hands `batch` to the applier thread and
    /// returns at once. Throws the error that failed a previous batch (nothing more is applied).
    func submit(_ batch: [KeyChange]) throws {
        condition.lock()
        defer { condition.unlock() }
        while busy { condition.wait() }
        if let failure { throw failure }
        queued = batch
        busy = true
        condition.broadcast()
    }

    /// An empty array with the capacity of a batch already applied (one allocation fewer per
    /// batch), or a new one.
    func emptyBatch(capacity: Int) -> [KeyChange] {
        condition.lock()
        var batch = spare
        spare = []
        condition.unlock()
        if batch.capacity < capacity { batch.reserveCapacity(capacity) }
        return batch
    }

    /// Waits until every submitted batch is applied; throws the first failure.
    func drain() throws {
        condition.lock()
        defer { condition.unlock() }
        while busy { condition.wait() }
        if let failure { throw failure }
    }

    /// Stops the applier thread and waits until it has exited (after the batch in progress, if
    /// any). Idempotent. After it returns no other thread touches the store.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        while !exited { condition.wait() }
    }

    private func run() {
        condition.lock()
        while true {
            while queued == nil && !stopping { condition.wait() }
            guard var batch = queued else { break }
            queued = nil
            condition.unlock()
            var error: (any Error)?
            do { try core.restore(batch) } catch let thrown { error = thrown }
            // The batch's keys and values are released here, on this thread, not the restoring one.
            batch.removeAll(keepingCapacity: true)
            condition.lock()
            if let error, failure == nil { failure = error }
            spare = batch
            busy = false
            condition.broadcast()
        }
        exited = true
        condition.broadcast()
        condition.unlock()
    }
}
