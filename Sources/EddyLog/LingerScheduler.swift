import EddyCore
import Foundation

/// The thread that appends lingering batches of idle producers: a record sent and then left
/// alone still reaches its partition about `lingerMilliseconds` later, as with Kafka.
///
/// Producers schedule themselves (at most once at a time) when their first pending batch
/// opens; at the deadline the thread calls ``ProducerCore/lingerTick()``, which appends
/// what is due under the producer's lock and returns the next deadline, if any. One thread
/// per log, started on the first schedule and stopped when the log closes. It holds the
/// producers' shared cores (not the producers): a dropped producer closes its core, whose
/// next tick then does nothing and releases it.
final class LingerScheduler: @unchecked Sendable {
    // @unchecked: every field is reached only under `lock`.
    private let lock = ClientLock()
    private var entries: [(deadline: Int64, producer: ProducerCore)] = []
    private var started = false
    private var stopping = false
    private var finished = false
    private var threadID: pthread_t?

    /// Asks for `producer.lingerTick()` at `deadline` (monotonic ms).
    func schedule(_ producer: ProducerCore, at deadline: Int64) {
        let start = lock.withLock { () -> Bool in
            guard !stopping else { return false }
            entries.append((deadline, producer))
            lock.broadcast()
            defer { started = true }
            return !started
        }
        if start {
            let thread = Thread { [self] in run() }
            thread.name = "eddy-log-linger"
            thread.start()
        }
    }

    private func run() {
        lock.withLock { threadID = pthread_self() }
        while true {
            let due = lock.withLock { () -> [ProducerCore]? in
                while !stopping {
                    let now = ClientLock.monotonicMilliseconds()
                    if entries.contains(where: { $0.deadline <= now }) {
                        let ready = entries.filter { $0.deadline <= now }.map(\.producer)
                        entries.removeAll { $0.deadline <= now }
                        return ready
                    }
                    let next = entries.map(\.deadline).min().map { Int($0 - now) } ?? 1_000
                    lock.wait(milliseconds: max(1, min(next, 1_000)))
                }
                return nil
            }
            guard let due else { break }
            for producer in due {
                if let next = producer.lingerTick() { schedule(producer, at: next) }
            }
        }
        lock.withLock {
            finished = true
            lock.broadcast()
        }
    }

    /// Stops the thread (if it ever started) and waits for it.
    func stop() {
        lock.withLock {
            stopping = true
            entries.removeAll()
            lock.broadcast()
            guard started else { return }
            // Called on the thread itself (it dropped the last reference to the log): only ask.
            if let threadID, pthread_equal(threadID, pthread_self()) != 0 { return }
            while !finished { lock.wait(milliseconds: 1_000) }
        }
    }
}
