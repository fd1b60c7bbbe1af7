import CRdKafka
import EddyCore

/// Maps librdkafka's error codes and error objects to ``EddyError`` codes, keeping librdkafka's
/// own classification (fatal / abortable / retriable) as it reports it.
enum RDKafkaError {
    /// An ``EddyError`` for a `rd_kafka_resp_err_t` (wraps `rd_kafka_err2name`/`rd_kafka_err2str`).
    /// `redactor` removes configured secrets from the text (librdkafka's strings can quote values).
    static func error(_ code: rd_kafka_resp_err_t, _ context: String, detail: String? = nil,
                      redactor: SecretRedactor? = nil) -> EddyError {
        let name = String(cString: rd_kafka_err2name(code))
        var text = detail ?? String(cString: rd_kafka_err2str(code))
        if let redactor { text = redactor.redact(text) }
        return EddyError(eddyCode(code), "\(context): \(text) (librdkafka \(name))")
    }

    /// An ``EddyError`` for a `rd_kafka_error_t`, which it destroys (`rd_kafka_error_destroy`).
    /// Classification order follows librdkafka's transactional API contract: fatal errors
    /// (`rd_kafka_error_is_fatal`) become ``EddyError/Code/producerFenced`` (the producer must be
    /// closed), errors with `rd_kafka_error_txn_requires_abort` become
    /// ``EddyError/Code/transactionAborted``, `rd_kafka_error_is_retriable` ones
    /// ``EddyError/Code/retriable``; the rest keep the mapping of their code.
    static func consume(_ error: OpaquePointer, _ context: String, redactor: SecretRedactor? = nil) -> EddyError {
        defer { rd_kafka_error_destroy(error) }
        let code = rd_kafka_error_code(error)
        let name = String(cString: rd_kafka_error_name(error))
        var text = rd_kafka_error_string(error).map { String(cString: $0) } ?? name
        if let redactor { text = redactor.redact(text) }
        let eddyCode: EddyError.Code
        if rd_kafka_error_is_fatal(error) != 0 {
            eddyCode = .producerFenced
        } else if rd_kafka_error_txn_requires_abort(error) != 0 {
            eddyCode = .transactionAborted
        } else if rd_kafka_error_is_retriable(error) != 0 {
            eddyCode = .retriable
        } else {
            eddyCode = Self.eddyCode(code)
        }
        return EddyError(eddyCode, "\(context): \(text) (librdkafka \(name))")
    }

    /// The ``EddyError/Code`` for a plain error code (no fatal/abortable flags known).
    static func eddyCode(_ code: rd_kafka_resp_err_t) -> EddyError.Code {
        switch code {
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
            return .unknownTopic
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            return .unknownPartition
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
            return .recordTooLarge
        case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
            return .topicExists
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
            return .invalidName
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
             RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
            return .timeout
        case RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, RD_KAFKA_RESP_ERR__FENCED,
             RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            return .producerFenced
        case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID, RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
            return .consumerFenced
        case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
            return .offsetOutOfRange
        case RD_KAFKA_RESP_ERR__STATE, RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP, RD_KAFKA_RESP_ERR__UNKNOWN_GROUP,
             RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
            return .invalidState
        case RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR_INVALID_PARTITIONS, RD_KAFKA_RESP_ERR_INVALID_CONFIG,
             RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR, RD_KAFKA_RESP_ERR_INVALID_REQUEST:
            return .invalidArgument
        case RD_KAFKA_RESP_ERR__DESTROY:
            return .closed
        case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
            return .unsupported
        case RD_KAFKA_RESP_ERR_INVALID_MSG, RD_KAFKA_RESP_ERR__BAD_MSG, RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
            return .corrupt
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
             RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
             RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
             RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
             RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS, RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
            return .retriable
        default:
            return .io
        }
    }
}

/// Removes configured secret values from any text before it reaches a log line or an error
/// message: librdkafka's configuration errors and log lines may quote property values.
struct SecretRedactor: Sendable {
    /// The property names whose values are secrets (librdkafka's sensitive properties and more).
    static let secretKeys: Set<String> = [
        "sasl.password", "sasl.username", "ssl.key.password", "ssl.key.pem", "ssl_key", "ssl.keystore.password",
        "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config", "ssl.certificate.pem",
        "sasl.kerberos.keytab", "sasl.oauthbearer.extensions",
    ]
    static func isSecret(_ key: String) -> Bool {
        secretKeys.contains(key) || key.contains("password") || key.contains("secret")
    }

    private let secrets: [String]

    init(properties: [String: String]) {
        secrets = properties.filter { Self.isSecret($0.key) && !$0.value.isEmpty }.map(\.value)
            .sorted { $0.count > $1.count }
    }

    func redact(_ text: String) -> String {
        var text = text
        for secret in secrets where text.contains(secret) {
            text = text.replacingOccurrences(of: secret, with: "[redacted]")
        }
        return text
    }
}

import Foundation

/// The text of a NUL-terminated C buffer librdkafka filled in.
func cText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
