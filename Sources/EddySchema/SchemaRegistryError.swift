import EddyCore

/// An error of the schema registry, carrying Confluent Schema Registry's numeric error code
/// (`40401` subject not found, `409` incompatible, `42201` invalid schema, …) so the REST API
/// and its clients see the codes they expect.
///
/// Registry operations throw this type rather than a bare ``EddyError`` because those numeric
/// codes are part of the REST contract; ``eddyError`` gives the equivalent `EddyError` for code
/// that handles only that type.
public struct SchemaRegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Confluent's error code.
    public var code: Int
    /// A sentence for people.
    public var message: String
    /// Reasons for an incompatibility (code 409), each naming the field and the rule.
    public var incompatibilities: [SchemaIncompatibility]

    public init(code: Int, message: String, incompatibilities: [SchemaIncompatibility] = []) {
        self.code = code
        self.message = message
        self.incompatibilities = incompatibilities
    }

    /// The HTTP status for the code: its first three digits (`40401` → 404), or the code itself.
    public var httpStatus: Int { code >= 1000 ? code / 100 : code }

    public var description: String { "\(code): \(message)" }

    /// The same failure as an ``EddyError``.
    public var eddyError: EddyError {
        switch httpStatus {
        case 404: EddyError(.invalidArgument, message)
        case 409: EddyError(.serialization, message)
        case 422: EddyError(.invalidArgument, message)
        case 401, 403: EddyError(.invalidState, message)
        default: EddyError(.io, message)
        }
    }

    static func subjectNotFound(_ s: String) -> SchemaRegistryError { .init(code: 40401, message: "Subject '\(s)' not found.") }
    static func versionNotFound(_ s: String, _ v: String) -> SchemaRegistryError { .init(code: 40402, message: "Version \(v) not found for subject '\(s)'.") }
    static func schemaNotFound(_ what: String) -> SchemaRegistryError { .init(code: 40403, message: "Schema \(what) not found.") }
    static func subjectNotSoftDeleted(_ s: String) -> SchemaRegistryError {
        .init(code: 40405, message: "Subject '\(s)' was not deleted first before being permanently deleted.")
    }
    static func subjectSoftDeleted(_ s: String) -> SchemaRegistryError { .init(code: 40404, message: "Subject '\(s)' was soft deleted. Set permanent=true to delete permanently.") }
    static func versionNotSoftDeleted(_ s: String, _ v: Int) -> SchemaRegistryError {
        .init(code: 40407, message: "Subject '\(s)' Version \(v) was not deleted first before being permanently deleted.")
    }
    static func versionSoftDeleted(_ s: String, _ v: Int) -> SchemaRegistryError {
        .init(code: 40406, message: "Subject '\(s)' Version \(v) was soft deleted. Set permanent=true to delete permanently.")
    }
    static func invalidSchema(_ message: String) -> SchemaRegistryError { .init(code: 42201, message: "Invalid schema: \(message)") }
    static func invalidVersion(_ v: String) -> SchemaRegistryError {
        .init(code: 42202, message: "The specified version '\(v)' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")
    }
    static func invalidCompatibilityLevel(_ l: String) -> SchemaRegistryError {
        .init(code: 42203, message: "Invalid compatibility level '\(l)'. Valid values are \(CompatibilityLevel.allCases.map(\.rawValue).joined(separator: ", ")).")
    }
    static func invalidSubject(_ message: String) -> SchemaRegistryError { .init(code: 42208, message: "Invalid subject: \(message)") }
    static func incompatible(_ issues: [SchemaIncompatibility]) -> SchemaRegistryError {
        .init(code: 409, message: "Schema being registered is incompatible with an earlier schema: " + issues.map(\.description).joined(separator: "; "),
              incompatibilities: issues)
    }
    static func storage(_ error: any Error) -> SchemaRegistryError { .init(code: 50001, message: "Error in the backend data store: \(error)") }
}
