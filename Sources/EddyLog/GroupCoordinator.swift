import EddyCore

/// Consumer groups of one embedded log: membership, range assignment, rebalances, generations,
/// and committed offsets (stored durably in the compacted internal topic `__consumer_offsets`).
///
/// Rebalancing is cooperative: when membership or subscriptions change, the group's generation
/// goes up and a new target assignment is computed (range assignor). Each member learns its
/// part inside `poll` (``heartbeat(group:memberID:)``): it is first told which partitions to
/// give up, runs its revoke callback (where it may still commit with its old generation) and
/// acknowledges; only then are those partitions handed to their new owner. So a partition never
/// has two owners, and a member that falls behind or times out is fenced (its commits throw
/// ``EddyError/Code/consumerFenced``) rather than racing the new owner.
///
/// Thread-safe: one lock for all groups. Lock order: this lock, then a partition's own lock
/// (commits append to `__consumer_offsets` under this lock, so log order matches memory order).
final class GroupCoordinator: @unchecked Sendable {
    // @unchecked: all mutable state is reached only under `lock`; `log` is set once at start-up.

    /// Most members one group may have.
    static let maximumMembers = 10_000

    weak var log: EmbeddedLog?
    private let lock = ClientLock()
    private var groups: [String: Group] = [:]
    private var nextMemberNumber = 0

    final class Group {
        var generation = 0
        var members: [String: Member] = [:]
        /// Committed offsets with their metadata (empty when the commit carried none).
        var committed: [TopicPartition: OffsetAndMetadata] = [:]
    }

    struct Member {
        var id: String
        var topics: Set<String>
        var sessionTimeoutMilliseconds: Int
        var lastSeen: Int64
        /// The generation this member has synced to (commits must name it).
        var generation: Int
        /// Partitions it holds now (it has been told about them).
        var owned: Set<TopicPartition> = []
        /// Partitions the current generation gives it.
        var target: Set<TopicPartition> = []
    }

    /// What a member must do next, as told by ``heartbeat(group:memberID:)``.
    enum Instruction {
        /// The member is not (or no longer) in the group: it lost everything and must rejoin.
        case unknownMember
        /// Give up these partitions (revoke callback), then call ``acknowledgeRevocation``.
        case revoke([TopicPartition])
        /// Take these partitions (possibly none) at `generation`; the member is now in sync.
        case assign([TopicPartition], generation: Int)
        /// Nothing changed.
        case stable(generation: Int)
    }

    private func requireLog() throws -> EmbeddedLog {
        guard let log else { throw EddyError(.closed, "the embedded log is closed") }
        return log
    }

    // MARK: - Membership

    /// Adds a member subscribed to `topics` and rebalances. Returns its member id.
    func join(group: String, clientID: String, topics: [String], sessionTimeoutMilliseconds: Int) throws -> String {
        let id = try lock.withLock { () -> String in
            let state = groups[group] ?? Group()
            guard state.members.count < GroupCoordinator.maximumMembers else {
                throw EddyError(.invalidState, "group \(group) has \(GroupCoordinator.maximumMembers) members, the limit")
            }
            nextMemberNumber += 1
            // Zero-padded so that ids sort in join order (the range assignor sorts by id).
            let id = "\(clientID)-\(String(nextMemberNumber + 1_000_000_000_000).dropFirst())"
            state.members[id] = Member(id: id, topics: Set(topics), sessionTimeoutMilliseconds: sessionTimeoutMilliseconds,
                                       lastSeen: ClientLock.monotonicMilliseconds(), generation: -1)
            groups[group] = state
            rebalance(group, state)
            return id
        }
        log?.notifyData()
        return id
    }

    /// Changes a member's subscription and rebalances.
    func resubscribe(group: String, memberID: String, topics: [String]) {
        lock.withLock {
            guard let state = groups[group], state.members[memberID] != nil else { return }
            state.members[memberID]!.topics = Set(topics)
            rebalance(group, state)
        }
        log?.notifyData()
    }

    /// Removes a member (it closed or unsubscribed) and rebalances the rest.
    func leave(group: String, memberID: String) {
        lock.withLock {
            guard let state = groups[group], state.members.removeValue(forKey: memberID) != nil else { return }
            rebalance(group, state)
        }
        log?.notifyData()
    }

