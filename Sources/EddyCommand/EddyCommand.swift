import ArgumentParser
import EddyCore
import EddyLog

/// The `eddy` command-line tool.
@main
struct EddyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "Eddy: stream processing and messaging on partitioned logs.",
        subcommands: []
    )
}
