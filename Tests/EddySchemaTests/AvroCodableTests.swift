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

    /// Encodes another Avro value from inside its own `encode(to:)` (the thread's coding state
    /// is taken then, so the inner call must get its own).
    struct Nested: Codable, Equatable {
        var id: Int64
        var inner: [UInt8]
        init(id: Int64, inner: [UInt8]) { self.id = id; self.inner = inner }
        enum CodingKeys: String, CodingKey { case id, inner }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            let schema = try AvroSchema(parsing: #"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#)
            let bytes = try AvroEncoder(schema: schema).encode(Address(street: "In\(id)", zip: Int32(id)))
            try container.encode(bytes, forKey: .inner)
        }
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(Int64.self, forKey: .id)
            inner = try container.decode([UInt8].self, forKey: .inner)
            let schema = try AvroSchema(parsing: #"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#)
            let address = try AvroDecoder(schema: schema).decode(Address.self, from: inner)
            guard address == Address(street: "In\(id)", zip: Int32(id)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "inner value differs"))
            }
        }
    }

    @Test func encodersAndDecodersCalledFromInsideAValueOrAcrossSchemasAndThreadsStayCorrect() async throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"Nested","fields":[{"name":"id","type":"long"},{"name":"inner","type":"bytes"}]}"#)
        let user = try AvroSchema(parsing: Self.userSchema)
        // Reentrant calls, alternating with another schema on the same thread.
        for i in 0..<20 {
            let bytes = try AvroEncoder(schema: schema).encode(Nested(id: Int64(i), inner: []))
            let back = try AvroDecoder(schema: schema).decode(Nested.self, from: bytes)
            #expect(back.id == Int64(i))
            let ada = try AvroEncoder(schema: user).encode(Self.ada)
            #expect(try AvroDecoder(schema: user).decode(User.self, from: ada) == Self.ada)
        }
        // A failed call leaves nothing behind for the next one on the thread.
        struct Bad: Codable { var id: String }
        let address = try AvroSchema(parsing: #"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#)
        #expect(throws: EddyError.self) { try AvroEncoder(schema: user).encode(Bad(id: "x")) }
        #expect(throws: EddyError.self) { try AvroDecoder(schema: user).decode(User.self, from: [0x02, 0x00]) }
        #expect(try AvroEncoder(schema: address).encode(Address(street: "Main", zip: 1)) == [0x08] + Array("Main".utf8) + [0x02])
        // Threads, each with its own coding state, on shared schemas.
        let expected = try AvroEncoder(schema: user).encode(Self.ada)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<200 {
                        if (i + t) % 2 == 0 {
                            let bytes = try AvroEncoder(schema: user).encode(Self.ada)
                            guard bytes == expected, try AvroDecoder(schema: user).decode(User.self, from: bytes) == Self.ada else {
                                throw EddyError(.invalidState, "thread \(t) round \(i): user differs")
                            }
                        } else {
                            let a = Address(street: "S\(i)", zip: Int32(i))
                            guard try AvroDecoder(schema: address).decode(Address.self, from: try AvroEncoder(schema: address).encode(a)) == a else {
                                throw EddyError(.invalidState, "thread \(t) round \(i): address differs")
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Keeps its keyed container past `encode(to:)` (which Codable does not allow, but must not
    /// corrupt the next value).
    final class Leaker: Encodable, @unchecked Sendable {
        // @unchecked: used by one test on one thread.
        enum Keys: String, CodingKey { case street, zip }
        var kept: KeyedEncodingContainer<Keys>?
        let address: Address
        init(_ address: Address) { self.address = address }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(address.street, forKey: .street)
            try container.encode(address.zip, forKey: .zip)
            kept = container
        }
    }

    @Test func aContainerKeptPastItsValueDoesNotDisturbTheNextValue() throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#)
        let leaker = Leaker(Address(street: "Kept", zip: 7))
        let first = try AvroEncoder(schema: schema).encode(leaker)
        let second = try AvroEncoder(schema: schema).encode(Address(street: "Next", zip: 8))
        #expect(try AvroDecoder(schema: schema).decode(Address.self, from: first) == Address(street: "Kept", zip: 7))
        #expect(try AvroDecoder(schema: schema).decode(Address.self, from: second) == Address(street: "Next", zip: 8))
        #expect(leaker.kept != nil)
    }

    enum Level: Int, Codable { case low = 0, high = 1 }
    /// Encodes itself as a keyed value or a list, neither of which an enum can hold.
    struct Shaped: Codable {
        var asList: Bool
        enum Keys: String, CodingKey { case x }
        init(asList: Bool) { self.asList = asList }
        init(from decoder: any Decoder) throws { asList = false }
        func encode(to encoder: any Encoder) throws {
            if asList {
                var list = encoder.unkeyedContainer()
                try list.encode(1)
            } else {
                var keyed = encoder.container(keyedBy: Keys.self)
                try keyed.encode(1, forKey: .x)
            }
        }
    }
    struct Painted<C: Codable>: Codable { var id: Int64; var color: C }

    @Test func enumFieldsWriteSymbolsAndRefuseWhatIsNotASymbolWithThePath() throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"Painted","fields":[{"name":"id","type":"long"},{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}}]}"#)
        let encoder = AvroEncoder(schema: schema)
        #expect(try encoder.encode(Painted(id: 1, color: Color.green)) == (try schema.encode(.record([.long(1), .enumeration(1)]))))
        #expect(try encoder.encode(Painted(id: 1, color: "RED")) == (try schema.encode(.record([.long(1), .enumeration(0)]))))
        func message(_ body: () throws -> Void) -> String? {
            do { try body() } catch let error as EddyError { return error.message } catch { return "\(error)" }
            return nil
        }
        let unknown = message { _ = try encoder.encode(Painted(id: 1, color: "BLUE")) }
        #expect(unknown?.contains("color") == true && unknown?.contains("BLUE") == true, "\(unknown ?? "accepted")")
        let number = message { _ = try encoder.encode(Painted(id: 1, color: Level.high)) }
        #expect(number?.contains("color") == true && number?.contains("Color") == true, "\(number ?? "accepted")")
        let keyed = message { _ = try encoder.encode(Painted(id: 1, color: Shaped(asList: false))) }
        #expect(keyed?.contains("color") == true && keyed?.contains("keyed value") == true, "\(keyed ?? "accepted")")
        let list = message { _ = try encoder.encode(Painted(id: 1, color: Shaped(asList: true))) }
        #expect(list?.contains("color") == true && list?.contains("a list") == true, "\(list ?? "accepted")")
        // A failure leaves nothing behind: the next value encodes as it should.
        #expect(try encoder.encode(Painted(id: 2, color: Color.red)) == (try schema.encode(.record([.long(2), .enumeration(0)]))))
    }

    @Test func schemasMadeAndDroppedOneAfterAnotherEachEncodeWithTheirOwnTypes() throws {
        // The thread's coding state remembers the last schema; a new schema (possibly at the
        // address of a freed one) must never be taken for it.
        for i in 0..<200 {
            let symbols = (0...(i % 5)).map { "S\($0)" }
            let text = #"{"type":"record","name":"R\#(i)","fields":[{"name":"id","type":"long"},{"name":"color","type":{"type":"enum","name":"E","symbols":[\#(symbols.map { "\"\($0)\"" }.joined(separator: ","))]}}]}"#
            let schema = try AvroSchema(parsing: text)
            let value = Painted(id: Int64(i), color: symbols.last!)
            let bytes = try AvroEncoder(schema: schema).encode(value)
            #expect(bytes == (try schema.encode(.record([.long(Int64(i)), .enumeration(symbols.count - 1)]))), "schema \(i)")
        }
    }
}
