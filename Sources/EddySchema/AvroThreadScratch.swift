#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The encoding and decoding states of one thread, reused by every ``AvroEncoder`` and
/// ``AvroDecoder`` call made on it, so that a call allocates no state (nor, through the states'
/// pools, record containers) of its own.
///
/// Kept in thread-specific storage (`pthread_getspecific`) and released when the thread exits.
/// A call takes the thread's state for its duration; a call made while it is taken (an
/// `encode(to:)` that itself encodes Avro) gets a fresh state that is dropped afterwards.
final class AvroThreadScratch {
    @exclusivity(unchecked) var encoding: AvroEncodingState?
    @exclusivity(unchecked) var decoding: AvroDecodingState?
    /// The capacity to reserve for the next encoding's output.
    @exclusivity(unchecked) var encodedSizeHint = AvroThreadScratch.minimumSizeHint
    static let minimumSizeHint = 64

    deinit {
        // The pools' containers point back at their state; cut the cycle.
        encoding?.releasePools()
        decoding?.releasePools()
    }

    static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { pointer in
            // Runs on the exiting thread: drop the scratch that `current` retained for it.
            let raw: UnsafeMutableRawPointer? = pointer
            if let raw { Unmanaged<AvroThreadScratch>.fromOpaque(raw).release() }
        }
        precondition(status == 0, "pthread_key_create failed with \(status)")
        return key
    }()

    /// This thread's scratch, made on first use.
    @inline(__always) static var current: AvroThreadScratch {
        if let raw = pthread_getspecific(key) { return Unmanaged<AvroThreadScratch>.fromOpaque(raw).takeUnretainedValue() }
        let scratch = AvroThreadScratch()
        pthread_setspecific(key, Unmanaged.passRetained(scratch).toOpaque())
        return scratch
    }
}
