import EddyCore
@testable import EddyKafka
import Testing

@Suite struct KafkaMockClusterTests {
    @Test func aMockClusterHasABootstrapAddressAndCreatesTopics() throws {
        let cluster = SharedMockCluster.cluster
        #expect(cluster.bootstrapServers.contains("127.0.0.1:"))
        let topic = uniqueName("mock")
        try cluster.createTopic(topic, partitions: 5)
        #expect(try SharedMockCluster.log.admin.describeTopic(topic).partitions.count == 5)
        #expect(try SharedMockCluster.log.admin.listTopics().contains(topic))
    }

    @Test func theGenerationIsReadBackFromLibrdkafkasSerialisedGroupMetadata() {
        #expect(GroupMetadataFormat.roundTrip(group: "g", generation: 17, member: "m-1") == 17)
        #expect(GroupMetadataFormat.roundTrip(group: "a-longer-group", generation: -1, member: "") == -1)
    }
}