    /// Called by a member inside every `poll`: refreshes its session and says what to do.
    func heartbeat(group: String, memberID: String) -> Instruction {
        let (instruction, changed) = lock.withLock { () -> (Instruction, Bool) in
            let now = ClientLock.monotonicMilliseconds()
            let changed = expireMembers(now: now)
            guard let state = groups[group], var member = state.members[memberID] else { return (.unknownMember, changed) }
            member.lastSeen = now
            defer { state.members[memberID] = member }
            let toRevoke = member.owned.subtracting(member.target)
            if !toRevoke.isEmpty { return (.revoke(toRevoke.sorted()), changed) }
            if member.generation == state.generation && member.owned == member.target {
                return (.stable(generation: member.generation), changed)
            }
            // Hand over what no other member still holds; the rest comes on a later heartbeat.
            var heldByOthers = Set<TopicPartition>()
            for (id, other) in state.members where id != memberID { heldByOthers.formUnion(other.owned) }
            let toAssign = member.target.subtracting(member.owned).subtracting(heldByOthers)
            member.owned.formUnion(toAssign)
            let wasInSync = member.generation == state.generation
            member.generation = state.generation
            if toAssign.isEmpty && wasInSync { return (.stable(generation: member.generation), changed) }
            return (.assign(toAssign.sorted(), generation: member.generation), changed)
        }
        if changed { log?.notifyData() }
        return instruction
    }

    /// The member has run its revoke callback for `partitions`: they are free for their new owners.
    func acknowledgeRevocation(group: String, memberID: String, partitions: [TopicPartition]) {
        lock.withLock {
            guard let state = groups[group], state.members[memberID] != nil else { return }
            state.members[memberID]!.owned.subtract(partitions)
        }
        log?.notifyData()
    }

    /// Whether some member still waits for partitions another member holds.
    func isAwaitingPartitions(group: String, memberID: String) -> Bool {
        lock.withLock {
            guard let member = groups[group]?.members[memberID] else { return false }
            return !member.target.subtracting(member.owned).isEmpty
        }
    }

    /// Removes members whose session timed out; called by heartbeats and the maintenance thread.
    func expireMembers() {
        let changed = lock.withLock { expireMembers(now: ClientLock.monotonicMilliseconds()) }
        if changed { log?.notifyData() }
    }

    /// Must hold `lock`. Returns whether any group changed.
    private func expireMembers(now: Int64) -> Bool {
        var changed = false
        for (name, state) in groups {
            let expired = state.members.values.filter { now - $0.lastSeen > Int64($0.sessionTimeoutMilliseconds) }
            guard !expired.isEmpty else { continue }
            for member in expired { state.members[member.id] = nil }
            rebalance(name, state)
            changed = true
        }
        return changed
    }

    /// Topics were created or deleted: partition counts may have changed for subscribers.
    func topicsChanged() {
        let changed = lock.withLock { () -> Bool in
            var changed = false
            for (name, state) in groups where !state.members.isEmpty {
                if rebalance(name, state, onlyIfChanged: true) { changed = true }
            }
            return changed
        }
        if changed { log?.notifyData() }
    }

    /// The log is closing: every member is dropped (their next call fails with `.closed`).
    func closeAll() {
        lock.withLock {
            for state in groups.values { state.members.removeAll() }
        }
    }

    /// Must hold `lock`. Computes the range assignment and, if `onlyIfChanged` is false or the
    /// assignment differs, starts a new generation. Returns whether a new generation started.
    @discardableResult
    private func rebalance(_ name: String, _ state: Group, onlyIfChanged: Bool = false) -> Bool {
        let assignment = rangeAssignment(state.members.mapValues(\.topics))
        if onlyIfChanged && state.members.allSatisfy({ assignment[$0.key, default: []] == $0.value.target }) {
            return false
        }
        state.generation += 1
        for id in state.members.keys {
            state.members[id]!.target = assignment[id, default: []]
        }
        return true
    }

    /// Kafka's RangeAssignor: per topic, the members subscribed to it in member-id order get
    /// consecutive ranges of partitions, the first `partitions % members` one extra. Because the
    /// order is the same for every topic, partition *i* of co-partitioned topics goes to the
    /// same member. Topics that do not exist get no assignment until they are created.
    func rangeAssignment(_ subscriptions: [String: Set<String>]) -> [String: Set<TopicPartition>] {
        var result: [String: Set<TopicPartition>] = [:]
        for id in subscriptions.keys { result[id] = [] }
        let topics = Set(subscriptions.values.flatMap { $0 })
        for topic in topics.sorted() {
            guard let count = log?.topicIfPresent(topic)?.partitions.count else { continue }
            let members = subscriptions.filter { $0.value.contains(topic) }.keys.sorted()
            guard !members.isEmpty else { continue }
            let each = count / members.count
            let extra = count % members.count
            for (index, member) in members.enumerated() {
                let start = index * each + min(index, extra)
                let length = each + (index < extra ? 1 : 0)
                for partition in start..<(start + length) {
                    result[member]!.insert(TopicPartition(topic, partition))
                }
            }
        }
        return result
    }

    // MARK: - Offsets

