import ArgumentParser
import Dispatch
import EddyCore
import EddyLog
import EddySchema
import EddySchemaServer
import Foundation

/// Options shared by the `eddy schemas` commands: where the registry is and how to log in.
///
/// The commands talk to a running registry over its REST API (`eddy registry serve`, or any
/// Confluent-compatible registry). The password comes from `--password-file` or the
/// `EDDY_REGISTRY_PASSWORD` environment variable, never from the command line (which other
/// users can read in the process list).
struct RegistryClientOptions: ParsableArguments {
    @Option(name: .long, help: "The registry's URL.")
    var registry: String = "http://127.0.0.1:8081"

    @Option(name: .long, help: "User for HTTP basic authentication.")
    var user: String?

    @Option(name: .long, help: "File holding the basic-authentication password (else $EDDY_REGISTRY_PASSWORD).")
    var passwordFile: String?

    func client() throws -> RemoteSchemaRegistry {
        try RemoteSchemaRegistry(url: registry, user: user, password: try readPassword(file: passwordFile))
    }
}

/// Reads a password from a file (trailing newline dropped) or from `$EDDY_REGISTRY_PASSWORD`.
func readPassword(file: String?) throws -> String? {
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ValidationError("cannot read the password file \(file)")
        }
        return text.trimmingCharacters(in: .newlines)
    }
    return ProcessInfo.processInfo.environment["EDDY_REGISTRY_PASSWORD"]
}

/// Runs `body`, turning registry errors into a message on standard error and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as SchemaRegistryError {
        FileHandle.standardError.write(Data("error \(error.code): \(error.message)\n".utf8))
        throw ExitCode.failure
    } catch let error as EddyError {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode.failure
    }
}

func readSchemaFile(_ path: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read the schema file \(path)") }
    guard text.utf8.count <= SchemaRegistryLimits.maximumSchemaBytes else {
        throw ValidationError("\(path) is \(text.utf8.count) bytes, over the schema limit of \(SchemaRegistryLimits.maximumSchemaBytes)")
    }
    return text
}

/// Parses a `--reference` value, `NAME=SUBJECT:VERSION`: the reference's name (Avro: a named
/// type's full name; Protobuf: the import path; JSON Schema: the `$ref` URL), the subject it is
/// registered under and the version, a number 1…2^31-1 or `latest`. The name is everything
/// before the first `=`, the version everything after the last `:` (subjects may hold `:`).
/// Throws a `ValidationError` that shows the expected form.
func parseSchemaReference(_ text: String) throws -> SchemaReference {
    let form = "--reference takes NAME=SUBJECT:VERSION (e.g. com.acme.Address=address-value:1 or common.proto=common-value:latest)"
    guard let equals = text.firstIndex(of: "=") else { throw ValidationError("\(form); \"\(text)\" has no '='") }
    let name = String(text[..<equals])
    let rest = text[text.index(after: equals)...]
    guard let colon = rest.lastIndex(of: ":") else { throw ValidationError("\(form); \"\(text)\" has no ':' before the version") }
    let subject = String(rest[..<colon])
    let versionText = String(rest[rest.index(after: colon)...])
    guard !name.isEmpty else { throw ValidationError("\(form); \"\(text)\" has an empty name") }
    guard !subject.isEmpty else { throw ValidationError("\(form); \"\(text)\" has an empty subject") }
    guard subject.utf8.count <= SchemaRegistryLimits.maximumSubjectBytes else {
        throw ValidationError("\(form); the subject of \"\(text)\" is longer than \(SchemaRegistryLimits.maximumSubjectBytes) bytes")
    }
    let version: Int
    if versionText == "latest" || versionText == "-1" {
        version = -1
    } else if let n = Int32(versionText), n >= 1 {
        version = Int(n)
    } else {
        throw ValidationError("\(form); the version \"\(versionText)\" in \"\(text)\" is not a number 1…2147483647 or latest")
    }
    return SchemaReference(name: name, subject: subject, version: version)
}

