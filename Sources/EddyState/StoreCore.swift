import EddyCore

/// Collects the delivery reports of one commit's changelog records. Filled by delivery
/// handlers, which the log backend calls on the thread that sends, flushes or commits — the
/// store's own thread — so no lock is needed.
final class ChangelogDeliveries {
    var expected = 0
    var acknowledged = 0
    var highestOffset: Offset = -1
    var failure: EddyError?

    func record(_ result: Result<RecordMetadata, EddyError>) {
        switch result {
        case .success(let metadata):
            acknowledged += 1
            highestOffset = max(highestOffset, metadata.offset)
        case .failure(let error):
            if failure == nil { failure = error }
        }
    }
}

/// The part every store shares: the uncommitted write buffer over an engine, the commit state
/// machine and changelogging. Keys here are the store's internal keys; ``keyLayout`` maps them
/// to and from changelog keys.
///
/// Lifecycle (the legal transitions, all here):
/// ```
/// open --prepareCommit--> changelogSent --commit--> open
/// open --commit (unlogged, or nothing buffered)--> open
/// open | changelogSent --abort--> open
/// any --close--> closed
/// ```
final class StoreCore {
    enum Phase {
        case open
        case changelogSent(ChangelogDeliveries)
        case closed
    }

    /// Metadata fields an engine keeps per store.
    static let metadataFields = ["checkpoint", "streamTime"]

    let name: String
    let engine: any StoreEngine
    let changelog: TopicPartition?
    private(set) var phase: Phase = .open
    private(set) var buffer = SortedByteMap<[UInt8]?>()
    private var pendingDeleteRanges: [(from: [UInt8], to: [UInt8])] = []
    private var pendingMetadata: [String: Int64] = [:]
    private(set) var checkpoint: Offset?
    /// Internal key -> changelog key. Layouts with composite keys (windows, sessions) set it.
    var toChangelogKey: ([UInt8]) throws -> [UInt8] = { $0 }

    init(name: String, engine: any StoreEngine, changelog: TopicPartition?) throws {
        try Names.validate(name, what: "store name")
        if let changelog { try Names.validateTopic(changelog.topic) }
        self.name = name
        self.engine = engine
        self.changelog = changelog
        checkpoint = try engine.metadata("checkpoint")
    }

    var hasUncommittedChanges: Bool {
        !buffer.isEmpty || !pendingDeleteRanges.isEmpty || !pendingMetadata.isEmpty
    }

    private func requireWritable() throws {
        switch phase {
        case .open: return
        case .changelogSent:
            throw EddyError(.invalidState, "store \(name) is between prepareCommit and commit; commit or abort first")
        case .closed:
            throw EddyError(.closed, "store \(name) is closed")
        }
    }

    private func requireOpen() throws {
        if case .closed = phase { throw EddyError(.closed, "store \(name) is closed") }
    }

    // MARK: Reads (buffer merged over committed data)

    func get(_ key: [UInt8]) throws -> [UInt8]? {
        try requireOpen()
        if !buffer.isEmpty, let buffered = buffer[key] { return buffered }
        return try engine.get(key)
    }

    /// Visits [from, to) with uncommitted changes merged in: a buffered value replaces the
    /// committed one, a buffered delete hides it.
    func scan(from: [UInt8]?, to: [UInt8]?, reverse: Bool, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        try scanBorrowed(from: from, to: to, reverse: reverse) { key, value in try body([UInt8](key), [UInt8](value)) }
    }

