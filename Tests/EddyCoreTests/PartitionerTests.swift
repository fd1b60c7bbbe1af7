import EddyCore
import Testing

@Suite struct PartitionerTests {
    /// Outputs of Kafka's `Utils.murmur2` (from Kafka's UtilsTest and librdkafka's rdmurmur2.c).
    static let kafkaVectors: [(String, Int32)] = [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        ("abc", 479_470_107),
        ("1", -1_993_445_489),
        ("12", 126_087_238),
        ("123", -267_702_483),
        ("1234", -1_614_185_708),
        ("12345", -1_188_365_604),
        ("kafka", -798_503_068),
    ]

    @Test(arguments: kafkaVectors)
    func murmur2MatchesKafka(input: String, expected: Int32) {
        let hash = Array(input.utf8).withUnsafeBytes { DefaultPartitioner.murmur2($0) }
        #expect(hash == expected)
    }

    @Test func partitionIsThePositiveHashModuloTheCount() {
        for (input, hash) in Self.kafkaVectors {
            let expected = Int(UInt32(bitPattern: hash) & 0x7fff_ffff) % 7
            #expect(DefaultPartitioner.partition(key: Array(input.utf8), count: 7) == expected)
        }
    }
}
