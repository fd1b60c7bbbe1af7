import ArgumentParser
import EddyCore
import EddyLog
import Foundation

/// `eddy app …`: operations on a streams application's log state.
struct AppCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app",
        abstract: "Manage a streams application's offsets, internal topics and state.",
        subcommands: [AppResetCommand.self])
}

/// `eddy app reset APP`: prepares a replay. Rewinds the application's committed input offsets,
/// deletes its internal topics (`APP-…-repartition`, `APP-…-changelog`) and its local state
/// directory, so the next run rebuilds every store from input. Refused while the application's
/// group has members. On a cluster without DescribeGroups, OffsetDelete or DeleteTopics
/// (librdkafka's mock cluster) it warns that membership is unchecked, still rewinds the inputs,
/// and then fails naming what it could not delete.
struct AppResetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Rewind an application's inputs and delete its internal topics and local state.")

    @OptionGroup var log: LogOptions
    @Argument(help: "The application id.")
    var application: String
    @Option(name: .customLong("input-topics"), help: "Comma-separated input topics to rewind.")
    var inputTopics: String
    @Flag(name: .customLong("to-earliest"), help: "Rewind to the first offset still in each partition (the default).")
    var toEarliest = false
    @Option(name: .customLong("to-time"), help: "Rewind to the first record at or after this time (ms since the epoch).")
    var toTime: Int64?
    @Option(name: .customLong("to-offsets"), help: "A file of lines 'TOPIC PARTITION OFFSET' to rewind to.")
    var toOffsets: String?
    @Option(name: .customLong("state-dir"), help: "The state directory the application ran with (default: DATA-state).")
    var stateDirectory: String?

    func run() throws {
        try reportingErrors {
            try Names.validate(application, what: "application id")
            guard [toEarliest, toTime != nil, toOffsets != nil].filter({ $0 }).count <= 1 else {
                throw EddyError(.invalidArgument, "give at most one of --to-earliest, --to-time, --to-offsets")
            }
            let embedded = try log.open()
            defer { try? embedded.close() }
            let admin = embedded.admin
            do {
                let group = try admin.describeGroup(application)
                guard group.isEmpty else {
                    throw EddyError(.invalidState, "application \(application) is running (\(group.members.count) member(s) in its group); stop it before resetting")
                }
            } catch let error as EddyError where error.code == .unsupported {
                printError("eddy: warning: cannot check that \(application) is stopped (\(error.message)); make sure no worker runs")
            }
            let topics = inputTopics.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }.filter { !$0.isEmpty }
            var offsets: [TopicPartition: Offset] = [:]
            if let toOffsets {
                let text = try String(contentsOfFile: toOffsets, encoding: .utf8)
                for (number, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    let fields = line.split(separator: " ")
                    guard fields.count == 3, let partition = Int(fields[1]), let offset = Offset(fields[2]), topics.contains(String(fields[0])) else {
                        throw EddyError(.invalidArgument, "\(toOffsets) line \(number + 1): expected 'TOPIC PARTITION OFFSET' for one of --input-topics, got '\(line)'")
                    }
                    offsets[TopicPartition(String(fields[0]), partition)] = offset
                }
            } else {
                for topic in topics {
                    let description = try admin.describeTopic(topic)
                    let partitions = description.partitions.map { TopicPartition(topic, $0.partition) }
                    if let toTime {
                        for (tp, offset) in try admin.offsets(forTimestamp: toTime, partitions: partitions) { offsets[tp] = offset }
                    } else {
                        for p in description.partitions { offsets[TopicPartition(topic, p.partition)] = p.startOffset }
                    }
                }
            }
            var internalTopics: [String] = []
            for topic in try admin.listTopics() where topic.hasPrefix(application + "-")
                && (topic.hasSuffix("-changelog") || topic.hasSuffix("-repartition")) {
                internalTopics.append(topic)
            }
            // Rewind first: a backend lacking the deletions (librdkafka's mock cluster has no
            // OffsetDelete or DeleteTopics) still gets its inputs rewound, and says what it left.
            try admin.alterCommittedOffsets(group: application, offsets: offsets)
            var notDone: [String] = []
            do {
                try admin.deleteCommittedOffsets(group: application, topics: internalTopics)
            } catch let error as EddyError where error.code == .unsupported {
                notDone.append("committed offsets of the internal topics not deleted (\(error.message))")
            }
            var deleted = 0
            for topic in internalTopics {
                do {
                    try admin.deleteTopic(topic)
                    deleted += 1
                } catch let error as EddyError where error.code == .unsupported {
                    notDone.append("internal topic \(topic) not deleted (\(error.message))")
                }
            }
            let state = (stateDirectory ?? log.directory + "-state") + "/" + application
            if FileManager.default.fileExists(atPath: state) { try FileManager.default.removeItem(atPath: state) }
            print("reset \(application): \(offsets.count) input partition(s) rewound, \(deleted) internal topic(s) deleted, state \(state) removed")
            if !notDone.isEmpty {
                throw EddyError(.unsupported, "reset of \(application) incomplete: \(notDone.joined(separator: "; ")); delete them before running \(application) again")
            }
        }
    }
}
