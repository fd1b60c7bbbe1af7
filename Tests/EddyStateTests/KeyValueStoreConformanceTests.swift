import EddyCore
import EddyState
import Testing

@Suite("Key-value store conformance")
struct KeyValueStoreConformanceTests {
    private func keys(_ entries: [KeyValue]) -> [String] { entries.map { text($0.key) } }

    private func filled(_ fixture: StoreFixture, _ keys: [String]) throws -> any KeyValueStore {
        let store = try fixture.keyValueStore()
        for key in keys { try store.put(bytes(key), bytes("v-" + key)) }
        try store.commit()
        return store
    }

    @Test("get, put, delete and putIfAbsent behave like a map", arguments: Implementation.allCases)
    func basicOperations(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.keyValueStore()
        #expect(try store.get(bytes("a")) == nil)
        try store.put(bytes("a"), bytes("1"))
        #expect(try store.get(bytes("a")) == bytes("1"))
        #expect(try store.putIfAbsent(bytes("a"), bytes("2")) == bytes("1"))
        #expect(try store.get(bytes("a")) == bytes("1"))
        #expect(try store.putIfAbsent(bytes("b"), bytes("2")) == nil)
        #expect(try store.get(bytes("b")) == bytes("2"))
        try store.put(bytes("empty"), [])
        #expect(try store.get(bytes("empty")) == [])
        try store.commit()
        #expect(try store.delete(bytes("a")) == bytes("1"))
        #expect(try store.get(bytes("a")) == nil)
        #expect(try store.delete(bytes("missing")) == nil)
        try store.commit()
        #expect(try store.get(bytes("a")) == nil)
        #expect(try keys(store.all()) == ["b", "empty"])
    }

    @Test("the empty key and binary keys sort bytewise", arguments: Implementation.allCases)
    func binaryKeys(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.keyValueStore()
        let keys: [[UInt8]] = [[], [0], [0, 0], [0, 1], [1], [0x7F], [0x80], [0xFF], [0xFF, 0xFF]]
        for key in keys.shuffled() { try store.put(key, key) }
        #expect(try store.all().map(\.key) == keys)
        try store.commit()
        #expect(try store.all().map(\.key) == keys)
        #expect(try store.all(reverse: true).map(\.key) == keys.reversed())
        #expect(try store.get([]) == [])
    }

    @Test("range includes its start and excludes its end", arguments: Implementation.allCases)
    func rangeBounds(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try filled(fixture, ["a", "b", "c", "d", "e"])
        #expect(try keys(store.range(from: bytes("b"), to: bytes("d"))) == ["b", "c"])
        #expect(try keys(store.range(from: bytes("bb"), to: bytes("dd"))) == ["c", "d"])
        #expect(try keys(store.range(from: bytes(""), to: bytes("z"))) == ["a", "b", "c", "d", "e"])
        #expect(try keys(store.range(from: bytes("b"), to: bytes("e"), limit: 2)) == ["b", "c"])
        #expect(try keys(store.range(from: bytes("b"), to: bytes("e"), limit: 0)) == [])
    }

    @Test("empty and inverted ranges return nothing", arguments: Implementation.allCases)
    func emptyRanges(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try filled(fixture, ["a", "b", "c"])
        #expect(try store.range(from: bytes("b"), to: bytes("b")).isEmpty)
        #expect(try store.range(from: bytes("c"), to: bytes("a")).isEmpty)
        #expect(try store.reverseRange(from: bytes("b"), to: bytes("b")).isEmpty)
        #expect(try store.reverseRange(from: bytes("c"), to: bytes("a")).isEmpty)
        #expect(try store.range(from: bytes("x"), to: bytes("z")).isEmpty)
        try store.put(bytes("bb"), bytes("uncommitted"))
        #expect(try store.range(from: bytes("bb"), to: bytes("bb")).isEmpty)
        #expect(try store.reverseRange(from: bytes("c"), to: bytes("a")).isEmpty)
    }

    @Test("reverse range returns the same range in descending order", arguments: Implementation.allCases)
    func reverseRange(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try filled(fixture, ["a", "b", "c", "d", "e"])
        #expect(try keys(store.reverseRange(from: bytes("b"), to: bytes("d"))) == ["c", "b"])
        #expect(try keys(store.reverseRange(from: bytes("b"), to: bytes("dd"))) == ["d", "c", "b"])
        #expect(try keys(store.reverseRange(from: bytes("a"), to: bytes("z"), limit: 2)) == ["e", "d"])
        #expect(try keys(store.all(reverse: true)) == ["e", "d", "c", "b", "a"])
    }

