import ArgumentParser
import EddyCore
import EddyKafka
import EddyLog
import Foundation

/// Which log a command works on: the embedded log's data directory, or a Kafka cluster
/// (`--bootstrap`); shared by every command that opens it.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Data directory of the embedded log (default: $EDDY_DATA, else ./eddy-data).")
    var data: String?

    @Option(name: .long, help: "Kafka bootstrap servers HOST:PORT[,...] (default: $EDDY_BOOTSTRAP); the embedded log when absent.")
    var bootstrap: String?

    var directory: String {
        data ?? ProcessInfo.processInfo.environment["EDDY_DATA"] ?? "./eddy-data"
    }

    /// `--bootstrap`, else `$EDDY_BOOTSTRAP`, else nil (embedded log).
    var bootstrapServers: String? {
        if let bootstrap, !bootstrap.isEmpty { return bootstrap }
        if let value = ProcessInfo.processInfo.environment["EDDY_BOOTSTRAP"], !value.isEmpty { return value }
        return nil
    }

    /// librdkafka properties from `$EDDY_KAFKA_PROPERTIES` (`KEY=VALUE,KEY=VALUE`), passed
    /// to every Kafka client the command makes (e.g. `session.timeout.ms=6000`).
    static func kafkaProperties() throws -> [String: String] {
        guard let text = ProcessInfo.processInfo.environment["EDDY_KAFKA_PROPERTIES"], !text.isEmpty else { return [:] }
        var properties: [String: String] = [:]
        for pair in text.split(separator: ",") {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw EddyError(.invalidArgument, "EDDY_KAFKA_PROPERTIES must be KEY=VALUE,...; got an entry without '='")
            }
            properties[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return properties
    }

    /// Opens the log: a ``KafkaLog`` when bootstrap servers are given, else the embedded log
    /// (creating the directory; fails with a clear message if another process holds it).
    func open() throws -> any LogBackend {
        if let servers = bootstrapServers {
            return try KafkaLog(configuration: KafkaConfiguration(bootstrapServers: servers, extra: try Self.kafkaProperties()))
        }
        return try EmbeddedLog(directory: directory)
    }
}

extension LogBackend {
    /// Releases the backend a command opened: closes the embedded log (its lock and files);
    /// a ``KafkaLog`` holds nothing that needs closing (its handles go with the value).
    func close() throws {
        try (self as? EmbeddedLog)?.close()
    }
}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Buffered standard output for machine-readable lines (one write per ~64 KiB).
struct OutputBuffer {
    private var buffer: [UInt8] = []
    mutating func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= 65_536 { flush() }
    }
    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Turns an `EddyError` into a one-line message and a non-zero exit (ArgumentParser prints it).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ParsableCommand {
    /// Runs `body`, reporting `EddyError`s as "error: <message>" with exit status 1.
    func reportingErrors(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as EddyError {
            printError("error: \(error.message)")
            throw ExitCode(1)
        }
    }
}
