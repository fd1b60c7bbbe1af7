import EddyCore
import EddyState
import Foundation

/// Picks a task's next record: of all its input partitions' buffered records, the one with
/// the smallest timestamp at the head of its partition's queue (ties: the partition that was
/// added first). Offsets stay in order within each partition.
struct PartitionGroup {
    /// One input partition's buffered records: runs of records as the consumer returned them
    /// (``ConsumerRecords/PartitionRecords``, their bytes untouched), entry timestamps replaced
    /// by the extracted ones. The per-record path copies no key, value or record object.
    struct Queue {
        let topicPartition: TopicPartition
        let source: any SourceInput
        let extractor: TimestampExtractor?
        /// `chunks[first...]` hold the buffered records, oldest first.
        var chunks: [ConsumerRecords.PartitionRecords] = []
        var first = 0
        /// Index in `chunks[first].entries` of the head record.
        var position = 0
        /// Extracted timestamp of the head record (when `count > 0`).
        var headTimestamp: Timestamp = 0
        var count = 0
        /// Largest extracted timestamp in this partition (for extractors that need it).
        var partitionTime: Timestamp = -1
        /// Largest timestamp of the records taken for processing (Kafka's partition time, -1
        /// before the first): committed with the partition's offset, so a restart resumes it.
        var processedTime: Timestamp = -1
        /// Next offset to consume (what a commit records), once a record was taken or dropped.
        /// Kept here rather than in a dictionary so the per-record path hashes nothing.
        var consumed: Offset? = nil

        mutating func append(_ chunk: ConsumerRecords.PartitionRecords) {
            guard !chunk.isEmpty else { return }
            if count == 0 {
                chunks.removeAll(keepingCapacity: true)
                first = 0
                position = chunk.entries.startIndex
                headTimestamp = chunk.entries[position].timestamp
            }
            chunks.append(chunk)
            count += chunk.count
        }

        /// Takes the head record (there is one): its run, its index there and the source; it
        /// counts as consumed.
        mutating func take(_ bufferedCount: inout Int) -> (ConsumerRecords.PartitionRecords, Int, any SourceInput) {
            let chunk = chunks[first]
            let index = position
            consumed = chunk.entries[index].offset + 1
            if headTimestamp > processedTime { processedTime = headTimestamp }
            bufferedCount -= 1
            advance()
            return (chunk, index, source)
        }

        /// Drops the head record (there is one).
        mutating func advance() {
            count -= 1
            position += 1
            if position == chunks[first].entries.endIndex {
                first += 1
                if first == chunks.count {
                    chunks.removeAll(keepingCapacity: true)
                    first = 0
                    position = 0
                    return
                }
                if first >= 64 {
                    chunks.removeFirst(first)
                    first = 0
                }
                position = chunks[first].entries.startIndex
            }
            headTimestamp = chunks[first].entries[position].timestamp
        }
    }
    var queues: [Queue] = []
    var index: [TopicPartition: Int] = [:]
    var bufferedCount = 0

    mutating func add(_ tp: TopicPartition, source: any SourceInput, extractor: TimestampExtractor?) {
        index[tp] = queues.count
        queues.append(Queue(topicPartition: tp, source: source, extractor: extractor))
    }

    /// Takes the next record (see ``next(requireAll:)``): its run, its index in the run's
    /// entries, and its partition's source. One access to the group per record.
    mutating func take(requireAll: Bool) -> (ConsumerRecords.PartitionRecords, Int, any SourceInput)? {
        guard let qi = next(requireAll: requireAll) else { return nil }
        return queues[qi].take(&bufferedCount)
    }

    /// Index of the queue with the smallest head timestamp, or nil when all are empty
    /// (or, with `requireAll`, when any is empty: Kafka's wait for data on every partition).
    func next(requireAll: Bool) -> Int? {
        var best: Int? = nil
        var bestTime = Timestamp.max
        for i in queues.indices {
            if queues[i].count == 0 {
                if requireAll { return nil }
                continue
            }
            let t = queues[i].headTimestamp
            if best == nil || t < bestTime {
                best = i
                bestTime = t
            }
        }
        return best
    }
}

