import EddyCore
import EddySchema
import Foundation
import Hummingbird
import NIOCore

/// Settings of the registry's REST server.
public struct SchemaRegistryServerConfiguration: Sendable {
    /// The address to bind; loopback unless told otherwise, so a registry is never exposed by accident.
    public var host: String
    /// The TCP port (Confluent's default 8081; 0 picks a free port).
    public var port: Int
    /// When set, every request must carry these HTTP basic credentials (else 401).
    public var basicAuthentication: (user: String, password: String)?
    /// Largest request body accepted; larger bodies are answered 413 without being read whole.
    public var maximumRequestBytes: Int

    /// Default largest request body, 2 MiB (a 1 MiB schema, JSON-escaped, fits).
    public static let defaultMaximumRequestBytes = 2 * 1_048_576

    public init(host: String = "127.0.0.1", port: Int = 8081, basicAuthentication: (user: String, password: String)? = nil,
                maximumRequestBytes: Int = SchemaRegistryServerConfiguration.defaultMaximumRequestBytes) {
        self.host = host
        self.port = port
        self.basicAuthentication = basicAuthentication
        self.maximumRequestBytes = maximumRequestBytes
    }
}

/// The schema registry's REST API, compatible with Confluent Schema Registry's core endpoints,
/// served by Hummingbird.
///
/// Endpoints: `GET /subjects`, `GET|POST /subjects/{s}/versions`, `GET|DELETE
/// /subjects/{s}/versions/{v|latest}`, `GET /subjects/{s}/versions/{v}/schema`,
/// `GET /subjects/{s}/versions/{v}/referencedby`, `POST /subjects/{s}`
/// (lookup), `DELETE /subjects/{s}`, `GET /schemas/ids/{id}` (and `/schema`, `/versions`,
/// `/subjects`), `GET /schemas/types`, `POST /compatibility/subjects/{s}/versions[/{v}]`,
/// `GET|PUT /config`, `GET|PUT|DELETE /config/{s}`. Query flags `deleted`, `permanent`,
/// `verbose`, `defaultToGlobal` as Confluent's. Responses use
/// `application/vnd.schemaregistry.v1+json`; errors are `{"error_code": N, "message": "…"}` with
/// Confluent's codes (40401 subject, 40402 version, 40403 schema not found, 409 incompatible,
/// 42201 invalid schema, 42202 invalid version, 42203 invalid level, 42206 a deleted version is
/// still referenced, 415 wrong content type,
/// 413 body too large, 401 unauthorized, 404/405 unknown route). Bad input always gets a 4xx with
/// a message; only a failing storage gives 500 (50001).
///
/// Registry calls are short and synchronous (a lock and, for writes, one append to storage);
/// they run on the server's event loop threads.
///
/// ```swift
/// let app = SchemaRegistryServer.application(registry: registry, configuration: .init(port: 8081))
/// try await app.runService()
/// ```
public enum SchemaRegistryServer {
    /// The media type of requests and responses.
    public static let contentType = "application/vnd.schemaregistry.v1+json"

    /// A Hummingbird application serving `registry`. `onServerRunning` receives the bound port.
    public static func application(registry: SchemaRegistry, configuration: SchemaRegistryServerConfiguration,
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            responder: SchemaRegistryResponder(registry: registry, configuration: configuration),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "eddy-schema-registry"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) }
        )
    }
}

