import EddyCore
import EddySchema
import Foundation
import Testing

@Suite struct AvroCodableTests {
    struct Address: Codable, Equatable {
        var street: String
        var zip: Int32
    }
    enum Color: String, Codable { case red = "RED", green = "GREEN" }
    struct User: Codable, Equatable {
        var id: Int64
        var name: String
        var email: String?
        var score: Double
        var active: Bool
        var color: Color
        var tags: [String]
        var attributes: [String: Int]
        var address: Address
        var previous: [Address]
        var avatar: [UInt8]
        var created: Date
        var key: UUID
    }

    static let userSchema = """
    {"type":"record","name":"User","fields":[
      {"name":"id","type":"long"},
      {"name":"name","type":"string"},
      {"name":"email","type":["null","string"],"default":null},
      {"name":"score","type":"double"},
      {"name":"active","type":"boolean"},
      {"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
      {"name":"tags","type":{"type":"array","items":"string"}},
      {"name":"attributes","type":{"type":"map","values":"long"}},
      {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}},
      {"name":"previous","type":{"type":"array","items":"Address"}},
      {"name":"avatar","type":"bytes"},
      {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"key","type":{"type":"string","logicalType":"uuid"}}
    ]}
    """

    static let ada = User(id: 1, name: "Ada", email: "ada@example.com", score: 9.5, active: true, color: .green,
                          tags: ["a", "b"], attributes: ["x": 1], address: Address(street: "Main", zip: 12345),
                          previous: [Address(street: "Old", zip: 1)], avatar: [1, 2, 3],
                          created: Date(timeIntervalSince1970: 1_700_000_000.123),
                          key: UUID(uuidString: "0B7F0D0E-3C64-4C2A-9D3B-6B0F2B1C9E51")!)

    @Test func typedValuesRoundTripAndMatchTheGenericEncoding() throws {
        let schema = try AvroSchema(parsing: Self.userSchema)
        let bytes = try AvroEncoder(schema: schema).encode(Self.ada)
        let back = try AvroDecoder(schema: schema).decode(User.self, from: bytes)
        #expect(back == Self.ada)
        let generic = try schema.decode(bytes)
        guard case .record(let fields) = generic else { Issue.record("not a record"); return }
        #expect(fields[0] == .long(1))
        #expect(fields[2] == .union(1, .string("ada@example.com")))
        #expect(fields[5] == .enumeration(1))
        #expect(fields[11] == .long(1_700_000_000_123))
        #expect(fields[12] == .string("0b7f0d0e-3c64-4c2a-9d3b-6b0f2b1c9e51"))
        #expect(try schema.encode(generic) == bytes)
    }

    @Test func nilOptionalsBecomeTheNullBranch() throws {
        let schema = try AvroSchema(parsing: Self.userSchema)
        var user = Self.ada
        user.email = nil
        let bytes = try AvroEncoder(schema: schema).encode(user)
        #expect(try AvroDecoder(schema: schema).decode(User.self, from: bytes) == user)
        guard case .record(let fields) = try schema.decode(bytes) else { return }
        #expect(fields[2] == .union(0, .null))
    }

    struct Partial: Codable, Equatable {
        var name: String
        var id: Int64
        var missing: String?
    }

    @Test func propertiesInAnotherOrderOrAbsentFromTheSchemaDecode() throws {
        let schema = try AvroSchema(parsing: Self.userSchema)
        let bytes = try AvroEncoder(schema: schema).encode(Self.ada)
        let partial = try AvroDecoder(schema: schema).decode(Partial.self, from: bytes)
        #expect(partial == Partial(name: "Ada", id: 1, missing: nil))
    }

    struct V2: Codable, Equatable {
        var id: Int64
        var name: String
        var nickname: String
    }

    @Test func dataFromAnOlderWriterSchemaIsResolved() throws {
        let writer = try AvroSchema(parsing: Self.userSchema)
        let reader = try AvroSchema(parsing: #"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"nickname","type":"string","default":"none"}]}"#)
        let bytes = try AvroEncoder(schema: writer).encode(Self.ada)
        let v2 = try AvroDecoder(schema: reader).decode(V2.self, from: bytes, writer: writer)
        #expect(v2 == V2(id: 1, name: "Ada", nickname: "none"))
    }

    struct Wrong: Codable { var id: String }

    @Test func valuesThatDoNotFitAreRefusedWithThePath() throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"R","fields":[{"name":"id","type":"int"}]}"#)
        do {
            _ = try AvroEncoder(schema: schema).encode(Wrong(id: "x"))
            Issue.record("accepted a string for an int")
        } catch let error as EddyError {
            #expect(error.code == .serialization)
            #expect(error.message.contains("id"))
        }
        struct Big: Codable { var id: Int64 }
        #expect(throws: EddyError.self) { try AvroEncoder(schema: schema).encode(Big(id: 1 << 40)) }
        struct Missing: Codable { var other: Int32? }
        #expect(throws: EddyError.self) { try AvroEncoder(schema: schema).encode(Missing(other: nil)) }
        #expect(throws: EddyError.self) { try AvroDecoder(schema: schema).decode(Wrong.self, from: [0x02]) }
        #expect(throws: EddyError.self) { try AvroDecoder(schema: schema).decode(Big.self, from: []) }
    }

    @Test func randomUsersRoundTrip() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("AvroCodableTests.randomUsersRoundTrip seed \(seed)")
        var rng = SplitMix(seed: seed)
        let schema = try AvroSchema(parsing: Self.userSchema)
        for _ in 0..<200 {
            var user = Self.ada
            user.id = Int64(bitPattern: rng.next())
            user.name = Fixtures.randomString(&rng)
            user.email = rng.next() % 2 == 0 ? nil : Fixtures.randomString(&rng)
            user.tags = (0..<Int(rng.next() % 4)).map { _ in Fixtures.randomString(&rng) }
            user.attributes = Dictionary(uniqueKeysWithValues: (0..<Int(rng.next() % 4)).map { i in ("k\(i)", Int(rng.next() % 1000)) })
            let bytes = try AvroEncoder(schema: schema).encode(user)
            #expect(try AvroDecoder(schema: schema).decode(User.self, from: bytes) == user)
        }
    }

    /// A wrapper that encodes its record through a single-value container.
    struct Wrapped: Codable, Equatable {
        var address: Address
        init(address: Address) { self.address = address }
        init(from decoder: any Decoder) throws { address = try decoder.singleValueContainer().decode(Address.self) }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(address)
        }
    }

    @Test func aRecordEncodedThroughASingleValueContainerMatchesTheRecordItself() throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#)
        let address = Address(street: "Main", zip: 8000)
        let direct = try AvroEncoder(schema: schema).encode(address)
        let wrapped = try AvroEncoder(schema: schema).encode(Wrapped(address: address))
        #expect(wrapped == direct)
        #expect(try AvroDecoder(schema: schema).decode(Wrapped.self, from: direct) == Wrapped(address: address))
    }
}