/// A timestamp extractor: the event time of a raw record (Kafka's `TimestampExtractor`).
/// `partitionTime` is the largest timestamp extracted so far in the record's partition (-1
/// before the first). A negative result drops the record (counted in
/// ``TaskMetrics/droppedInvalidTimestampRecords``).
public typealias TimestampExtractor = @Sendable (_ record: ConsumerRecord, _ partitionTime: Timestamp) -> Timestamp

/// One sub-topology working on one partition: the unit of processing, of state and of commit.
///
/// The same class runs under the ``TopologyTestDriver`` and under the stream threads: records
/// come in through ``addRecords(_:from:)`` from whatever source reads the log, and go out
/// through the ``RecordCollector`` given at creation. Not thread-safe: a task is owned by one
/// thread at a time. Lifecycle: `created -> running -> closed` (``State``).
final class StreamTask {
    enum State: Equatable {
        case created, running, closed
    }
    let id: TaskID
    let context: TaskContext
    private(set) var state: State = .created
    /// Unchecked exclusivity: a task is confined to one thread, and nothing that processing
    /// calls reaches the group (records are taken out of it before they are processed).
    @exclusivity(unchecked) private var group = PartitionGroup()
    private let nodes: [any RuntimeNode]
    let stores: [String: any TaskStore]
    /// Next offset to consume per input partition (what a commit records).
    var consumedOffsets: [TopicPartition: Offset] {
        var offsets: [TopicPartition: Offset] = [:]
        for queue in group.queues { if let consumed = queue.consumed { offsets[queue.topicPartition] = consumed } }
        return offsets
    }

    /// Builds the task's nodes and stores from `topology` for sub-topology `sub`, reading
    /// partition `id.partition` of each of its source topics (for the global sub-topology,
    /// `globalPartitions` gives the partitions of each topic: it reads them all).
    init(topology: Topology, subtopology sub: Topology.Subtopology, id: TaskID, applicationID: String,
         collector: any RecordCollector, globalStores: [String: any TaskStore], wallClockTime: Int64,
         stateDirectory: TaskStateDirectory? = nil, globalPartitions: ((String) -> [Int])? = nil,
         loggedStores: Bool = false) throws {
        self.id = id
        var stores: [String: any TaskStore] = [:]
        for name in sub.stores {
            guard let spec = topology.stores[name] else { continue }
            if let stateDirectory, let persistent = spec.persistent {
                // The runtime logs persistent stores to changelog partition `id.partition`.
                stores[name] = try persistent(stateDirectory, loggedStores ? id.partition : nil)
            } else {
                stores[name] = spec.make()
            }
        }
        self.stores = stores
        var all = stores
        for (k, v) in globalStores { all[k] = v }
        context = TaskContext(taskID: id, applicationID: applicationID, collector: collector,
                              stores: all, wallClockTime: wallClockTime)
        // Children before parents, so each node is built with its children in hand.
        var built: [String: AnyObject] = [:]
        var order: [any RuntimeNode] = []
        for spec in sub.nodes.reversed() {
            let node = topology.nodes[spec]
            let children = node.children.map { built[$0]! }
            let instance = try node.make(children)
            built[node.name] = instance
            order.append(instance)
        }
        nodes = order.reversed()
        for nodeIndex in sub.nodes {
            let node = topology.nodes[nodeIndex]
            guard case .source(let topics, let extractor) = node.kind else { continue }
            let source = built[node.name] as! any SourceInput
            for topic in topics {
                let logName = Topology.resolve(topic, applicationID: applicationID)
                for p in globalPartitions?(logName) ?? [id.partition] {
                    group.add(TopicPartition(logName, p), source: source, extractor: extractor)
                }
            }
        }
    }

    /// The input partitions of this task.
    var inputPartitions: [TopicPartition] { group.queues.map(\.topicPartition) }

