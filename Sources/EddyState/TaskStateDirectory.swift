import EddyCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of one task on disk: `STATE_DIR/<application>/<task>/`, holding one RocksDB
/// database (`rocksdb/`) with a column family per store, and a lock file.
///
/// Opening locks the directory (`flock` on `.lock`): a second open, by this process or another,
/// throws ``EddyError/Code/locked`` until ``close()``. A missing directory is created; a
/// database that RocksDB reports corrupt is deleted and recreated empty, with a log line
/// through the environment's `log` — its stores then have no ``StateStore/checkpoint`` and
/// ``StateRestorer`` rebuilds them in full from their changelogs. ``wasReset`` tells which.
///
/// Confined to the task's thread, like its stores.
///
/// ```swift
/// let directory = try TaskStateDirectory(stateDirectory: "/var/eddy", application: "orders",
///                                        task: "0_3", environment: environment)
/// let counts = try directory.keyValueStore(named: "counts",
///     changelog: TopicPartition(ChangelogTopic.name(application: "orders", store: "counts"), 3))
/// ```
public final class TaskStateDirectory {
    /// `STATE_DIR/<application>/<task>`.
    public let path: String
    public let application: String
    public let task: String
    public let environment: RocksDBEnvironment
    /// True when the database was missing or corrupt at open and started empty.
    public let wasReset: Bool

    let handle: RocksDBHandle
    private var lockDescriptor: Int32
    private var openStores: [String: Weak] = [:]

    private struct Weak {
        weak var engine: RocksDBEngine?
    }

