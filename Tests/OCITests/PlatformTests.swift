import Foundation
import Testing
@testable import OCI

@Suite struct PlatformTests {
    @Test(arguments: [
        ("amd64", "linux/amd64"), ("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"),
        ("linux/arm/v7", "linux/arm/v7"), ("LINUX/AMD64", "linux/amd64"), ("linux/i686", "linux/386"),
        ("windows/amd64", "windows/amd64"), ("linux/ppc64le", "linux/ppc64le"),
    ])
    func parsesAndNormalises(_ input: String, _ expected: String) throws {
        #expect(try Platform(parsing: input).description == expected)
    }

    @Test(arguments: ["", "/", "linux/", "/amd64", "a/b/c/d", "linux/amd 64", "linux/am;d64"])
    func rejectsMalformed(_ input: String) {
        #expect(throws: Platform.ParseError.self) { try Platform(parsing: input) }
    }

    @Test func matchingTreatsEmptyFieldsAsWildcards() {
        let armv7 = Platform(os: "linux", architecture: "arm", variant: "v7")
        #expect(Platform(os: "linux", architecture: "arm").matches(armv7))
        #expect(Platform(os: "", architecture: "arm").matches(armv7))
        #expect(!Platform(os: "linux", architecture: "arm", variant: "v6").matches(armv7))
        #expect(!Platform(os: "linux", architecture: "amd64").matches(armv7))
        #expect(!Platform(os: "linux", architecture: "amd64").matches(nil))
        #expect(Platform(os: "linux", architecture: "arm", variant: "").matches(armv7))
    }

    @Test func decodesOSVersionKey() throws {
        let json = #"{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1"}"#
        let p = try JSONDecoder().decode(Platform.self, from: Data(json.utf8))
        #expect(p.osVersion == "10.0.17763.1" && p.description == "windows/amd64")
    }

    @Test func hostIsAKnownArchitecture() {
        #expect(Platform.host.os == "linux")
        #expect(Platform.host.architecture != "unknown")
    }
}

@Suite struct PlatformSelectionTests {
    static func entry(_ n: Character, _ p: Platform?) throws -> Descriptor {
        Descriptor(
            mediaType: MediaType.ociManifest, digest: try Digest(parsing: "sha256:" + String(repeating: n, count: 64)), size: 1, platform: p
        )
    }

    /// `--platform` variants pick among the arm entries; a manifest without a platform never matches;
    /// the first match wins, as in udocker.
    @Test func variantsAndMissingPlatforms() throws {
        let index = Index(
            schemaVersion: 2, mediaType: MediaType.ociIndex,
            manifests: [
                try Self.entry("0", nil),
                try Self.entry("1", Platform(os: "linux", architecture: "arm", variant: "v6")),
                try Self.entry("2", Platform(os: "linux", architecture: "arm", variant: "v7")),
                try Self.entry("3", Platform(os: "linux", architecture: "arm64", variant: "v8")),
                try Self.entry("4", Platform(os: "linux", architecture: "arm64")),
            ])
        func pick(_ s: String) throws -> Character? { try index.manifest(for: Platform(parsing: s))?.digest.hex.first }
        #expect(try pick("linux/arm/v7") == "2")
        #expect(try pick("linux/arm") == "1")
        #expect(try pick("arm64") == "3")
        #expect(try pick("linux/arm64/v9") == nil)
        #expect(try pick("aarch64") == "3")
        #expect(index.platforms == ["linux/arm/v6", "linux/arm/v7", "linux/arm64/v8", "linux/arm64"])
    }

    @Test func descriptionParsesBack() throws {
        for s in ["linux/amd64", "linux/arm/v7", "windows/amd64", "linux/riscv64"] {
            #expect(try Platform(parsing: Platform(parsing: s).description).description == s)
        }
    }
}
