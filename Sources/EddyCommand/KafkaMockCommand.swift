import ArgumentParser
import EddyCore
import EddyKafka
import Foundation

/// `eddy kafka-mock`: librdkafka's in-process mock Kafka cluster, for tests, examples and
/// people who want a Kafka-protocol cluster with nothing installed.
struct KafkaMockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-mock",
        abstract: "Run librdkafka's mock Kafka cluster until SIGINT or SIGTERM.",
        discussion: """
            Prints the bootstrap address (HOST:PORT,...) on the first line of output, then runs until
            stopped. Create topics here with --topic NAME:PARTITIONS: the mock's Admin CreateTopics
            times out, so `eddy topics create --bootstrap` does not work against it. Known limits of
            the mock: read_committed does not hide aborted or open transactions, offsets sent in a
            transaction are not stored, no transactional fencing, about 5 MB kept per partition,
            no timestamp look-ups, no DeleteTopics/OffsetDelete/DescribeGroups.
            """)

    @Option(help: "Number of brokers (1...64).") var brokers: Int = 3
    @Option(name: .customLong("topic"), help: "A topic to create, NAME:PARTITIONS (repeatable).")
    var topics: [String] = []

    func run() throws {
        var parsed: [(String, Int)] = []
        for spec in topics {
            guard let colon = spec.lastIndex(of: ":"), let count = Int(spec[spec.index(after: colon)...]), count > 0 else {
                throw ValidationError("--topic must be NAME:PARTITIONS, got \(spec)")
            }
            parsed.append((String(spec[..<colon]), count))
        }
        try reportingErrors {
            // Block the stop signals before librdkafka starts its threads (they inherit the mask)
            // and wait for one synchronously: no handler code runs on a signal frame, and the
            // cluster is destroyed normally on the way out.
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGINT)
            sigaddset(&signals, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &signals, nil)
            let cluster = try KafkaMockCluster(brokers: brokers)
            for (name, partitions) in parsed { try cluster.createTopic(name, partitions: partitions) }
            FileHandle.standardOutput.write(Data((cluster.bootstrapServers + "\n").utf8))
            var received: Int32 = 0
            sigwait(&signals, &received)
            withExtendedLifetime(cluster) {}
        }
    }
}