    /// Commits offsets for `group`. A member (`memberID` non-nil) must name its current
    /// generation, else ``EddyError/Code/consumerFenced``. A consumer outside the group
    /// (`assign`) may commit only while the group has no members (Kafka's rule for simple
    /// consumers), else ``EddyError/Code/invalidState``.
    func commit(group: String, memberID: String?, generation: Int, offsets: [TopicPartition: OffsetAndMetadata]) throws {
        try OffsetAndMetadata.validate(offsets)
        let log = try requireLog()
        try lock.withLock {
            let state = groups[group] ?? Group()
            try checkMember(state, group: group, memberID: memberID, generation: generation)
            try write(group: group, offsets: offsets, log: log)
            state.committed.merge(offsets) { $1 }
            groups[group] = state
        }
    }

    /// Throws unless `metadata` names a current member and generation (for offsets sent to a
    /// transaction) — ``EddyError/Code/consumerFenced`` when stale.
    func validate(_ metadata: ConsumerGroupMetadata) throws {
        try lock.withLock {
            let state = groups[metadata.groupID] ?? Group()
            try checkMember(state, group: metadata.groupID,
                            memberID: metadata.memberID.isEmpty ? nil : metadata.memberID,
                            generation: metadata.generation)
        }
    }

    /// Must hold `lock`.
    private func checkMember(_ state: Group, group: String, memberID: String?, generation: Int) throws {
        if let memberID {
            guard let member = state.members[memberID] else {
                throw EddyError(.consumerFenced, "member \(memberID) is no longer in group \(group) (it left or missed its session timeout)")
            }
            guard member.generation == generation else {
                throw EddyError(.consumerFenced, "member \(memberID) of group \(group) committed with generation \(generation); the group is at generation \(member.generation)")
            }
        } else if !state.members.isEmpty {
            throw EddyError(.invalidState, "group \(group) has \(state.members.count) active members; a consumer outside the group cannot commit for it")
        }
    }

    /// Writes offsets committed by a transaction (after its commit markers). No generation check:
    /// it was done when the offsets were added to the transaction.
    func applyTransactional(group: String, offsets: [TopicPartition: OffsetAndMetadata]) throws {
        let log = try requireLog()
        try lock.withLock {
            let state = groups[group] ?? Group()
            try write(group: group, offsets: offsets, log: log)
            state.committed.merge(offsets) { $1 }
            groups[group] = state
        }
    }

    func committed(group: String) -> [TopicPartition: Offset] {
        lock.withLock { groups[group]?.committed.mapValues(\.offset) ?? [:] }
    }

    /// The group's committed offsets with their metadata.
    func committedWithMetadata(group: String) -> [TopicPartition: OffsetAndMetadata] {
        lock.withLock { groups[group]?.committed ?? [:] }
    }

    /// The committed offset of one partition (without copying the group's table).
    func committed(group: String, _ partition: TopicPartition) -> Offset? {
        lock.withLock { groups[group]?.committed[partition]?.offset }
    }

    /// Overwrites committed offsets (their metadata is cleared, as Kafka's offset reset does).
    func alterCommitted(group: String, offsets: [TopicPartition: Offset]) throws {
        let offsets = offsets.mapValues { OffsetAndMetadata($0) }
        let log = try requireLog()
        try lock.withLock {
            let state = groups[group] ?? Group()
            guard state.members.isEmpty else {
                throw EddyError(.invalidState, "group \(group) has \(state.members.count) active members; stop them before altering its offsets")
            }
            try write(group: group, offsets: offsets, log: log)
            state.committed.merge(offsets) { $1 }
            groups[group] = state
        }
    }

    func deleteCommitted(group: String, topics: [String]?) throws {
        let log = try requireLog()
        try lock.withLock {
            guard let state = groups[group] else { return }
            guard state.members.isEmpty else {
                throw EddyError(.invalidState, "group \(group) has \(state.members.count) active members; stop them before deleting its offsets")
            }
            let doomed = state.committed.keys.filter { topics == nil || topics!.contains($0.topic) }
            guard !doomed.isEmpty else { return }
            try write(group: group, deletions: doomed, log: log)
            for tp in doomed { state.committed[tp] = nil }
        }
    }

    func describe(group: String) -> GroupDescription {
        lock.withLock {
            guard let state = groups[group] else { return GroupDescription(group: group, members: [:], generation: 0) }
            var members: [String: [TopicPartition]] = [:]
            for (id, member) in state.members { members[id] = member.owned.sorted() }
            return GroupDescription(group: group, members: members, generation: state.generation)
        }
    }

    // MARK: - The offsets topic

    /// Record key of a committed offset: `offset/<group>/<topic>/<partition>`. Group ids and
    /// topic names cannot contain `/`, so the key is unambiguous.
    static func offsetKey(group: String, _ tp: TopicPartition) -> [UInt8] {
        Array("offset/\(group)/\(tp.topic)/\(tp.partition)".utf8)
    }

