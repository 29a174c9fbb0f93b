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
