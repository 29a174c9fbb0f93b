import Foundation
import Testing
@testable import OCI

/// The Swift names map to the wire names: decoding then encoding gives back the same JSON object
/// (every key the types model, with its Docker/OCI spelling).
@Suite struct WireFormatTests {
    static let d1 = "sha256:" + String(repeating: "a", count: 64)
    static let d2 = "sha256:" + String(repeating: "b", count: 64)

    /// A Docker image config as `docker build` writes it (the keys udocker models).
    static let config = """
        {"architecture":"amd64","os":"linux","variant":"v8","created":"2024-09-26T21:31:42Z","author":"someone",
         "config":{"User":"1000:1000","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
           "Entrypoint":["/docker-entrypoint.sh"],"Cmd":["sh"],"WorkingDir":"/srv","Hostname":"h","Domainname":"d.example",
           "ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},"Labels":{"org.opencontainers.image.version":"1.36"},
           "StopSignal":"SIGQUIT"},
         "container_config":{"Cmd":["/bin/sh","-c","#(nop) CMD [\\"sh\\"]"]},
         "rootfs":{"type":"layers","diff_ids":["\(d1)","\(d2)"]}}
        """

    static let manifest = """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(d1)","size":1469},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(d2)","size":2152262,
                    "annotations":{"a":"b"},"urls":["https://example.org/l"]}],
         "annotations":{"org.opencontainers.image.created":"2024-09-26T21:31:42Z"}}
        """

    static let index = """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d1)","size":610,
           "platform":{"architecture":"amd64","os":"windows","os.version":"10.0.20348.2762"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d2)","size":610,
           "platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}
        """

    static func normalized(_ data: Data) throws -> Data {
        try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: data), options: [.sortedKeys])
    }

    static func roundTrips<T: Codable>(_ type: T.Type, _ json: String) throws -> Bool {
        let decoded = try JSONDecoder().decode(type, from: Data(json.utf8))
        return try normalized(try JSONEncoder().encode(decoded)) == normalized(Data(json.utf8))
    }

    @Test func imageConfigKeepsTheDockerKeyNames() throws {
        #expect(try Self.roundTrips(ImageConfig.self, Self.config))
        let c = try JSONDecoder().decode(ImageConfig.self, from: Data(Self.config.utf8))
        #expect(c.config?.user == "1000:1000" && c.config?.workingDir == "/srv" && c.config?.stopSignal == "SIGQUIT")
        #expect(c.config?.exposedPorts?.keys.sorted() == ["80/tcp"] && c.config?.volumes?.keys.sorted() == ["/data"])
        #expect(c.containerConfig?.cmd?.first == "/bin/sh")
        #expect(c.rootfs?.diffIDs.map(\.description) == [Self.d1, Self.d2])
    }

    @Test func manifestAndIndexRoundTrip() throws {
        #expect(try Self.roundTrips(Manifest.self, Self.manifest))
        #expect(try Self.roundTrips(Index.self, Self.index))
        let i = try JSONDecoder().decode(Index.self, from: Data(Self.index.utf8))
        #expect(i.manifests.first?.platform?.osVersion == "10.0.20348.2762")
    }

    /// A Swift property name on the wire would be an unknown key: it is ignored, not taken.
    @Test func swiftNamesAreNotWireNames() throws {
        let json = #"{"config":{"cmd":["x"],"workingDir":"/y"},"containerConfig":{"Cmd":["z"]}}"#
        let c = try JSONDecoder().decode(ImageConfig.self, from: Data(json.utf8))
        #expect(c.config?.cmd == nil && c.config?.workingDir == nil && c.containerConfig == nil)
    }
}
