import EddyCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A client of a schema registry's REST API (Eddy's `eddy registry serve` or Confluent Schema
/// Registry) over HTTP, for serdes and the CLI.
///
/// Calls block the calling thread until the answer arrives or ``timeoutSeconds`` pass. Error
/// answers become ``SchemaRegistryError``s with the server's code and message; a registry that
/// cannot be reached gives code 50002 (`EddyError`'s `.io` via ``SchemaRegistryError/eddyError``).
/// Thread-safe.
public final class RemoteSchemaRegistry: SchemaRegistryClient, Sendable {
    public let baseURL: URL
    let authorization: String?
    public let timeoutSeconds: Double
    /// Largest response body read, 16 MiB.
    public static let maximumResponseBytes = 16 * 1_048_576

    /// A client of the registry at `url` (e.g. `http://127.0.0.1:8081`), with optional basic credentials.
    public init(url: String, user: String? = nil, password: String? = nil, timeoutSeconds: Double = 30) throws {
        guard let base = URL(string: url), let scheme = base.scheme, scheme == "http" || scheme == "https", base.host != nil else {
            throw EddyError(.invalidArgument, "invalid registry URL \"\(url)\": expected http://HOST:PORT")
        }
        baseURL = base
        authorization = user.map { "Basic " + Data("\($0):\(password ?? "")".utf8).base64EncodedString() }
        self.timeoutSeconds = timeoutSeconds
    }

    /// A session whose delegate cancels authentication challenges (Foundation on Linux otherwise
    /// waits on a 401's challenge until the request times out); a cancelled request is therefore
    /// reported as the 401 it was.
    static let session = URLSession(configuration: .ephemeral, delegate: ChallengeDecliner(), delegateQueue: nil)