    /// What a commit records per input partition with progress (Kafka's
    /// `committableOffsetsAndMetadata`): the next offset to consume, and the partition time
    /// as metadata (``PartitionTimeMetadata``).
    var committableOffsets: [TopicPartition: OffsetAndMetadata] {
        var offsets: [TopicPartition: OffsetAndMetadata] = [:]
        for queue in group.queues {
            guard let consumed = queue.consumed else { continue }
            offsets[queue.topicPartition] = OffsetAndMetadata(consumed, metadata: PartitionTimeMetadata.encode(queue.processedTime,
                                                                                                        processorMetadata: context.processorMetadata))
        }
        return offsets
    }

    /// The partition time of `partition` as commit metadata (for commits made outside
    /// ``committableOffsets``, such as at-most-once's commit before processing).
    func partitionTimeMetadata(_ partition: TopicPartition) -> String {
        guard let i = group.index[partition] else { return "" }
        return PartitionTimeMetadata.encode(group.queues[i].processedTime, processorMetadata: context.processorMetadata)
    }

    /// Resumes the time of a task created again after a restart, a rebalance or a failed
    /// commit (Kafka's `initializeTaskTime`): each input partition's time is the one
    /// committed with its offset, and stream time the largest of them. Partitions without a
    /// committed time (never committed, or committed without metadata, e.g. after an offset
    /// reset) keep an unknown time. The processor metadata committed with the offsets is
    /// restored too (``TaskContext/processorMetadata``, the largest value per key). Call before
    /// ``initialize()``, so nodes see both.
    func initializeTime(committed: [TopicPartition: OffsetAndMetadata]) {
        guard state == .created else { return }
        for i in group.queues.indices {
            guard let entry = committed[group.queues[i].topicPartition],
                  let (time, processorMetadata) = PartitionTimeMetadata.decodeAll(entry.metadata) else { continue }
            context.processorMetadata.merge(processorMetadata) { max($0, $1) }
            guard time >= 0 else { continue }
            group.queues[i].processedTime = max(group.queues[i].processedTime, time)
            group.queues[i].partitionTime = max(group.queues[i].partitionTime, time)
            if time > context.streamTime { context.streamTime = time }
        }
    }

    /// Initialises every node (stores are looked up, punctuators scheduled). `created -> running`.
    func initialize() throws {
        guard state == .created else { throw EddyError(.invalidState, "task \(id) is \(state), cannot initialise") }
        for node in nodes {
            context.currentNode = node.name
            try node.initialize(context)
        }
        context.currentNode = ""
        state = .running
    }

    /// Buffers records read from `topicPartition`, extracting their timestamps. Records with a
    /// negative extracted timestamp are dropped and counted.
    func addRecords<S: Sequence<ConsumerRecord>>(_ records: S, from topicPartition: TopicPartition) {
        addRecords(ConsumerRecords.PartitionRecords(topicPartition: topicPartition, copying: records))
    }

    /// Buffers records as the consumer returned them (no copy of their bytes), extracting their
    /// timestamps. Records with a negative extracted timestamp are dropped and counted.
    func addRecords(_ records: ConsumerRecords.PartitionRecords) {
        guard let i = group.index[records.topicPartition] else {
            preconditionFailure("task \(id) does not read \(records.topicPartition)")
        }
        var partitionTime = group.queues[i].partitionTime
        var chunk = records
        if let extractor = group.queues[i].extractor {
            var entries: [ConsumerRecords.Entry] = []
            entries.reserveCapacity(records.count)
            for index in records.entries.indices {
                var entry = records.entries[index]
                let record = (try? records.record(at: index)) ?? ConsumerRecord(
                    topic: records.topicPartition.topic, partition: records.topicPartition.partition, offset: entry.offset,
                    timestamp: entry.timestamp, timestampType: entry.timestampType, key: nil, value: nil)
                entry.timestamp = extractor(record, partitionTime)
                if entry.timestamp < 0 {
                    dropInvalid(entry, queue: i)
                    continue
                }
                if entry.timestamp > partitionTime { partitionTime = entry.timestamp }
                entries.append(entry)
            }
            chunk = ConsumerRecords.PartitionRecords(topicPartition: records.topicPartition, bytes: records.bytes,
                                                     entries: entries[...])
        } else {
            var hasInvalid = false
            for entry in records.entries {
                if entry.timestamp < 0 { hasInvalid = true }
                if entry.timestamp > partitionTime { partitionTime = entry.timestamp }
            }
            if hasInvalid {
                var entries: [ConsumerRecords.Entry] = []
                for entry in records.entries {
                    if entry.timestamp < 0 { dropInvalid(entry, queue: i) } else { entries.append(entry) }
                }
                chunk = ConsumerRecords.PartitionRecords(topicPartition: records.topicPartition, bytes: records.bytes,
                                                         entries: entries[...])
            }
        }
        group.queues[i].partitionTime = partitionTime
        group.bufferedCount += chunk.count
        group.queues[i].append(chunk)
    }

