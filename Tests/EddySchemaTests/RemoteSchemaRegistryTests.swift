import EddyCore
import EddySchema
import EddySchemaServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The HTTP client the CLI and remote serdes use, against the server running in-process.
@Suite struct RemoteSchemaRegistryTests {
    @Test func theClientRegistersReadsChecksAndConfiguresOverHTTP() async throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let configuration = SchemaRegistryServerConfiguration(port: 0, basicAuthentication: ("u", "p"))
        let app = SchemaRegistryServer.application(registry: registry, configuration: configuration)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let url = "http://127.0.0.1:\(port)"
            // The client blocks, so it runs on its own thread; it reports what went wrong as
            // text and the expectation is checked back in the test's task. The server's handlers
            // run on the cooperative thread pool (2 threads on a 2-core machine), which the
            // suite's long blocking tests can hold for minutes: hence the long timeout.
            let problems: [String] = try await offThread {
                var problems: [String] = []
                func check(_ ok: Bool, _ what: String) { if !ok { problems.append(what) } }
                let remote = try RemoteSchemaRegistry(url: url, user: "u", password: "p", timeoutSeconds: 300)
                check(try remote.register(subject: "users-value", type: .avro, schema: Users.v1) == 1, "register gives id 1")
                check(try remote.subjectNames() == ["users-value"], "subjects")
                check(try remote.versions(subject: "users-value") == [1], "versions")
                check(try remote.schema(id: 1).schema == Users.v1, "schema by id")
                check(try remote.schema(subject: "users-value", version: .latest).id == 1, "latest")
                check(try remote.lookup(subject: "users-value", type: .avro, schema: Users.v1, includeDeleted: false).version == 1, "lookup")
                let verdict = try remote.checkCompatibility(subject: "users-value", type: .avro, schema: Users.v3Bad, version: nil)
                check(!verdict.compatible && verdict.messages.contains { $0.contains("email") }, "compatibility verdict \(verdict)")
                check(try remote.compatibilityLevel(subject: "users-value") == "BACKWARD", "default level")
                try remote.setCompatibilityLevel(.full, subject: "users-value")
                check(try remote.compatibilityLevel(subject: "users-value") == "FULL", "level set")
                do {
                    _ = try remote.register(subject: "users-value", type: .avro, schema: Users.v3Bad)
                    problems.append("registered an incompatible schema")
                } catch let error as SchemaRegistryError {
                    check(error.code == 409, "409 for an incompatible schema, got \(error.code)")
                }
                // A serde over the remote registry.
                struct User: Codable, Equatable { var id: Int64 }
                let serde = try AvroSerde<User>(schema: try AvroSchema(parsing: Users.v1), client: remote, topic: "users")
                check(try serde.deserialize(serde.serialize(User(id: 5))) == User(id: 5), "serde round trip")
                // Wrong credentials are a 401, not a hang.
                let stranger = try RemoteSchemaRegistry(url: url, user: "u", password: "wrong", timeoutSeconds: 300)
                do {
                    _ = try stranger.subjectNames()
                    problems.append("listed subjects with a wrong password")
                } catch let error as SchemaRegistryError {
                    check(error.code == 401, "401 for wrong credentials, got \(error.code)")
                }
                return problems
            }
            #expect(problems.isEmpty, "\(problems)")
        }
        #expect(throws: EddyError.self) { try RemoteSchemaRegistry(url: "ftp://x") }
    }
}

@Suite struct FileSchemaStorageTests {
    func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "eddy-schema-\(UInt64.random(in: 0...UInt64.max))"
    }

    @Test func aRegistryOnAFileSurvivesARestartAndATornTail() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let registry = try SchemaRegistry(storage: try FileSchemaStorage(directory: directory))
            try registry.register(subject: "a", type: .avro, schema: Users.v1)
            try registry.register(subject: "a", type: .avro, schema: Users.v2)
            try registry.setCompatibilityLevel(.full)
        }
        // A crash in the middle of an append leaves half a record.
        let path = directory + "/schemas.log"
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data([0, 0, 0, 40, 0, 0, 0, 9, 1, 2, 3]))
        handle.closeFile()
        let again = try SchemaRegistry(storage: try FileSchemaStorage(directory: directory))
        #expect(try again.versions(subject: "a") == [1, 2])
        #expect(again.compatibilityLevel() == .full)
        // The torn tail was cut, so new records are readable after another restart.
        try again.register(subject: "b", type: .avro, schema: Users.other)
        let third = try SchemaRegistry(storage: try FileSchemaStorage(directory: directory))
        #expect(third.subjectNames() == ["a", "b"])
    }
}
