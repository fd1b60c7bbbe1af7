import EddyCore
@testable import EddyKafka
import Foundation
import Testing

/// One mock cluster per test process: the mock's group joins are slow (about 3 s for the first
/// assignment), so suites share it and keep apart by unique topic and group names.
enum SharedMockCluster {
    static let cluster: KafkaMockCluster = {
        do { return try KafkaMockCluster(brokers: 3) } catch { fatalError("mock cluster: \(error)") }
    }()
    static let log: KafkaLog = {
        do { return try KafkaLog(mockCluster: cluster) } catch { fatalError("KafkaLog: \(error)") }
    }()
}

/// Unique names, so tests sharing the cluster never see each other's topics or groups.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt32.random(in: 0...UInt32.max))-\(UInt32.random(in: 0...UInt32.max))"
}

func kafkaPayload(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Polls until `count` records arrived or `timeoutMilliseconds` passed.
func pollKafka(_ consumer: any LogConsumer, count: Int, timeoutMilliseconds: Int = 10_000) throws -> [ConsumerRecord] {
    var records: [ConsumerRecord] = []
    let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
    while records.count < count {
        let left = deadline - monotonicMilliseconds()
        if left <= 0 { break }
        records += try consumer.poll(timeoutMilliseconds: Int(min(left, 200)))
    }
    return records
}

func expectKafkaError(_ code: EddyError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected EddyError .\(code.rawValue), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as EddyError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected EddyError .\(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
}