    private func dropInvalid(_ entry: ConsumerRecords.Entry, queue i: Int) {
        context.metrics.droppedInvalidTimestampRecords += 1
        group.queues[i].consumed = entry.offset + 1
    }

    /// Number of records buffered and not yet processed.
    var bufferedRecordCount: Int { group.bufferedCount }

    /// The input partitions with no buffered record, when some other partition has one (a
    /// task with one input partition never has any).
    var partitionsAwaitingData: [TopicPartition] {
        guard group.queues.count > 1, group.bufferedCount > 0 else { return [] }
        return group.queues.filter { $0.count == 0 }.map(\.topicPartition)
    }

    /// Since when the task has been waiting for data on an empty partition (see
    /// ``StreamsConfiguration/maximumTaskIdle``); the stream thread sets and clears it.
    var idleSince: ContinuousClock.Instant? = nil

    /// Processes the buffered record with the smallest timestamp across partitions, then runs
    /// due stream-time punctuators. Returns false when nothing could be processed. With
    /// `requireAllPartitions`, waits until every input partition has a buffered record (so the
    /// order across partitions is by timestamp; the runtime relaxes this after an idle time).
    /// A thrown error leaves the record consumed; the caller decides what to do with the task.
    @discardableResult
    func process(requireAllPartitions: Bool = false) throws -> Bool {
        guard state == .running else { throw EddyError(.invalidState, "task \(id) is \(state), cannot process") }
        guard let taken = group.take(requireAll: requireAllPartitions) else { return false }
        let (chunk, index, source) = taken
        let entry = chunk.entries[index]
        let timestamp = entry.timestamp
        let tp = chunk.topicPartition
        if context.partition != tp.partition || context.topic != tp.topic {
            context.topic = tp.topic
            context.partition = tp.partition
        }
        context.offset = entry.offset
        context.timestamp = timestamp
        if entry.headerCount > 0 {
            context.headers = try chunk.headers(at: index)
        } else if !context.headers.isEmpty {
            context.headers = []
        }
        if timestamp > context.streamTime { context.streamTime = timestamp }
        context.metrics.processedRecords += 1
        try chunk.withKeyAndValue(at: index) { key, value in try source.processRaw(key: key, value: value, in: context) }
        if !context.schedules.isEmpty { try punctuate(.streamTime, now: context.streamTime) }
        return true
    }

    /// Processes until no buffered record is left (or, with `requireAllPartitions`, until a
    /// partition runs dry). Returns the number processed.
    @discardableResult
    func processAll(requireAllPartitions: Bool = false) throws -> Int {
        var n = 0
        while try process(requireAllPartitions: requireAllPartitions) { n += 1 }
        return n
    }

    /// Sets the wall clock and runs due wall-clock punctuators.
    func advanceWallClock(to now: Int64) throws {
        context.wallClockTime = now
        if !context.schedules.isEmpty { try punctuate(.wallClockTime, now: now) }
    }

    /// Runs every punctuator of `type` whose time has come (at most once per call, as Kafka does).
    private func punctuate(_ type: PunctuationType, now: Timestamp) throws {
        guard now != .min else { return }
        context.schedules.removeAll { $0.cancellable.isCancelled }
        for schedule in context.schedules where schedule.type == type && !schedule.cancellable.isCancelled {
            guard now >= schedule.next else { continue }
            if schedule.next == .min {
                schedule.next = now + schedule.interval
            } else {
                schedule.next += schedule.interval
                if now >= schedule.next {
                    schedule.next = now + schedule.interval - (now - schedule.next) % schedule.interval
                }
            }
            let saved = (context.topic, context.partition, context.offset, context.timestamp, context.headers)
            context.topic = nil
            context.partition = -1
            context.offset = -1
            context.timestamp = now
            context.headers = []
            defer {
                (context.topic, context.partition, context.offset, context.timestamp, context.headers) = saved
            }
            try schedule.callback(now)
        }
    }

