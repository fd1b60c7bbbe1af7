import ArgumentParser
import EddyCore
import EddyLog

/// The `eddy` command-line tool.
@main
struct EddyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "Eddy: stream processing and messaging on partitioned logs.",
        discussion: "Data lives in --data DIR (default: $EDDY_DATA, else ./eddy-data).",
        subcommands: [TopicsCommand.self, ProduceCommand.self, ConsumeCommand.self, RunCommand.self, DescribeCommand.self,
                      AppCommand.self, DemoCommand.self, SchemasCommand.self, RegistryCommand.self, KafkaMockCommand.self,
                      BenchCommand.self]
    )
}