    /// Opens (creating if needed) and locks the task's state directory.
    ///
    /// Throws ``EddyError/Code/invalidName`` for a bad application or task name,
    /// ``EddyError/Code/locked`` when another open holds the directory, ``EddyError/Code/io``
    /// when it cannot be created or RocksDB fails otherwise.
    public init(stateDirectory: String, application: String, task: String, environment: RocksDBEnvironment) throws {
        try Names.validate(application, what: "application id")
        try Names.validate(task, what: "task id")
        self.application = application
        self.task = task
        self.environment = environment
        path = "\(stateDirectory)/\(application)/\(task)"
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw EddyError(.io, "cannot create state directory \(path): \(error)")
        }
        let lockPath = "\(path)/.lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw EddyError.system("open", path: lockPath, errno: errno) }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let number = errno
            closeFile(descriptor)
            if number == EWOULDBLOCK {
                throw EddyError(.locked, "state directory \(path) is in use by another task instance (lock \(lockPath) is held)")
            }
            throw EddyError.system("flock", path: lockPath, errno: number)
        }
        lockDescriptor = descriptor

        let databasePath = "\(path)/rocksdb"
        var reset = false
        Self.removeLeftoverRestoreFiles(in: path, environment: environment)
        do {
            if !FileManager.default.fileExists(atPath: "\(databasePath)/CURRENT") {
                environment.log("state of task \(task) of \(application) (\(databasePath)) is missing; its stores start empty and restore in full from their changelogs")
                reset = true
            }
            do {
                handle = try RocksDBHandle(path: databasePath, options: try environment.makeOptions(),
                                           syncWrites: environment.configuration.syncWrites)
            } catch let error as EddyError where Self.isDamage(error) {
                environment.log("state of task \(task) of \(application) (\(databasePath)) is unreadable (\(error.message)); deleting it, its stores restore in full from their changelogs")
                try? FileManager.default.removeItem(atPath: databasePath)
                reset = true
                handle = try RocksDBHandle(path: databasePath, options: try environment.makeOptions(),
                                           syncWrites: environment.configuration.syncWrites)
            }
        } catch {
            flock(lockDescriptor, LOCK_UN)
            closeFile(lockDescriptor)
            throw error
        }
        wasReset = reset
    }

    /// Damage that a full restore repairs: corruption, or files RocksDB expects but cannot find.
    /// Deletes bulk-restore files (`rocksdb.restore-N.sst`, see `RocksDBHandle.ingest`) that a
    /// process killed while writing one left next to the database. They were never ingested
    /// (ingestion moves the file into the database), so nothing reads them; without this they
    /// would waste disk until the directory is rebuilt. Called with the directory's lock held.
    private static func removeLeftoverRestoreFiles(in path: String, environment: RocksDBEnvironment) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in names where name.hasPrefix("rocksdb.restore-") && name.hasSuffix(".sst") {
            do {
                try FileManager.default.removeItem(atPath: "\(path)/\(name)")
                environment.log("removed \(path)/\(name), a restore file left by an interrupted restoration")
            } catch {
                environment.log("could not remove \(path)/\(name), a restore file left by an interrupted restoration: \(error)")
            }
        }
    }

    private static func isDamage(_ error: EddyError) -> Bool {
        error.code == .corrupt || (error.code == .io && (error.message.contains("No such file") || error.message.contains("Corruption")))
    }

    deinit { close() }

    private func engine(_ name: String) throws -> RocksDBEngine {
        try Names.validate(name, what: "store name")
        guard name != "default" else {
            throw EddyError(.invalidName, "store name 'default' is reserved (RocksDB's default column family holds store metadata)")
        }
        guard handle.isOpen else { throw EddyError(.closed, "state directory \(path) is closed") }
        guard openStores[name]?.engine == nil else {
            throw EddyError(.invalidState, "store \(name) of task \(task) is already open")
        }
        let engine = try RocksDBEngine(name: name, handle: handle, environment: environment) { [weak self] in
            self?.openStores[name] = nil
        }
        openStores[name] = Weak(engine: engine)
        return engine
    }

    /// Opens (creating if needed) the key-value store `name`, logged to `changelog` if given.
    public func keyValueStore(named name: String, changelog: TopicPartition? = nil) throws -> RocksDBKeyValueStore {
        try RocksDBKeyValueStore(engine: try engine(name), changelog: changelog)
    }

    /// Opens (creating if needed) the window store `name`. The segment interval defaults to
    /// ``SegmentedStoreDefaults/segmentInterval(retentionMilliseconds:)``.
    public func windowStore(named name: String, retentionMilliseconds: Int64, segmentIntervalMilliseconds: Int64? = nil,
                            changelog: TopicPartition? = nil) throws -> RocksDBWindowStore {
        try RocksDBWindowStore(engine: try engine(name), retentionMilliseconds: retentionMilliseconds,
                               segmentIntervalMilliseconds: segmentIntervalMilliseconds
                                   ?? SegmentedStoreDefaults.segmentInterval(retentionMilliseconds: retentionMilliseconds),
                               changelog: changelog)
    }

    /// Opens (creating if needed) the session store `name`.
    public func sessionStore(named name: String, retentionMilliseconds: Int64, segmentIntervalMilliseconds: Int64? = nil,
                             changelog: TopicPartition? = nil) throws -> RocksDBSessionStore {
        try RocksDBSessionStore(engine: try engine(name), retentionMilliseconds: retentionMilliseconds,
                                segmentIntervalMilliseconds: segmentIntervalMilliseconds
                                    ?? SegmentedStoreDefaults.segmentInterval(retentionMilliseconds: retentionMilliseconds),
                                changelog: changelog)
    }

    /// Closes the database and releases the lock. Stores still open fail with
    /// ``EddyError/Code/closed`` afterwards; close them first. Idempotent.
    public func close() {
        guard lockDescriptor >= 0 else { return }
        // Take the stores out of the worker's write-buffer budget before their database goes.
        for store in openStores.values { store.engine?.close() }
        openStores = [:]
        handle.close()
        flock(lockDescriptor, LOCK_UN)
        closeFile(lockDescriptor)
        lockDescriptor = -1
    }
}

/// `close(2)`, outside the class whose `close()` would shadow it.
private func closeFile(_ descriptor: Int32) {
    _ = close(descriptor)
}
