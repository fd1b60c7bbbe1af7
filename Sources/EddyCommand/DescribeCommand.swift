import ArgumentParser
import EddyCore
import EddyStreams
import EddyTopologies

/// `eddy describe NAME`: prints a registered topology.
struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Print a registered topology's sub-topologies, nodes, stores and topics.",
        discussion: "Topology options (default): \(TopologyRegistry.optionsSummary).")

    @Argument(help: "The topology's name.")
    var name: String
    @Option(name: .long, help: "text, dot or mermaid.")
    var format: String = "text"
    @Argument(parsing: .allUnrecognized, help: "The topology's own options, --name VALUE (see above).")
    var topologyOptions: [String] = []

    func run() throws {
        try reportingErrors {
            let chosen: Topology.DescriptionFormat
            switch format {
            case "text": chosen = .text
            case "dot": chosen = .dot
            case "mermaid": chosen = .mermaid
            default: throw EddyError(.invalidArgument, "unknown format '\(format)'; use text, dot or mermaid")
            }
            print(try TopologyRegistry.named(name).topology(RegisteredTopology.parseOptions(topologyOptions)).describe(chosen), terminator: "")
        }
    }
}