    @Test("prefix scan returns exactly the keys with the prefix", arguments: Implementation.allCases)
    func prefixScan(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.keyValueStore()
        for key: [UInt8] in [[0x61], [0x61, 0x00], [0x61, 0x62], [0x61, 0xFF], [0x61, 0xFF, 0xFF], [0x62], [0xFF], [0xFF, 0x01]] {
            try store.put(key, key)
        }
        try store.commit()
        #expect(try store.prefix([0x61]).map(\.key) == [[0x61], [0x61, 0x00], [0x61, 0x62], [0x61, 0xFF], [0x61, 0xFF, 0xFF]])
        #expect(try store.prefix([0x61, 0xFF]).map(\.key) == [[0x61, 0xFF], [0x61, 0xFF, 0xFF]])
        #expect(try store.prefix([0xFF]).map(\.key) == [[0xFF], [0xFF, 0x01]])
        #expect(try store.prefix([]).count == 8)
        #expect(try store.prefix([0x63]).isEmpty)
        #expect(try store.prefix([0x61], limit: 2).map(\.key) == [[0x61], [0x61, 0x00]])
    }

    @Test("reads merge uncommitted puts and deletes with committed data in both directions",
          arguments: Implementation.allCases)
    func mergedReads(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try filled(fixture, ["b", "d", "f", "h"])
        try store.put(bytes("a"), bytes("new-a"))      // before all committed keys
        try store.put(bytes("d"), bytes("new-d"))      // overwrites a committed key
        try store.delete(bytes("f"))                   // hides a committed key
        try store.put(bytes("g"), bytes("new-g"))      // between committed keys
        try store.put(bytes("z"), bytes("new-z"))      // after all committed keys
        try store.put(bytes("y"), bytes("gone"))
        try store.delete(bytes("y"))                   // uncommitted put then delete
        #expect(store.hasUncommittedChanges)
        let expected = ["a", "b", "d", "g", "h", "z"]
        #expect(try keys(store.all()) == expected)
        #expect(try keys(store.all(reverse: true)) == expected.reversed())
        #expect(try store.get(bytes("d")) == bytes("new-d"))
        #expect(try store.get(bytes("f")) == nil)
        #expect(try store.get(bytes("y")) == nil)
        #expect(try store.all().first { $0.key == bytes("d") }?.value == bytes("new-d"))
        #expect(try keys(store.range(from: bytes("c"), to: bytes("h"))) == ["d", "g"])
        #expect(try keys(store.reverseRange(from: bytes("c"), to: bytes("h"))) == ["g", "d"])
        #expect(try keys(store.range(from: bytes("a"), to: bytes("zz"), limit: 3)) == ["a", "b", "d"])
        var borrowed: [String] = []
        try store.forEachBorrowed(from: bytes("b"), to: nil, reverse: true) { key, value in
            borrowed.append(String(decoding: key, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self))
            return borrowed.count < 4
        }
        #expect(borrowed == ["z=new-z", "h=v-h", "g=new-g", "d=new-d"])
        #expect(try keys(store.reverseRange(from: bytes("a"), to: bytes("zz"), limit: 3)) == ["z", "h", "g"])
        try store.commit()
        #expect(!store.hasUncommittedChanges)
        #expect(try keys(store.all()) == expected)
        #expect(try keys(store.all(reverse: true)) == expected.reversed())
    }

    @Test("abort drops every uncommitted change", arguments: Implementation.allCases)
    func abortDropsChanges(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try filled(fixture, ["a", "b"])
        try store.put(bytes("c"), bytes("3"))
        try store.delete(bytes("a"))
        try store.put(bytes("b"), bytes("changed"))
        store.abort()
        #expect(!store.hasUncommittedChanges)
        #expect(try keys(store.all()) == ["a", "b"])
        #expect(try store.get(bytes("b")) == bytes("v-b"))
    }

