import EddyCore
import Testing
@testable import EddyState

@Suite("Sorted byte map")
struct SortedByteMapTests {
    @Test("random inserts, removals and range removals match a sorted model across chunk splits")
    func randomisedAgainstModel() {
        let seed = testSeed("SortedByteMap")
        var random = SeededGenerator(seed: seed)
        var map = SortedByteMap<Int>()
        var model: [[UInt8]: Int] = [:]
        func randomKey() -> [UInt8] {
            (0..<Int.random(in: 0...3, using: &random)).map { _ in UInt8.random(in: 0...40, using: &random) * 6 }
        }
        for step in 0..<40_000 {
            let key = randomKey()
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<70:
                map.set(key, step)
                model[key] = step
            case 70..<95:
                #expect(map.remove(key) == model.removeValue(forKey: key), "seed \(seed)")
            case 95..<99:
                #expect(map[key] == model[key], "seed \(seed)")
            default:
                let other = randomKey()
                let (from, to) = key.lexicographicallyPrecedes(other) ? (key, other) : (other, key)
                map.removeRange(from: from, to: to)
                model = model.filter { $0.key.lexicographicallyPrecedes(from) || !$0.key.lexicographicallyPrecedes(to) }
            }
            if step % 5_000 == 4_999 {
                let sorted = model.keys.sorted { $0.lexicographicallyPrecedes($1) }
                #expect(map.count == model.count, "seed \(seed)")
                #expect(map.entries(from: nil, to: nil, reverse: false).map(\.key) == sorted, "seed \(seed)")
                #expect(map.entries(from: nil, to: nil, reverse: true).map(\.key) == sorted.reversed(), "seed \(seed)")
                let a = randomKey(), b = randomKey()
                let (from, to) = a.lexicographicallyPrecedes(b) ? (a, b) : (b, a)
                let inRange = sorted.filter { !$0.lexicographicallyPrecedes(from) && $0.lexicographicallyPrecedes(to) }
                #expect(map.entries(from: from, to: to, reverse: false).map(\.key) == inRange, "seed \(seed)")
                #expect(map.entries(from: from, to: to, reverse: true).map(\.key) == inRange.reversed(), "seed \(seed)")
                #expect(map.entries(from: from, to: nil, reverse: true).map(\.key)
                        == sorted.filter { !$0.lexicographicallyPrecedes(from) }.reversed(), "seed \(seed)")
            }
        }
    }

    @Test("escaped keys are prefix-free, order-preserving and decode back")
    func escapedKeys() throws {
        let keys: [[UInt8]] = [[], [0], [0, 0], [0, 1], [0, 0xFF], [1], [0xFF], [0xFF, 0], [0xFF, 0xFF]]
        var encoded: [[UInt8]] = []
        for key in keys {
            var bytes: [UInt8] = []
            ByteKeys.appendEscaped(key, to: &bytes)
            #expect(try ByteKeys.readEscaped(bytes + [9, 9], at: 0) == (key, bytes.count))
            encoded.append(bytes + [0xFF, 0xFF, 0xFF])  // any suffix keeps the order
            var end: [UInt8] = []
            ByteKeys.appendEscapedEnd(key, to: &end)
            #expect(ByteKeys.compare(bytes + [0xFF, 0xFF], end) < 0)
        }
        #expect(encoded == encoded.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(throws: EddyError.self) { try ByteKeys.readEscaped([1, 2, 0, 7], at: 0) }
        var ordered: [[UInt8]] = []
        for value: Int64 in [.min, -1_000, -1, 0, 1, 1_000, .max] {
            var bytes: [UInt8] = []
            ByteKeys.appendOrdered(value, to: &bytes)
            #expect(ByteKeys.readOrdered(bytes, at: 0) == value)
            ordered.append(bytes)
        }
        #expect(ordered == ordered.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(ByteKeys.prefixEnd([0x61, 0xFF]) == [0x62])
        #expect(ByteKeys.prefixEnd([0xFF, 0xFF]) == nil)
    }
}
