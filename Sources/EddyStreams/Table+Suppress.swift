import EddyCore

/// Whether ``Table/suppress(_:named:)`` holds updates back.
public enum Suppression: Sendable {
    /// Only the final result of each window, once it closes (window end + grace).
    case untilWindowCloses
}

extension Table {
    /// Holds back a windowed table's updates and sends only each window's final result, once
    /// the window closes (Kafka's `suppress(untilWindowCloses(unbounded()))`). Only for tables
    /// produced by a windowed aggregation; on others the builder reports an error.
    ///
    /// The held-back updates live in a buffer store named `<named>-store` (or
    /// `KTABLE-SUPPRESS-STATE-STORE-<n>`), persistent and logged to
    /// `<application>-<store>-changelog` when the table's serdes are known, so each final
    /// result is sent exactly once across restarts and task migrations.
    public func suppress<Inner: Hashable>(_ suppression: Suppression, named: String? = nil) -> Table<K, V> where K == Windowed<Inner> {
        suppressUntilWindowCloses(named: named)
    }

    func suppressUntilWindowCloses<Inner: Hashable>(named: String? = nil) -> Table<K, V> where K == Windowed<Inner> {
        guard let (grace, offset) = windowClose else {
            builder.errors.append("suppress(untilWindowCloses) needs a table from a windowed aggregation")
            return self
        }
        let n = builder.name("KTABLE-SUPPRESS", named)
        let store = named.map { $0 + "-store" } ?? "KTABLE-SUPPRESS-STATE-STORE-" + n.suffix(10)
        let keySerde = self.keySerde
        builder.addStore(store, kind: .keyValue, persistent: StorePersistence.suppressionBuffer(store, keySerde, valueSerde)) {
            InMemorySuppressionBuffer<Windowed<Inner>, V>(name: store, keySerde: keySerde)
        }
        builder.addNode(n, kind: .processor, parents: [node], stores: [store]) {
            SuppressNode<Inner, V>(name: n, children: $0, store: store, grace: grace, closeOffset: offset)
        }
        return Table(builder: builder, node: n, store: storeName, keySerde: keySerde, valueSerde: valueSerde,
                     partitioningTopics: partitioningTopics, windowClose: windowClose)
    }
}
