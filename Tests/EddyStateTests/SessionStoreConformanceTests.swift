import EddyCore
import EddyState
import Testing

@Suite("Session store conformance")
struct SessionStoreConformanceTests {
    private func spans(_ entries: [SessionEntry]) -> [String] { entries.map { "\($0.window.start)-\($0.window.end)" } }

    @Test("sessions are written, fetched exactly and removed", arguments: Implementation.allCases)
    func putFetchRemove(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.sessionStore(retention: 100_000, segmentInterval: 1_000)
        let session = SessionWindow(start: 100, end: 400)
        try store.put(bytes("k"), session: session, value: bytes("v"))
        #expect(try store.fetchSession(bytes("k"), session: session) == bytes("v"))
        #expect(try store.fetchSession(bytes("k"), session: SessionWindow(start: 100, end: 401)) == nil)
        try store.commit()
        #expect(try store.fetchSession(bytes("k"), session: session) == bytes("v"))
        try store.remove(bytes("k"), session: session)
        #expect(try store.fetchSession(bytes("k"), session: session) == nil)
        try store.commit()
        #expect(try store.fetch(bytes("k")).isEmpty)
        #expect(store.observedStreamTime == 400)
        #expect(throws: EddyError.self) { try store.put(bytes("k"), session: SessionWindow(start: 5, end: 4), value: []) }
    }

    @Test("finding sessions returns those overlapping the range, ends inclusive", arguments: Implementation.allCases)
    func findSessionsBounds(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.sessionStore(retention: 100_000, segmentInterval: 1_000)
        let sessions = [(0, 99), (50, 100), (100, 200), (150, 300), (300, 300), (301, 2_500)]
        for (start, end) in sessions {
            try store.put(bytes("k"), session: SessionWindow(start: Timestamp(start), end: Timestamp(end)), value: [1])
        }
        try store.put(bytes("other"), session: SessionWindow(start: 100, end: 200), value: [2])
        try store.put(bytes("k\u{0}"), session: SessionWindow(start: 100, end: 200), value: [3])
        try store.commit()
        // end >= 100 and start <= 300
        #expect(try spans(store.findSessions(bytes("k"), earliestSessionEnd: 100, latestSessionStart: 300))
                == ["50-100", "100-200", "150-300", "300-300"])
        #expect(try spans(store.findSessions(bytes("k"), earliestSessionEnd: 101, latestSessionStart: 299))
                == ["100-200", "150-300"])
        #expect(try spans(store.findSessions(bytes("k"), earliestSessionEnd: 301, latestSessionStart: 301)) == ["301-2500"])
        #expect(try spans(store.findSessions(bytes("k"), earliestSessionEnd: 2_501, latestSessionStart: .max)) == [])
        #expect(try spans(store.findSessions(bytes("k"), earliestSessionEnd: 0, latestSessionStart: -1)) == [])
        #expect(try spans(store.fetch(bytes("k"))) == ["0-99", "50-100", "100-200", "150-300", "300-300", "301-2500"])
        #expect(try spans(store.findSessions(bytes("k"), earliestSessionEnd: 0, latestSessionStart: .max, limit: 2)) == ["0-99", "50-100"])
        #expect(try store.fetch(bytes("other")).map(\.value) == [[2]])
        #expect(try store.all().count == 8)
    }

    @Test("uncommitted sessions are merged and abort drops them", arguments: Implementation.allCases)
    func mergedSessions(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.sessionStore(retention: 100_000, segmentInterval: 1_000)
        try store.put(bytes("k"), session: SessionWindow(start: 0, end: 10), value: [1])
        try store.put(bytes("k"), session: SessionWindow(start: 20, end: 30), value: [1])
        try store.commit()
        // Merging two sessions into one, as a session aggregation does.
        try store.remove(bytes("k"), session: SessionWindow(start: 0, end: 10))
        try store.remove(bytes("k"), session: SessionWindow(start: 20, end: 30))
        try store.put(bytes("k"), session: SessionWindow(start: 0, end: 30), value: [2])
        #expect(try spans(store.fetch(bytes("k"))) == ["0-30"])
        store.abort()
        #expect(try spans(store.fetch(bytes("k"))) == ["0-10", "20-30"])
    }

    @Test("sessions ending before the retention expire", arguments: Implementation.allCases)
    func retentionExpiry(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.sessionStore(retention: 1_000, segmentInterval: 250)
        try store.put(bytes("k"), session: SessionWindow(start: 0, end: 100), value: [1])
        try store.put(bytes("k"), session: SessionWindow(start: 0, end: 600), value: [1])
        try store.commit()
        try store.put(bytes("k"), session: SessionWindow(start: 1_000, end: 1_600), value: [1])
        // Live ends are >= 1_600 - 1_000 + 1 = 601.
        #expect(try spans(store.fetch(bytes("k"))) == ["1000-1600"])
        try store.commit()
        #expect(try spans(store.fetch(bytes("k"))) == ["1000-1600"])
        try store.put(bytes("k"), session: SessionWindow(start: 0, end: 600), value: [1])
        #expect(try store.fetchSession(bytes("k"), session: SessionWindow(start: 0, end: 600)) == nil)
    }
}