    /// ``scan(from:to:reverse:_:)`` lending the bytes: valid only during the call to `body`.
    func scanBorrowed(from: [UInt8]?, to: [UInt8]?, reverse: Bool,
                      _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try requireOpen()
        if buffer.isEmpty {
            try engine.scan(from: from, to: to, reverse: reverse, body)
            return
        }
        let pending = buffer.entries(from: from, to: to, reverse: reverse)
        var next = 0
        var stopped = false
        // Emits a buffered entry (skipping deletes); false when `body` asks to stop.
        func emit(_ entry: SortedByteMap<[UInt8]?>.Entry) throws -> Bool {
            guard let value = entry.value else { return true }
            return try entry.key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try body(k, v) } }
        }
        try engine.scan(from: from, to: to, reverse: reverse) { keyBuffer, valueBuffer in
            let keyBytes = keyBuffer.bindMemory(to: UInt8.self)
            while next < pending.count {
                let order = pending[next].key.withUnsafeBufferPointer { ByteKeys.compare($0, keyBytes) }
                if order == 0 {
                    next += 1
                    if try !emit(pending[next - 1]) { stopped = true; return false }
                    return true
                }
                guard reverse ? order > 0 : order < 0 else { break }
                next += 1
                if try !emit(pending[next - 1]) { stopped = true; return false }
            }
            if try !body(keyBuffer, valueBuffer) { stopped = true; return false }
            return true
        }
        guard !stopped else { return }
        while next < pending.count {
            next += 1
            if try !emit(pending[next - 1]) { return }
        }
    }

    // MARK: Writes

    func put(_ key: [UInt8], _ value: [UInt8]?) throws {
        try requireWritable()
        buffer.set(key, value)
    }

    /// Removes [from, to) in bulk: from the buffer now, from the engine at commit (RocksDB
    /// `DeleteRange`). Not written to the changelog; the layers that use it (window retention)
    /// filter expired keys on reads and on restore.
    func deleteRange(from: [UInt8], to: [UInt8]) throws {
        try requireWritable()
        buffer.removeRange(from: from, to: to)
        pendingDeleteRanges.append((from, to))
    }

    func setMetadata(_ field: String, _ value: Int64) throws {
        try requireWritable()
        pendingMetadata[field] = value
    }

    func committedMetadata(_ field: String) throws -> Int64? { try engine.metadata(field) }

    // MARK: Commit protocol

    func prepareCommit(producer: any LogProducer, timestamp: Timestamp?) throws {
        try requireWritable()
        guard let changelog else { return }
        let deliveries = ChangelogDeliveries()
        let snapshot = buffer
        try snapshot.forEach(from: nil, to: nil, reverse: false) { key, value in
            let record = ProducerRecord(topic: changelog.topic, partition: changelog.partition,
                                        key: try toChangelogKey(key), value: value, timestamp: timestamp)
            deliveries.expected += 1
            try producer.send(record) { deliveries.record($0) }
            return true
        }
        phase = .changelogSent(deliveries)
    }

    func commit() throws {
        var metadata = pendingMetadata
        switch phase {
        case .closed:
            throw EddyError(.closed, "store \(name) is closed")
        case .open:
            if changelog != nil && !buffer.isEmpty {
                throw EddyError(.invalidState, "store \(name) is logged: call prepareCommit(producer:) and commit the producer before commit()")
            }
        case .changelogSent(let deliveries):
            if let failure = deliveries.failure {
                throw EddyError(failure.code, "store \(name): changelog \(changelog!) write failed: \(failure.message)")
            }
            if deliveries.acknowledged < deliveries.expected {
                throw EddyError(.invalidState, "store \(name): \(deliveries.expected - deliveries.acknowledged) of \(deliveries.expected) changelog records are not acknowledged yet; flush or commit the producer before commit()")
            }
            if deliveries.highestOffset >= 0 {
                metadata["checkpoint"] = max(deliveries.highestOffset + 1, checkpoint ?? 0)
            }
        }
        if hasUncommittedChanges || !metadata.isEmpty {
            try engine.apply(buffer, deleteRanges: pendingDeleteRanges, metadata: metadata)
        }
        if let newCheckpoint = metadata["checkpoint"] { checkpoint = newCheckpoint }
        buffer.removeAll()
        pendingDeleteRanges = []
        pendingMetadata = [:]
        phase = .open
    }

    func abort() {
        if case .closed = phase { return }
        buffer.removeAll()
        pendingDeleteRanges = []
        pendingMetadata = [:]
        phase = .open
    }

    func close() {
        if case .closed = phase { return }
        abort()
        phase = .closed
        engine.close()
    }

    // MARK: Restoration

    func requireRestorable() throws {
        try requireWritable()
        if hasUncommittedChanges {
            throw EddyError(.invalidState, "store \(name) has uncommitted changes; commit or abort before restoring")
        }
    }

    func restore(_ changes: [KeyChange]) throws {
        try requireRestorable()
        try engine.restore(changes)
    }

    func finishRestore(checkpoint newCheckpoint: Offset, metadata: [String: Int64]) throws {
        var fields = metadata
        fields["checkpoint"] = newCheckpoint
        try engine.finishRestore(metadata: fields)
        checkpoint = newCheckpoint
    }

    func clear() throws {
        try requireRestorable()
        try engine.clear()
        checkpoint = nil
    }
}
