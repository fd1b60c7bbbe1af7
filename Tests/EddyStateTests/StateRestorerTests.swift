import EddyCore
import EddyState
import Foundation
import Testing

@Suite("State restoration")
struct StateRestorerTests {
    private let changelog = TopicPartition("app-kv-changelog", 0)

    @Test("a crash between the changelog commit and the store commit is repaired from the changelog")
    func crashBetweenChangelogAndStore() throws {
        let fixture = try StoreFixture(.rocksDB)
        let log = FakeLog()
        let producer = log.makeProducer()
        var store = try fixture.keyValueStore(changelog: changelog)
        try store.put(bytes("a"), bytes("1"))
        try store.put(bytes("b"), bytes("1"))
        try store.commit(flushing: producer)
        #expect(store.checkpoint == 2)
        // Step 1 and 2 of the next commit happen, then the process "dies" before step 3.
        try store.put(bytes("a"), bytes("2"))
        try store.delete(bytes("b"))
        try store.put(bytes("c"), bytes("3"))
        try store.prepareCommit(producer: producer, timestamp: nil)
        try producer.flush()
        store.close()
        try fixture.reopen()

        store = try fixture.keyValueStore(changelog: changelog)
        #expect(store.checkpoint == 2)
        #expect(try store.get(bytes("b")) == bytes("1"))  // still the old state
        var reports: [RestoreProgress] = []
        let result = try StateRestorer.restore(store, consumer: log.makeConsumer()) { reports.append($0) }
        #expect(result.startOffset == 2)
        #expect(result.endOffset == 5)
        #expect(result.records == 3)
        #expect(!reports.isEmpty)
        #expect(store.checkpoint == 5)
        #expect(try store.all().map { text($0.key) + "=" + text($0.value) } == ["a=2", "c=3"])

        // The checkpoint is durable: after another reopen nothing is replayed.
        store.close()
        try fixture.reopen()
        store = try fixture.keyValueStore(changelog: changelog)
        #expect(store.checkpoint == 5)
        let again = try StateRestorer.restore(store, consumer: log.makeConsumer())
        #expect(again.records == 0)
        #expect(try store.all().count == 2)
    }

    @Test("restoring replays the whole changelog in batches and reports progress", arguments: Implementation.allCases)
    func fullRestoreWithProgress(_ implementation: Implementation) throws {
        let log = FakeLog()
        let producer = log.makeProducer()
        let source = try InMemoryKeyValueStore(name: "kv", changelog: changelog)
        for round in 0..<10 {
            for i in 0..<100 { try source.put(bytes("key-\(i % 150 + round * 7)"), bytes("r\(round)-\(i)")) }
            if round % 3 == 2 { for i in 0..<20 { try source.delete(bytes("key-\(i * 5)")) } }
            try source.commit(flushing: producer)
        }
        let fixture = try StoreFixture(implementation)
        let store = try fixture.keyValueStore(changelog: changelog)
        var reports: [RestoreProgress] = []
        let result = try StateRestorer.restore(store, consumer: log.makeConsumer(maximumPollRecords: 64), batchRecords: 100) {
            reports.append($0)
        }
        #expect(result.records == Int(log.endOffset(changelog)))
        #expect(result.bytes > 0)
        #expect(reports.count >= Int(log.endOffset(changelog)) / 100)
        #expect(reports.map(\.records) == reports.map(\.records).sorted())
        #expect(reports.last!.position == log.endOffset(changelog))
        #expect(reports.dropLast().contains { $0.estimatedSecondsRemaining != nil })
        #expect(reports.last!.fractionDone == 1)
        #expect(try store.all() == source.all())
        #expect(store.checkpoint == log.endOffset(changelog))
    }

    @Test("large restore batches are bulk-loaded and match the changelog, also after a reopen")
    func bulkLoadedRestore() throws {
        let log = FakeLog()
        let producer = log.makeProducer()
        let source = try InMemoryKeyValueStore(name: "kv", changelog: changelog)
        for round in 0..<3 {
            for i in 0..<25_000 { try source.put(bytes(String(format: "key-%06d", (i * 7_919 + round) % 40_000)), bytes("r\(round)-\(i)")) }
            for i in stride(from: round, to: 40_000, by: 11) { try source.delete(bytes(String(format: "key-%06d", i))) }
            try source.commit(flushing: producer)
        }
        let fixture = try StoreFixture(.rocksDB)
        var store = try fixture.keyValueStore(changelog: changelog)
        try store.put(bytes("key-000001"), bytes("committed before the restore"))
        try store.put(bytes("zzz"), bytes("not in the changelog, kept"))
        try store.commit(flushing: FakeLog().makeProducer())
        try StateRestorer.restore(store, consumer: log.makeConsumer(), batchRecords: 30_000)
        var expected = try source.all()
        expected.append(KeyValue(key: bytes("zzz"), value: bytes("not in the changelog, kept")))
        #expect(try store.all() == expected)
        store.close()
        try fixture.reopen()
        store = try fixture.keyValueStore(changelog: changelog)
        #expect(store.checkpoint == log.endOffset(changelog))
        #expect(try store.all() == expected)
        #expect(try store.get(bytes("key-000001")) == source.get(bytes("key-000001")))
    }

