import EddyCore
import Testing

@Suite struct NamesTests {
    @Test(arguments: ["../x", "a/b", "", ".", "..", String(repeating: "a", count: 250), "a b", "tópic", "x\0y"])
    func invalidTopicNamesAreRejected(name: String) {
        #expect(throws: EddyError.self) { try Names.validateTopic(name) }
        do { try Names.validateTopic(name) } catch let error as EddyError {
            #expect(error.code == .invalidName)
        } catch {}
    }

    @Test(arguments: ["orders", "a.b_c-d", "__consumer_offsets", String(repeating: "a", count: 249), "..."])
    func validTopicNamesAreAccepted(name: String) throws {
        try Names.validateTopic(name)
    }
}
