import EddyCore
import Testing

@Suite struct VarintTests {
    @Test func zigZagMatchesKafka() {
        #expect(Varint.zigZag(0) == 0)
        #expect(Varint.zigZag(-1) == 1)
        #expect(Varint.zigZag(1) == 2)
        #expect(Varint.zigZag(-2) == 3)
        #expect(Varint.zigZag(Int64.max) == UInt64.max - 1)
        #expect(Varint.zigZag(Int64.min) == UInt64.max)
    }

    @Test func knownEncodings() {
        var bytes: [UInt8] = []
        Varint.appendSigned(300, to: &bytes)
        #expect(bytes == [0xD8, 0x04])
        bytes = []
        Varint.appendSigned(-1, to: &bytes)
        #expect(bytes == [0x01])
    }

    @Test func seededRoundTrips() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var generator = SplitMix64(seed: seed)
        var bytes: [UInt8] = []
        var values: [Int64] = []
        for _ in 0..<10_000 {
            let shift = Int(generator.next() % 64)
            let value = Int64(bitPattern: generator.next()) >> shift
            values.append(value)
            Varint.appendSigned(value, to: &bytes)
        }
        try bytes.withUnsafeBytes { buffer in
            var reader = ByteReader(buffer)
            for value in values {
                let decoded = try reader.readVarlong()
                #expect(decoded == value, "seed \(seed)")
            }
            #expect(reader.remaining == 0)
        }
        #expect(Varint.size(signed: 300) == 2)
    }

    @Test func truncatedAndOverlongVarintsAreCorruptionErrors() {
        [UInt8]([0x80, 0x80]).withUnsafeBytes { buffer in
            var reader = ByteReader(buffer)
            #expect(throws: EddyError.self) { try reader.readVarlong() }
        }
        [UInt8](repeating: 0xFF, count: 11).withUnsafeBytes { buffer in
            var reader = ByteReader(buffer)
            #expect(throws: EddyError.self) { try reader.readVarlong() }
        }
    }
}