    @Test("rebuild empties the store and restores it from the beginning", arguments: Implementation.allCases)
    func rebuildFromEmpty(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let log = FakeLog()
        let producer = log.makeProducer()
        let store = try fixture.keyValueStore(changelog: changelog)
        try store.put(bytes("a"), bytes("1"))
        try store.commit(flushing: producer)
        // Commit a change whose changelog record went to another log: the store now holds data
        // its own changelog does not have.
        let elsewhere = FakeLog().makeProducer()
        try store.put(bytes("zzz"), bytes("stray"))
        try store.commit(flushing: elsewhere)
        #expect(try store.all().map { text($0.key) } == ["a", "zzz"])
        try StateRestorer.rebuild(store, consumer: log.makeConsumer())
        #expect(try store.all().map { text($0.key) } == ["a"])
        #expect(store.checkpoint == 1)
    }

    @Test("restoring a window store drops windows past retention", arguments: Implementation.allCases)
    func windowRestoreAppliesRetention(_ implementation: Implementation) throws {
        let log = FakeLog()
        let producer = log.makeProducer()
        let windows = TopicPartition("app-windows-changelog", 0)
        let source = try InMemoryWindowStore(name: "windows", retentionMilliseconds: 1_000,
                                             segmentIntervalMilliseconds: 100, changelog: windows)
        for start in stride(from: Timestamp(0), through: 5_000, by: 50) {
            try source.put(bytes("k\(start % 3)"), windowStart: start, value: bytes("\(start)"))
            if start % 500 == 0 { try source.commit(flushing: producer) }
        }
        try source.commit(flushing: producer)
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 1_000, segmentInterval: 100, changelog: windows)
        try StateRestorer.restore(store, consumer: log.makeConsumer())
        #expect(store.observedStreamTime == 5_000)
        #expect(try store.all().count == source.all().count)
        #expect(Set(try store.all()) == Set(try source.all()))
        #expect(try store.all().allSatisfy { $0.windowStart > 4_000 })
    }

    @Test("restoring a session store reproduces its sessions", arguments: Implementation.allCases)
    func sessionRestore(_ implementation: Implementation) throws {
        let log = FakeLog()
        let producer = log.makeProducer()
        let sessions = TopicPartition("app-sessions-changelog", 0)
        let source = try InMemorySessionStore(name: "sessions", retentionMilliseconds: 10_000,
                                              segmentIntervalMilliseconds: 1_000, changelog: sessions)
        for i in 0..<200 {
            let start = Timestamp(i * 37)
            try source.put(bytes("user\(i % 7)"), session: SessionWindow(start: start, end: start + Timestamp(i % 50)), value: bytes("\(i)"))
            if i % 40 == 0 { try source.remove(bytes("user\(i % 7)"), session: SessionWindow(start: start, end: start + Timestamp(i % 50))) }
            if i % 25 == 0 { try source.commit(flushing: producer) }
        }
        try source.commit(flushing: producer)
        let fixture = try StoreFixture(implementation)
        let store = try fixture.sessionStore(retention: 10_000, segmentInterval: 1_000, changelog: sessions)
        try StateRestorer.restore(store, consumer: log.makeConsumer())
        #expect(try store.all() == source.all())
        for user in 0..<7 {
            #expect(try store.fetch(bytes("user\(user)")) == source.fetch(bytes("user\(user)")))
        }
    }

    @Test("a checkpoint beyond the changelog's end empties the store before replaying", arguments: Implementation.allCases)
    func recreatedChangelog(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let old = FakeLog(), recreated = FakeLog()
        let store = try fixture.keyValueStore(changelog: changelog)
        for i in 0..<5 { try store.put(bytes("old\(i)"), bytes("x")) }
        try store.commit(flushing: old.makeProducer())
        #expect(store.checkpoint == 5)
        let writer = try InMemoryKeyValueStore(name: "kv", changelog: changelog)
        try writer.put(bytes("new"), bytes("y"))
        try writer.commit(flushing: recreated.makeProducer())
        try StateRestorer.restore(store, consumer: recreated.makeConsumer())
        #expect(try store.all().map { text($0.key) } == ["new"])
        #expect(store.checkpoint == 1)
    }

    @Test("unlogged stores and stores with uncommitted changes cannot be restored")
    func refusals() throws {
        let log = FakeLog()
        let unlogged = try InMemoryKeyValueStore(name: "plain")
        #expect(performing: { try StateRestorer.restore(unlogged, consumer: log.makeConsumer()) },
                throws: { ($0 as? EddyError)?.code == .invalidArgument })
        let logged = try InMemoryKeyValueStore(name: "kv", changelog: changelog)
        try logged.put(bytes("a"), bytes("1"))
        #expect(performing: { try StateRestorer.restore(logged, consumer: log.makeConsumer()) },
                throws: { ($0 as? EddyError)?.code == .invalidState })
        logged.abort()
        #expect(performing: { try StateRestorer.restore(logged, consumer: log.makeConsumer(), batchRecords: 0) },
                throws: { ($0 as? EddyError)?.code == .invalidArgument })
    }

    /// Appends `count` random changes to `log`'s changelog through an in-memory store's commits
    /// (the store's changelog records: latest value per key per commit, tombstones for deletes).
    /// Keys come from `keySpace` keys of varied shapes; a quarter of the changes are deletes.
    private func writeChanges(_ count: Int, keySpace: Int, to log: FakeLog, random: inout SeededGenerator) throws {
        let producer = log.makeProducer()
        let writer = try InMemoryKeyValueStore(name: "kv", changelog: changelog)
        for index in 0..<count {
            let number = Int.random(in: 0..<keySpace, using: &random)
            // Short keys, keys sharing their first eight bytes, and longer ones.
            let key = number % 3 == 0 ? bytes("k\(number)") : number % 3 == 1 ? bytes("shared-prefix/\(number)") : bytes("\(number)-\(String(repeating: "x", count: number % 20))")
            if Int.random(in: 0..<4, using: &random) == 0 {
                try writer.delete(key)
            } else {
                try writer.put(key, bytes("v\(index)-\(Int.random(in: 0...1_000_000, using: &random))"))
            }
            if Int.random(in: 0..<200, using: &random) == 0 { try writer.commit(flushing: producer) }
        }
        try writer.commit(flushing: producer)
    }

    private func expectEqual(_ store: any KeyValueStore, _ expected: [[UInt8]: [UInt8]], _ context: String) throws {
        let actual = try store.all()
        #expect(actual.count == expected.count, "\(context)")
        #expect(actual.allSatisfy { expected[$0.key] == $0.value }, "\(context)")
    }

    @Test("puts and tombstones restore to the changelog's last state, into an empty store and then into a non-empty one",
          arguments: Implementation.allCases, [150, 20_000])
    func tombstonesIntoEmptyAndNonEmptyStores(_ implementation: Implementation, batchRecords: Int) throws {
        let seed = testSeed("tombstonesIntoEmptyAndNonEmptyStores")
        var random = SeededGenerator(seed: seed)
        let log = FakeLog()
        let fixture = try StoreFixture(implementation)
        var store = try fixture.keyValueStore(changelog: changelog)
        // Into an empty store: with batches of 20,000 the RocksDB store ingests SST files (more
        // than 10,000 distinct keys per batch), with batches of 150 it writes WriteBatches.
        try writeChanges(30_000, keySpace: 24_000, to: log, random: &random)
        var result = try StateRestorer.restore(store, consumer: log.makeConsumer(), batchRecords: batchRecords)
        #expect(result.records == Int(log.endOffset(changelog)))
        try expectEqual(store, log.latestValues(changelog), "empty store, seed \(seed)")
        // Into the same store, now full: overwrites, deletes of restored keys, new keys.
        let middle = log.endOffset(changelog)
        try writeChanges(30_000, keySpace: 24_000, to: log, random: &random)
        result = try StateRestorer.restore(store, consumer: log.makeConsumer(), batchRecords: batchRecords)
        #expect(result.startOffset == middle)
        #expect(store.checkpoint == log.endOffset(changelog))
        try expectEqual(store, log.latestValues(changelog), "non-empty store, seed \(seed)")
        guard implementation == .rocksDB else { return }
        store.close()
        try fixture.reopen()
        store = try fixture.keyValueStore(changelog: changelog)
        #expect(store.checkpoint == log.endOffset(changelog))
        try expectEqual(store, log.latestValues(changelog), "after reopening, seed \(seed)")
    }

    @Test("a restore that fails midway keeps the old checkpoint, and the next restore gives the changelog's state",
          arguments: Implementation.allCases, [500, 12_000])
    func interruptedRestoreRerun(_ implementation: Implementation, batchRecords: Int) throws {
        let seed = testSeed("interruptedRestoreRerun")
        var random = SeededGenerator(seed: seed)
        let log = FakeLog()
        let fixture = try StoreFixture(implementation)
        var store = try fixture.keyValueStore(changelog: changelog)
        try writeChanges(5_000, keySpace: 4_000, to: log, random: &random)
        try StateRestorer.restore(store, consumer: log.makeConsumer())
        let checkpoint = store.checkpoint
        try writeChanges(60_000, keySpace: 40_000, to: log, random: &random)
        // The consumer fails after a few polls, while earlier batches are applied or in flight.
        let failing = FailingConsumer(log.makeConsumer(maximumPollRecords: 1_000), failAfterPolls: Int.random(in: 20...50, using: &random))
        #expect(performing: { try StateRestorer.restore(store, consumer: failing, batchRecords: batchRecords) },
                throws: { ($0 as? EddyError)?.message == "injected poll failure" })
        #expect(store.checkpoint == checkpoint, "seed \(seed)")
        if implementation == .rocksDB {
            // Closing flushes whatever part of the restore reached the memtables: the store now
            // holds a partial restore under the old checkpoint.
            store.close()
            try fixture.reopen()
            store = try fixture.keyValueStore(changelog: changelog)
            #expect(store.checkpoint == checkpoint, "seed \(seed)")
        }
        let result = try StateRestorer.restore(store, consumer: log.makeConsumer(), batchRecords: batchRecords)
        #expect(result.startOffset == checkpoint)
        #expect(store.checkpoint == log.endOffset(changelog))
        try expectEqual(store, log.latestValues(changelog), "seed \(seed)")
    }

    @Test("a batch that fails on the applier thread fails the restore, which can then be run again")
    func applierFailure() throws {
        var random = SeededGenerator(seed: 7)
        let log = FakeLog()
        let fixture = try StoreFixture(.rocksDB)
        let store = try fixture.keyValueStore(changelog: changelog)
        try writeChanges(60_000, keySpace: 60_000, to: log, random: &random)
        // The file the first ingested batch is written to cannot be created: a directory is in the way.
        let blocker = fixture.taskPath + "/rocksdb.restore-1.sst"
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: true)
        #expect(performing: { try StateRestorer.restore(store, consumer: log.makeConsumer(), batchRecords: 15_000) },
                throws: { ($0 as? EddyError)?.code == .io })
        #expect(store.checkpoint == nil)
        try FileManager.default.removeItem(atPath: blocker)
        try StateRestorer.restore(store, consumer: log.makeConsumer(), batchRecords: 15_000)
        #expect(store.checkpoint == log.endOffset(changelog))
        try expectEqual(store, log.latestValues(changelog), "after the rerun")
    }
}

