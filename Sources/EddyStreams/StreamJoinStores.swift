import EddyCore
import EddyState

/// The stores of one stream–stream join, named like Kafka Streams' (KIP-479 and KIP-633):
///
/// - this side: `<name>-this-join-store`, or `<KSTREAM-JOINTHIS node>-store` for an unnamed join;
/// - other side: `<name>-other-join-store`, or `<KSTREAM-JOINOTHER node>-store`;
/// - left and outer joins also: `<name>-left-shared-join-store` / `<name>-outer-shared-join-store`,
///   or `KSTREAM-OUTERSHARED-<n>-store`, holding the unmatched records until their window closes.
///
/// With the serdes of the key and of a side's values known (streams read from topics carry
/// them), a store has a persistent variant: RocksDB under the runtime and
/// ``StoreBackend/rocksDB(directory:)``, logged by the runtime to
/// `<application>-<store>-changelog`. Otherwise it stays in memory, like other stores whose
/// serdes are unknown.
enum StreamJoinStores {
    /// The retention of the side stores: every record a future, not late, record can join.
    static func retention(_ windows: JoinWindows) -> Int64 {
        windows.before + windows.after + windows.grace + 1
    }

    /// Declares the join's stores in `builder` and returns their names.
    static func declare<K: Hashable, V1, V2>(in builder: StreamsBuilder, base: String, named: String?,
                                            thisNode: String, otherNode: String, kind: JoinKind, windows: JoinWindows,
                                            keySerde: AnySerde<K>?, leftSerde: AnySerde<V1>?,
                                            rightSerde: AnySerde<V2>?) -> (this: String, other: String, outer: String?) {
        let this = named.map { $0 + "-this-join-store" } ?? thisNode + "-store"
        let other = named.map { $0 + "-other-join-store" } ?? otherNode + "-store"
        let kept = retention(windows)
        builder.addStore(this, kind: .window, persistent: joinSide(this, retention: kept, keySerde, leftSerde)) {
            InMemoryJoinSideStore<K, V1>(name: this)
        }
        builder.addStore(other, kind: .window, persistent: joinSide(other, retention: kept, keySerde, rightSerde)) {
            InMemoryJoinSideStore<K, V2>(name: other)
        }
        guard kind != .inner else { return (this, other, nil) }
        let suffix = kind == .outer ? "-outer-shared-join-store" : "-left-shared-join-store"
        let generated = "KSTREAM-OUTERSHARED" + base.dropFirst("KSTREAM-JOIN".count) + "-store"
        let outer = named.map { $0 + suffix } ?? (base.hasPrefix("KSTREAM-JOIN-") ? generated : base + suffix)
        builder.addStore(outer, kind: .keyValue, persistent: outerShared(outer, keySerde, leftSerde, rightSerde)) {
            InMemoryOuterJoinStore<K, V1, V2>(name: outer, keySerde: keySerde)
        }
        return (this, other, outer)
    }

    static func joinSide<K, V>(_ name: String, retention: Int64, _ key: AnySerde<K>?, _ value: AnySerde<V>?) -> StorePersistence.Factory? {
        guard let key, let value else { return nil }
        return { directory, partition in
            PersistentJoinSideStore(try directory.windowStore(named: name, retentionMilliseconds: retention,
                                                              changelog: StorePersistence.changelog(name, directory, partition)),
                                    keySerde: key, valueSerde: value)
        }
    }

    static func outerShared<K, V1, V2>(_ name: String, _ key: AnySerde<K>?, _ left: AnySerde<V1>?,
                                       _ right: AnySerde<V2>?) -> StorePersistence.Factory? {
        guard let key, let left, let right else { return nil }
        return { directory, partition in
            PersistentOuterJoinStore(try directory.keyValueStore(named: name, changelog: StorePersistence.changelog(name, directory, partition)),
                                     keySerde: key, leftSerde: left, rightSerde: right)
        }
    }
}
