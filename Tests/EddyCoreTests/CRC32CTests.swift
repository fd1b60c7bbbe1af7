import EddyCore
import Testing

@Suite struct CRC32CTests {
    @Test func rfc3720VectorsMatch() {
        // RFC 3720, Appendix B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        let iscsiRead: [UInt8] = [
            0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
            0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ]
        #expect(CRC32C.checksum(iscsiRead) == 0xD9963A56)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func hardwareAndSoftwarePathsAgreeOnEveryLengthAndAlignment() {
        var generator = SplitMix64(seed: 42)
        let data = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        data.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 31, 32, 33, 100, 1000, 4000] where start + length <= all.count {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                    #expect(CRC32C.checksum(slice) == CRC32C.softwareChecksum(slice))
                }
            }
        }
    }

    @Test func checksumsCanBeContinuedAcrossChunks() {
        let data = Array("The quick brown fox jumps over the lazy dog".utf8)
        data.withUnsafeBytes { all in
            let whole = CRC32C.checksum(all)
            let first = CRC32C.update(0, UnsafeRawBufferPointer(rebasing: all[0..<10]))
            #expect(CRC32C.update(first, UnsafeRawBufferPointer(rebasing: all[10...])) == whole)
        }
    }
}

/// A small seeded generator for tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
