import EddyCore
import EddyState
import Testing

/// Random puts, deletes, commits and aborts against a dictionary model.
@Suite("Randomised store model")
struct StoreModelTests {
    @Test("a key-value store equals a dictionary model after every commit", arguments: Implementation.allCases)
    func keyValueModel(_ implementation: Implementation) throws {
        let seed = testSeed("keyValueModel(\(implementation))")
        var random = SeededGenerator(seed: seed)
        let fixture = try StoreFixture(implementation)
        let log = FakeLog()
        let producer = log.makeProducer()
        let changelog = TopicPartition("app-kv-changelog", 0)
        var store = try fixture.keyValueStore(changelog: changelog)
        var committed: [[UInt8]: [UInt8]] = [:]
        var pending = committed
        let keySpace = 300

        func randomKey() -> [UInt8] {
            // Short keys with shared prefixes and zero bytes, to stress ordering.
            let n = Int.random(in: 0..<keySpace, using: &random)
            var key: [UInt8] = [UInt8(n % 4)]
            if n % 3 != 0 { key.append(UInt8(n % 7 == 0 ? 0 : n & 0xFF)) }
            if n % 5 == 0 { key.append(0xFF) }
            return key
        }
        func check(_ context: String) throws {
            let expected = pending.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            let actual = try store.all()
            #expect(actual.map(\.key) == expected.map(\.key), "\(context), seed \(seed)")
            #expect(actual.map(\.value) == expected.map(\.value), "\(context), seed \(seed)")
            #expect(try store.all(reverse: true).map(\.key) == expected.reversed().map(\.key), "\(context), seed \(seed)")
            // A random range, both directions.
            let a = randomKey(), b = randomKey()
            let (from, to) = a.lexicographicallyPrecedes(b) ? (a, b) : (b, a)
            let inRange = expected.filter { !$0.key.lexicographicallyPrecedes(from) && $0.key.lexicographicallyPrecedes(to) }
            #expect(try store.range(from: from, to: to).map(\.key) == inRange.map(\.key), "\(context), seed \(seed)")
            #expect(try store.reverseRange(from: from, to: to).map(\.key) == inRange.reversed().map(\.key), "\(context), seed \(seed)")
            let prefix = [from[0]]
            #expect(try store.prefix(prefix).map(\.key) == expected.filter { $0.key.first == prefix[0] }.map(\.key), "\(context), seed \(seed)")
        }

        let steps = 3_000
        var commits = 0
        for step in 0..<steps {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<50:
                let key = randomKey(), value = [UInt8](repeating: UInt8(step & 0xFF), count: Int.random(in: 0..<20, using: &random))
                try store.put(key, value)
                pending[key] = value
            case 50..<70:
                let key = randomKey()
                #expect(try store.delete(key) == pending[key], "seed \(seed)")
                pending[key] = nil
            case 70..<75:
                let key = randomKey()
                let value: [UInt8] = [1, 2, 3]
                #expect(try store.putIfAbsent(key, value) == pending[key], "seed \(seed)")
                if pending[key] == nil { pending[key] = value }
            case 75..<85:
                let key = randomKey()
                #expect(try store.get(key) == pending[key], "seed \(seed)")
            case 85..<92:
                try store.commit(flushing: producer)
                committed = pending
                commits += 1
                try check("after commit at step \(step)")
            case 92..<96:
                store.abort()
                pending = committed
                try check("after abort at step \(step)")
            case 96..<98:
                try check("uncommitted at step \(step)")
            default:
                // Reopen (RocksDB) or rebuild from the changelog (both): committed state only.
                store.abort()
                pending = committed
                if implementation == .rocksDB && Bool.random(using: &random) {
                    store.close()
                    try fixture.reopen()
                    store = try fixture.keyValueStore(changelog: changelog)
                } else {
                    try StateRestorer.rebuild(store, consumer: log.makeConsumer(maximumPollRecords: 97), batchRecords: 50)
                }
                try check("after reopen or rebuild at step \(step)")
            }
        }
        try store.commit(flushing: producer)
        committed = pending
        try check("at the end")
        #expect(log.latestValues(changelog) == committed, "seed \(seed)")
        #expect(commits > 50)
    }

    @Test("a window store equals a model with retention after every commit", arguments: Implementation.allCases)
    func windowModel(_ implementation: Implementation) throws {
        let seed = testSeed("windowModel(\(implementation))")
        var random = SeededGenerator(seed: seed)
        let fixture = try StoreFixture(implementation)
        let retention: Int64 = 2_000
        let store = try fixture.windowStore(retention: retention, segmentInterval: 300)
        struct Window: Hashable { var key: [UInt8]; var start: Timestamp }
        var committed: [Window: [UInt8]] = [:], pending = committed
        var committedTime: Timestamp = .min, time: Timestamp = .min
        func live(_ model: [Window: [UInt8]], _ time: Timestamp) -> [Window: [UInt8]] {
            model.filter { time == .min || $0.key.start > time - retention }
        }
        func check(_ context: String) throws {
            let expected = live(pending, time)
            let actual = try store.all()
            #expect(actual.count == expected.count, "\(context), seed \(seed)")
            for entry in actual {
                #expect(expected[Window(key: entry.key, start: entry.windowStart)] == entry.value, "\(context), seed \(seed)")
            }
            let key: [UInt8] = [UInt8.random(in: 0..<5, using: &random)]
            let from = Timestamp.random(in: 0..<10_000, using: &random), to = from + Timestamp.random(in: 0..<3_000, using: &random)
            let fetched = try store.fetch(key, from: from, to: to)
            let wanted = expected.filter { $0.key.key == key && $0.key.start >= from && $0.key.start <= to }.sorted { $0.key.start < $1.key.start }
            #expect(fetched.map(\.windowStart) == wanted.map(\.key.start), "\(context), seed \(seed)")
        }
        for step in 0..<2_000 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<60:
                // Mostly increasing time with some late writes.
                let base = max(0, time == .min ? 0 : time)
                let start = base + Timestamp.random(in: -2_500...40, using: &random)
                let window = Window(key: [UInt8.random(in: 0..<5, using: &random)], start: max(0, start))
                let value: [UInt8]? = Int.random(in: 0..<10, using: &random) == 0 ? nil : [UInt8(step & 0xFF)]
                try store.put(window.key, windowStart: window.start, value: value)
                time = max(time, window.start)
                if window.start > time - retention { pending[window] = value }
                pending = live(pending, time)
            case 60..<80:
                try store.commit()
                committed = pending
                committedTime = time
                try check("after commit at step \(step)")
            case 80..<90:
                store.abort()
                pending = committed
                time = committedTime
                try check("after abort at step \(step)")
            default:
                try check("uncommitted at step \(step)")
            }
        }
    }
}
