import Foundation
import Testing
@testable import OCI

@Suite struct DigestTests {
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test func hashesLikeSha256sum() throws {
        #expect(Digest.sha256(of: Data()).description == "sha256:\(Self.emptySHA256)")
        var h = DigestHasher()
        h.update(Data("ab".utf8)); h.update(Data("c".utf8))
        #expect(h.finalize() == Digest.sha256(of: Data("abc".utf8)))
        #expect(h.finalize().hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func parsesValidDigests() throws {
        let d = try Digest(parsing: "sha256:\(Self.emptySHA256)")
        #expect(d.algorithm == "sha256" && d.hex == Self.emptySHA256)
        #expect(d.fileName == "sha256:\(Self.emptySHA256)")
        let long = String(repeating: "a", count: 128)
        #expect(try Digest(parsing: "sha512:\(long)").algorithm == "sha512")
    }

    /// Digests reach paths and URLs: anything but lowercase hex of the exact length is refused.
    @Test(arguments: [
        "", "sha256", "sha256:", ":abc", "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:" + String(repeating: "a", count: 63), "sha256:" + String(repeating: "a", count: 65),
        "sha256:" + String(repeating: "A", count: 64), "sha256:../../../../etc/passwd",
        "sha256:" + String(repeating: "a", count: 62) + "/x", "SHA256:" + String(repeating: "a", count: 64),
        "sha256:" + String(repeating: "g", count: 64), "sha256:" + String(repeating: "a", count: 63) + "\0",
        "sha512:" + String(repeating: "a", count: 64),
    ])
    func rejectsMalformedDigests(_ text: String) {
        #expect(throws: Digest.ParseError.self) { try Digest(parsing: text) }
    }

    @Test func codableRoundTripAndValidationOnDecode() throws {
        let d = try Digest(parsing: "sha256:\(Self.emptySHA256)")
        let data = try JSONEncoder().encode([d])
        #expect(String(decoding: data, as: UTF8.self) == "[\"sha256:\(Self.emptySHA256)\"]")
        #expect(try JSONDecoder().decode([Digest].self, from: data) == [d])
        #expect(throws: (any Error).self) { try JSONDecoder().decode([Digest].self, from: Data("[\"sha256:../x\"]".utf8)) }
    }

    @Test func ordersByText() throws {
        let a = try Digest(parsing: "sha256:" + String(repeating: "0", count: 64))
        let b = try Digest(parsing: "sha256:" + String(repeating: "f", count: 64))
        #expect(a < b && !(b < a))
    }
}

@Suite struct DigestComponentsTests {
    /// The two-part initializer applies the same rules as parsing (it builds digests from
    /// registry headers and file names).
    @Test(arguments: [
        ("sha256", String(repeating: "0", count: 64), true), ("sha512", String(repeating: "f", count: 128), true),
        ("sha256", String(repeating: "0", count: 128), false), ("sha512", String(repeating: "0", count: 64), false),
        ("sha384", String(repeating: "0", count: 96), false), ("", "", false),
        ("sha256", String(repeating: "0", count: 63) + "G", false), ("sha256", String(repeating: "0", count: 62) + "é", false),
    ])
    func validatesAlgorithmAndHex(_ algorithm: String, _ hex: String, _ valid: Bool) {
        let d = try? Digest(algorithm: algorithm, hex: hex)
        #expect((d != nil) == valid)
        if let d { #expect(d.description == "\(algorithm):\(hex)" && (try? Digest(parsing: d.description)) == d) }
    }

    /// Only the first ':' separates: a second one belongs to the (then invalid) hex part.
    @Test func splitsAtTheFirstColon() {
        #expect(throws: Digest.ParseError.self) { try Digest(parsing: "sha256:" + String(repeating: "a", count: 62) + ":a") }
    }
}