/// Answers one HTTP request. Every path through it returns a response; nothing escapes as a
/// thrown error except a storage failure, which becomes a 500 with Confluent's 50001.
struct SchemaRegistryResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let registry: SchemaRegistry
    let configuration: SchemaRegistryServerConfiguration
    let expectedAuthorization: String?

    init(registry: SchemaRegistry, configuration: SchemaRegistryServerConfiguration) {
        self.registry = registry
        self.configuration = configuration
        expectedAuthorization = configuration.basicAuthentication.map {
            "Basic " + Data("\($0.user):\($0.password)".utf8).base64EncodedString()
        }
    }

    struct Failure: Error {
        var status: Int
        var code: Int
        var message: String
    }

    static let acceptedContentTypes: Set<String> = [
        "application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json", "application/json", "application/octet-stream",
    ]

    func respond(to request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request)
        } catch let failure as Failure {
            return Self.error(status: failure.status, code: failure.code, message: failure.message)
        } catch let error as SchemaRegistryError {
            var message = error.message
            if !error.incompatibilities.isEmpty { message = "Schema being registered is incompatible with an earlier schema; " + error.incompatibilities.map(\.description).joined(separator: "; ") }
            return Self.error(status: error.httpStatus, code: error.code, message: message)
        } catch is NIOTooManyBytesError {
            return Self.error(status: 413, code: 413, message: "The request body is larger than \(configuration.maximumRequestBytes) bytes (SchemaRegistryServerConfiguration.maximumRequestBytes)")
        } catch let error as EddyError {
            return Self.error(status: 422, code: 42201, message: error.message)
        } catch {
            return Self.error(status: 500, code: 50001, message: "Internal error: \(error)")
        }
    }

    static func error(status: Int, code: Int, message: String) -> Response {
        var response = json(.object([("error_code", .integer(Int64(code))), ("message", .string(message))]), status: status)
        if status == 401 { response.headers[.wwwAuthenticate] = "Basic realm=\"eddy-schema-registry\"" }
        return response
    }

    static func json(_ value: JSONValue, status: Int = 200) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = SchemaRegistryServer.contentType
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.description)))
    }

    static func text(_ value: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = SchemaRegistryServer.contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value)))
    }

    func authorize(_ request: Request) throws {
        guard let expected = expectedAuthorization else { return }
        let given = request.headers[.authorization] ?? ""
        // Compare every byte so the time taken does not reveal how much of the secret matched.
        let a = Array(given.utf8), b = Array(expected.utf8)
        var difference = a.count ^ b.count
        for i in 0..<b.count { difference |= Int((i < a.count ? a[i] : 0) ^ b[i]) }
        guard difference == 0 else { throw Failure(status: 401, code: 401, message: "Unauthorized: this registry needs HTTP basic authentication with valid credentials") }
    }

    /// Reads and parses the JSON body, refusing wrong content types and oversized bodies.
    func body(_ request: Request) async throws -> JSONValue {
        if let type = request.headers[.contentType] {
            let base = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard Self.acceptedContentTypes.contains(base) else {
                throw Failure(status: 415, code: 415, message: "Unsupported content type '\(type)': send \(SchemaRegistryServer.contentType) or application/json")
            }
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maximumRequestBytes {
            throw Failure(status: 413, code: 413, message: "The request body is \(length) bytes, over the limit of \(configuration.maximumRequestBytes) (SchemaRegistryServerConfiguration.maximumRequestBytes)")
        }
        var request = request
        let buffer = try await request.collectBody(upTo: configuration.maximumRequestBytes)
        let bytes = Array(buffer.readableBytesView)
        guard !bytes.isEmpty else { throw Failure(status: 422, code: 422, message: "The request needs a JSON body") }
        do {
            return try JSONValue(parsing: bytes)
        } catch let error as EddyError {
            throw Failure(status: 422, code: 422, message: "Unrecognized JSON body: \(error.message)")
        }
    }

    /// `schema`, `schemaType` and `references` of a registration, lookup or compatibility body.
    func schemaBody(_ request: Request) async throws -> (SchemaType, String, [SchemaReference]) {
        let json = try await body(request)
        guard case .object = json else { throw Failure(status: 422, code: 422, message: "The body must be a JSON object with a \"schema\" string") }
        guard let schema = json["schema"]?.stringValue else { throw Failure(status: 422, code: 42201, message: "Invalid schema: the body needs a \"schema\" string") }
        var type = SchemaType.avro
        if let t = json["schemaType"], t != .null {
            guard let name = t.stringValue, let parsed = SchemaType(name: name) else {
                throw Failure(status: 422, code: 42201, message: "Invalid schema type \(t): use AVRO, JSON or PROTOBUF")
            }
            type = parsed
        }
        return (type, schema, try SchemaReference.list(fromJSON: json["references"]))
    }

    func flag(_ request: Request, _ name: String) -> Bool {
        request.uri.queryParameters.get(name).map { $0.lowercased() == "true" } ?? false
    }

    func versionParameter(_ text: String) throws -> SchemaVersion { try SchemaVersion(parsing: text) }

    static func registeredJSON(_ r: RegisteredSchema) -> JSONValue {
        var members: [(String, JSONValue)] = [("subject", .string(r.subject)), ("version", .integer(Int64(r.version))), ("id", .integer(Int64(r.id)))]
        if r.type != .avro { members.append(("schemaType", .string(r.type.rawValue))) }
        if !r.references.isEmpty { members.append(("references", .array(r.references.map(\.json)))) }
        members.append(("schema", .string(r.schema)))
        return .object(members)
    }

    func route(_ request: Request) async throws -> Response {
        try authorize(request)
        let raw = request.uri.path.split(separator: "/", omittingEmptySubsequences: true)
        let path = raw.map { $0.removingPercentEncoding ?? String($0) }
        let method = request.method
        func notAllowed() -> Failure { Failure(status: 405, code: 405, message: "HTTP method \(method.rawValue) is not allowed on \(request.uri.path)") }

        switch path.first {
        case nil:
            guard method == .get else { throw notAllowed() }
            return Self.json(.object([]))
        case "subjects":
            return try await subjects(request, Array(path.dropFirst()), notAllowed)
        case "schemas":
            return try schemas(request, Array(path.dropFirst()), notAllowed)
        case "compatibility":
            guard path.count >= 4, path[1] == "subjects", path[3] == "versions", path.count <= 5 else { break }
            guard method == .post else { throw notAllowed() }
            let (type, schema, references) = try await schemaBody(request)
            let version = path.count == 5 ? try versionParameter(path[4]) : nil
            let issues = try registry.incompatibilities(subject: path[2], type: type, schema: schema, references: references, version: version)
            var members: [(String, JSONValue)] = [("is_compatible", .bool(issues.isEmpty))]
            if flag(request, "verbose") || !issues.isEmpty { members.append(("messages", .array(issues.map { .string($0.description) }))) }
            return Self.json(.object(members))
        case "config":
            return try await config(request, Array(path.dropFirst()), notAllowed)
        default: break
        }
        throw Failure(status: 404, code: 404, message: "HTTP 404 Not Found: no endpoint \(method.rawValue) \(request.uri.path)")
    }

    func subjects(_ request: Request, _ path: [String], _ notAllowed: () -> Failure) async throws -> Response {
        let method = request.method
        let deleted = flag(request, "deleted")
        switch path.count {
        case 0:
            guard method == .get else { throw notAllowed() }
            return Self.json(.array(registry.subjectNames(includeDeleted: deleted).map { .string($0) }))
        case 1:
            let subject = path[0]
            switch method {
            case .post:
                let (type, schema, references) = try await schemaBody(request)
                return Self.json(Self.registeredJSON(try registry.lookup(subject: subject, type: type, schema: schema, references: references, includeDeleted: deleted)))
            case .delete:
                let versions = try registry.deleteSubject(subject, permanent: flag(request, "permanent"))
                return Self.json(.array(versions.map { .integer(Int64($0)) }))
            default: throw notAllowed()
            }
        case 2 where path[1] == "versions":
            let subject = path[0]
            switch method {
            case .get:
                return Self.json(.array(try registry.versions(subject: subject, includeDeleted: deleted).map { .integer(Int64($0)) }))
            case .post:
                let (type, schema, references) = try await schemaBody(request)
                let id = try registry.register(subject: subject, type: type, schema: schema, references: references)
                return Self.json(.object([("id", .integer(Int64(id)))]))
            default: throw notAllowed()
            }
        case 4 where path[1] == "versions" && path[3] == "referencedby":
            guard method == .get else { throw notAllowed() }
            let ids = try registry.referencedBy(subject: path[0], version: try versionParameter(path[2]))
            return Self.json(.array(ids.map { .integer(Int64($0)) }))
        case 3 where path[1] == "versions", 4 where path[1] == "versions" && path[3] == "schema":
            let subject = path[0]
            let version = try versionParameter(path[2])
            switch method {
            case .get:
                let found = try registry.schema(subject: subject, version: version, includeDeleted: deleted)
                return path.count == 4 ? Self.text(found.schema) : Self.json(Self.registeredJSON(found))
            case .delete where path.count == 3:
                return Self.json(.integer(Int64(try registry.deleteVersion(subject: subject, version: version, permanent: flag(request, "permanent")))))
            default: throw notAllowed()
            }
        default:
            throw Failure(status: 404, code: 404, message: "HTTP 404 Not Found: no endpoint \(method.rawValue) \(request.uri.path)")
        }
    }

    func schemas(_ request: Request, _ path: [String], _ notAllowed: () -> Failure) throws -> Response {
        guard request.method == .get else { throw notAllowed() }
        if path == ["types"] { return Self.json(.array(SchemaType.allCases.map { .string($0.rawValue) }.sorted { $0.description < $1.description })) }
        guard path.count >= 2, path.count <= 3, path[0] == "ids" else {
            throw Failure(status: 404, code: 404, message: "HTTP 404 Not Found: no endpoint GET \(request.uri.path)")
        }
        guard let id = Int(path[1]), id > 0 else { throw SchemaRegistryError(code: 40403, message: "Schema \(path[1]) not found.") }
        let found = try registry.schema(id: id)
        switch path.count == 3 ? path[2] : "" {
        case "":
            var members: [(String, JSONValue)] = []
            if found.type != .avro { members.append(("schemaType", .string(found.type.rawValue))) }
            let references = try registry.references(id: id)
            if !references.isEmpty { members.append(("references", .array(references.map(\.json)))) }
            members.append(("schema", .string(found.schema)))
            return Self.json(.object(members))
        case "schema": return Self.text(found.schema)
        case "versions":
            return Self.json(.array(try registry.subjectVersions(id: id, includeDeleted: flag(request, "deleted")).map {
                .object([("subject", .string($0.subject)), ("version", .integer(Int64($0.version)))])
            }))
        case "subjects":
            let subjects = try registry.subjectVersions(id: id, includeDeleted: flag(request, "deleted")).map(\.subject)
            return Self.json(.array(Array(Set(subjects)).sorted().map { .string($0) }))
        default:
            throw Failure(status: 404, code: 404, message: "HTTP 404 Not Found: no endpoint GET \(request.uri.path)")
        }
    }

    func config(_ request: Request, _ path: [String], _ notAllowed: () -> Failure) async throws -> Response {
        guard path.count <= 1 else { throw Failure(status: 404, code: 404, message: "HTTP 404 Not Found: no endpoint \(request.uri.path)") }
        let subject = path.first
        switch request.method {
        case .get:
            if let subject {
                guard let level = registry.subjectCompatibilityLevel(subject) ?? (flag(request, "defaultToGlobal") ? registry.compatibilityLevel() : nil) else {
                    throw SchemaRegistryError(code: 40408, message: "Subject '\(subject)' does not have subject-level compatibility configured")
                }
                return Self.json(.object([("compatibilityLevel", .string(level.rawValue))]))
            }
            return Self.json(.object([("compatibilityLevel", .string(registry.compatibilityLevel().rawValue))]))
        case .put:
            let json = try await body(request)
            guard let name = json["compatibility"]?.stringValue ?? json["compatibilityLevel"]?.stringValue else {
                throw Failure(status: 422, code: 42203, message: "The body needs a \"compatibility\" level, one of \(CompatibilityLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let level = CompatibilityLevel(name: name) else {
                throw SchemaRegistryError(code: 42203, message: "Invalid compatibility level '\(name)'. Valid values are \(CompatibilityLevel.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            try registry.setCompatibilityLevel(level, subject: subject)
            return Self.json(.object([("compatibility", .string(level.rawValue))]))
        case .delete:
            guard let subject else { throw notAllowed() }
            let old = try registry.deleteCompatibilityLevel(subject: subject)
            return Self.json(.object([("compatibilityLevel", .string(old.rawValue))]))
        default:
            throw notAllowed()
        }
    }
}
