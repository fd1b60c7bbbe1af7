import ArgumentParser
import EddyCore
import EddyLog
import Foundation

/// Where the embedded log's data lives; shared by every command that opens it.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Data directory of the embedded log (default: $EDDY_DATA, else ./eddy-data).")
    var data: String?

    var directory: String {
        data ?? ProcessInfo.processInfo.environment["EDDY_DATA"] ?? "./eddy-data"
    }

    /// Opens the embedded log (creating the directory). Fails with a clear message if another
    /// process holds it.
    func open() throws -> EmbeddedLog {
        try EmbeddedLog(directory: directory)
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
