import Foundation
import Testing

/// `eddy registry serve` as a child process (in memory, on a free port), for the `eddy schemas`
/// commands to talk to.
final class RegistryServerProcess {
    let process = Process()
    let url: String

    init() throws {
        process.executableURL = URL(fileURLWithPath: try CommandRunner.executable)
        process.arguments = ["registry", "serve", "--port", "0"]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The server prints "… listening on http://127.0.0.1:PORT" once it is bound.
        let banner = LineWaiter(stdout.fileHandleForReading, marker: "listening on ")
        guard let line = banner.wait(seconds: 60), let start = line.range(of: "http://") else {
            process.terminate()
            throw CommandRunner.CommandFailed(message: "eddy registry serve did not say where it listens within 60 s")
        }
        url = String(line[start.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// Reads a pipe on a background thread until a line containing `marker` appears (then keeps
/// draining, so the child never blocks on a full pipe).
final class LineWaiter: @unchecked Sendable {
    // @unchecked: `found` is written by the reading thread before `ready` is signalled, read after.
    private var found: String?
    private let ready = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle, marker: String) {
        Thread.detachNewThread { [self] in
            var text = ""
            var signalled = false
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                guard !signalled else { continue }
                text += String(decoding: data, as: UTF8.self)
                if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) {
                    found = String(line)
                    signalled = true
                    ready.signal()
                }
            }
            if !signalled { ready.signal() }
        }
    }

    func wait(seconds: Double) -> String? {
        guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
        return found
    }
}

@Suite(.serialized) struct SchemaCommandTests {
    static let address = #"{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#
    static let customer = #"{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"home","type":"Address"}]}"#
    /// Adds a field without a default: not backward compatible.
    static let customerBad = #"{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"home","type":"Address"},{"name":"vip","type":"boolean"}]}"#
    static let money = #"syntax = "proto3"; package common; message Money { int64 units = 1; string currency = 2; }"#
    static let order = #"syntax = "proto3"; package shop; import "common/money.proto"; message Order { string id = 1; common.Money total = 2; }"#

    func write(_ text: String, _ name: String, in eddy: CommandRunner) throws -> String {
        let path = eddy.dataDirectory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func registerPassesReferencesSoASchemaCanUseTypesOfAnotherSubject() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        let server = try RegistryServerProcess()
        defer { server.stop() }
        let registry = ["--registry", server.url]
        let addressFile = try write(Self.address, "address.avsc", in: eddy)
        let customerFile = try write(Self.customer, "customer.avsc", in: eddy)

        let address = try eddy.run(["schemas", "register", "address"] + registry + ["--file", addressFile])
        #expect(address.status == 0, "\(address.stderr)")
        #expect(address.lines == ["1"])
        // Without the reference, acme.Address is an unknown type.
        let unknown = try eddy.run(["schemas", "register", "customer-value"] + registry + ["--file", customerFile])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("42201") && unknown.stderr.contains("Address"), "\(unknown.stderr)")
        let customer = try eddy.run(["schemas", "register", "customer-value"] + registry
                                    + ["--file", customerFile, "--reference", "acme.Address=address:1"])
        #expect(customer.status == 0, "\(customer.stderr)")
        #expect(customer.lines == ["2"])
        // The same schema and reference, with the version spelled `latest`: the same id.
        let again = try eddy.run(["schemas", "register", "customer-value"] + registry
                                 + ["--file", customerFile, "--reference", "acme.Address=address:latest"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.lines == ["2"])
        let versions = try eddy.run(["schemas", "versions", "customer-value"] + registry)
        #expect(versions.lines == ["1"])

        // check takes references too: the incompatible next version is refused with the reason.
        let badFile = try write(Self.customerBad, "customer-bad.avsc", in: eddy)
        let check = try eddy.run(["schemas", "check", "customer-value"] + registry + ["--file", badFile, "--reference", "acme.Address=address:1"])
        #expect(check.status != 0)
        #expect(check.lines.first == "incompatible", "\(check.stdout) \(check.stderr)")
        #expect(check.stdout.contains("vip"), "\(check.stdout)")
        let fine = try eddy.run(["schemas", "check", "customer-value"] + registry + ["--file", customerFile, "--reference", "acme.Address=address:1"])
        #expect(fine.status == 0, "\(fine.stderr)")
        #expect(fine.lines == ["compatible"])
    }

    @Test func aProtobufSchemaImportsARegisteredFileThroughAReferenceNamedByItsPath() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        let server = try RegistryServerProcess()
        defer { server.stop() }
        let registry = ["--registry", server.url]
        let money = try eddy.run(["schemas", "register", "money-value", "--type", "protobuf"] + registry
                                 + ["--file", try write(Self.money, "money.proto", in: eddy)])
        #expect(money.status == 0, "\(money.stderr)")
        let order = try eddy.run(["schemas", "register", "orders-value", "--type", "protobuf"] + registry
                                 + ["--file", try write(Self.order, "order.proto", in: eddy), "--reference", "common/money.proto=money-value:1"])
        #expect(order.status == 0, "\(order.stderr)")
        #expect(order.lines == ["2"])
        // A reference to a version that does not exist is the registry's 42201.
        let missing = try eddy.run(["schemas", "register", "other-value", "--type", "protobuf"] + registry
                                   + ["--file", try write(Self.order, "order.proto", in: eddy), "--reference", "common/money.proto=money-value:7"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("42201"), "\(missing.stderr)")
    }

    @Test(arguments: [
        ("acme.Address", "no '='"),
        ("acme.Address=address", "no ':'"),
        ("=address:1", "empty name"),
        ("acme.Address=:1", "empty subject"),
        ("acme.Address=address:0", "is not a number"),
        ("acme.Address=address:one", "is not a number"),
        ("acme.Address=address:99999999999", "is not a number"),
    ])
    func aMalformedReferenceIsRefusedBeforeAnythingIsSent(reference: String, reason: String) throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        let file = try write(Self.customer, "customer.avsc", in: eddy)
        // Port 9 (discard) on 127.0.0.1: nothing is listening, so a request would fail differently.
        let result = try eddy.run(["schemas", "register", "customer-value", "--registry", "http://127.0.0.1:9", "--file", file, "--reference", reference])
        #expect(result.status != 0)
        #expect(result.stderr.contains("NAME=SUBJECT:VERSION"), "\(result.stderr)")
        #expect(result.stderr.contains(reason), "\(result.stderr)")
    }

    @Test func aReferenceNameGivenTwiceIsRefused() throws {
        let eddy = try CommandRunner()
        defer { eddy.cleanUp() }
        let file = try write(Self.customer, "customer.avsc", in: eddy)
        let result = try eddy.run(["schemas", "register", "customer-value", "--registry", "http://127.0.0.1:9", "--file", file,
                                   "--reference", "acme.Address=address:1", "--reference", "acme.Address=address:2"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("twice"), "\(result.stderr)")
    }
}
