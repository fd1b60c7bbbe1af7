import EddyCore
import EddySchema
import EddySchemaServer
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite struct SchemaRegistryServerTests {
    static let json: HTTPFields = [.contentType: SchemaRegistryServer.contentType]

    func app(_ configuration: SchemaRegistryServerConfiguration = .init(port: 0)) throws -> some ApplicationProtocol {
        SchemaRegistryServer.application(registry: try SchemaRegistry(storage: InMemorySchemaStorage()), configuration: configuration)
    }

    static func body(_ schema: String, type: String? = nil) -> ByteBuffer {
        var members: [(String, JSONValue)] = [("schema", .string(schema))]
        if let type { members.append(("schemaType", .string(type))) }
        return ByteBuffer(string: JSONValue.object(members).description)
    }

    static func parse(_ response: TestResponse) throws -> JSONValue { try JSONValue(parsing: String(buffer: response.body)) }

    /// Checks a 4xx answer: its status, Confluent error code and that the message mentions `text`.
    static func expectError(_ response: TestResponse, status: Int, code: Int, mentioning text: String) throws {
        #expect(response.status.code == status, "\(String(buffer: response.body))")
        let json = try parse(response)
        #expect(json["error_code"] == .integer(Int64(code)), "\(json)")
        #expect(json["message"]?.stringValue?.contains(text) == true, "\(json)")
        #expect(response.headers[.contentType] == SchemaRegistryServer.contentType)
    }

    @Test func theCoreEndpointsBehaveLikeConfluents() async throws {
        try await app().test(.router) { client in
            var r = try await client.execute(uri: "/subjects/users-value/versions", method: .post, headers: Self.json, body: Self.body(Users.v1))
            #expect(try Self.parse(r) == .object([("id", .integer(1))]))
            r = try await client.execute(uri: "/subjects/users-value/versions", method: .post, headers: Self.json, body: Self.body(Users.v2))
            #expect(try Self.parse(r) == .object([("id", .integer(2))]))
            // Same schema under another subject: same id.
            r = try await client.execute(uri: "/subjects/audit%2Dvalue/versions", method: .post, headers: Self.json, body: Self.body(Users.v1))
            #expect(try Self.parse(r)["id"] == .integer(1))
            r = try await client.execute(uri: "/subjects", method: .get)
            #expect(try Self.parse(r) == .array([.string("audit-value"), .string("users-value")]))
            r = try await client.execute(uri: "/subjects/users-value/versions", method: .get)
            #expect(try Self.parse(r) == .array([.integer(1), .integer(2)]))
            r = try await client.execute(uri: "/subjects/users-value/versions/latest", method: .get)
            let latest = try Self.parse(r)
            #expect(latest["version"] == .integer(2))
            #expect(latest["id"] == .integer(2))
            #expect(latest["subject"] == .string("users-value"))
            #expect(try AvroSchema(parsing: latest["schema"]!.stringValue!) == AvroSchema(parsing: Users.v2))
            r = try await client.execute(uri: "/subjects/users-value/versions/1/schema", method: .get)
            #expect(String(buffer: r.body) == Users.v1)
            r = try await client.execute(uri: "/subjects/users-value", method: .post, headers: Self.json, body: Self.body(Users.v1))
            #expect(try Self.parse(r)["version"] == .integer(1))
            r = try await client.execute(uri: "/schemas/ids/2", method: .get)
            #expect(try Self.parse(r)["schema"]?.stringValue == Users.v2)
            r = try await client.execute(uri: "/schemas/ids/1/versions", method: .get)
            #expect(try Self.parse(r).arrayValue?.count == 2)
            r = try await client.execute(uri: "/schemas/types", method: .get)
            #expect(try Self.parse(r) == .array([.string("AVRO"), .string("JSON"), .string("PROTOBUF")]))
            // Compatibility checks, verbose.
            r = try await client.execute(uri: "/compatibility/subjects/users-value/versions/latest?verbose=true", method: .post, headers: Self.json, body: Self.body(Users.v3Bad))
            let verdict = try Self.parse(r)
            #expect(verdict["is_compatible"] == .bool(false))
            #expect(verdict["messages"]?.arrayValue?.first?.stringValue?.contains("READER_FIELD_MISSING_DEFAULT_VALUE") == true)
            r = try await client.execute(uri: "/compatibility/subjects/users-value/versions", method: .post, headers: Self.json, body: Self.body(Users.v2))
            #expect(try Self.parse(r)["is_compatible"] == .bool(true))
            // An incompatible registration: 409 naming the field.
            r = try await client.execute(uri: "/subjects/users-value/versions", method: .post, headers: Self.json, body: Self.body(Users.v3Bad))
            try Self.expectError(r, status: 409, code: 409, mentioning: "email")
            // Config, global and per subject.
            r = try await client.execute(uri: "/config", method: .get)
            #expect(try Self.parse(r) == .object([("compatibilityLevel", .string("BACKWARD"))]))
            r = try await client.execute(uri: "/config/users-value", method: .put, headers: Self.json, body: ByteBuffer(string: #"{"compatibility":"none"}"#))
            #expect(try Self.parse(r) == .object([("compatibility", .string("NONE"))]))
            r = try await client.execute(uri: "/config/users-value", method: .get)
            #expect(try Self.parse(r)["compatibilityLevel"] == .string("NONE"))
            r = try await client.execute(uri: "/config/audit-value", method: .get)
            try Self.expectError(r, status: 404, code: 40408, mentioning: "audit-value")
            r = try await client.execute(uri: "/config/audit-value?defaultToGlobal=true", method: .get)
            #expect(try Self.parse(r)["compatibilityLevel"] == .string("BACKWARD"))
            r = try await client.execute(uri: "/subjects/users-value/versions", method: .post, headers: Self.json, body: Self.body(Users.v3Bad))
            #expect(try Self.parse(r)["id"] == .integer(3))
            // Deletes.
            r = try await client.execute(uri: "/subjects/users-value/versions/3", method: .delete)
            #expect(try Self.parse(r) == .integer(3))
            r = try await client.execute(uri: "/subjects/users-value", method: .delete)
            #expect(try Self.parse(r) == .array([.integer(1), .integer(2)]))
            r = try await client.execute(uri: "/subjects/users-value/versions", method: .get)
            try Self.expectError(r, status: 404, code: 40401, mentioning: "users-value")
            r = try await client.execute(uri: "/subjects/users-value/versions?deleted=true", method: .get)
            #expect(try Self.parse(r) == .array([.integer(1), .integer(2), .integer(3)]))
            r = try await client.execute(uri: "/subjects/users-value?permanent=true", method: .delete)
            #expect(try Self.parse(r) == .array([.integer(1), .integer(2), .integer(3)]))
            // JSON Schema and Protobuf register too.
            r = try await client.execute(uri: "/subjects/j/versions", method: .post, headers: Self.json, body: Self.body(#"{"type":"object"}"#, type: "JSON"))
            #expect(try Self.parse(r)["id"] == .integer(4))
            r = try await client.execute(uri: "/subjects/p/versions", method: .post, headers: Self.json, body: Self.body(#"syntax = "proto3"; message M { int32 a = 1; }"#, type: "PROTOBUF"))
            #expect(try Self.parse(r)["id"] == .integer(5))
            r = try await client.execute(uri: "/schemas/ids/5", method: .get)
            #expect(try Self.parse(r)["schemaType"] == .string("PROTOBUF"))
        }
    }

    @Test func badInputGetsA4xxWithAMessage() async throws {
        try await app().test(.router) { client in
            var r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: ByteBuffer(string: "{\"schema\": \"{\\\"type\\\": \\\"recrd\\\"}\"}"))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "recrd")
            r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: Self.body(#"{"type":"record","name":"A","fields":[{"name":"a","type":"A"}]}"#))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "refers to itself")
            r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: Self.body(#"{"type":"record","name":"A","fields":[{"name":"a","type":"B"}]}"#))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "unknown type")
            r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: ByteBuffer(string: "{not json"))
            try Self.expectError(r, status: 422, code: 422, mentioning: "JSON")
            r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: ByteBuffer(string: #"{"schema": 5}"#))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "schema")
            r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: Self.body("{}", type: "XML"))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "XML")
            r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: [.contentType: "text/plain"], body: Self.body(Users.v1))
            try Self.expectError(r, status: 415, code: 415, mentioning: "text/plain")
            r = try await client.execute(uri: "/subjects/s/versions/zero", method: .get)
            try Self.expectError(r, status: 422, code: 42202, mentioning: "zero")
            r = try await client.execute(uri: "/subjects/s/versions/1", method: .get)
            try Self.expectError(r, status: 404, code: 40401, mentioning: "s")
            r = try await client.execute(uri: "/schemas/ids/77", method: .get)
            try Self.expectError(r, status: 404, code: 40403, mentioning: "77")
            r = try await client.execute(uri: "/config", method: .put, headers: Self.json, body: ByteBuffer(string: #"{"compatibility":"SIDEWAYS"}"#))
            try Self.expectError(r, status: 422, code: 42203, mentioning: "SIDEWAYS")
            r = try await client.execute(uri: "/nothing/here", method: .get)
            try Self.expectError(r, status: 404, code: 404, mentioning: "/nothing/here")
            r = try await client.execute(uri: "/subjects", method: .patch)
            try Self.expectError(r, status: 405, code: 405, mentioning: "PATCH")
            r = try await client.execute(uri: "/subjects/\(String(repeating: "x", count: 300))/versions", method: .post, headers: Self.json, body: Self.body(Users.v1))
            try Self.expectError(r, status: 422, code: 42208, mentioning: "255")
        }
    }

    @Test func aTenMegabyteBodyIsRefusedWith413() async throws {
        try await app().test(.live) { client in
            let big = ByteBuffer(repeating: UInt8(ascii: "a"), count: 10 * 1_048_576)
            let r = try await client.execute(uri: "/subjects/s/versions", method: .post, headers: Self.json, body: big)
            try Self.expectError(r, status: 413, code: 413, mentioning: "limit")
        }
    }

    @Test func basicAuthenticationGuardsEveryEndpoint() async throws {
        let configuration = SchemaRegistryServerConfiguration(port: 0, basicAuthentication: ("admin", "s3cret"))
        try await app(configuration).test(.router) { client in
            var r = try await client.execute(uri: "/subjects", method: .get)
            try Self.expectError(r, status: 401, code: 401, mentioning: "Unauthorized")
            #expect(r.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            let wrong = "Basic " + Data("admin:nope".utf8).base64EncodedString()
            r = try await client.execute(uri: "/subjects", method: .get, headers: [.authorization: wrong])
            #expect(r.status.code == 401)
            let right = "Basic " + Data("admin:s3cret".utf8).base64EncodedString()
            r = try await client.execute(uri: "/subjects", method: .get, headers: [.authorization: right])
            #expect(r.status.code == 200)
            #expect(!String(buffer: r.body).contains("s3cret"))
        }
    }

    @Test func randomRequestsNeverGetA5xx() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("SchemaRegistryServerTests.randomRequestsNeverGetA5xx seed \(seed)")
        var rng = SplitMix(seed: seed)
        var requests: [(String, HTTPRequest.Method, String)] = []
        let paths = ["/subjects", "/subjects/a", "/subjects/a/versions", "/subjects/a/versions/1", "/subjects/a/versions/latest/schema",
                     "/schemas/ids/1", "/schemas/ids/x", "/compatibility/subjects/a/versions/latest", "/config", "/config/a", "/%ZZ", "/subjects/%2F/versions"]
        let bodies = ["", "{", "[]", "null", #"{"schema":""}"#, #"{"schema":"\"int\""}"#, #"{"schema":"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[]}"}"#,
                      #"{"compatibility":"FULL"}"#, #"{"schema":"[\"null\",\"int\"]","schemaType":"AVRO"}"#, #"{"schema":"{}","schemaType":"JSON"}"#,
                      #"{"schema":"message M {","schemaType":"PROTOBUF"}"#, "\u{0}\u{1}", #"{"schema":"x","references":[{"name":"a"}]}"#]
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete]
        for _ in 0..<150 {
            requests.append((paths[Int(rng.next() % UInt64(paths.count))] + (rng.next() % 3 == 0 ? "?permanent=true&deleted=true" : ""),
                             methods[Int(rng.next() % UInt64(methods.count))], bodies[Int(rng.next() % UInt64(bodies.count))]))
        }
        let all = requests
        try await app().test(.router) { client in
            for (uri, method, body) in all {
                let r = try await client.execute(uri: uri, method: method, headers: Self.json, body: ByteBuffer(string: body))
                #expect(r.status.code < 500, "\(method) \(uri) \(body): \(String(buffer: r.body))")
            }
        }
    }
}
