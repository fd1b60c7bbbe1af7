import EddyCore
import EddySchema
import EddySchemaServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Runs the Python interop scripts when python3 and the packages of
/// Scripts/python-requirements.txt are installed; otherwise the tests are skipped with a message.
enum Python {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/interop")

    /// Whether `python3` can import every module; prints why not.
    static func available(_ modules: [String]) -> Bool {
        let check = (try? run(["-c", "import " + modules.joined(separator: ", ")])) ?? (status: -1, output: "python3 not found")
        if check.status != 0 {
            print("SKIPPED: the interop tests need python3 with \(modules.joined(separator: ", ")) (pip install -r Scripts/python-requirements.txt): \(check.output)")
            return false
        }
        return true
    }

    static let hasFastavro = available(["fastavro"])
    static let hasConfluentKafka = available(["confluent_kafka.schema_registry.avro", "fastavro"])

    /// Runs python3 with `arguments`, returning its exit status and combined output.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func frames(_ records: [[UInt8]]) -> Data {
        var out = Data()
        for r in records {
            let n = UInt32(r.count)
            out.append(contentsOf: [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)])
            out.append(contentsOf: r)
        }
        return out
    }

    static func unframe(_ data: Data) throws -> [[UInt8]] {
        let bytes = [UInt8](data)
        var out: [[UInt8]] = []
        var p = 0
        while p < bytes.count {
            try #require(p + 4 <= bytes.count)
            let n = Int(UInt32(bytes[p]) << 24 | UInt32(bytes[p + 1]) << 16 | UInt32(bytes[p + 2]) << 8 | UInt32(bytes[p + 3]))
            p += 4
            try #require(p + n <= bytes.count)
            out.append(Array(bytes[p..<(p + n)]))
            p += n
        }
        return out
    }

    static func temporaryDirectory() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("eddy-interop-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

@Suite struct AvroInteropTests {
    @Test("fastavro reads and rewrites, byte for byte, what Eddy encodes", .enabled(if: Python.hasFastavro, "python3 with fastavro is not installed"))
    func fastavroReadsEddysEncoding() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("AvroInteropTests.fastavroReadsEddysEncoding seed \(seed)")
        var rng = SplitMix(seed: seed)
        let schema = try AvroSchema(parsing: Fixtures.everyTypeSchema)
        let values = (0..<200).map { _ in Fixtures.randomEveryTypeValue(&rng) }
        let encoded = try values.map { try schema.encode($0) }
        let directory = try Python.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let schemaFile = directory.appendingPathComponent("schema.avsc"), input = directory.appendingPathComponent("in.bin"), output = directory.appendingPathComponent("out.bin")
        try Fixtures.everyTypeSchema.write(to: schemaFile, atomically: true, encoding: .utf8)
        try Python.frames(encoded).write(to: input)
        let result = try await offThread { try Python.run([Python.scripts.appendingPathComponent("avro_interop.py").path, "roundtrip", schemaFile.path, input.path, output.path]) }
        try #require(result.status == 0, "\(result.output)")
        let rewritten = try Python.unframe(try Data(contentsOf: output))
        try #require(rewritten.count == encoded.count)
        for i in encoded.indices {
            #expect(rewritten[i] == encoded[i], "record \(i): \(values[i])")
        }
    }

    @Test("Eddy decodes what fastavro writes, every type and logical type", .enabled(if: Python.hasFastavro, "python3 with fastavro is not installed"))
    func eddyReadsFastavrosEncoding() async throws {
        let schema = try AvroSchema(parsing: Fixtures.everyTypeSchema)
        let directory = try Python.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let schemaFile = directory.appendingPathComponent("schema.avsc"), data = directory.appendingPathComponent("data.bin"), json = directory.appendingPathComponent("values.jsonl")
        try Fixtures.everyTypeSchema.write(to: schemaFile, atomically: true, encoding: .utf8)
        let result = try await offThread { try Python.run([Python.scripts.appendingPathComponent("avro_interop.py").path, "generate", schemaFile.path, data.path, json.path]) }
        try #require(result.status == 0, "\(result.output)")
        let records = try Python.unframe(try Data(contentsOf: data))
        let expected = try String(contentsOf: json, encoding: .utf8).split(separator: "\n").map { try schema.value(fromJSON: JSONValue(parsing: String($0))) }
        try #require(records.count == expected.count && !records.isEmpty)
        for i in records.indices {
            let decoded = try schema.decode(records[i])
            #expect(decoded == expected[i], "record \(i)")
            // Map entries may come out in another order, so compare lengths and decoded values.
            let again = try schema.encode(decoded)
            #expect(again.count == records[i].count, "record \(i) re-encoded")
            #expect(try schema.decode(again) == decoded, "record \(i) re-encoded")
        }
    }

    @Test("Parsing Canonical Forms and fingerprints match fastavro's", .enabled(if: Python.hasFastavro, "python3 with fastavro is not installed"))
    func canonicalFormsMatchFastavro() async throws {
        let schemas = [Fixtures.everyTypeSchema, "\"int\"", #"{"type":"long","logicalType":"timestamp-millis"}"#,
                       #"{"type":"record","name":"Node","namespace":"a.b","doc":"x","fields":[{"name":"next","type":["null","Node"],"default":null},{"name":"e","type":{"type":"enum","name":"c.E","symbols":["X"]}}]}"#,
                       #"["null",{"type":"map","values":{"type":"fixed","name":"F","size":3}}]"#]
        let directory = try Python.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("schemas.json")
        try JSONValue.array(schemas.map { .string($0) }).description.write(to: file, atomically: true, encoding: .utf8)
        let result = try await offThread { try Python.run([Python.scripts.appendingPathComponent("avro_interop.py").path, "canonical", file.path]) }
        try #require(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        try #require(lines.count == schemas.count, "\(result.output)")
        for (text, line) in zip(schemas, lines) {
            let theirs = try JSONValue(parsing: line)
            let ours = try AvroSchema(parsing: text)
            #expect(ours.canonicalForm == theirs["form"]?.stringValue, "\(text)")
            // fastavro prints the fingerprint's bytes in little-endian order (as single-object encoding stores them).
            #expect(String(format: "%016lx", ours.fingerprint.byteSwapped) == theirs["fingerprint"]?.stringValue, "\(text)")
        }
    }
}

@Suite struct RegistryInteropTests {
    struct PaymentV1: Codable { var id: String; var amount: Double }

    @Test("confluent-kafka's client and Avro serdes work against Eddy's registry server",
          .enabled(if: Python.hasConfluentKafka, "python3 with confluent-kafka[avro,schemaregistry] is not installed"))
    func confluentClientAgainstEddy() async throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let v1 = try AvroSchema(parsing: #"{"type":"record","name":"Payment","namespace":"interop","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}"#)
        let eddySerde = try AvroSerde<PaymentV1>(schema: v1, client: registry, topic: "payments")
        let eddyFrame = try eddySerde.serialize(PaymentV1(id: "e-1", amount: 3.5))
        let app = SchemaRegistryServer.application(registry: registry, configuration: SchemaRegistryServerConfiguration(port: 0))
        let output: String = try await app.test(.live) { client in
            let port = try #require(client.port)
            let hex = eddyFrame.map { String(format: "%02x", $0) }.joined()
            let result = try await offThread {
                try Python.run([Python.scripts.appendingPathComponent("registry_interop.py").path, "http://127.0.0.1:\(port)", hex])
            }
            try #require(result.status == 0, "\(result.output)")
            return result.output
        }
        let json = try JSONValue(parsing: try #require(output.split(separator: "\n").last.map(String.init)))
        #expect(json["id1"] == .integer(1), "Eddy registered the same schema first, so Python gets its id")
        #expect(json["id2"] == .integer(2))
        #expect(json["id1_again"] == .integer(1))
        #expect(json["lookup_version"] == .integer(1))
        #expect(json["latest_version"] == .integer(2))
        #expect(json["versions"] == .array([.integer(1), .integer(2)]))
        #expect(json["subjects"] == .array([.string("audit-value"), .string("payments-value")]))
        #expect(json["compatible_good"] == .bool(true))
        #expect(json["compatible_bad"] == .bool(false))
        #expect(json["bad_error"]?.arrayValue?.prefix(2) == [.integer(409), .integer(409)])
        #expect(json["bad_error"]?.arrayValue?.last?.stringValue?.contains("merchant") == true)
        #expect(json["missing_error"] == .array([.integer(404), .integer(40403)]))
        #expect(json["level"]?.stringValue == "FULL")
        // Python read Eddy's record, resolving it to the newer schema.
        #expect(json["eddy_value"] == (try JSONValue(parsing: #"{"id":"e-1","amount":3.5,"currency":"EUR","tags":[],"note":null}"#)))
        // Eddy reads Python's record.
        let hex = try #require(json["serialized_hex"]?.stringValue)
        var frame: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            frame.append(try #require(UInt8(hex[index..<next], radix: 16)))
            index = next
        }
        let v2 = try AvroSchema(parsing: try registry.schema(id: 2).schema)
        let generic = try GenericAvroSerde(schema: v2, client: registry, topic: "payments")
        let decoded = try generic.deserialize(frame)
        #expect(try v2.json(from: decoded) == json["serialized_value"])
    }

    @Test("confluent-kafka's client registers, reads and serializes with schema references against Eddy's registry server",
          .enabled(if: Python.hasConfluentKafka, "python3 with confluent-kafka[avro,schemaregistry] is not installed"))
    func confluentClientWithReferences() async throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let address = #"{"type":"record","name":"Address","namespace":"interop","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#
        let customer = #"{"type":"record","name":"Customer","namespace":"interop","fields":[{"name":"id","type":"long"},{"name":"home","type":"Address"},{"name":"work","type":["null","interop.Address"],"default":null}]}"#
        // Eddy registers first (Python must find the same ids) and writes a record with the referring schema's id.
        #expect(try registry.register(subject: "address", type: .avro, schema: address) == 1)
        let customerID = try registry.register(subject: "customers-value", type: .avro, schema: customer,
                                               references: [SchemaReference(name: "interop.Address", subject: "address", version: 1)])
        #expect(customerID == 2)
        guard case .avro(let resolved) = try registry.parsedSchema(id: customerID) else { Issue.record("not Avro"); return }
        let eddyValue = AvroValue.record([.long(7), .record([.string("Rue"), .int(1200)]), .union(0, .null)])
        let eddyFrame = SchemaWireFormat.frame(schemaID: customerID, payload: try resolved.encode(eddyValue))
        let app = SchemaRegistryServer.application(registry: registry, configuration: SchemaRegistryServerConfiguration(port: 0))
        let output: String = try await app.test(.live) { client in
            let port = try #require(client.port)
            let hex = eddyFrame.map { String(format: "%02x", $0) }.joined()
            let result = try await offThread {
                try Python.run([Python.scripts.appendingPathComponent("registry_references.py").path, "http://127.0.0.1:\(port)", hex])
            }
            try #require(result.status == 0, "\(result.output)")
            return result.output
        }
        let json = try JSONValue(parsing: try #require(output.split(separator: "\n").last.map(String.init)))
        let reference = JSONValue.array([.array([.string("interop.Address"), .string("address"), .integer(1)])])
        #expect(json["address_id"] == .integer(1))
        #expect(json["customer_id"] == .integer(2))
        #expect(json["fetched_references"] == reference)
        #expect(json["latest_references"] == reference)
        #expect(json["lookup_version"] == .integer(1))
        #expect(json["referenced_by"] == .array([.integer(2)]))
        #expect(json["delete_error"] == .array([.integer(422), .integer(42206)]))
        #expect(json["eddy_value"] == (try JSONValue(parsing: #"{"id":7,"home":{"street":"Rue","zip":1200},"work":null}"#)))
        // Eddy reads what Python serialized with the referring schema.
        let hex = try #require(json["serialized_hex"]?.stringValue)
        var frame: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            frame.append(try #require(UInt8(hex[index..<next], radix: 16)))
            index = next
        }
        let header = try SchemaWireFormat.parseHeader(frame)
        #expect(header.schemaID == customerID)
        let decoded = try resolved.decode(Array(frame[header.payloadOffset...]))
        #expect(try resolved.json(from: decoded) == (try JSONValue(parsing: #"{"id":42,"home":{"street":"Main","zip":8000},"work":{"street":"Quai","zip":8001}}"#)))
    }
}