    /// Version of a record value that carries metadata (``encodeOffset(_:)``).
    static let offsetValueVersionWithMetadata: Int16 = 1

    /// Record value of a committed offset. Two layouts, told apart by length:
    /// - 8 bytes: the offset (big-endian Int64) and no metadata. The only layout before offset
    ///   metadata existed, still written when the metadata is empty, so logs written by either
    ///   version read the same.
    /// - otherwise (at least 12 bytes): version (Int16, 1), offset (Int64), metadata length
    ///   (Int16) and the metadata's UTF-8 bytes; all big-endian, like Kafka's offset values.
    static func encodeOffset(_ entry: OffsetAndMetadata) -> [UInt8] {
        var value: [UInt8] = []
        if entry.metadata.isEmpty {
            value.appendBigEndian(entry.offset)
            return value
        }
        let metadata = Array(entry.metadata.utf8)
        value.reserveCapacity(12 + metadata.count)
        value.appendBigEndian(offsetValueVersionWithMetadata)
        value.appendBigEndian(entry.offset)
        value.appendBigEndian(Int16(metadata.count))  // <= OffsetAndMetadata.maximumMetadataBytes
        value.append(contentsOf: metadata)
        return value
    }

    /// Reads a value written by ``encodeOffset(_:)``. Throws ``EddyError/Code/corrupt`` for a
    /// value that fits neither layout, ``EddyError/Code/unsupported`` for a newer version.
    static func decodeOffset(_ value: UnsafeRawBufferPointer, context: String) throws -> OffsetAndMetadata {
        var reader = ByteReader(value, context: context)
        if value.count == 8 { return OffsetAndMetadata(try reader.readInt64()) }
        let version = try reader.readInt16()
        guard version == offsetValueVersionWithMetadata else {
            throw EddyError(.unsupported, "\(context): committed offset value version \(version) is newer than this Eddy understands (\(offsetValueVersionWithMetadata))")
        }
        let offset = try reader.readInt64()
        let length = Int(try reader.readInt16())
        guard length >= 0, length == reader.remaining else {
            throw EddyError(.corrupt, "\(context): metadata length \(length) does not match the \(reader.remaining) bytes left")
        }
        let bytes = try reader.readBytes(length)
        guard let metadata = String(validating: bytes, as: UTF8.self) else {
            throw EddyError(.corrupt, "\(context): metadata is not UTF-8")
        }
        return OffsetAndMetadata(offset, metadata: metadata)
    }

    /// Must hold `lock`. One batch per call: a commit is all or nothing.
    private func write(group: String, offsets: [TopicPartition: OffsetAndMetadata] = [:], deletions: [TopicPartition] = [],
                       log: EmbeddedLog) throws {
        guard !offsets.isEmpty || !deletions.isEmpty else { return }
        let partition = try log.partition(TopicPartition(EmbeddedLog.offsetsTopic, 0))
        var builder = RecordBatchBuilder()
        let now = log.now
        for (tp, entry) in offsets.sorted(by: { $0.key < $1.key }) {
            guard entry.offset >= 0 else { throw EddyError(.invalidArgument, "committed offset \(entry.offset) for \(tp) is negative") }
            builder.append(key: GroupCoordinator.offsetKey(group: group, tp), value: GroupCoordinator.encodeOffset(entry),
                           timestamp: now)
        }
        for tp in deletions.sorted() {
            builder.append(key: GroupCoordinator.offsetKey(group: group, tp), value: nil as [UInt8]?, timestamp: now)
        }
        var batch = try builder.build()
        _ = try partition.append(&batch)
    }

    /// Reloads every group's committed offsets from `__consumer_offsets` (read_committed).
    func load() throws {
        let log = try requireLog()
        let partition = try log.partition(TopicPartition(EmbeddedLog.offsetsTopic, 0))
        var loaded: [String: Group] = [:]
        try PartitionScanner.forEachRecord(in: partition, isolation: .readCommitted) { _, view in
            guard let key = view.key else { return }
            let parts = String(decoding: key, as: UTF8.self).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "offset", let number = Int(parts[3]) else { return }
            let group = String(parts[1])
            let tp = TopicPartition(String(parts[2]), number)
            let state = loaded[group] ?? Group()
            if let value = view.value {
                state.committed[tp] = try GroupCoordinator.decodeOffset(
                    value, context: "\(EmbeddedLog.offsetsTopic) offset \(view.offset) (\(group) \(tp))")
            } else {
                state.committed[tp] = nil
            }
            loaded[group] = state
        }
        lock.withLock { groups = loaded }
    }
}