/// A consumer that throws after a number of polls: a restore interrupted by a failing log.
private final class FailingConsumer: LogConsumer {
    let base: FakeLogConsumer
    var pollsLeft: Int
    init(_ base: FakeLogConsumer, failAfterPolls: Int) {
        self.base = base
        pollsLeft = failAfterPolls
    }
    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws { try base.subscribe(topics, listener: listener) }
    func assign(_ partitions: [TopicPartition]) throws { try base.assign(partitions) }
    func unsubscribe() throws { try base.unsubscribe() }
    func assignment() -> [TopicPartition] { base.assignment() }
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] {
        pollsLeft -= 1
        if pollsLeft < 0 { throw EddyError(.io, "injected poll failure") }
        return try base.poll(timeoutMilliseconds: timeoutMilliseconds)
    }
    func position(_ partition: TopicPartition) throws -> Offset { try base.position(partition) }
    func seek(_ partition: TopicPartition, to offset: Offset) throws { try base.seek(partition, to: offset) }
    func seekToBeginning(_ partitions: [TopicPartition]) throws { try base.seekToBeginning(partitions) }
    func seekToEnd(_ partitions: [TopicPartition]) throws { try base.seekToEnd(partitions) }
    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?] { try base.offsets(forTimes: times) }
    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { try base.beginningOffsets(partitions) }
    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { try base.endOffsets(partitions) }
    func pause(_ partitions: [TopicPartition]) { base.pause(partitions) }
    func resume(_ partitions: [TopicPartition]) { base.resume(partitions) }
    func commit(_ offsets: [TopicPartition: Offset]) throws { try base.commit(offsets) }
    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { try base.committed(partitions) }
    func groupMetadata() -> ConsumerGroupMetadata? { base.groupMetadata() }
    func close() throws { try base.close() }
}