/// Parses every `--reference` value (see ``parseSchemaReference(_:)``), refusing a name given twice
/// and more than ``SchemaRegistryLimits/maximumReferences`` references.
func parseSchemaReferences(_ texts: [String]) throws -> [SchemaReference] {
    guard texts.count <= SchemaRegistryLimits.maximumReferences else {
        throw ValidationError("at most \(SchemaRegistryLimits.maximumReferences) --reference options (SchemaRegistryLimits.maximumReferences), found \(texts.count)")
    }
    let references = try texts.map(parseSchemaReference)
    var names: Set<String> = []
    for r in references where !names.insert(r.name).inserted {
        throw ValidationError("--reference names \"\(r.name)\" twice; each reference needs its own name")
    }
    return references
}

extension SchemaType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map { $0.rawValue.lowercased() } }
}

extension CompatibilityLevel: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// `eddy schemas …`: register, list, read and check schemas in a registry over HTTP.
struct SchemasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schemas",
        abstract: "Register, list, read and check schemas in a schema registry (over its REST API).",
        subcommands: [Register.self, List.self, Versions.self, Get.self, Check.self, Config.self]
    )

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a schema under a subject; prints its id.")
        @OptionGroup var options: RegistryClientOptions
        @Argument(help: "The subject, e.g. orders-value.") var subject: String
        @Option(name: .long, help: "avro, protobuf or json.") var type: SchemaType = .avro
        @Option(name: .long, help: "The schema file.") var file: String
        @Option(name: .long, help: ArgumentHelp(
            "A schema the file uses, registered before: NAME=SUBJECT:VERSION (repeatable).",
            discussion: "NAME is an Avro named type's full name, a Protobuf import path or a JSON Schema $ref URL; VERSION a number or latest.",
            valueName: "name=subject:version"))
        var reference: [String] = []

        func validate() throws { _ = try parseSchemaReferences(reference) }

        func run() throws {
            let text = try readSchemaFile(file)
            let references = try parseSchemaReferences(reference)
            try reportingErrors {
                let id = try options.client().register(subject: subject, type: type, schema: text, references: references)
                print(id)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List subjects.")
        @OptionGroup var options: RegistryClientOptions
        func run() throws {
            try reportingErrors { for subject in try options.client().subjectNames() { print(subject) } }
        }
    }

    struct Versions: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a subject's versions.")
        @OptionGroup var options: RegistryClientOptions
        @Argument var subject: String
        func run() throws {
            try reportingErrors { for v in try options.client().versions(subject: subject) { print(v) } }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a version of a subject (the latest by default).")
        @OptionGroup var options: RegistryClientOptions
        @Argument var subject: String
        @Argument(help: "A version number or latest.") var version: String = "latest"
        func run() throws {
            try reportingErrors {
                let v: SchemaVersion
                do { v = try SchemaVersion(parsing: version) } catch let error as SchemaRegistryError { throw ValidationError(error.message) }
                let found = try options.client().schema(subject: subject, version: v)
                print("subject: \(found.subject)\nversion: \(found.version)\nid: \(found.id)\ntype: \(found.type.rawValue)")
                print(found.schema)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a schema against a subject; prints compatible or the reasons.")
        @OptionGroup var options: RegistryClientOptions
        @Argument var subject: String
        @Option(name: .long, help: "avro, protobuf or json.") var type: SchemaType = .avro
        @Option(name: .long, help: "The schema file.") var file: String
        @Option(name: .long, help: "Check against this version only (default: per the subject's level).") var version: String?
        @Option(name: .long, help: ArgumentHelp("A schema the file uses, registered before: NAME=SUBJECT:VERSION (repeatable).",
                                                valueName: "name=subject:version"))
        var reference: [String] = []

        func validate() throws { _ = try parseSchemaReferences(reference) }

        func run() throws {
            let text = try readSchemaFile(file)
            let references = try parseSchemaReferences(reference)
            var incompatible = false
            try reportingErrors {
                let v = try version.map { try SchemaVersion(parsing: $0) }
                let (compatible, messages) = try options.client().checkCompatibility(subject: subject, type: type, schema: text,
                                                                                     references: references, version: v)
                if compatible {
                    print("compatible")
                } else {
                    print("incompatible")
                    for m in messages { print("  \(m)") }
                    incompatible = true
                }
            }
            if incompatible { throw ExitCode.failure }
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show or set the compatibility level, global or of a subject.")
        @OptionGroup var options: RegistryClientOptions
        @Argument var subject: String?
        @Option(name: .long, help: "BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE.")
        var compatibility: CompatibilityLevel?

        func run() throws {
            try reportingErrors {
                let client = try options.client()
                if let compatibility { try client.setCompatibilityLevel(compatibility, subject: subject) }
                print(try client.compatibilityLevel(subject: subject))
            }
        }
    }
}

/// `eddy registry serve`: runs the schema registry's REST API.
struct RegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Run a schema registry (Confluent-compatible REST API).",
        subcommands: [Serve.self]
    )

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the registry until interrupted.",
            discussion: """
            With --data DIR the registry keeps its history in the compacted topic _schemas of the \
            embedded log in DIR and rebuilds itself from it on start; without it, everything is \
            kept in memory and lost on exit. The server binds \
            127.0.0.1 unless --host says otherwise. With --user, clients must log in with HTTP basic \
            authentication; the password comes from --password-file or $EDDY_REGISTRY_PASSWORD.
            """
        )
        @Option(name: .long, help: "Address to bind.") var host: String = "127.0.0.1"
        @Option(name: .long, help: "Port to listen on.") var port: Int = 8081
        @Option(name: .long, help: "Embedded log directory holding the _schemas topic (in memory when absent).") var data: String?
        @Option(name: .long, help: "Require HTTP basic authentication with this user.") var user: String?
        @Option(name: .long, help: "File holding the password for --user (else $EDDY_REGISTRY_PASSWORD).") var passwordFile: String?
        @Option(name: .long, help: "Largest request body in bytes.") var maximumRequestBytes: Int = SchemaRegistryServerConfiguration.defaultMaximumRequestBytes

        func validate() throws {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
            guard maximumRequestBytes > 0 else { throw ValidationError("--maximum-request-bytes must be positive") }
        }

        func run() throws {
            var authentication: (user: String, password: String)? = nil
            if let user {
                guard let password = try readPassword(file: passwordFile), !password.isEmpty else {
                    throw ValidationError("--user needs a password in --password-file or $EDDY_REGISTRY_PASSWORD")
                }
                authentication = (user, password)
            }
            let log: EmbeddedLog
            if let data {
                do {
                    log = try EmbeddedLog(directory: data)
                } catch let error as EddyError {
                    throw ValidationError("cannot open the embedded log in \(data): \(error.message)")
                }
            } else {
                FileHandle.standardError.write(Data("warning: no --data directory, the registry keeps schemas in memory only\n".utf8))
                log = EmbeddedLog.inMemory()
            }
            defer { try? log.close() }
            let storage: any SchemaStorage
            do {
                storage = try LogSchemaStorage(backend: log)
            } catch let error as EddyError {
                throw ValidationError("cannot open the _schemas topic: \(error.message)")
            }
            let registry: SchemaRegistry
            do {
                registry = try SchemaRegistry(storage: storage)
            } catch let error as SchemaRegistryError {
                throw ValidationError("cannot load the registry: \(error.message)")
            }
            let configuration = SchemaRegistryServerConfiguration(host: host, port: port, basicAuthentication: authentication,
                                                                  maximumRequestBytes: maximumRequestBytes)
            let app = SchemaRegistryServer.application(registry: registry, configuration: configuration) { port in
                FileHandle.standardOutput.write(Data("eddy schema registry listening on http://\(configuration.host):\(port)\n".utf8))
            }
            // The tool's entry point is synchronous: run the server on the concurrency pool and
            // wait here until it stops (SIGINT/SIGTERM shut it down gracefully).
            let finished = ServeResult()
            Task {
                do {
                    try await app.runService()
                } catch {
                    finished.error = error
                }
                finished.done.signal()
            }
            finished.done.wait()
            if let error = finished.error { throw error }
        }
    }
}

/// The outcome of the server task, handed to the waiting main thread.
final class ServeResult: @unchecked Sendable {
    // @unchecked: `error` is written before `done` is signalled and read only after the wait.
    var error: (any Error)?
    let done = DispatchSemaphore(value: 0)
}
