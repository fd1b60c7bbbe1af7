/// The one error type Eddy's modules throw.
///
/// `code` is stable and meant for programs; `message` is for people and names the thing
/// that failed (topic, partition, offset, file and byte position, the limit exceeded).
/// Messages never contain secrets (passwords, SASL credentials).
public struct EddyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added in later versions.
    public enum Code: String, Hashable, Sendable {
        /// A name (topic, group, store, application) breaks the naming rules.
        case invalidName
        /// An argument or configuration value is out of range or malformed.
        case invalidArgument
        /// The topic does not exist.
        case unknownTopic
        /// The topic or partition does not exist.
        case unknownPartition
        /// The topic already exists.
        case topicExists
        /// A record or batch is larger than the configured limit.
        case recordTooLarge
        /// Bytes on disk or on the wire fail their checksum or do not parse.
        case corrupt
        /// The requested offset is outside the log's range.
        case offsetOutOfRange
        /// The operation is not allowed in the object's current state.
        case invalidState
        /// A newer producer with the same transactional id exists: this one is a zombie. Fatal.
        case producerFenced
        /// The consumer's group generation is stale (it was removed from the group).
        case consumerFenced
        /// The open transaction cannot commit and must be aborted. Abortable.
        case transactionAborted
        /// A transient failure; the same call may succeed when retried.
        case retriable
        /// Another process holds the lock on a data or state directory.
        case locked
        /// A system call failed (the message names the call, the path and errno).
        case io
        /// The object was closed.
        case closed
        /// The operation timed out.
        case timeout
        /// A serializer or deserializer refused the bytes or the value.
        case serialization
        /// The backend does not support this operation.
        case unsupported
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence for people, naming what failed.
    public var message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// True for errors after which the producer or consumer must be closed (Kafka's "fatal").
    public var isFatal: Bool { code == .producerFenced || code == .consumerFenced }
    /// True for errors that abort the open transaction but leave the producer usable.
    public var isAbortable: Bool { code == .transactionAborted }
    /// True for errors worth retrying unchanged.
    public var isRetriable: Bool { code == .retriable || code == .timeout }
}

extension EddyError {
    /// An `io` error for a failed system call, with `errno`'s text.
    public static func system(_ call: String, path: String, errno number: Int32) -> EddyError {
        EddyError(.io, "\(call)(\(path)) failed: \(String(cString: strerror(number))) (errno \(number))")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