    /// Flushes the task's stores.
    func flush() throws {
        for store in stores.values { try store.flush() }
    }

    /// Writes the in-memory changes of write-back stores into their byte stores, so the
    /// stores' commit carries them. The runtime calls it before every commit.
    func writeBack() throws {
        for store in stores.values {
            if let store = store as? any WriteBackStore { try store.writeBack() }
        }
    }

    /// Closes nodes and stores. `running/created -> closed`; closing twice is a no-op.
    func close() {
        guard state != .closed else { return }
        for node in nodes { node.close() }
        for store in stores.values { store.close() }
        state = .closed
    }
}

/// A partition's time, and the task's processor metadata, in the metadata of its committed
/// offset, in Kafka Streams' layout (`TopicPartitionMetadata`): Base64 of a version byte, the
/// time as a big-endian Int64 and, from version 2, the processor metadata: an Int32 entry
/// count, then per entry an Int32 key length, the key's UTF-8 bytes and an Int64 value. With
/// no processor metadata it is version 1 (12 characters, what Kafka Streams writes then);
/// offsets committed by Kafka Streams and by Eddy read the same.
enum PartitionTimeMetadata {
    /// The version byte without processor metadata (Kafka Streams' `LATEST_MAGIC_BYTE` 1).
    static let version: UInt8 = 1
    /// The version byte with processor metadata.
    static let versionWithProcessorMetadata: UInt8 = 2

    static func encode(_ time: Timestamp, processorMetadata: [String: Int64] = [:]) -> String {
        var bytes: [UInt8] = [processorMetadata.isEmpty ? version : versionWithProcessorMetadata]
        bytes.appendBigEndian(time)
        if !processorMetadata.isEmpty {
            bytes.appendBigEndian(UInt32(processorMetadata.count))
            for (key, value) in processorMetadata.sorted(by: { $0.key < $1.key }) {
                bytes.appendBigEndian(UInt32(key.utf8.count))
                bytes.append(contentsOf: key.utf8)
                bytes.appendBigEndian(value)
            }
        }
        return Data(bytes).base64EncodedString()
    }

    /// The time in `metadata`; nil when it is empty, not Base64, or of another version or
    /// size (such a partition starts with an unknown time, as in Kafka).
    static func decode(_ metadata: String) -> Timestamp? {
        decodeAll(metadata)?.time
    }

    /// The time and the processor metadata in `metadata`; nil when it is empty, not Base64,
    /// of an unknown version or malformed.
    static func decodeAll(_ metadata: String) -> (time: Timestamp, processorMetadata: [String: Int64])? {
        guard !metadata.isEmpty, let data = Data(base64Encoded: metadata) else { return nil }
        let bytes = [UInt8](data)
        func int64(at offset: Int) -> Int64 { bytes[offset..<offset + 8].reduce(Int64(0)) { ($0 << 8) | Int64($1) } }
        func int32(at offset: Int) -> Int { Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }) }
        switch bytes.first {
        case version where bytes.count == 9:
            return (int64(at: 1), [:])
        case versionWithProcessorMetadata where bytes.count >= 13:
            var entries: [String: Int64] = [:]
            var offset = 13
            for _ in 0..<int32(at: 9) {
                guard offset + 4 <= bytes.count else { return nil }
                let length = int32(at: offset)
                offset += 4
                guard length <= bytes.count - offset - 8 else { return nil }
                let key = String(decoding: bytes[offset..<offset + length], as: UTF8.self)
                entries[key] = int64(at: offset + length)
                offset += length + 8
            }
            guard offset == bytes.count else { return nil }
            return (int64(at: 1), entries)
        default:
            return nil
        }
    }
}
