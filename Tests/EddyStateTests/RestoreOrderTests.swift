import EddyCore
import Testing
@testable import EddyState

@Suite("Restore order")
struct RestoreOrderTests {
    @Test("the last change of every key comes out in bytewise key order, whatever the keys share")
    func randomisedAgainstModel() {
        let seed = testSeed("RestoreOrder")
        var random = SeededGenerator(seed: seed)
        for round in 0..<200 {
            // Keys shorter than, as long as and longer than the 8-byte prefix, many sharing it,
            // bytes 0x00 and 0xFF (padding and ordering edges), and plenty of repeats.
            let alphabet: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]
            var changes: [KeyChange] = []
            for index in 0..<Int.random(in: 0...300, using: &random) {
                var key: [UInt8] = Int.random(in: 0..<3, using: &random) == 0 ? Array("prefix--".utf8) : []
                for _ in 0..<Int.random(in: 0...10, using: &random) { key.append(alphabet.randomElement(using: &random)!) }
                changes.append((key, Int.random(in: 0..<4, using: &random) == 0 ? nil : [UInt8(truncatingIfNeeded: index)]))
            }
            var last: [[UInt8]: Int] = [:]
            for (index, change) in changes.enumerated() { last[change.key] = index }
            let expected = last.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { Int32($0.value) }
            #expect(RestoreOrder.lastChangePerKey(changes) == expected, "round \(round), seed \(seed)")
        }
    }

    @Test("a prefix is the big-endian integer of the first eight bytes, zero-padded")
    func prefixes() {
        #expect(RestoreOrder.prefix([]) == 0)
        #expect(RestoreOrder.prefix([0x01]) == 0x0100_0000_0000_0000)
        #expect(RestoreOrder.prefix([1, 2, 3, 4, 5, 6, 7, 8, 9]) == 0x0102_0304_0506_0708)
        #expect(RestoreOrder.prefix([0xFF]) > RestoreOrder.prefix([0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
    }
}