    final class ChallengeDecliner: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        // @unchecked: stateless.
        func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
            completionHandler(.cancelAuthenticationChallenge, nil)
        }
    }

    final class Box: @unchecked Sendable {
        // @unchecked: written once by the URLSession callback before `done` is signalled, read after.
        var result: Result<(Int, Data), any Error> = .failure(EddyError(.timeout, "no answer"))
        let done = DispatchSemaphore(value: 0)
    }

    static func escape(_ segment: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
    }

    /// Sends one request; `path` segments are percent-encoded. Returns the parsed JSON answer
    /// (or the raw text as a JSON string when it is not JSON).
    public func request(_ method: String, _ segments: [String], query: String? = nil, body: JSONValue? = nil) throws -> JSONValue {
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += "/" + segments.map(Self.escape).joined(separator: "/")
        if let query { text += "?" + query }
        guard let url = URL(string: text) else { throw EddyError(.invalidArgument, "cannot build a URL from \(text)") }
        var request = URLRequest(url: url, timeoutInterval: timeoutSeconds)
        request.httpMethod = method
        request.setValue("application/vnd.schemaregistry.v1+json", forHTTPHeaderField: "Accept")
        if let body {
            request.setValue("application/vnd.schemaregistry.v1+json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.description.utf8)
        }
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let box = Box()
        let task = Self.session.dataTask(with: request) { data, response, error in
            if let error {
                box.result = .failure(error)
            } else {
                box.result = .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
            }
            box.done.signal()
        }
        task.resume()
        if box.done.wait(timeout: .now() + timeoutSeconds + 1) == .timedOut {
            task.cancel()
            throw SchemaRegistryError(code: 50002, message: "the registry at \(baseURL) did not answer within \(timeoutSeconds) s")
        }
        let (status, data): (Int, Data)
        switch box.result {
        case .success(let answer): (status, data) = answer
        case .failure(let error as URLError) where error.code == .cancelled:
            throw SchemaRegistryError(code: 401, message: "Unauthorized: the registry at \(baseURL) needs valid credentials (--user and a password)")
        case .failure(let error): throw SchemaRegistryError(code: 50002, message: "cannot reach the registry at \(baseURL): \(error.localizedDescription)")
        }
        guard data.count <= Self.maximumResponseBytes else {
            throw SchemaRegistryError(code: 50002, message: "the registry's answer is \(data.count) bytes, over \(Self.maximumResponseBytes)")
        }
        let json = (try? JSONValue(parsing: [UInt8](data))) ?? .string(String(decoding: data, as: UTF8.self))
        guard (200..<300).contains(status) else {
            let code = json["error_code"]?.integerValue.map(Int.init) ?? status
            let message = json["message"]?.stringValue ?? "HTTP \(status): \(json)"
            throw SchemaRegistryError(code: code, message: message)
        }
        return json
    }

    static func schemaBody(_ type: SchemaType, _ schema: String, _ references: [SchemaReference] = []) -> JSONValue {
        var members: [(String, JSONValue)] = [("schema", .string(schema))]
        if type != .avro { members.append(("schemaType", .string(type.rawValue))) }
        if !references.isEmpty { members.append(("references", .array(references.map(\.json)))) }
        return .object(members)
    }

    static func registered(_ json: JSONValue) throws -> RegisteredSchema {
        guard let subject = json["subject"]?.stringValue, let version = json["version"]?.integerValue, let id = json["id"]?.integerValue,
              let schema = json["schema"]?.stringValue else {
            throw SchemaRegistryError(code: 50002, message: "unexpected answer from the registry: \(json)")
        }
        let type = json["schemaType"]?.stringValue.flatMap { SchemaType(rawValue: $0) } ?? .avro
        let references: [SchemaReference]
        do {
            references = try SchemaReference.list(fromJSON: json["references"])
        } catch let error as SchemaRegistryError {
            throw SchemaRegistryError(code: 50002, message: "unexpected references in the registry's answer: \(error.message)")
        }
        return RegisteredSchema(subject: subject, version: Int(version), id: Int(id), type: type, schema: schema, references: references)
    }

    @discardableResult
    public func register(subject: String, type: SchemaType, schema: String) throws -> Int {
        try register(subject: subject, type: type, schema: schema, references: [])
    }

    /// Registers `schema` with `references` to schemas registered before (see
    /// ``SchemaRegistry/register(subject:type:schema:references:)``) and returns its id.
    public func register(subject: String, type: SchemaType, schema: String, references: [SchemaReference]) throws -> Int {
        let json = try request("POST", ["subjects", subject, "versions"], body: Self.schemaBody(type, schema, references))
        guard let id = json["id"]?.integerValue else { throw SchemaRegistryError(code: 50002, message: "unexpected answer from the registry: \(json)") }
        return Int(id)
    }

    public func lookup(subject: String, type: SchemaType, schema: String, includeDeleted: Bool) throws -> RegisteredSchema {
        try lookup(subject: subject, type: type, schema: schema, references: [], includeDeleted: includeDeleted)
    }

    /// The version of `subject` whose schema is `schema` with these `references`.
    public func lookup(subject: String, type: SchemaType, schema: String, references: [SchemaReference], includeDeleted: Bool) throws -> RegisteredSchema {
        try Self.registered(try request("POST", ["subjects", subject], query: includeDeleted ? "deleted=true" : nil, body: Self.schemaBody(type, schema, references)))
    }

    /// The ids of the schemas that refer to `subject`'s `version`.
    public func referencedBy(subject: String, version: SchemaVersion) throws -> [Int] {
        try request("GET", ["subjects", subject, "versions", version.description, "referencedby"]).arrayValue?.compactMap { $0.integerValue.map(Int.init) } ?? []
    }

    public func schema(id: Int) throws -> (type: SchemaType, schema: String) {
        let json = try request("GET", ["schemas", "ids", "\(id)"])
        guard let schema = json["schema"]?.stringValue else { throw SchemaRegistryError(code: 50002, message: "unexpected answer from the registry: \(json)") }
        return (json["schemaType"]?.stringValue.flatMap { SchemaType(rawValue: $0) } ?? .avro, schema)
    }

    /// Subject names.
    public func subjectNames() throws -> [String] {
        try request("GET", ["subjects"]).arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Version numbers of a subject.
    public func versions(subject: String) throws -> [Int] {
        try request("GET", ["subjects", subject, "versions"]).arrayValue?.compactMap { $0.integerValue.map(Int.init) } ?? []
    }

    /// One version of a subject.
    public func schema(subject: String, version: SchemaVersion) throws -> RegisteredSchema {
        try Self.registered(try request("GET", ["subjects", subject, "versions", version.description]))
    }

    /// Whether `schema` may be registered under `subject` (against `version`, or per the subject's
    /// level when nil), and the server's reasons when not.
    public func checkCompatibility(subject: String, type: SchemaType, schema: String, version: SchemaVersion?) throws -> (compatible: Bool, messages: [String]) {
        try checkCompatibility(subject: subject, type: type, schema: schema, references: [], version: version)
    }

    /// Whether `schema`, using `references` to schemas registered before, may be registered under
    /// `subject` (against `version`, or per the subject's level when nil), and the server's
    /// reasons when not.
    public func checkCompatibility(subject: String, type: SchemaType, schema: String, references: [SchemaReference],
                                   version: SchemaVersion?) throws -> (compatible: Bool, messages: [String]) {
        var path = ["compatibility", "subjects", subject, "versions"]
        if let version { path.append(version.description) }
        let json = try request("POST", path, query: "verbose=true", body: Self.schemaBody(type, schema, references))
        return (json["is_compatible"]?.boolValue ?? false, json["messages"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// The compatibility level of a subject (its own, else the global one) or the global level.
    public func compatibilityLevel(subject: String?) throws -> String {
        let json: JSONValue
        if let subject {
            json = try request("GET", ["config", subject], query: "defaultToGlobal=true")
        } else {
            json = try request("GET", ["config"])
        }
        guard let level = json["compatibilityLevel"]?.stringValue else {
            throw SchemaRegistryError(code: 50002, message: "unexpected answer from the registry")
        }
        return level
    }

    /// Sets the level of a subject, or the global level.
    public func setCompatibilityLevel(_ level: CompatibilityLevel, subject: String?) throws {
        _ = try request("PUT", subject.map { ["config", $0] } ?? ["config"], body: .object([("compatibility", .string(level.rawValue))]))
    }
}