    @Test("approximate count follows puts and deletes", arguments: Implementation.allCases)
    func approximateCount(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.keyValueStore()
        for i in 0..<100 { try store.put(bytes("k\(i)"), bytes("v")) }
        #expect(try store.approximateCount() == 100)
        try store.commit()
        for i in 0..<10 { try store.delete(bytes("k\(i)")) }
        try store.put(bytes("k50"), bytes("overwrite"))
        #expect(try store.approximateCount() == 90)
        try store.commit()
        let count = try store.approximateCount()
        if implementation == .inMemory { #expect(count == 90) } else { #expect((80...110).contains(count)) }
    }

    @Test("keys over the size limit are refused", arguments: Implementation.allCases)
    func sizeLimits(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.keyValueStore()
        let error = #expect(throws: EddyError.self) {
            try store.put([UInt8](repeating: 1, count: StateLimits.maximumKeyBytes + 1), [1])
        }
        #expect(error?.code == .recordTooLarge)
        #expect(!store.hasUncommittedChanges)
    }

    @Test("a closed store refuses every call", arguments: Implementation.allCases)
    func closedStore(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try filled(fixture, ["a"])
        store.close()
        #expect(throws: EddyError(.closed, "store kv is closed")) { try store.get(bytes("a")) }
        #expect(throws: EddyError.self) { try store.put(bytes("a"), bytes("1")) }
        #expect(throws: EddyError.self) { try store.all() }
        #expect(throws: EddyError.self) { try store.commit() }
    }

    @Test("a logged store sends the latest value per key and a tombstone per delete, then checkpoints",
          arguments: Implementation.allCases)
    func changelogging(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let log = FakeLog()
        let producer = log.makeProducer()
        let changelog = TopicPartition(ChangelogTopic.name(application: "app", store: "kv"), 0)
        #expect(changelog.topic == "app-kv-changelog")
        let store = try fixture.keyValueStore(changelog: changelog)
        #expect(store.checkpoint == nil)
        try store.put(bytes("a"), bytes("1"))
        try store.put(bytes("a"), bytes("2"))
        try store.put(bytes("b"), bytes("1"))
        try store.commit(flushing: producer)
        #expect(log.records(changelog).map { text($0.key!) } == ["a", "b"])
        #expect(log.records(changelog).map { $0.value.map(text) } == ["2", "1"])
        #expect(store.checkpoint == 2)

        try store.delete(bytes("a"))
        try store.put(bytes("c"), bytes("3"))
        try store.put(bytes("c"), bytes("4"))
        try store.commit(flushing: producer)
        let second = Array(log.records(changelog)[2...])
        #expect(second.map { text($0.key!) } == ["a", "c"])
        #expect(second.map { $0.value.map(text) } == [nil, "4"])
        #expect(store.checkpoint == 4)

        // A commit with nothing buffered sends nothing and keeps the checkpoint.
        try store.commit(flushing: producer)
        #expect(log.endOffset(changelog) == 4)
        #expect(store.checkpoint == 4)
    }

    @Test("a logged store refuses to commit changes the changelog has not acknowledged",
          arguments: Implementation.allCases)
    func commitProtocolIsEnforced(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let log = FakeLog()
        let producer = log.makeProducer()
        let store = try fixture.keyValueStore(changelog: TopicPartition("app-kv-changelog", 0))
        try store.put(bytes("a"), bytes("1"))
        // Not sent to the changelog at all.
        #expect(performing: { try store.commit() }, throws: { ($0 as? EddyError)?.code == .invalidState })
        try store.prepareCommit(producer: producer, timestamp: 5)
        // Sent but not flushed: no acknowledgement yet.
        #expect(performing: { try store.commit() }, throws: { ($0 as? EddyError)?.code == .invalidState })
        // Writes between prepare and commit are refused.
        #expect(performing: { try store.put(bytes("b"), bytes("2")) }, throws: { ($0 as? EddyError)?.code == .invalidState })
        try producer.flush()
        try store.commit()
        #expect(store.checkpoint == 1)
        #expect(log.records(TopicPartition("app-kv-changelog", 0)).first?.timestamp == 5)

        // A failed changelog write makes commit fail and keeps the change uncommitted.
        try store.put(bytes("c"), bytes("3"))
        try store.prepareCommit(producer: producer, timestamp: nil)
        producer.failNextFlush = true
        #expect(throws: EddyError.self) { try producer.flush() }
        #expect(performing: { try store.commit() }, throws: { ($0 as? EddyError)?.code == .io })
        store.abort()
        #expect(try store.get(bytes("c")) == nil)
        #expect(store.checkpoint == 1)
    }
}
