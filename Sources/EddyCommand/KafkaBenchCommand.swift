import ArgumentParser
import EddyBenchmarks

extension BenchCommand {
    /// `eddy bench kafka [--records N] [--bytes B] [--partitions P] [--brokers N]`.
    struct Kafka: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "KafkaLog vs a plain librdkafka loop on the mock cluster: produce/consume records/s and the ratio.")
        @Argument(parsing: .allUnrecognized, help: "--records N --bytes B --partitions P --brokers N")
        var arguments: [String] = []
        func run() throws { try KafkaBenchmark.run(arguments: arguments) }
    }
}
